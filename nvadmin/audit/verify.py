"""Integrity verification: walk a workspace's chain and name the first broken link.

The walk reads the rows in sequence order as plain driver tuples (no ORM objects, no
SQLAlchemy type processing) and checks three things per event: the sequence number is the next
one, ``prev_hash`` is the previous event's hash, and ``hash`` matches the event's content.

Two passes share that work. The *fast pass* has the database lay each event out as its
canonical encoding (the JSON array ``chain.canonical_bytes`` builds, see :func:`canonical_sql`)
with no Python object per value, and that layout is hashed with SHA-256: on SQLite, which runs
in this process, by nvadmin (a long chain's later stretches by copies of nvadmin on the other
cores, :mod:`nvadmin.audit.fastpass`); on PostgreSQL by the server, with its built-in
``sha256()``, which then sends per event only its number, its link and its hash when the
recomputed one matched.
The numbers, the links and every committed hash are checked here; the layouts themselves
(half a kilobyte an event) never cross the connection. The layout
cannot hide a change. Both layouts are *injective* (different values never give the same
text: strings are quoted with their quotes and backslashes escaped), and for every value they
give the text Python's encoder would write, or (PostgreSQL, for a string with a control
character in it; a time stored in another form) a text Python never writes. So a layout that
hashes to the stored hash is the very text the event was sealed with, and a tampered event
cannot pass. At the first event the fast pass cannot confirm (a broken link, or a layout that
differs from Python's), the *careful pass* takes over from the event before it: it reads whole
rows and recomputes the hashes with :func:`nvadmin.audit.chain.digest` exactly as ``seal()``
built them, and it alone decides and describes a break; once it has confirmed the doubtful
event, the fast pass goes on.

Trust model. Verification exists to catch rows changed, removed, inserted or moved by someone
who can write to the database (a table owner, an administrator lifting the append-only guard)
but cannot change the database server's own programs. Like every query nvadmin makes, it
relies on the server to return what is stored. Letting PostgreSQL lay out and hash the events
adds one thing to rely on: that the built-in functions the fast pass calls are the ones PostgreSQL
ships. Write access cannot reach them: every function and operator of the fast pass is named
with its schema (``pg_catalog``), so a look-alike planted on the search path with a
better-matching signature (CVE-2018-1058) is never called. The numbers, the links and the
hashes that signed checkpoints and this computer's record commit to are always checked here.
A superuser can replace built-in functions (or the server); ``independent=True`` (``nvadmin
verify --independent``) then relies on the database for nothing but the stored values: the
careful pass alone, nvadmin laying out and hashing every event (slower), so a lie would have
to be a fake table shown to the verifying login. Against whoever controls the server itself
no query helps: a copy is verified elsewhere (a case file offline, with nvadmin's own SQLite).

Around the walk, the chain head, the trusted signed checkpoints
(:mod:`nvadmin.audit.checkpoints`) and this computer's own record of the chain
(:mod:`nvadmin.audit.witness`) catch what a walk cannot see on its own: events cut off the
end, a whole log deleted, a chain rewritten and re-hashed from some event on. Checkpoints and
the record are *commitments*: "event N had hash H". A walk that reaches N with another hash
names the stretch between the last commitment that still held and N: at least one event there
was rewritten, and nothing in the database can say which.

When a link breaks, the rows just after it are examined to say what happened, in the words
an auditor uses: *altered* (content changed), *missing* (events removed), *inserted* (an event
that was never chained), *reordered* (events moved or swapped).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from itertools import islice
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, Engine, LargeBinary, cast, func, select

from nvadmin.audit import access_log, fastpass
from nvadmin.audit import checkpoints as cp
from nvadmin.audit.chain import CHAINED_FIELDS, DOMAIN_TAG, digest, utc_text
from nvadmin.audit.witness import ChainWitness, Remembered, WitnessError, sample_positions
from nvadmin.db.models import ActivityEvent, ChainHead
from nvadmin.errors import UserError
from nvadmin.identity import Permission, StaffIdentity
from nvadmin.query import workspaces
from nvadmin.query.filters import EventFilter
from nvadmin.workers.cancel import CancelToken, no_progress

log = logging.getLogger(__name__)

# Where the walk reads from: a table, or the tables whose rows together make one chain (a
# case file's events and their chain context). Several tables are read each through its own
# index and merged in chain order (a compound SELECT), never gathered and sorted whole: a
# case file's temporary storage is memory, and a sort would hold every row in it.
Source = str | tuple[str, ...]
EVENTS_SOURCE: Source = "activity_events"


def _select(source: Source, columns: str, condition: str, order: str) -> tuple[str, int]:
    """``SELECT columns`` from ``source`` where ``condition``, ordered by ``order`` (result
    columns), and how many times the condition's parameters are to be given."""
    if isinstance(source, str):
        return f"SELECT {columns} FROM {source} WHERE {condition} ORDER BY {order}", 1
    arms = " UNION ALL ".join(f"SELECT {columns} FROM {t} WHERE {condition}" for t in source)
    return f"{arms} ORDER BY {order}", len(source)


# Rows examined after a break to tell "reordered" from "altered".
LOOKAHEAD_ROWS = 100_000
# Rows per fetch, and between two checks for cancel. A thousand half-kilobyte layouts stay in
# the processor's cache while they are hashed: 5,000 made SQLite's fast pass 10% slower.
_BATCH = 1_000
_SEQ = CHAINED_FIELDS.index("seq")
_TIME = CHAINED_FIELDS.index("occurred_at")
_N = len(CHAINED_FIELDS)  # row layout: chained fields, then id, prev_hash, hash
_ID, _PREV, _HASH = _N, _N + 1, _N + 2
_MAX_SEQ = 2**62

Progress = Callable[[int, int | None, str], None]


class BreakKind(StrEnum):
    ALTERED = "altered"
    MISSING = "missing"
    INSERTED = "inserted"
    REORDERED = "reordered"


@dataclass(frozen=True)
class BrokenLink:
    kind: BreakKind
    seq: int
    event_id: int | None
    expected_hash: bytes | None
    found_hash: bytes | None
    explanation: str
    # Set when the break is a stretch, not one event: events seq..through cannot be trusted
    # (a rewrite between two commitments), and the hashes are those of event ``through``.
    through: int | None = None

    @property
    def where(self) -> str:
        if self.through is not None and self.through != self.seq:
            return f"events #{self.seq:,} to #{self.through:,}"
        return f"event #{self.seq:,}" + (f" (id {self.event_id})" if self.event_id else "")

    def lines(self) -> list[str]:
        lines = [f"chain broken at {self.where}: {self.kind}", f"  {self.explanation}"]
        if self.expected_hash is not None:
            lines.append(f"  expected hash {self.expected_hash.hex()}")
        if self.found_hash:  # empty: the content cannot even be hashed
            lines.append(f"  found hash    {self.found_hash.hex()}")
        return lines


