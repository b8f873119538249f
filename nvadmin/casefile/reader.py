"""Opening a case file read-only: a v2 file in place, page by page through SQLCipher; a v1
file decrypted into memory and deserialised into SQLite."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlcipher3
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.pool import QueuePool

from nvadmin.audit import checkpoints as cp
from nvadmin.audit.verify import BreakKind, BrokenLink, Verification, walk
from nvadmin.casefile import container, encrypted
from nvadmin.casefile.builder import (
    MANIFEST_FORMAT,
    SharedConnection,
    connection_engine,
)
from nvadmin.casefile.container import CaseFileError
from nvadmin.errors import UserError
from nvadmin.identity import Permission, Role, StaffIdentity
from nvadmin.workers import helper
from nvadmin.workers.cancel import CancelToken, no_progress

log = logging.getLogger(__name__)

# What verification walks: the case's events and their chain context, as one chain.
SEGMENT_SOURCE = ("activity_events", "case_chain_context")


@dataclass
class OpenCase:
    """An open case file: read in place, its pages decrypted as they are read (v2), or
    decrypted whole into memory (v1)."""

    path: Path
    engine: Engine
    manifest: dict[str, Any]
    public_keys: dict[str, Ed25519PublicKey] = field(default_factory=dict)
    _connection: SharedConnection | None = field(default=None, repr=False)
    # The database key of a file read in place (its connections hold it too): given to the
    # helper process that checks every page (:class:`_PageCheck`).
    _key: bytes = field(default=b"", repr=False)

    @property
    def in_place(self) -> bool:
        """Read from the file page by page (version 2), not decrypted into memory."""
        return self._connection is None

    @property
    def label(self) -> str:
        return f"case file {self.path.name} (offline, read-only)"

    @property
    def creator(self) -> StaffIdentity:
        """Who made the case file: the identity a reviewer works under offline."""
        made_by = self.manifest["created_by"]
        return StaffIdentity(
            int(made_by["id"]), made_by["email"], made_by["display_name"], Role(made_by["role"])
        )

    def close(self) -> None:
        self.engine.dispose()
        if self._connection is not None:
            self._connection.discard()
            self._connection = None


def passphrase_check(passphrase: str) -> Callable[[str], None]:
    """A check that a later entry is the same passphrase (the offline lock screen's): only a
    salted scrypt digest is kept, never the passphrase."""
    salt = os.urandom(16)

    def derive(text: str) -> bytes:
        return hashlib.scrypt(text.encode(), salt=salt, n=2**14, r=8, p=1)

    expected = derive(passphrase)

    def check(candidate: str) -> None:
        if not hmac.compare_digest(derive(candidate), expected):
            raise UserError("That is not the case file's passphrase.")

    return check


def open_case_file(
    path: Path,
    passphrase: str,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> OpenCase:
    """Open ``path`` read-only. Raises :class:`CaseFileError` with a one-line reason (wrong
    passphrase, truncated, altered, not a case file)."""
    if container.version_of(path) == 1:
        return _open_v1(path, passphrase, progress=progress)
    header = encrypted.read_header(path)
    keys = encrypted.unlock(header, passphrase)
    # Connections are shared between the browser's background threads (not one per thread):
    # each is keyed once and keeps its page cache.
    key = keys.encryption
    del keys
    engine = create_engine(
        "sqlite://",
        module=sqlcipher3,
        creator=encrypted.opener(path, key),
        poolclass=QueuePool,
        pool_size=4,
        max_overflow=4,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "handle_error")
    def _named(context: ExceptionContext) -> Exception | None:
        # Every page is authenticated as it is read: a failure anywhere (browsing, a report,
        # verification) is the file's fault, and is said so instead of "not a database".
        error = context.original_exception
        if isinstance(error, encrypted.DatabaseError) and encrypted.is_page_failure(error):
            return CaseFileError(encrypted.PAGE_FAILURE)
        return None

    try:
        with engine.connect() as connection:
            raw = connection.connection.driver_connection
            assert raw is not None
            manifest, keys_carried = _read_manifest(raw)
    except BaseException:
        engine.dispose()
        raise
    log.info("opened case file %s (%s events)", path, manifest.get("events"))
    return OpenCase(path, engine, manifest, keys_carried, _key=key)


def _read_manifest(connection: Any) -> tuple[dict[str, Any], dict[str, Ed25519PublicKey]]:
    """The manifest and the public keys a case database carries; :class:`CaseFileError` when
    it is not a case database (or a page of it does not verify)."""
    try:
        (text,) = connection.execute(
            "SELECT value FROM case_manifest WHERE key = 'manifest'"
        ).fetchone()
        manifest = json.loads(text)
        if manifest.get("format") != MANIFEST_FORMAT:
            raise CaseFileError("this case file was made by a newer nvadmin: upgrade to open it")
        keys: dict[str, Ed25519PublicKey] = {}
        for key_id, pem in connection.execute("SELECT key_id, pem FROM case_public_keys"):
            key = cp.load_public_pem(pem.encode("ascii"))
            if cp.key_id(key) == key_id:
                keys[key_id] = key
    except (sqlite3.DatabaseError, encrypted.DatabaseError) as error:
        if isinstance(error, encrypted.DatabaseError) and encrypted.is_page_failure(error):
            raise CaseFileError(encrypted.PAGE_FAILURE) from None
        log.info("case file decrypted but unreadable: %s", error)
        raise CaseFileError("the case file's content is not a case database") from None
    except (TypeError, ValueError, KeyError) as error:
        log.info("case file decrypted but unreadable: %s", error)
        raise CaseFileError("the case file's content is not a case database") from None
    return manifest, keys


def _open_v1(
    path: Path,
    passphrase: str,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> OpenCase:
    """A version 1 case file: decrypted whole into an in-memory, read-only database."""
    data = container.read_bytes(path)
    image = container.decrypt(data, passphrase, progress=progress)
    del data
    connection = sqlite3.connect(
        ":memory:", check_same_thread=False, isolation_level=None, factory=SharedConnection
    )
    try:
        try:
            connection.deserialize(image)
        except sqlite3.DatabaseError:
            raise CaseFileError("the case file's content is not a case database") from None
        del image
        connection.execute("PRAGMA temp_store = MEMORY")
        # Read-only for real: SQLite refuses any write, whatever code tries one.
        connection.execute("PRAGMA query_only = ON")
        manifest, keys = _read_manifest(connection)
    except BaseException:
        connection.discard()
        raise
    log.info("opened case file %s (%s events, version 1)", path, manifest.get("events"))
    return OpenCase(path, connection_engine(connection), manifest, keys, connection)


def verify_case(
    case: OpenCase,
    identity: StaffIdentity,
    trusted_keys: Mapping[str, Ed25519PublicKey] | None = None,
    *,
    progress: Callable[[int, int | None, str], None] = no_progress,
    cancel: CancelToken | None = None,
) -> list[Verification]:
    """Verify every chain segment the case file carries, offline.

    Checkpoints are relied on when signed by a key this reviewer trusts, or by a key carried
    in the case file; the latter is named with its fingerprint so the reviewer can compare it
    with the published one.
    """
    identity.require(Permission.VERIFY)
    trusted = dict(trusted_keys or {})
    total = sum(s["last_seq"] - s["first_seq"] + 1 for s in case.manifest["segments"])
    pages = _PageCheck(case) if case.in_place else None
    try:
        with case.engine.connect() as connection:
            results = _walk_segments(case, connection, trusted, total, progress, cancel)
            if pages is not None:
                progress(total, total, "checking every page of the case file")
                pages.check(connection, cancel)
    except encrypted.DatabaseError as error:
        # The chain walk reads through the driver's own cursor, past the engine's error
        # handler: a page that does not verify is the file's fault, said as such, not
        # "the SQLite file is damaged or is not an nvadmin database".
        if encrypted.is_page_failure(error):
            log.info("case file %s: a page does not verify: %s", case.path, error)
            raise CaseFileError(encrypted.PAGE_FAILURE) from None
        raise
    finally:
        if pages is not None:
            pages.stop()
    return results


class _PageCheck:
    """Every page of a case file read in place authenticated, not only those the chain walk
    reads (the schema, the other tables and indexes, the free pages' list): ``PRAGMA
    quick_check``, run by a helper process (:mod:`nvadmin.workers.helper`) while this one walks
    the chains (1M events: 2.9 s of checking beside 3.7 s of walking), or here when no helper
    can run it. A page that does not verify raises :data:`encrypted.PAGE_FAILURE`."""

    def __init__(self, case: OpenCase) -> None:
        self._path = case.path
        self._helper: helper.Running | None = None
        try:
            job = {"case_file": str(case.path.resolve()), "key": case._key.hex()}
            self._helper = helper.Running("case-check", job)
        except OSError:
            log.warning("could not start the process checking the case file", exc_info=True)

    def check(self, connection: Connection, cancel: CancelToken | None) -> None:
        problems: list[str] | None = None
        if self._helper is not None:
            if cancel is not None:
                cancel.on_cancel(self._helper.kill)
            try:
                problems = self._helper.wait()["problems"]
            except helper.Failed as failure:
                if cancel is not None:
                    cancel.check()  # killed because the work was cancelled
                log.warning("the process checking the case file failed: %s", failure)
        if problems is None:
            problems = list(connection.exec_driver_sql("PRAGMA quick_check").scalars())
        if problems != ["ok"]:
            log.info("case file %s fails quick_check: %s", self._path, problems[:5])
            raise CaseFileError(encrypted.PAGE_FAILURE)

    def stop(self) -> None:
        if self._helper is not None:
            self._helper.close()


def _walk_segments(
    case: OpenCase,
    connection: Connection,
    trusted: dict[str, Ed25519PublicKey],
    total: int,
    progress: Callable[[int, int | None, str], None],
    cancel: CancelToken | None,
) -> list[Verification]:
    """Each chain segment the case carries walked and judged (see :func:`verify_case`)."""
    slugs = {w["id"]: w["slug"] for w in case.manifest["workspaces"]}
    results: list[Verification] = []
    offset = 0
    for segment in case.manifest["segments"]:
        workspace_id = int(segment["workspace_id"])
        first, last = int(segment["first_seq"]), int(segment["last_seq"])
        result = Verification(
            workspace_id,
            slugs.get(workspace_id, str(workspace_id)),
            f"events #{first:,} to #{last:,} carried in the case file",
            first,
            last,
        )
        checkpoints = cp.load(connection, workspace_id, first, last)
        signed: dict[int, bytes] = {}
        for checkpoint in checkpoints:
            local = checkpoint.check(trusted)
            state = local
            if local is cp.SignatureState.UNKNOWN_KEY:
                state = checkpoint.check(case.public_keys)
                if state is cp.SignatureState.VALID:
                    result.notes.append(
                        f"checkpoint at event #{checkpoint.seq:,} verified with the key "
                        f"carried in the case file, fingerprint "
                        f"{cp.fingerprint(case.public_keys[checkpoint.key_id])}: compare it "
                        "with your organisation's published fingerprint"
                    )
            if state is cp.SignatureState.VALID:
                signed[checkpoint.seq] = checkpoint.hash
            elif state is cp.SignatureState.INVALID:
                result.broken = result.broken or BrokenLink(
                    BreakKind.ALTERED,
                    checkpoint.seq,
                    None,
                    None,
                    checkpoint.hash,
                    f"the signed checkpoint for event #{checkpoint.seq:,} does not verify",
                )
            else:
                result.notes.append(
                    f"checkpoint at event #{checkpoint.seq:,} is signed by an unknown key "
                    f"{checkpoint.key_id}; not relied on"
                )

        def walked(done: int, _total: int | None, _message: str, base: int = offset) -> None:
            progress(base + done, total, f"{base + done:,} events verified")

        count, broken, last_good = walk(
            connection,
            workspace_id,
            first,
            last,
            anchor=None,
            source=SEGMENT_SOURCE,
            signed=signed,
            progress=walked,
            cancel=cancel,
        )
        offset += last - first + 1
        result.events_verified = count
        result.broken = result.broken or broken
        if result.broken is None and (last_good is None or last_good[0] != last):
            have = last_good[0] if last_good else first - 1
            result.broken = BrokenLink(
                BreakKind.MISSING,
                have + 1,
                None,
                None,
                None,
                f"the case file should carry events up to #{last:,}; it ends at #{have:,}",
            )
        if result.broken is None:
            result.checkpoints_valid = len(signed)
            if last in signed:
                result.notes.append(
                    f"the segment ends at a signed checkpoint (event #{last:,}): every "
                    "event in it is covered by that signature"
                )
            else:
                head = segment.get("chain_head_at_creation") or {}
                result.notes.append(
                    "no signed checkpoint after these events when the case file was made: "
                    "the segment is consistent, but only a signature could prove it is the "
                    f"original (chain head then: #{head.get('seq', '?'):,})"
                    if isinstance(head.get("seq"), int)
                    else "no signed checkpoint after these events when the case file was made"
                )
        results.append(result)
    return results
