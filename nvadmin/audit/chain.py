"""The hash chain and the one writer of activity events.

Every workspace's events form a chain: a gapless sequence number per workspace, the previous
event's hash, and ``SHA-256(domain tag || prev_hash || canonical bytes of the event)``. The
canonical bytes are built in Python from the values themselves (UTC ISO timestamps with
microseconds, canonical JSON for details, fixed field order), never from the database's text
rendering of a row, so they do not depend on the session's TimeZone, DateStyle or locale.

Writers serialise per workspace by updating that workspace's ``chain_heads`` row first: on
PostgreSQL the row lock, on SQLite the database write lock, is held until commit, so two
writers can never both extend the same link (no forks, no gaps).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import Connection, Engine, insert, update
from sqlalchemy.dialects import postgresql, sqlite

from nvadmin.db import partitions
from nvadmin.db.models import ActivityEvent, ChainHead
from nvadmin.db.taxonomy import category_of
from nvadmin.db.types import canonical_json

GENESIS_HASH = bytes(32)
# One encoder, built once: json.dumps() with options builds a new encoder on every call.
_FIELDS_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
DOMAIN_TAG = b"nvadmin-event-v1\x00"

# The fields covered by the hash, in hash order. ``id`` is not covered: it is a storage detail.
CHAINED_FIELDS: tuple[str, ...] = (
    "workspace_id",
    "seq",
    "occurred_at",
    "actor_type",
    "actor_id",
    "actor_email",
    "actor_name",
    "actor_role",
    "action",
    "category",
    "outcome",
    "failure_reason",
    "resource_type",
    "resource_id",
    "patient_id",
    "ip",
    "user_agent",
    "session_id",
    "request_id",
    "details",
)
# Columns written for each event (hash fields plus the links).
STORED_FIELDS: tuple[str, ...] = (*CHAINED_FIELDS, "prev_hash", "hash")


@dataclass(frozen=True, slots=True)
class EventDraft:
    """An event before it is sealed into a chain."""

    occurred_at: datetime
    action: str
    actor_type: str
    actor_name: str
    actor_id: int | None = None
    actor_email: str | None = None
    actor_role: str | None = None
    outcome: str = "success"
    failure_reason: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    patient_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    session_id: str | None = None
    request_id: str | None = None
    details: Mapping[str, Any] | None = field(default=None)


def utc_text(value: datetime) -> str:
    """The canonical text of an instant: UTC, microseconds, ``Z``."""
    if value.tzinfo is None:
        raise ValueError("event time must be timezone-aware")
    # isoformat with a fixed timespec is the same text as strftime, several times faster.
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def canonical_bytes(values: Sequence[Any]) -> bytes:
    """Canonical encoding of the CHAINED_FIELDS values (occurred_at already as utc_text,
    details already as canonical JSON text or None)."""
    return _FIELDS_ENCODER.encode(list(values)).encode("utf-8")


def digest(prev_hash: bytes, values: Sequence[Any]) -> bytes:
    return hashlib.sha256(DOMAIN_TAG + prev_hash + canonical_bytes(values)).digest()


def seal(
    workspace_id: int, last_seq: int, last_hash: bytes, drafts: Iterable[EventDraft]
) -> Iterator[tuple[Any, ...]]:
    """Yield storage rows (STORED_FIELDS order, occurred_at as an aware datetime) for drafts
    appended after ``(last_seq, last_hash)``."""
    seq, prev = last_seq, last_hash
    for d in drafts:
        seq += 1
        details = None if d.details is None else canonical_json(d.details)
        values = [
            workspace_id,
            seq,
            utc_text(d.occurred_at),
            str(d.actor_type),
            d.actor_id,
            d.actor_email,
            d.actor_name,
            d.actor_role,
            d.action,
            str(category_of(d.action)),
            str(d.outcome),
            d.failure_reason,
            d.resource_type,
            d.resource_id,
            d.patient_id,
            d.ip,
            d.user_agent,
            d.session_id,
            d.request_id,
            details,
        ]
        current = digest(prev, values)
        values[2] = d.occurred_at.astimezone(UTC)
        yield (*values, prev, current)
        prev = current


def lock_head(connection: Connection, workspace_id: int) -> tuple[int, bytes]:
    """Lock the workspace's chain head for this transaction and return ``(last_seq, last_hash)``.

    The no-op UPDATE is the lock: it takes the row lock (PostgreSQL) or the write lock (SQLite)
    before anything is read, so the values returned cannot go stale before commit.
    """
    touch = (
        update(ChainHead)
        .where(ChainHead.workspace_id == workspace_id)
        .values(last_seq=ChainHead.last_seq)
        .returning(ChainHead.last_seq, ChainHead.last_hash)
    )
    row = connection.execute(touch).first()
    if row is None:
        dialect_insert = (
            postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
        )
        connection.execute(
            dialect_insert(ChainHead)
            .values(workspace_id=workspace_id, last_seq=0, last_hash=GENESIS_HASH)
            .on_conflict_do_nothing()
        )
        row = connection.execute(touch).one()
    return int(row[0]), bytes(row[1])


def store_head(connection: Connection, workspace_id: int, last_seq: int, last_hash: bytes) -> None:
    connection.execute(
        update(ChainHead)
        .where(ChainHead.workspace_id == workspace_id)
        .values(last_seq=last_seq, last_hash=last_hash)
    )


def _months(drafts: Sequence[EventDraft]) -> set[date]:
    times = [d.occurred_at for d in drafts]
    return set(partitions.months_between(min(times), max(times)))


def append_in(
    connection: Connection,
    workspace_id: int,
    drafts: Sequence[EventDraft],
    *,
    months_known: bool = False,
) -> list[int]:
    """Seal ``drafts`` into the workspace's chain inside ``connection``'s transaction (with the
    change they record); returns their sequence numbers. Their months' partitions are made
    first where missing, unless the caller knows they exist (:class:`ChainWriter`)."""
    if not months_known:
        partitions.ensure_in(connection, _months(drafts))
    last_seq, last_hash = lock_head(connection, workspace_id)
    rows = [
        dict(zip(STORED_FIELDS, r, strict=True))
        for r in seal(workspace_id, last_seq, last_hash, drafts)
    ]
    # inline(): no RETURNING, so a writer needs no right to read events back.
    connection.execute(insert(ActivityEvent).inline(), rows)
    store_head(connection, workspace_id, rows[-1]["seq"], rows[-1]["hash"])
    return [r["seq"] for r in rows]


class ChainWriter:
    """Appends events to workspace chains. The only code that inserts activity events.

    Writers are cheap and made where needed (one per view event, say); the months whose
    partitions are known to exist are remembered per database for the life of the process,
    so a single event costs one transaction, not two. Partitions are never dropped by nvadmin.
    """

    _known_months_by_database: ClassVar[dict[str, set[date]]] = {}

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        key = engine.url.render_as_string(hide_password=True)
        self._known_months = self._known_months_by_database.setdefault(key, set())

    def append(self, workspace_id: int, drafts: Sequence[EventDraft]) -> list[int]:
        """Append events in one transaction; returns their sequence numbers."""
        if not drafts:
            return []
        months = _months(drafts)
        if months - self._known_months:
            partitions.ensure(self._engine, months - self._known_months)
            self._known_months.update(months)
        with self._engine.begin() as connection:
            return append_in(connection, workspace_id, drafts, months_known=True)

    def append_one(self, workspace_id: int, draft: EventDraft) -> int:
        return self.append(workspace_id, [draft])[0]