@dataclass
class Verification:
    """The outcome of verifying one workspace's chain (or a part of it)."""

    workspace_id: int
    workspace_slug: str
    scope: str  # "whole chain", "events #a to #b (range ...)"
    first_seq: int
    last_seq: int
    events_verified: int = 0
    broken: BrokenLink | None = None
    checkpoints_valid: int = 0
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # No events and no chain head, and nothing (checkpoint, this computer's record) saying
    # there ever were any: a new workspace, or one whose whole log was deleted unwitnessed.
    empty: bool = False

    @property
    def intact(self) -> bool:
        return self.broken is None

    def lines(self) -> list[str]:
        lines = [f"workspace {self.workspace_slug}: {self.scope}"]
        if self.broken is None and self.empty:
            lines.append("no events recorded: this workspace has no chain yet")
        elif self.broken is None:
            lines.append(f"{self.events_verified:,} events verified, chain intact")
        else:
            lines.append(f"{self.events_verified:,} events verified before the break")
            lines.extend(self.broken.lines())
        if self.checkpoints_valid:
            plural = "s" if self.checkpoints_valid != 1 else ""
            lines.append(f"{self.checkpoints_valid:,} signed checkpoint{plural} checked")
        lines.extend(self.notes)
        return lines


def canonical_time(value: Any) -> str:
    """``utc_text`` of a stored ``occurred_at`` as the driver returns it.

    PostgreSQL gives an aware datetime. SQLite gives the fixed-width text ``UTCDateTime``
    stores (``YYYY-MM-DD HH:MM:SS.ffffff``, always UTC), which maps one-to-one onto
    ``utc_text``'s form; anything else stored there is parsed, so the same instant always
    yields the same text.
    """
    if isinstance(value, str):
        if len(value) == 26 and value[10] == " ":
            return f"{value[:10]}T{value[11:]}Z"
        parsed = datetime.fromisoformat(value)
        value = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if not isinstance(value, datetime):
        return str(value)
    return utc_text(value)


def _digest(prev: bytes, values: list[Any]) -> bytes:
    """``chain.digest``, or an empty (never matching) hash for values no event can hold (a
    byte string stored in a text column of a SQLite file, say): such an event was altered."""
    try:
        return digest(prev, values)
    except (TypeError, ValueError):
        return b""


def chained_values(row: Sequence[Any]) -> list[Any]:
    values = list(row[:_N])
    values[_TIME] = canonical_time(values[_TIME])
    return values


# Columns holding integers; every other chained field is text (or NULL).
_INTEGER_FIELDS = frozenset({"workspace_id", "seq", "actor_id"})
_FULL_ROW = ", ".join((*CHAINED_FIELDS, "id", "prev_hash", "hash"))
# SQLite keeps a value of any type in any column: a link or hash smuggled in as text is read
# as its bytes, so it is a mismatch like any other (PostgreSQL's bytea holds bytes only).
_SQLITE_FULL_ROW = ", ".join(
    (*CHAINED_FIELDS, "id", "CAST(prev_hash AS BLOB)", "CAST(hash AS BLOB)")
)


def _full_row(dialect: str) -> str:
    return _FULL_ROW if dialect == "postgresql" else _SQLITE_FULL_ROW


def _stream_sql(dialect: str, source: Source, mark: str) -> tuple[str, int]:
    """The careful pass's query: whole rows of one workspace between two numbers, in chain
    order (and the parameters' repeat count, see :func:`_select`)."""
    return _select(
        source,
        _full_row(dialect),
        f"workspace_id = {mark} AND seq BETWEEN {mark} AND {mark}",
        "seq, id",
    )


# On PostgreSQL every function and operator of the fast pass is named with its schema, so no
# function or operator someone created elsewhere on the search path (CVE-2018-1058's trick: a
# better-matching ``public.replace(varchar, ...)``) can stand in for the built-in one.
_PG_CONCAT = "OPERATOR(pg_catalog.||)"


def canonical_sql(dialect: str) -> str:
    """SQL laying out each event as ``chain.canonical_bytes`` does: a compact JSON array of
    the chained fields, non-ASCII kept, the time as ``utc_text`` writes it.

    SQLite's ``json_array`` escapes strings exactly as Python's encoder does (quote, backslash,
    the short forms for backspace, form feed, newline, return and tab, other control
    characters as lowercase u00xx). On PostgreSQL, ``to_json`` escapes the same way but costs
    more than the rest of the walk, so strings are quoted with only their backslashes and
    quotes escaped: the same text as Python's for every string without a control character,
    and for one with, a text Python never writes (the event then goes to the careful pass).
    The time: PostgreSQL formats the instant in UTC; SQLite's stored text
    (``YYYY-MM-DD HH:MM:SS.ffffff``) gets its space turned into ``T`` and a ``Z`` appended,
    Python's text exactly; any other stored form gives a text Python writes for no instant,
    or (the ``T`` form of the same instant) the very text of that instant.
    Anything stored in an unexpected form thus only sends that event to the careful pass."""
    parts: list[str] = []
    for name in CHAINED_FIELDS:
        if dialect == "postgresql":
            if name == "occurred_at":
                text = (
                    f"'\"' {_PG_CONCAT} pg_catalog.to_char(occurred_at AT TIME ZONE 'UTC', "
                    f'\'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\') {_PG_CONCAT} \'"\''
                )
            elif name in _INTEGER_FIELDS:
                text = f"coalesce({name}::text, 'null')"
            else:
                escaped = (
                    f"pg_catalog.replace(pg_catalog.replace({name}, '\\', '\\\\'), '\"', '\\\"')"
                )
                text = f"coalesce('\"' {_PG_CONCAT} {escaped} {_PG_CONCAT} '\"', 'null')"
        elif name == "occurred_at":
            text = "replace(occurred_at, ' ', 'T') || 'Z'"
        else:
            text = name
        parts.append(text)
    if dialect == "postgresql":
        return f"'[' {_PG_CONCAT} pg_catalog.concat_ws(',', {', '.join(parts)}) {_PG_CONCAT} ']'"
    return "json_array(" + ", ".join(parts) + ")"


_TAG_SQL = f"x'{DOMAIN_TAG.hex()}'"


