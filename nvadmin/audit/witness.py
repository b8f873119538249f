"""Every desktop a witness: what this computer last saw of each chain, kept outside the database.

Signed checkpoints live in the database, so whoever can delete events can delete them too. This
module keeps, in nvadmin's own data folder, per database and workspace, the newest
``(sequence number, hash)`` this computer verified (a whole-chain verification that came out
intact) or saw in a checkpoint signed by a trusted key, plus up to :data:`MAX_POINTS` earlier
``(seq, hash)`` pairs of that chain spread evenly over it. The next verification holds the
database to them like to a checkpoint: a chain that no longer reaches the remembered event, or
leads to another hash there, was rolled back, rewritten or deleted; the spread pairs narrow a
rewrite down to the stretch between two of them. At sign-in one query of the chain heads
compares them cheaply (:func:`compare_heads`).

The file (``chain-witness.json``) is protected by an HMAC-SHA256 under a random key in
``chain-witness.key`` beside it (mode 0600): an edit by anyone who cannot read that key is
noticed and reported, and the altered file is set aside, not trusted. The record proves
nothing to a third party (the desktop's owner could rewrite it); it protects against someone
who controls the database but not this computer's account. See docs/compliance.md.

Databases are told apart by their address without user or password: backend, host, port and
database name, or the absolute path of a SQLite file. Importing this module reads no file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, Engine, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError

from nvadmin.db.models import ChainHead, Workspace
from nvadmin.errors import UserError

log = logging.getLogger(__name__)

FORMAT = "nvadmin-chain-witness/1"
WITNESS_FILE = "chain-witness.json"
WITNESS_KEY_FILE = "chain-witness.key"
# Remembered pairs per chain, besides the newest: a rewrite is narrowed to 1/MAX_POINTS of it.
MAX_POINTS = 256
_KEY_BYTES = 32


def database_key(url: str | URL) -> str | None:
    """How this computer names a database in its record, or None for one that has no lasting
    identity (an in-memory database, an opened case file)."""
    parsed = make_url(url) if isinstance(url, str) else url
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return "sqlite:" + str(Path(database).expanduser().resolve())
    port = parsed.port or (5432 if backend == "postgresql" else None)
    return f"{backend}://{parsed.host or 'localhost'}:{port}/{parsed.database or ''}"


def sample_positions(last_seq: int, limit: int = MAX_POINTS) -> list[int]:
    """Evenly spread sequence numbers up to ``last_seq`` (every 2^k-th, at most ``limit``) and
    ``last_seq`` itself."""
    stride = 1
    while last_seq // stride > limit:
        stride *= 2
    positions = list(range(stride, last_seq + 1, stride))
    if not positions or positions[-1] != last_seq:
        positions.append(last_seq)
    return positions


@dataclass(frozen=True)
class Remembered:
    """What this computer last knew of one chain."""

    workspace_slug: str
    seq: int
    hash: bytes
    seen_at: datetime
    how: str  # "verified" or "checkpoint"
    points: Mapping[int, bytes] = field(default_factory=dict)

    def commitments(self) -> dict[int, bytes]:
        """Every remembered ``seq -> hash``, the newest included."""
        return {**self.points, self.seq: self.hash}

    def describe(self) -> str:
        when = self.seen_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        what = "verified the chain" if self.how == "verified" else "saw a trusted signed checkpoint"
        return f"this computer {what} on {when}"

    def as_source(self) -> str:
        """Who vouches for a remembered hash, in a verification's words."""
        when = self.seen_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        how = "verified on" if self.how == "verified" else "from a trusted checkpoint seen on"
        return f"this computer's record ({how} {when})"

    def to_json(self) -> dict[str, object]:
        return {
            "slug": self.workspace_slug,
            "seq": self.seq,
            "hash": self.hash.hex(),
            "seen_at": self.seen_at.astimezone(UTC).isoformat(),
            "how": self.how,
            "points": [[seq, value.hex()] for seq, value in sorted(self.points.items())],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Remembered:
        points = data.get("points") or []
        if not isinstance(points, list):
            raise ValueError("points are not a list")
        return cls(
            workspace_slug=str(data["slug"]),
            seq=int(data["seq"]),  # type: ignore[call-overload]
            hash=bytes.fromhex(str(data["hash"])),
            seen_at=datetime.fromisoformat(str(data["seen_at"])),
            how=str(data["how"]),
            points={int(seq): bytes.fromhex(str(value)) for seq, value in points},
        )


class WitnessError(Exception):
    """The record cannot be relied on; the message says why in one line."""


class WitnessStore:
    """The record file and its key, in nvadmin's data folder."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    @property
    def path(self) -> Path:
        return self.data_dir / WITNESS_FILE

    @property
    def key_path(self) -> Path:
        return self.data_dir / WITNESS_KEY_FILE

    # -- the key -----------------------------------------------------------------------------

    def _key(self, *, create: bool) -> bytes | None:
        path = self.key_path
        try:
            if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                # Readable by others: anyone could have re-signed the record with it.
                raise WitnessError(f"the record's key {path} is readable by other users")
            key = path.read_bytes()
        except FileNotFoundError:
            if not create:
                return None
            self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            key = os.urandom(_KEY_BYTES)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another nvadmin made it a moment ago
                return self._key(create=False)
            with os.fdopen(fd, "wb") as handle:
                handle.write(key)
                handle.flush()
                os.fsync(handle.fileno())
            return key
        if len(key) != _KEY_BYTES:
            raise WitnessError(f"the record's key {path} is damaged")
        return key

    @staticmethod
    def _mac(key: bytes, databases: object) -> str:
        body = json.dumps(databases, sort_keys=True, separators=(",", ":")).encode("utf-8")
        return hmac.new(key, FORMAT.encode() + b"\x00" + body, hashlib.sha256).hexdigest()

    # -- reading and writing -----------------------------------------------------------------

    def load(self) -> dict[str, dict[str, Remembered]]:
        """Every remembered chain: ``{database key: {workspace id: Remembered}}``. Raises
        :class:`WitnessError` when the file was altered or cannot be read."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as error:
            raise WitnessError(f"cannot read {self.path}: {error.strerror}") from None
        key = self._key(create=False)
        try:
            document = json.loads(raw)
            databases = document["databases"]
            mac = str(document["mac"])
        except (ValueError, KeyError, TypeError):
            raise WitnessError(f"{self.path} is damaged") from None
        if key is None or not hmac.compare_digest(mac, self._mac(key, databases)):
            raise WitnessError(f"{self.path} was altered outside nvadmin")
        try:
            return {
                database: {ws: Remembered.from_json(item) for ws, item in chains.items()}
                for database, chains in databases.items()
            }
        except (ValueError, KeyError, TypeError, AttributeError):
            raise WitnessError(f"{self.path} is damaged") from None

    def _write(self, chains: Mapping[str, Mapping[str, Remembered]]) -> None:
        from nvadmin.files.atomic import write_file

        key = self._key(create=True)
        assert key is not None
        databases = {
            database: {ws: item.to_json() for ws, item in sorted(entries.items())}
            for database, entries in sorted(chains.items())
            if entries
        }
        document = {"format": FORMAT, "databases": databases, "mac": self._mac(key, databases)}
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_file(self.path, json.dumps(document, indent=1, sort_keys=True).encode("utf-8"))

    def set_aside(self) -> None:
        """Move an altered or damaged record, and its key, out of the way (kept for
        inspection): the next record starts afresh under a new key."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        for path in (self.path, self.key_path):
            if path.exists():
                target = path.with_name(f"{path.name}.altered-{stamp}")
                os.replace(path, target)
                log.warning("set aside the altered chain record file as %s", target)

    def forget(self, database: str) -> int:
        """Drop everything remembered about one database (after a deliberate rebuild);
        returns how many chains were forgotten."""
        chains = self.load()
        forgotten = len(chains.pop(database, {}))
        if forgotten:
            self._write(chains)
        return forgotten

    def remember(self, database: str, workspace_id: int, item: Remembered) -> None:
        """Record ``item`` unless this computer already knows a longer chain there: the record
        only ever moves forward (a rolled-back chain must keep being reported)."""
        try:
            chains = self.load()
        except WitnessError:
            self.set_aside()
            chains = {}
        entries = dict(chains.get(database, {}))
        known = entries.get(str(workspace_id))
        if known is not None and known.seq > item.seq:
            return
        if known is not None and known.seq == item.seq and known.hash != item.hash:
            return  # a fork: keep what was seen first, the verification reported it
        if known is not None and item.how == "checkpoint" and known.seq == item.seq:
            item = known  # the same point: keep the verified points and their date
        entries[str(workspace_id)] = item
        chains[database] = entries
        self._write(chains)


@dataclass
class ChainWitness:
    """One database's view of the record, as verification uses it."""

    store: WitnessStore
    database: str

    @classmethod
    def for_database(cls, data_dir: Path, url: str | URL) -> ChainWitness | None:
        key = database_key(url)
        return None if key is None else cls(WitnessStore(data_dir), key)

    def recall(self, workspace_id: int) -> Remembered | None:
        """What this computer remembers of a workspace's chain (:class:`WitnessError` when
        the record was altered)."""
        return self.store.load().get(self.database, {}).get(str(workspace_id))

    def remember(self, workspace_id: int, item: Remembered) -> None:
        try:
            self.store.remember(self.database, workspace_id, item)
        except (OSError, WitnessError, UserError) as error:
            # The record is a safeguard: failing to write it must not fail a verification.
            log.warning("could not update the chain record %s: %s", self.store.path, error)

    def remembered_chains(self) -> dict[str, Remembered]:
        return dict(self.store.load().get(self.database, {}))


def compare_heads(connection: Connection, remembered: Mapping[str, Remembered]) -> list[str]:
    """Warnings for chains whose head no longer extends what this computer remembers, from one
    query of the chain heads (a head further on is checked by the next verification)."""
    if not remembered:
        return []
    rows = connection.execute(
        select(Workspace.id, Workspace.slug, ChainHead.last_seq, ChainHead.last_hash).join(
            ChainHead, ChainHead.workspace_id == Workspace.id, isouter=True
        )
    ).all()
    heads = {str(row[0]): (str(row[1]), row[2], row[3]) for row in rows}
    warnings: list[str] = []
    for workspace_id, item in sorted(remembered.items(), key=lambda pair: pair[1].workspace_slug):
        found = heads.get(workspace_id)
        slug = item.workspace_slug
        if found is None:
            warnings.append(
                f"workspace {slug} is gone from this database; {item.describe()} with "
                f"{item.seq:,} events"
            )
            continue
        _slug, last_seq, last_hash = found
        if last_seq is None:
            warnings.append(
                f"workspace {slug} has no chain any more; {item.describe()} with "
                f"{item.seq:,} events: its log was deleted"
            )
        elif int(last_seq) < item.seq:
            warnings.append(
                f"workspace {slug}'s chain was rolled back to {int(last_seq):,} events; "
                f"{item.describe()} with {item.seq:,}"
            )
        elif int(last_seq) == item.seq and bytes(last_hash) != item.hash:
            warnings.append(
                f"workspace {slug}'s newest event #{item.seq:,} is not the one "
                f"{item.describe()} with: the chain was rewritten"
            )
    return warnings


def sign_in_warning(engine: Engine, data_dir: Path, url: str | URL) -> str | None:
    """One line for the sign-in screen when a chain this computer verified no longer extends
    what it remembers: one query of the chain heads. It names no workspace (nobody has
    signed in yet); verification says which and how."""
    witness = ChainWitness.for_database(data_dir, url)
    if witness is None:
        return None
    try:
        remembered = witness.remembered_chains()
    except WitnessError as error:
        return f"This computer's record of the chains it verified cannot be relied on: {error}."
    if not remembered:
        return None
    try:
        with engine.connect() as connection:
            warnings = compare_heads(connection, remembered)
    except SQLAlchemyError as error:  # the sign-in itself reports an unusable database
        log.info("could not compare the chain heads at sign-in: %s", error)
        return None
    for warning in warnings:
        log.warning("chain head check: %s", warning)
    if not warnings:
        return None
    count = len(warnings)
    chains = "1 workspace's chain" if count == 1 else f"{count} workspaces' chains"
    extend = "extends" if count == 1 else "extend"
    return (
        f"{chains} in this database no longer {extend} what this computer verified before "
        "(rolled back, rewritten or deleted): run Tools → Verify integrity after signing in."
    )
