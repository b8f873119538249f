"""Signed checkpoints: "workspace W's chain had N events, the newest ending in hash H".

The hash chain alone proves that no event *inside* the chain was changed, removed or slipped
in, but not that the newest events were not cut off: a chain truncated after event 900 is a
perfectly valid chain of 900 events. A checkpoint signed with Ed25519 closes that gap, the way
AWS CloudTrail's signed digest files and Certificate Transparency's signed tree heads do: a
verifier that finds a valid signature over ``(W, N, H)`` knows the chain once reached N events
and that event N had hash H, so fewer events, or a different event N, means tampering.

Where the keys live, and why
----------------------------
* The **signing key** (Ed25519 private key, PKCS#8 PEM) is a file in nvadmin's configuration
  folder, ``<config>/checkpoint-signing-key.pem`` (``NVADMIN_HOME/config`` when that is set,
  else the platform's user configuration folder, e.g. ``~/.config/nvadmin``). It is created
  with mode 0600 by ``nvadmin checkpoint --create-key`` on the machine that signs (normally the
  server or operator account that runs ``nvadmin checkpoint --all`` from cron). It never goes
  into the database: anyone able to rewrite the event table could then also re-sign.
  It is not put in the OS keyring because the signing job runs headless, where no keyring
  exists; the file is readable by its owner only, and nvadmin refuses to use one that is
  readable by others.
* The **public key** is exported with ``nvadmin checkpoint --export-public-key FILE`` and its
  fingerprint (``nvadmin checkpoint --fingerprint``) is published out of band, e.g. in the
  compliance policy or a signed e-mail from the security officer.
* A **reviewer trusts a key** by comparing its fingerprint with the published one and then
  installing it with ``nvadmin checkpoint --trust FILE``, which copies it into
  ``<config>/trusted-checkpoint-keys/``. Verification only counts checkpoints whose signature
  verifies with a trusted key (the own signing key's public half is trusted implicitly);
  checkpoints signed by unknown keys are reported and not relied on, and a checkpoint whose
  signature does not verify at all is reported as tampering.

Nothing here touches Qt; importing this module reads no file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Connection, insert, select

from nvadmin.audit.chain import utc_text
from nvadmin.db.models import ChainCheckpoint
from nvadmin.errors import UserError

log = logging.getLogger(__name__)

CHECKPOINT_TAG = b"nvadmin-checkpoint-v1\x00"
SIGNING_KEY_FILE = "checkpoint-signing-key.pem"
TRUSTED_KEYS_DIR = "trusted-checkpoint-keys"


def checkpoint_message(
    workspace_id: int, seq: int, chain_hash: bytes, signed_at: datetime
) -> bytes:
    """The exact bytes signed: a domain tag and canonical JSON of the statement."""
    statement = [workspace_id, seq, chain_hash.hex(), utc_text(signed_at)]
    return CHECKPOINT_TAG + json.dumps(statement, separators=(",", ":")).encode("ascii")


def key_id(public_key: Ed25519PublicKey) -> str:
    """A key's identifier: the first 16 bytes of the SHA-256 of its raw public bytes, in hex."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:32]


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """The key id grouped in fours, for reading aloud or comparing by eye."""
    ident = key_id(public_key)
    return " ".join(ident[i : i + 4] for i in range(0, len(ident), 4))


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_pem(data: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        raise UserError("not a PEM public key file") from None
    if not isinstance(key, Ed25519PublicKey):
        raise UserError("the public key is not an Ed25519 key")
    return key


@dataclass(frozen=True)
class SigningKey:
    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)