def _fast_sql(dialect: str, source: Source, mark: str) -> tuple[str, int]:
    """The fast pass's query, one row per event in chain order.

    PostgreSQL: ``(seq, prev_hash, hash or NULL)``, the stored hash only when the server's
    SHA-256 of the event (domain tag, stored link, canonical layout) equals it. SQLite:
    ``(seq, hash, domain tag || prev_hash || canonical layout)``, the very bytes to hash
    (NULL when the stored link is not 32 bytes long). With it, how many times the
    parameters (workspace, first and last number) are to be given (see :func:`_select`)."""
    if dialect == "postgresql":
        assert isinstance(source, str), "PostgreSQL reads its own event table"
        where = (
            f"WHERE workspace_id OPERATOR(pg_catalog.=) {mark} "
            f"AND seq OPERATOR(pg_catalog.>=) {mark} AND seq OPERATOR(pg_catalog.<=) {mark} "
            "ORDER BY seq, id"
        )
        hashed = (
            f"pg_catalog.sha256('\\x{DOMAIN_TAG.hex()}'::bytea {_PG_CONCAT} prev_hash {_PG_CONCAT} "
            f"pg_catalog.convert_to({canonical_sql('postgresql')}, 'UTF8'))"
        )
        confirmed = f"CASE WHEN {hashed} OPERATOR(pg_catalog.=) hash THEN hash END"
        return f"SELECT seq::int8, prev_hash, {confirmed} FROM {source} {where}", 1
    # The link's length is checked here: the bytes after the tag are then exactly the link.
    hashed = (
        f"CASE WHEN length(CAST(prev_hash AS BLOB)) = 32 THEN CAST({_TAG_SQL} || prev_hash || "
        f"{canonical_sql('sqlite')} AS BLOB) END"
    )
    condition = f"workspace_id = {mark} AND seq BETWEEN {mark} AND {mark}"
    if isinstance(source, str):
        return _select(source, f"seq, hash, {hashed}", condition, "seq, id")
    # The id orders copies of one number as the single table's order does, then is left out.
    merged, arms = _select(source, f"seq, hash, {hashed} AS laid, id", condition, "seq, id")
    return f"SELECT seq, hash, laid FROM ({merged})", arms


def _stream(
    connection: Connection,
    source: Source,
    workspace_id: int,
    first: int,
    last: int,
) -> Generator[tuple[Any, ...], None, None]:
    """Whole rows ``first <= seq <= last`` of one workspace, in chain order, as driver
    tuples (the careful pass's reading)."""
    dbapi = connection.connection.dbapi_connection
    assert dbapi is not None
    postgres = connection.dialect.name == "postgresql"
    mark = "%s" if postgres else "?"
    sql, arms = _stream_sql(connection.dialect.name, source, mark)
    if postgres:
        # A server-side cursor streams millions of rows in bounded memory.
        cursor = dbapi.cursor(name="nvadmin_verify")
        cursor.itersize = _BATCH  # type: ignore[attr-defined]
    else:
        cursor = dbapi.cursor()
    try:
        cursor.execute(sql, (workspace_id, first, last) * arms)
        while batch := cursor.fetchmany(_BATCH):
            yield from batch
    finally:
        cursor.close()


def _server_batches(
    connection: Connection, source: Source, workspace_id: int, first: int, last: int
) -> Generator[Sequence[tuple[Any, ...]], None, None]:
    """PostgreSQL's fast-pass rows (:func:`_fast_sql`) in lists of up to ``BATCH``, streamed
    by ``COPY ... TO STDOUT`` in binary: the server hashes the next events while this process
    checks the last ones, where a cursor would wait for each batch. Stopping early (closing
    the generator) cancels the COPY; the savepoint keeps the transaction, and its snapshot,
    usable for the careful pass."""
    pg: Any = connection.connection.driver_connection
    rows, _ = _fast_sql("postgresql", source, "%s")
    sql = f"COPY ({rows}) TO STDOUT (FORMAT BINARY)"
    with connection.begin_nested(), pg.cursor() as cursor:
        # The JIT compiler would spend ~0.2 s compiling the layout and hash expressions before
        # the first row and make the rows no faster (benchmarks/RESULTS.md, "Compliance").
        cursor.execute("SELECT pg_catalog.set_config('jit', 'off', true)")
        with cursor.copy(sql, (workspace_id, first, last)) as copy:
            copy.set_types(["int8", "bytea", "bytea"])
            rows = copy.rows()
            while batch := list(islice(rows, _BATCH)):
                yield batch


def _row_by_hash(
    connection: Connection, source: Source, workspace_id: int, seq: int, hash_: bytes
) -> tuple[Any, ...] | None:
    """The row the fast pass confirmed as event ``seq``: the one with that hash (the first,
    should a copy of it sit next to it, as the walk's order puts it first)."""
    dbapi = connection.connection.dbapi_connection
    assert dbapi is not None
    mark = "%s" if connection.dialect.name == "postgresql" else "?"
    cursor = dbapi.cursor()
    try:
        sql, arms = _select(
            source,
            _full_row(connection.dialect.name),
            f"workspace_id = {mark} AND seq = {mark} AND hash = {mark}",
            "id LIMIT 1",
        )
        cursor.execute(sql, (workspace_id, seq, hash_) * arms)
        row = cursor.fetchone()
    finally:
        cursor.close()
    return None if row is None else tuple(row)


def _stored_hash(
    connection: Connection, source: Source, workspace_id: int, seq: int
) -> bytes | None:
    dbapi = connection.connection.dbapi_connection
    assert dbapi is not None
    postgres = connection.dialect.name == "postgresql"
    mark = "%s" if postgres else "?"
    cursor = dbapi.cursor()
    try:
        sql, arms = _select(
            source,
            f"{'hash' if postgres else 'CAST(hash AS BLOB)'}, id",
            f"workspace_id = {mark} AND seq = {mark}",
            "id LIMIT 1",
        )
        cursor.execute(sql, (workspace_id, seq) * arms)
        row = cursor.fetchone()
    finally:
        cursor.close()
    return bytes(row[0]) if row else None


def _classify_gap(row: tuple[Any, ...], expected_seq: int, prev: bytes, head_seq: int | None):
    seq = int(row[_SEQ])
    if head_seq is not None and seq > head_seq and expected_seq > head_seq:
        return BrokenLink(
            BreakKind.INSERTED,
            seq,
            int(row[_ID]),
            None,
            bytes(row[_HASH]),
            f"event #{seq:,} lies beyond the chain head (#{head_seq:,}): it was never chained",
        )
    missing = (
        f"event #{expected_seq:,} is missing"
        if seq == expected_seq + 1
        else f"events #{expected_seq:,} to #{seq - 1:,} are missing"
    )
    return BrokenLink(
        BreakKind.MISSING,
        expected_seq,
        None,
        bytes(row[_PREV]),
        prev,
        f"{missing}: the chain jumps to event #{seq:,} (id {row[_ID]}), "
        "whose link names an event that is not there",
    )


def _classify_duplicate(
    previous: tuple[Any, ...], row: tuple[Any, ...], rows: Iterator[tuple[Any, ...]]
) -> BrokenLink:
    """Two rows carry the same sequence number: the one the chain does not continue from
    is the intruder."""
    seq = int(row[_SEQ])
    following = next(rows, None)
    intruder, genuine = row, previous
    if following is not None and bytes(following[_PREV]) == bytes(row[_HASH]):
        intruder, genuine = previous, row
    return BrokenLink(
        BreakKind.INSERTED,
        seq,
        int(intruder[_ID]),
        bytes(genuine[_HASH]),
        bytes(intruder[_HASH]),
        f"two events carry sequence number #{seq:,}: id {intruder[_ID]} was inserted next "
        f"to the chained event id {genuine[_ID]}",
    )


def _classify_mismatch(
    row: tuple[Any, ...],
    values: list[Any],
    found: bytes,
    prev: bytes,
    previous: tuple[Any, ...] | None,
    rows: Iterator[tuple[Any, ...]],
) -> BrokenLink:
    seq, event_id = int(row[_SEQ]), int(row[_ID])
    stored_prev, stored_hash = bytes(row[_PREV]), bytes(row[_HASH])
    link_ok = stored_prev == prev
    content_ok = found == stored_hash
    ahead: list[tuple[Any, ...]] = []
    for later in rows:
        ahead.append(later)
        if len(ahead) >= LOOKAHEAD_ROWS:
            break
    if not link_ok:
        # This event links to another one's hash: if that one sits further on, rows moved.
        for later in ahead:
            if bytes(later[_HASH]) == stored_prev:
                return BrokenLink(
                    BreakKind.REORDERED,
                    seq,
                    event_id,
                    prev,
                    stored_prev,
                    f"event id {event_id} stands at #{seq:,} but was chained after event "
                    f"#{int(later[_SEQ]):,} (id {later[_ID]}): events were moved or swapped",
                )
        if content_ok and previous is not None:
            pseq = int(previous[_SEQ])
            return BrokenLink(
                BreakKind.ALTERED,
                pseq,
                int(previous[_ID]),
                stored_prev,
                prev,
                f"event #{pseq:,} was rewritten and its hash recomputed: event #{seq:,} "
                "still links to the original",
            )
        return BrokenLink(
            BreakKind.ALTERED,
            seq,
            event_id,
            stored_hash,
            found,
            f"event #{seq:,} does not match its recorded hash nor link to event #{seq - 1:,}",
        )
    # Linked correctly but the content changed: is it another slot's content (a swap)?
    for later in ahead:
        other = int(later[_SEQ])
        if other == seq:
            continue
        moved = list(values)
        moved[_SEQ] = other
        if _digest(bytes(later[_PREV]), moved) == bytes(later[_HASH]):
            return BrokenLink(
                BreakKind.REORDERED,
                seq,
                event_id,
                stored_hash,
                found,
                f"event #{seq:,} holds the content recorded for event #{other:,}: "
                "events were swapped",
            )
    return BrokenLink(
        BreakKind.ALTERED,
        seq,
        event_id,
        stored_hash,
        found,
        f"event #{seq:,} was changed after it was recorded (its content no longer matches "
        "its hash)",
    )


@dataclass
class _Position(fastpass.Reach):
    """How far a walk has confirmed the chain. ``last_link`` lets the careful pass restart
    one event back, so that a second row carrying the last number is seen."""

    count: int = 0  # events confirmed
    last_good: tuple[int, bytes] | None = None


def walk(
    connection: Connection,
    workspace_id: int,
    first_seq: int,
    last_seq: int,
    *,
    anchor: bytes | None,
    source: Source = EVENTS_SOURCE,
    head_seq: int | None = None,
    signed: Mapping[int, bytes] | None = None,
    progress: Progress = no_progress,
    cancel: CancelToken | None = None,
    independent: bool = False,
) -> tuple[int, BrokenLink | None, tuple[int, bytes] | None]:
    """Verify events ``first_seq..last_seq``. ``anchor`` is the hash event ``first_seq`` must
    link to (None: trust the first event's own link). ``signed`` maps sequence numbers to the
    hash a trusted checkpoint signed for them.

    The fast pass runs until an event it cannot confirm; the careful pass then decides from
    the event before it, and hands back once it has confirmed that event and a stretch after
    it (twice as long each time, so a chain full of such events is soon walked carefully to
    its end instead of switching back and forth). ``independent``: the careful pass alone,
    from the first event to the last: the database only returns the stored values, nvadmin
    lays out and hashes every event itself.

    Returns ``(events verified, first broken link or None, (seq, hash) of the last good event)``.
    """
    total = None if last_seq >= _MAX_SEQ else last_seq - first_seq + 1
    signed = signed or {}
    if independent:
        count, broken, last_good, _ = _careful_walk(
            connection,
            workspace_id,
            first_seq,
            last_seq,
            anchor=anchor,
            source=source,
            head_seq=head_seq,
            signed=signed,
            progress=progress,
            cancel=cancel,
            total=total,
            previous=None,
            count=0,
            stop_after=_MAX_SEQ + 1,
            range_first=first_seq,
        )
        return count, broken, last_good
    at = _Position(first_seq, anchor)
    careful_rows = 1
    while _fast_pass(
        connection, source, workspace_id, last_seq, head_seq, at, signed, total, progress, cancel
    ):
        restart, previous, link = at.expected, None, at.prev
        if at.last_link is not None:
            restart, link = at.expected - 1, at.last_link
            at.count -= 1
            if restart > first_seq:  # the event before it was confirmed too: its hash is link
                previous = _row_by_hash(connection, source, workspace_id, restart - 1, link)
        log.info("verification of workspace %s checks #%s on row by row", workspace_id, restart)
        count, broken, last_good, tail = _careful_walk(
            connection,
            workspace_id,
            restart,
            last_seq,
            anchor=link,
            source=source,
            head_seq=head_seq,
            signed=signed,
            progress=progress,
            cancel=cancel,
            total=total,
            previous=previous,
            count=at.count,
            stop_after=at.expected - 1 + careful_rows,
            range_first=first_seq,
        )
        if broken is not None or tail is None:
            return count, broken, last_good
        newer = tail[1]
        at = _Position(
            int(newer[_SEQ]) + 1,
            bytes(newer[_HASH]),
            bytes(newer[_PREV]),
            count=count,
            last_good=last_good,
        )
        careful_rows *= 2
    progress(at.count, total, f"{at.count:,} events verified")
    return at.count, None, at.last_good