class KeyStore:
    """The signing key file and the reviewer's trusted public keys, under one config folder."""

    def __init__(self, config_dir: Path) -> None:
        self.config_dir = config_dir

    @property
    def signing_key_path(self) -> Path:
        return self.config_dir / SIGNING_KEY_FILE

    @property
    def trusted_dir(self) -> Path:
        return self.config_dir / TRUSTED_KEYS_DIR

    def create_signing_key(self) -> SigningKey:
        path = self.signing_key_path
        if path.exists():
            raise UserError(f"a checkpoint signing key already exists: {path}")
        self.config_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        private_key = Ed25519PrivateKey.generate()
        pem = private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        # O_EXCL + mode 0600: the key is never readable by anyone else, not even briefly.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        log.info("created checkpoint signing key %s at %s", key_id(private_key.public_key()), path)
        return SigningKey(private_key)

    def signing_key(self) -> SigningKey | None:
        """The signing key, or None when this machine has none."""
        path = self.signing_key_path
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            return None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise UserError(
                f"the checkpoint signing key {path} is readable by other users; "
                f"restrict it with: chmod 600 {path}"
            )
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError):
            raise UserError(f"the checkpoint signing key {path} is damaged") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise UserError(f"{path} does not hold an Ed25519 key")
        return SigningKey(key)

    def require_signing_key(self) -> SigningKey:
        key = self.signing_key()
        if key is None:
            raise UserError(
                "this machine has no checkpoint signing key; create one with "
                "`nvadmin checkpoint --create-key`"
            )
        return key

    def unusable_own_key(self) -> dict[str, str]:
        """``{key id: why}`` when this computer has a signing key it refuses to use (readable
        by others, say): its checkpoints are then not relied on, and a verification says why
        instead of calling the key unknown."""
        try:
            self.signing_key()
            return {}
        except UserError as error:
            reason = str(error)
        try:
            key = serialization.load_pem_private_key(
                self.signing_key_path.read_bytes(), password=None
            )
        except (OSError, ValueError, TypeError):
            return {}
        if not isinstance(key, Ed25519PrivateKey):
            return {}
        return {key_id(key.public_key()): reason}

    def trusted_keys(self) -> dict[str, Ed25519PublicKey]:
        """Trusted public keys by key id: the installed ones plus this machine's own."""
        keys: dict[str, Ed25519PublicKey] = {}
        if self.trusted_dir.is_dir():
            for path in sorted(self.trusted_dir.glob("*.pem")):
                try:
                    key = load_public_pem(path.read_bytes())
                except (UserError, OSError) as error:
                    log.warning("ignoring trusted key %s: %s", path, error)
                    continue
                keys[key_id(key)] = key
        try:
            own = self.signing_key()
        except UserError as error:
            log.warning("own signing key not usable: %s", error)
            own = None
        if own is not None:
            keys[own.key_id] = own.public_key
        return keys

    def trust(self, pem: bytes) -> Ed25519PublicKey:
        key = load_public_pem(pem)
        self.trusted_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        (self.trusted_dir / f"{key_id(key)}.pem").write_bytes(public_pem(key))
        return key


class SignatureState(StrEnum):
    VALID = "valid"  # verifies with a trusted key
    UNKNOWN_KEY = "unknown key"  # signed by a key this reviewer does not trust
    INVALID = "invalid"  # the key is trusted but the signature does not match: tampering


@dataclass(frozen=True)
class Checkpoint:
    id: int
    workspace_id: int
    seq: int
    hash: bytes
    signed_at: datetime
    key_id: str
    signature: bytes

    def check(self, trusted: Mapping[str, Ed25519PublicKey]) -> SignatureState:
        key = trusted.get(self.key_id)
        if key is None:
            return SignatureState.UNKNOWN_KEY
        try:
            key.verify(
                self.signature,
                checkpoint_message(self.workspace_id, self.seq, self.hash, self.signed_at),
            )
        except InvalidSignature:
            return SignatureState.INVALID
        return SignatureState.VALID


def load(
    connection: Connection, workspace_id: int, first_seq: int = 0, last_seq: int | None = None
) -> list[Checkpoint]:
    """Checkpoints of a workspace with ``first_seq <= seq <= last_seq``, oldest first."""
    c = ChainCheckpoint
    query = select(c.id, c.workspace_id, c.seq, c.hash, c.signed_at, c.key_id, c.signature).where(
        c.workspace_id == workspace_id, c.seq >= first_seq
    )
    if last_seq is not None:
        query = query.where(c.seq <= last_seq)
    return [
        Checkpoint(
            id=int(r[0]),
            workspace_id=int(r[1]),
            seq=int(r[2]),
            hash=bytes(r[3]),
            signed_at=r[4],
            key_id=str(r[5]),
            signature=bytes(r[6]),
        )
        for r in connection.execute(query.order_by(c.seq, c.id))
    ]


def store(
    connection: Connection, key: SigningKey, workspace_id: int, seq: int, chain_hash: bytes
) -> Checkpoint:
    """Sign ``(workspace, seq, hash)`` now and store the checkpoint."""
    # Microseconds are kept: the stored value must round-trip exactly to re-check the signature.
    signed_at = datetime.now(UTC)
    signature = key.private_key.sign(checkpoint_message(workspace_id, seq, chain_hash, signed_at))
    new_id = connection.execute(
        insert(ChainCheckpoint)
        .values(
            workspace_id=workspace_id,
            seq=seq,
            hash=chain_hash,
            signed_at=signed_at,
            key_id=key.key_id,
            signature=signature,
        )
        .returning(ChainCheckpoint.id)
    ).scalar_one()
    return Checkpoint(int(new_id), workspace_id, seq, chain_hash, signed_at, key.key_id, signature)