def _fast_pass(
    connection: Connection,
    source: Source,
    workspace_id: int,
    last_seq: int,
    head_seq: int | None,
    at: _Position,
    signed: Mapping[int, bytes],
    total: int | None,
    progress: Progress,
    cancel: CancelToken | None,
) -> bool:
    """Confirm events from ``at`` on: each event's hash recomputed from the database's layout
    of it (on PostgreSQL by the server), its number and its link to the previous event checked
    here. Returns False at the end of the range, True at the first event it cannot confirm
    (``at`` is then the position just before it)."""
    first, counted = at.expected, at.count

    def report(expected: int, elsewhere: int = 0) -> None:
        """Progress: the events confirmed up to ``expected``, and ``elsewhere`` by helpers."""
        if cancel is not None:
            cancel.check()
        count = counted + expected - first + elsewhere
        progress(count, total, f"{count:,} events verified")

    try:
        if connection.dialect.name == "postgresql":
            return _server_pass(connection, source, workspace_id, last_seq, at, signed, report)
        return _sqlite_pass(
            connection, source, workspace_id, last_seq, head_seq, at, signed, report, cancel
        )
    finally:
        if at.expected > first:
            assert at.prev is not None
            at.last_good = (at.expected - 1, bytes(at.prev))
        at.count = counted + at.expected - first


def _server_pass(
    connection: Connection,
    source: Source,
    workspace_id: int,
    last_seq: int,
    at: fastpass.Reach,
    signed: Mapping[int, bytes],
    report: Callable[[int], None],
) -> bool:
    """PostgreSQL's fast pass: rows ``(seq, prev_hash, hash if the server's recomputed hash
    matched it)``, the numbers, links and commitments checked here."""
    batches = _server_batches(connection, source, workspace_id, at.expected, last_seq)
    try:
        return fastpass.confirm(batches, at, signed, report, _server_check, _server_link)
    finally:
        batches.close()


def _server_check(row: fastpass.Row, prev: bytes) -> bytes | None:
    """The server's verdict on an event: its hash, when the server recomputed it (NULL
    otherwise) and its stored link is ``prev``."""
    return row[2] if row[1] == prev else None  # type: ignore[no-any-return]


def _server_link(row: fastpass.Row) -> bytes | None:
    return row[1]  # type: ignore[no-any-return]


def _sqlite_pass(
    connection: Connection,
    source: Source,
    workspace_id: int,
    last_seq: int,
    head_seq: int | None,
    at: fastpass.Reach,
    signed: Mapping[int, bytes],
    report: Callable[..., None],
    cancel: CancelToken | None,
) -> bool:
    """SQLite's fast pass (:mod:`nvadmin.audit.fastpass`): rows ``(seq, hash, domain tag ||
    prev_hash || layout)`` hashed and checked here, a long chain's later stretches by helper
    processes, each taken where it joins the chain confirmed before it."""
    dbapi = connection.connection.dbapi_connection
    assert dbapi is not None
    statement, arms = _fast_sql("sqlite", source, "?")
    laid_out = fastpass.laid_out(len(DOMAIN_TAG))
    errors = connection.dialect.loaded_dbapi.DatabaseError
    plan: list[tuple[int, int, fastpass.Helper | None]] = [(at.expected, last_seq, None)]
    database = _helper_database(connection, source)
    if database is not None:
        plan = _stretches(
            database, statement, arms, workspace_id, at.expected, last_seq, head_seq, signed
        )
    helpers = [h for _f, _l, h in plan if h is not None]
    if cancel is not None:  # a cancelled walk may be waiting for one
        for running in helpers:
            cancel.on_cancel(running.kill)
    try:
        for first, last, helper in plan:
            later = [h for h in helpers if h.first > first]

            def reporting(expected: int, done: int = 0, later: list[Any] = later) -> None:
                # This stretch's progress (``done``: its helper's) and the later helpers'.
                report(expected, done + sum(h.poll() for h in later))

            if helper is not None:
                reached = helper.result(lambda done: reporting(at.expected, done))
                if reached is not None and reached.trusted == at.prev:
                    at.take(reached)
                    if at.expected <= last:  # it stopped at an event it could not confirm
                        return True
                    continue
                log.info("events #%s to #%s are verified here after all", first, last)
            cursor = dbapi.cursor()
            try:
                cursor.execute(statement, (workspace_id, first, last) * arms)
                rows = fastpass.batches(cursor, errors)
                if fastpass.confirm(rows, at, signed, reporting, *laid_out):
                    return True
            finally:
                cursor.close()
        return False
    finally:
        for helper in helpers:
            helper.stop()


def _stretches(
    database: str,
    statement: str,
    arms: int,
    workspace_id: int,
    first: int,
    last: int,
    head_seq: int | None,
    signed: Mapping[int, bytes],
) -> list[tuple[int, int, fastpass.Helper | None]]:
    """SQLite's fast pass of ``first..last`` cut into stretches ``(first, last, its helper or
    None: read here)``, the helpers started on ``database``. Helpers stop at the chain head
    this walk read: events past it (none, in an intact chain) are read here, in this walk's
    snapshot."""
    end = last if head_seq is None else min(last, head_seq)
    if not first <= end < _MAX_SEQ:
        return [(first, last, None)]
    (own_first, own_last), *others = fastpass.stretches(first, end)
    plan: list[tuple[int, int, fastpass.Helper | None]] = [(own_first, own_last, None)]
    links_at = len(DOMAIN_TAG)
    for start, stop in others:
        parameters = (workspace_id, start, stop) * arms
        helper = fastpass.Helper(database, statement, parameters, links_at, start, stop, signed)
        plan.append((start, stop, helper))
    if end < last:
        plan.append((end + 1, last, None))
    return plan


def _helper_database(connection: Connection, source: Source) -> str | None:
    """The database as helpers open it (a read-only URI), when they can: the events table of
    a SQLite file read through Python's own SQLite (not a case file's, an encrypted database
    only this process holds the key to, nor a database in memory)."""
    dbapi = connection.connection.dbapi_connection
    if source != EVENTS_SOURCE or type(dbapi) is not sqlite3.Connection:
        return None
    for _seq, name, file in connection.exec_driver_sql("PRAGMA database_list"):
        if name == "main" and file:
            return Path(file).resolve().as_uri() + "?mode=ro"
    return None


def _careful_walk(
    connection: Connection,
    workspace_id: int,
    first_seq: int,
    last_seq: int,
    *,
    anchor: bytes | None,
    source: Source,
    head_seq: int | None,
    signed: Mapping[int, bytes],
    progress: Progress,
    cancel: CancelToken | None,
    total: int | None,
    previous: tuple[Any, ...] | None,
    count: int,
    stop_after: int,
    range_first: int,
) -> tuple[
    int,
    BrokenLink | None,
    tuple[int, bytes] | None,
    tuple[tuple[Any, ...] | None, tuple[Any, ...]] | None,
]:
    """The careful pass: whole rows, every hash recomputed by ``chain.digest``, breaks
    classified. ``previous`` is the full row before ``first_seq`` (if it is in the range) and
    ``count`` the events already verified before it. Once event ``stop_after`` is confirmed it
    returns, with the last two rows confirmed, for the fast pass to go on from; at a break or
    the end of the range that element is None."""
    expected_seq, prev = first_seq, anchor
    older: tuple[Any, ...] | None = None
    rows = _stream(connection, source, workspace_id, first_seq, last_seq)
    try:
        for row in rows:
            seq = row[_SEQ]
            if seq != expected_seq:
                if previous is not None and seq == expected_seq - 1:
                    broken = _classify_duplicate(previous, row, rows)
                    return count, broken, _last(previous), None
                return (
                    count,
                    _classify_gap(row, expected_seq, prev or bytes(row[_PREV]), head_seq),
                    _last(previous),
                    None,
                )
            values = chained_values(row)
            stored_prev = bytes(row[_PREV])
            if prev is None:
                prev = stored_prev
            found = _digest(stored_prev, values)
            stored_hash = bytes(row[_HASH])
            if stored_prev != prev or found != stored_hash:
                broken = _classify_mismatch(row, values, found, prev, previous, rows)
                return count, broken, _last(previous), None
            promised = signed.get(seq)
            if promised is not None and promised != stored_hash:
                broken = _rewritten(seq, int(row[_ID]), promised, stored_hash, signed, range_first)
                return count - (seq - broken.seq), broken, _last(previous), None
            prev, older, previous = stored_hash, previous, row
            expected_seq += 1
            count += 1
            if seq >= stop_after:
                return count, None, _last(previous), (older, row)
            if count % _BATCH == 0:
                if cancel is not None:
                    cancel.check()
                progress(count, total, f"{count:,} events verified")
    finally:
        rows.close()
    progress(count, total, f"{count:,} events verified")
    return count, None, _last(previous), None


def _rewritten(
    seq: int,
    event_id: int,
    promised: bytes,
    found: bytes,
    signed: Mapping[int, bytes],
    range_first: int,
) -> BrokenLink:
    """Event ``seq`` links correctly and matches its own hash, but not the hash committed for
    it: the chain was rewritten somewhere up to it and re-hashed. The last commitment before
    it still held (the walk passed it), so the rewrite lies after that one."""
    held = max((k for k in signed if range_first <= k < seq), default=None)
    first = range_first if held is None else held + 1
    if first == seq:
        explanation = (
            f"event #{seq:,} is not the event recorded there: it was rewritten or replaced "
            "and the chain re-hashed after it"
        )
    else:
        since = (
            f"the chain up to event #{held:,} still matches what was recorded for it"
            if held is not None
            else "nothing recorded earlier narrows it down"
        )
        explanation = (
            f"event #{seq:,} no longer has the hash recorded for it: at least one of events "
            f"#{first:,} to #{seq:,} was rewritten and the chain re-hashed after it, so none "
            f"of them can be trusted; {since}"
        )
    return BrokenLink(BreakKind.ALTERED, first, event_id, promised, found, explanation, through=seq)


def _last(row: tuple[Any, ...] | None) -> tuple[int, bytes] | None:
    return None if row is None else (int(row[_SEQ]), bytes(row[_HASH]))


def _seq_span(
    connection: Connection, workspace_id: int, start: datetime | None, end: datetime | None
) -> tuple[int, int] | None:
    e = ActivityEvent
    query = select(func.min(e.seq), func.max(e.seq)).where(e.workspace_id == workspace_id)
    if start is not None:
        query = query.where(e.occurred_at >= start)
    if end is not None:
        query = query.where(e.occurred_at < end)
    low, high = connection.execute(query).one()
    return None if low is None else (int(low), int(high))


@dataclass(frozen=True)
class _Commitment:
    """A recorded hash for event ``seq``, and who recorded it (for the report)."""

    seq: int
    hash: bytes
    source: str


def verify_workspace(
    engine: Engine,
    identity: StaffIdentity,
    workspace: str | int,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    trusted_keys: Mapping[str, Ed25519PublicKey] | None = None,
    untrusted_because: Mapping[str, str] | None = None,
    witness: ChainWitness | None = None,
    progress: Progress = no_progress,
    cancel: CancelToken | None = None,
    independent: bool = False,
    write_engine: Engine | None = None,
) -> Verification:
    """Verify a workspace's whole chain, or the events between ``start`` (incl.) and ``end``
    (excl.). Signed checkpoints count only when their key is in ``trusted_keys``. With a
    ``witness``, the chain is also held to what this computer saw of it before, and an intact
    whole chain (or a trusted checkpoint) is remembered for next time. ``untrusted_because``
    says why a key this computer knows is not trusted (:meth:`KeyStore.unusable_own_key`).
    ``independent``: every event laid out and hashed here, from the stored values alone
    (see :func:`walk` and the trust model in the module's docstring). ``write_engine``
    (default ``engine``) records the view that opens the workspace's log to a PostgreSQL
    staff session that has not opened it yet (:func:`access_log.opened_for`)."""
    identity.require(Permission.VERIFY)
    began = time.perf_counter()
    with engine.connect() as connection:
        found = workspaces.find(connection, workspace)
    engine = access_log.opened_for(
        write_engine or engine, engine, identity, EventFilter(workspace_ids=(found.id,)), "verify"
    )
    trusted = dict(trusted_keys or {})
    remember: Remembered | None = None
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # One snapshot for the head, the checkpoints and every row walked.
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            found = workspaces.find(connection, workspace)
            workspace_id, slug, created_at = found.id, found.slug, found.created_at
            head = _head(connection, workspace_id)
            head_seq = head[0] if head else 0
            whole = start is None and end is None
            if whole:
                first, last, scope = 1, _MAX_SEQ, "whole chain"
            else:
                span = _seq_span(connection, workspace_id, start, end)
                scope = _range_text(start, end)
                if span is None:
                    result = Verification(workspace_id, slug, scope, 0, 0)
                    result.notes.append("no events in this range")
                    return result
                first, last = span
                scope = f"events #{first:,} to #{last:,} ({scope})"
            open_ended = end is None
            result = Verification(workspace_id, slug, scope, first, min(last, head_seq))
            anchor: bytes | None = None
            if first == 1:
                anchor = bytes(32)
            else:
                anchor = _stored_hash(connection, EVENTS_SOURCE, workspace_id, first - 1)
                if anchor is None:
                    result.broken = BrokenLink(
                        BreakKind.MISSING,
                        first - 1,
                        None,
                        None,
                        None,
                        f"event #{first - 1:,}, just before the range, is missing",
                    )
                    result.seconds = time.perf_counter() - began
                    return result
            checkpoints = cp.load(connection, workspace_id, first, None if open_ended else last)
            signed, checkpoint_problem = _check_signatures(
                checkpoints, trusted, result, untrusted_because or {}
            )
            commitments = {
                c.seq: _Commitment(c.seq, c.hash, f"a checkpoint signed {_when(c.signed_at)}")
                for c in checkpoints
                if signed.get(c.seq) == c.hash
            }
            recalled = _recall(witness, workspace_id, result)
            if recalled is not None:
                fork = _add_remembered(
                    recalled, commitments, first, last if not open_ended else None
                )
                checkpoint_problem = checkpoint_problem or fork
            promised = {seq: c.hash for seq, c in commitments.items()}
            total_hint = head_seq if whole else last
            count, broken, last_good = walk(
                connection,
                workspace_id,
                first,
                min(last, _MAX_SEQ),
                anchor=anchor,
                head_seq=head_seq,
                signed=promised,
                progress=lambda done, _total, message: progress(
                    done, max(total_hint - first + 1, done), message
                ),
                cancel=cancel,
                independent=independent,
            )
            result.events_verified = count
            result.broken = _with_sources(broken, commitments)
            if last_good is not None:
                result.last_seq = last_good[0]
            if broken is None and open_ended:
                newest = commitments[max(commitments)] if commitments else None
                result.broken = _check_tail(last_good, head, newest)
            if result.broken is None and checkpoint_problem is not None:
                result.broken = checkpoint_problem
            if result.broken is None and whole and count == 0 and head is None:
                result.broken = _deleted_unwitnessed(checkpoints)
                result.empty = result.broken is None
                if result.empty:
                    result.notes.append(_empty_note(created_at))
            result.checkpoints_valid = sum(
                1 for c in checkpoints if c.seq in signed and signed[c.seq] == c.hash
            )
            if not signed and open_ended and not result.empty:
                result.notes.append(
                    "no trusted signed checkpoint covers this chain: removal of the newest "
                    "events is detected only against the chain head"
                    + (" and this computer's record" if recalled is not None else "")
                )
            if independent:
                result.notes.append(
                    "every event laid out and hashed by nvadmin itself from the stored values"
                )
            if witness is not None:
                remember = _to_remember(connection, result, whole, last_good, checkpoints, signed)
    if witness is not None and remember is not None:
        witness.remember(workspace_id, remember)
    result.seconds = time.perf_counter() - began
    log.info("verified %s: %s", slug, " / ".join(result.lines()))
    return result


def _when(instant: datetime) -> str:
    return utc_text(instant)[:19].replace("T", " ") + " UTC"


def _recall(
    witness: ChainWitness | None, workspace_id: int, result: Verification
) -> Remembered | None:
    if witness is None:
        return None
    try:
        return witness.recall(workspace_id)
    except WitnessError as error:
        result.notes.append(
            f"WARNING: this computer's record of the chains it has seen is not relied on: "
            f"{error}; it is set aside (kept for inspection) and started again"
        )
        return None


def _add_remembered(
    recalled: Remembered,
    commitments: dict[int, _Commitment],
    first: int,
    last: int | None,
) -> BrokenLink | None:
    """Add what this computer remembers to the commitments (those in the range). A trusted
    checkpoint and the record disagreeing about one event means the database showed two
    different chains: a fork."""
    source = recalled.as_source()
    fork: BrokenLink | None = None
    for seq, value in sorted(recalled.commitments().items()):
        if seq < first or (last is not None and seq > last):
            continue
        known = commitments.get(seq)
        if known is None:
            commitments[seq] = _Commitment(seq, value, source)
        elif known.hash != value and fork is None:
            fork = BrokenLink(
                BreakKind.ALTERED,
                seq,
                None,
                known.hash,
                value,
                f"{source} holds another hash for event #{seq:,} than {known.source}: the "
                "database has shown two different chains (a fork)",
            )
    return fork


def _with_sources(
    broken: BrokenLink | None, commitments: Mapping[int, _Commitment]
) -> BrokenLink | None:
    """Name who recorded the hashes a rewritten stretch is judged by."""
    if broken is None or broken.through is None or broken.through not in commitments:
        return broken
    source = commitments[broken.through].source
    said = f"; the hash expected for event #{broken.through:,} is from {source}"
    held = commitments.get(broken.seq - 1)
    if held is not None:
        said += (
            f", as is the one event #{held.seq:,} matches"
            if held.source == source
            else f", the one event #{held.seq:,} matches from {held.source}"
        )
    return replace(broken, explanation=broken.explanation + said)


def _deleted_unwitnessed(checkpoints: Sequence[cp.Checkpoint]) -> BrokenLink | None:
    """A workspace without a single event or a chain head: a finding if any checkpoint, even
    one by a key not trusted here, says it had events (nobody forges a checkpoint to make a
    new workspace look robbed; deleting a log and forgetting its checkpoints is the mistake
    this catches)."""
    if not checkpoints:
        return None
    newest = max(checkpoints, key=lambda c: c.seq)
    return BrokenLink(
        BreakKind.MISSING,
        1,
        None,
        newest.hash,
        None,
        f"every event was removed, and the chain head with them: a checkpoint signed "
        f"{_when(newest.signed_at)} by key {newest.key_id} says the chain had "
        f"{newest.seq:,} events",
    )


def _empty_note(created_at: datetime | None) -> str:
    created = f" (workspace created {_when(created_at)[:10]})" if created_at else ""
    return (
        f"nothing shows this workspace ever had events{created}: no checkpoint names it and "
        "this computer has no record of its chain. A deletion of its whole log would look "
        "the same; signed checkpoints (`nvadmin checkpoint --all`) and this computer's record "
        "of earlier verifications are what make such a deletion visible"
    )


def _to_remember(
    connection: Connection,
    result: Verification,
    whole: bool,
    last_good: tuple[int, bytes] | None,
    checkpoints: Sequence[cp.Checkpoint],
    signed: Mapping[int, bytes],
) -> Remembered | None:
    """What the witness keeps from this verification: an intact whole chain with evenly
    spread points of it (read in the same snapshot), else the newest trusted checkpoint."""
    now = datetime.now(UTC)
    if result.intact and whole and last_good is not None and result.events_verified:
        positions = sample_positions(last_good[0])
        rows = connection.execute(
            select(ActivityEvent.seq, ActivityEvent.hash).where(
                ActivityEvent.workspace_id == result.workspace_id,
                ActivityEvent.seq.in_(positions),
            )
        ).all()
        points = {int(seq): bytes(value) for seq, value in rows}
        return Remembered(
            result.workspace_slug, last_good[0], last_good[1], now, "verified", points
        )
    valid = [c for c in checkpoints if signed.get(c.seq) == c.hash]
    if not valid:
        return None
    newest = max(valid, key=lambda c: c.seq)
    return Remembered(result.workspace_slug, newest.seq, newest.hash, now, "checkpoint", {})


def _head(connection: Connection, workspace_id: int) -> tuple[int, bytes] | None:
    row = connection.execute(
        # As bytes whatever type SQLite was given (see _SQLITE_FULL_ROW).
        select(ChainHead.last_seq, cast(ChainHead.last_hash, LargeBinary)).where(
            ChainHead.workspace_id == workspace_id
        )
    ).first()
    return (int(row[0]), bytes(row[1])) if row else None


def _check_signatures(
    checkpoints: Sequence[cp.Checkpoint],
    trusted: Mapping[str, Ed25519PublicKey],
    result: Verification,
    untrusted_because: Mapping[str, str],
) -> tuple[dict[int, bytes], BrokenLink | None]:
    signed: dict[int, bytes] = {}
    problem: BrokenLink | None = None
    unknown: set[str] = set()
    for checkpoint in checkpoints:
        state = checkpoint.check(trusted)
        if state is cp.SignatureState.VALID:
            # Two valid checkpoints for one seq with different hashes cannot both hold.
            if signed.get(checkpoint.seq, checkpoint.hash) != checkpoint.hash and problem is None:
                problem = _forged_checkpoint(checkpoint)
            signed[checkpoint.seq] = checkpoint.hash
        elif state is cp.SignatureState.INVALID:
            problem = problem or _forged_checkpoint(checkpoint)
        else:
            unknown.add(checkpoint.key_id)
    for ident in sorted(unknown):
        why = untrusted_because.get(ident)
        result.notes.append(
            f"checkpoints signed by key {ident} were not relied on: "
            + (
                f"it is this computer's own signing key, but {why}"
                if why
                else "that key is not trusted here (see `nvadmin checkpoint --trust`)"
            )
        )
    return signed, problem


def _forged_checkpoint(checkpoint: cp.Checkpoint) -> BrokenLink:
    return BrokenLink(
        BreakKind.ALTERED,
        checkpoint.seq,
        None,
        None,
        checkpoint.hash,
        f"the signed checkpoint #{checkpoint.id} for event #{checkpoint.seq:,} does not verify "
        "with its key: the checkpoint itself was altered",
    )


def _check_tail(
    last_good: tuple[int, bytes] | None,
    head: tuple[int, bytes] | None,
    newest: _Commitment | None,
) -> BrokenLink | None:
    last_seq, last_hash = last_good or (0, bytes(32))
    head_seq, head_hash = head or (0, bytes(32))
    if head is None and last_seq and (newest is None or newest.seq <= last_seq):
        # Every writer creates the head with the first event: it never goes missing alone.
        return BrokenLink(
            BreakKind.MISSING,
            last_seq,
            None,
            None,
            last_hash,
            f"the chain head was deleted: {last_seq:,} events are chained, but the record "
            "of the newest one that every write updates is gone (were newer events removed "
            "with it? only a checkpoint or this computer's record can tell)",
        )
    if last_seq > head_seq:
        return BrokenLink(
            BreakKind.INSERTED,
            head_seq + 1,
            None,
            head_hash,
            None,
            f"events #{head_seq + 1:,} to #{last_seq:,} were added behind the chain head's "
            f"back (the head says the chain has {head_seq:,} events)",
        )
    if newest is not None and newest.seq > last_seq:
        left = f"only {last_seq:,} are left" if last_seq else "none are left"
        removed = "the newest events were removed" if last_seq else "every event was removed"
        return BrokenLink(
            BreakKind.MISSING,
            last_seq + 1,
            None,
            newest.hash,
            last_hash if last_seq else None,
            f"{removed}: {newest.source} says the chain had {newest.seq:,} events, {left}",
        )
    if head_seq > last_seq:
        return BrokenLink(
            BreakKind.MISSING,
            last_seq + 1,
            None,
            head_hash,
            last_hash,
            f"the newest events #{last_seq + 1:,} to #{head_seq:,} are missing: the chain head "
            f"says the chain has {head_seq:,} events, only {last_seq:,} are left",
        )
    if head_seq == last_seq and head_hash != last_hash and last_seq:
        return BrokenLink(
            BreakKind.ALTERED,
            last_seq,
            None,
            head_hash,
            last_hash,
            f"the newest event #{last_seq:,} does not match the chain head",
        )
    return None


def _range_text(start: datetime | None, end: datetime | None) -> str:
    def text(value: datetime | None, default: str) -> str:
        return utc_text(value)[:19].replace("T", " ") + " UTC" if value else default

    return f"from {text(start, 'the first event')} to {text(end, 'the newest event')}"


def sign_checkpoint(
    engine: Engine,
    identity: StaffIdentity,
    workspace: str | int,
    key: cp.SigningKey,
    *,
    trusted_keys: Mapping[str, Ed25519PublicKey] | None = None,
    witness: ChainWitness | None = None,
    progress: Progress = no_progress,
    cancel: CancelToken | None = None,
) -> tuple[Verification, cp.Checkpoint | None]:
    """Verify the chain, then sign its newest event. Nothing is signed when it is broken:
    a signature must never vouch for a tampered chain."""
    trusted = dict(trusted_keys or {})
    trusted[key.key_id] = key.public_key
    result = verify_workspace(
        engine,
        identity,
        workspace,
        trusted_keys=trusted,
        witness=witness,
        progress=progress,
        cancel=cancel,
    )
    if not result.intact or result.events_verified == 0:
        return result, None
    with engine.begin() as connection:
        head_seq, head_hash = _head(connection, result.workspace_id) or (0, bytes(32))
        last = result.last_seq
        stored = _stored_hash(connection, EVENTS_SOURCE, result.workspace_id, last)
        if stored is None:
            raise UserError("the chain changed while it was being verified; try again")
        checkpoint = cp.store(connection, key, result.workspace_id, last, stored)
    log.info(
        "signed checkpoint for %s at #%d (head #%d %s)",
        result.workspace_slug,
        last,
        head_seq,
        head_hash.hex()[:12],
    )
    return result, checkpoint
