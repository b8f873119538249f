"""The columns an export can contain, and how each is formatted on either backend.

Both backends produce the same cell text, in the forms of the export's profile
(:mod:`nvadmin.export.profiles`). On PostgreSQL the formatting runs inside the
``COPY (SELECT ...)`` so the rows stream straight from the server to the file; the expressions
are chosen to be cheap: local times are the UTC time shifted by the zone's offset over each
stretch of the range (:class:`ZoneClock`) rather than a zone lookup per row, and formula
neutralising tests ``ascii(c)`` instead of a regex, and only in columns not known beforehand
to hold plain text alone (:mod:`nvadmin.export.plain`). On SQLite the cells are formatted in
SQL too (:mod:`nvadmin.export.sqlite_csv` makes whole lines of them).

Formula injection (OWASP "CSV Injection"): a spreadsheet treats a cell starting with ``=``, ``+``,
``-``, ``@``, tab, CR or LF as a formula. Every free-text cell starting with one of those, or with
an apostrophe, gets a leading apostrophe, which spreadsheets show as text and never evaluate
(the rule, and why the apostrophe itself: :mod:`nvadmin.files.cells`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.dialects import postgresql, sqlite

from nvadmin.db.models import ActivityEvent
from nvadmin.db.types import sqlite_timestamp
from nvadmin.export.profiles import Profile, iso_offset
from nvadmin.files.cells import FORMULA_STARTS as FORMULA_STARTS  # re-exported
from nvadmin.files.cells import NEUTRALISED_STARTS
from nvadmin.query.fields import EXPORTED
from nvadmin.query.fields import Kind as Kind  # re-exported: the export service reads it
from nvadmin.query.localtime import offset_spans

_SQL_NEUTRALISED_CODES = ", ".join(str(ord(c)) for c in NEUTRALISED_STARTS)
# The free-text columns whose every value is plain text (:mod:`nvadmin.export.plain`), each
# with whether the empty text is among its values.
Plain = Mapping[str, bool]


@dataclass(frozen=True, slots=True)
class Column:
    key: str  # also the CSV header
    source: str  # the event table column
    kind: Kind
    label: str  # shown in the export form
    # A derived column's SQL over the event table (``source`` is then the column it reads).
    derived: Callable[[], Any] | None = field(default=None, compare=False)
    identifier: bool = False  # a number naming something: text in JSON Lines

    @property
    def free_text(self) -> bool:
        """A stored text column: neutralised, and quoted when need be."""
        return self.derived is None and self.kind is Kind.TEXT

    def as_stored(self, plain: Plain) -> bool:
        """Whether the cells are the stored values as they are: ``plain`` names the column."""
        return self.free_text and self.source in plain

    @property
    def zoned(self) -> bool:
        """The cell depends on the export's zone (see :class:`ZoneClock`)."""
        return self.kind in (Kind.LOCAL_TIME, Kind.UTC_OFFSET)

    def sqlite_sql(self, table: str, profile: Profile) -> str:
        """The cell text on SQLite; a zoned cell gives the stored time (UTC), for
        :meth:`ZoneClock.sql` or the Python path to format."""
        if self.derived is not None:
            return _derived_sql(self.derived(), _SQLITE, table)
        c = f"{table}.{self.source}"
        if self.kind is Kind.TEXT:
            # Every neutralised start is below 'A': a text from 'A' on (by bytes: a letter or a
            # non-ASCII start) passes on two comparisons and no function call. ``< x''`` is
            # true for every text and false for a blob (blobs sort after texts), which takes
            # the unicode() test as before.
            return (
                f"CASE WHEN {c} >= 'A' AND {c} < x'' THEN {c} "
                f"WHEN unicode({c}) IN ({_SQL_NEUTRALISED_CODES}) THEN '''' || {c} ELSE {c} END"
            )
        if self.kind is Kind.UTC_TIME:
            # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff' (always six fraction digits).
            text = c if profile.microseconds else f"substr({c}, 1, 19)"
            if profile.separator != " ":
                text = f"replace({text}, ' ', '{profile.separator}')"
            return f"{text} || '{profile.utc_suffix}'" if profile.utc_suffix else text
        if self.kind is Kind.HEX:
            return f"lower(hex({c}))"
        return c

    def pg_sql(self, table: str, profile: Profile, plain: Plain | None = None) -> str:
        """The SQL expression for this cell, over the event table named ``table`` (a zoned
        cell comes from :meth:`ZoneClock.sql`); a column ``plain`` names is written as
        stored."""
        if self.derived is not None:
            return _derived_sql(self.derived(), _POSTGRESQL, table)
        c = f"{table}.{self.source}"
        if plain is not None and self.as_stored(plain):
            # As below, an empty text is a missing value; no test otherwise: testing every
            # free-text cell was a fifth of the server's work for the whole file.
            return f"nullif({c}, '')" if plain[self.source] else c
        if self.kind is Kind.TEXT:
            # ascii() reads the first character's code without copying the text; every
            # neutralised start is below 'A' (65), so ordinary text costs one integer comparison.
            # An empty text is written as a missing value: COPY would quote it ("") where
            # SQLite and the csv module write nothing, and the bytes must be the same.
            return (
                f"CASE WHEN ascii({c}) >= 65 THEN {c} "
                f"WHEN ascii({c}) IN ({_SQL_NEUTRALISED_CODES}) THEN '''' || {c} "
                f"WHEN {c} = '' THEN NULL ELSE {c} END"
            )
        if self.zoned:
            raise ValueError(f"{self.key} depends on the export's zone: use ZoneClock.sql")
        if self.kind is Kind.UTC_TIME:
            return _pg_clock(f"({c} AT TIME ZONE 'UTC')", profile, profile.utc_suffix)
        if self.kind is Kind.HEX:
            return f"encode({c}, 'hex')"
        return c


def _pg_clock(wall: str, profile: Profile, suffix: str) -> str:
    """PostgreSQL text of a wall-clock ``timestamp`` as ``profile`` writes it, then ``suffix``.

    Whole seconds come from ``date_trunc`` and the ``timestamp`` text (DateStyle ISO, set by
    the export), which costs PostgreSQL about what the raw value's text does; six fraction
    digits need ``to_char`` (the text drops trailing zeros)."""
    if not profile.microseconds and profile.separator == " ":
        text = f"date_trunc('second', {wall})::text"
        return f"{text} || '{suffix}'" if suffix else text
    fraction = ".US" if profile.microseconds else ""
    literal = f'"{suffix}"' if suffix else ""
    return f"to_char({wall}, 'YYYY-MM-DD\"{profile.separator}\"HH24:MI:SS{fraction}{literal}')"


_SQLITE = sqlite.dialect()
_POSTGRESQL = postgresql.dialect()


def _derived_sql(expression: Any, dialect: Any, table: str) -> str:
    """A derived column's SQL text (its constants inlined: they come from the registry)."""
    sql = str(expression.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    if table != ActivityEvent.__tablename__:
        raise ValueError(f"derived export columns read the event table, not {table!r}")
    return sql


# Every column an export can contain, in file order: the field registry's export columns.
COLUMNS: tuple[Column, ...] = tuple(
    Column(
        f.export.key,
        f.export.source or f.export.key,
        f.export.kind,
        f.export.label,
        f.export.sql,
        f.export.identifier,
    )
    for f in EXPORTED
    if f.export is not None
)
BY_KEY: dict[str, Column] = {c.key: c for c in COLUMNS}
# The event hash and storage id are for evidence work; the customer's file leaves them out,
# and columns added later are chosen in the export form, so the default file never changes.
DEFAULT_COLUMNS: tuple[str, ...] = tuple(
    f.export.key for f in EXPORTED if f.export is not None and f.export.default
)


def resolve(keys: tuple[str, ...] | list[str]) -> tuple[Column, ...]:
    unknown = [k for k in keys if k not in BY_KEY]
    if unknown:
        raise ValueError(f"unknown export column(s): {', '.join(unknown)}")
    if not keys:
        raise ValueError("choose at least one column to export")
    return tuple(BY_KEY[k] for k in keys)


class ZoneClock:
    """The export zone's UTC offsets over the exported rows, and the zoned cells in SQL.

    Neither backend works out a zone per row: the offsets between the first and the last
    exported event come from the IANA database here (:func:`offset_spans`, the same zoneinfo
    on either backend) and each zoned cell is a ``CASE`` on the event time with one branch per
    stretch between two offset changes (nested halves: a range of years costs a few
    comparisons per row, not one per change). A stretch's local time is the UTC time shifted
    by a constant, so PostgreSQL formats it as cheaply as the UTC time, and SQLite with one
    ``datetime()`` (or, in whole hours, from a table of the range's hours: :meth:`hours`)."""

    def __init__(self, zone: ZoneInfo, first: datetime, last: datetime) -> None:
        self.first, self.last = first, last
        spans = offset_spans(zone, first, last + timedelta(microseconds=1))
        stretches: list[tuple[datetime, timedelta]] = []
        since = first
        for until, _minutes in spans:
            # The offset itself, seconds included (local mean time before standard time).
            stretches.append((until, since.astimezone(zone).utcoffset() or timedelta(0)))
            since = until
        self.stretches = tuple(stretches)

    def sql(self, column: Column, dialect: str, table: str, profile: Profile) -> str:
        c = f"{table}.{column.source}"
        if dialect == "postgresql":
            branches = [
                (f"'{until.isoformat()}'", _pg_zoned(column.kind, c, offset, profile))
                for until, offset in self.stretches
            ]
        else:
            branches = [
                (f"'{sqlite_timestamp(until)}'", _sqlite_zoned(column.kind, c, offset, profile))
                for until, offset in self.stretches
            ]
        return _halves(c, branches)

    def hours(self, profile: Profile) -> list[Hour] | None:
        """The exported range cut at every UTC hour, each hour with its local date and hour
        and its offset cells as ``profile`` writes them (SQLite's lines join them to the events
        of the hour, see :func:`sqlite_pieces`). None when that cannot be: an offset that is not
        a whole number of hours or a change off the hour (local minutes would differ from the
        UTC ones), more than ``HOURS_AT_MOST`` hours, or a local date Python cannot write."""
        hour = timedelta(hours=1)
        if any(offset % hour for _until, offset in self.stretches) or any(
            until.minute or until.second or until.microsecond for until, _ in self.stretches[:-1]
        ):
            return None
        start = self.first.replace(minute=0, second=0, microsecond=0)
        if (self.last - start) // hour >= HOURS_AT_MOST:
            return None
        end = self.last + timedelta(microseconds=1)
        hours: list[Hour] = []
        stretches = iter(self.stretches)
        until, offset = next(stretches)
        try:
            while start < end:
                while start >= until:
                    until, offset = next(stretches)
                local = start + offset
                hours.append(
                    (
                        sqlite_timestamp(max(start, self.first)),
                        sqlite_timestamp(min(start + hour, end)),
                        local.replace(tzinfo=None).isoformat(profile.separator, "hours"),
                        profile.offset(offset),
                        iso_offset(offset) if profile.offset_in_local else "",
                    )
                )
                start += hour
        except OverflowError:
            return None
        return hours


# An hour of :meth:`ZoneClock.hours`: from, until (stored UTC texts), the local date and hour,
# the offset cell, and what follows the local time (its offset in the data profile).
Hour = tuple[str, str, str, str, str]
# Beyond this (23 years), the hours would cost more to make than the rows they save.
HOURS_AT_MOST = 200_000


def _halves(c: str, branches: list[tuple[str, str]]) -> str:
    """``CASE`` over ``branches`` (``(until, cell)``, in time order; the last one's ``until``
    is not tested): the middle first, then the half the time is in."""
    if len(branches) == 1:
        return branches[0][1]
    middle = len(branches) // 2
    earlier, later = branches[:middle], branches[middle:]
    return (
        f"CASE WHEN {c} < {earlier[-1][0]} THEN {_halves(c, earlier)} ELSE {_halves(c, later)} END"
    )


def _pg_zoned(kind: Kind, c: str, offset: timedelta, profile: Profile) -> str:
    if kind is Kind.UTC_OFFSET:
        return f"'{profile.offset(offset)}'"
    seconds = int(offset.total_seconds())
    wall = f"({c} AT TIME ZONE 'UTC')"
    if seconds:
        wall = f"({wall} + interval '{seconds} seconds')"
    return _pg_clock(wall, profile, iso_offset(offset) if profile.offset_in_local else "")


def _sqlite_zoned(kind: Kind, c: str, offset: timedelta, profile: Profile) -> str:
    if kind is Kind.UTC_OFFSET:
        return f"'{profile.offset(offset)}'"
    # The stored second shifted by a whole number of seconds: the fraction is copied (given
    # whole, datetime() would round it to the millisecond). datetime() costs SQLite about half
    # what strftime() does, and writes the excel profile's form; the data profile's ``T`` is one
    # replace() more, still cheaper than strftime().
    seconds = int(offset.total_seconds())
    text = f"datetime(substr({c}, 1, 19), '{seconds:+d} seconds')"
    if profile.separator != " ":
        text = f"replace({text}, ' ', '{profile.separator}')"
    if profile.microseconds:
        text += f" || substr({c}, 20)"
    if profile.offset_in_local:
        text += f" || '{iso_offset(offset)}'"
    return text


def cells_sql(
    columns: Sequence[Column],
    dialect: str,
    table: str,
    profile: Profile,
    clock: ZoneClock | None,
    plain: Plain | None = None,
) -> list[str]:
    """Every column's cell SQL; zoned cells from ``clock`` (None: no rows, any SQL will do);
    on PostgreSQL, the columns ``plain`` names as stored."""
    cells = []
    for column in columns:
        if column.zoned:
            cells.append("NULL" if clock is None else clock.sql(column, dialect, table, profile))
        elif dialect == "postgresql":
            cells.append(column.pg_sql(table, profile, plain))
        else:
            cells.append(column.sqlite_sql(table, profile))
    return cells


# A cell in a line made by one printf: its conversion and the SQL of its arguments.
Piece = tuple[str, tuple[str, ...]]


def sqlite_pieces(
    columns: Sequence[Column],
    table: str,
    profile: Profile,
    clock: ZoneClock | None,
    hours: str | None = None,
) -> list[Piece]:
    """Every column's cell on SQLite as a piece of one printf (the lines of
    :mod:`nvadmin.export.sqlite_csv`), the same text as :func:`cells_sql`. A UTC time to the
    second is printf's precision on the stored text (``%.19s``: no substr() copy, about
    0.1 s per million rows) and a suffix is part of the format. ``hours``: the name of a
    table of :meth:`ZoneClock.hours` joined to each event (columns ``local``, ``offset_cell``,
    ``after``): a local time is then its hour's local date and hour and the stored minutes and
    seconds, with no date arithmetic per row (datetime() costs about 0.3 s per million)."""
    pieces: list[Piece] = []
    for column, sql in zip(
        columns, cells_sql(columns, "sqlite", table, profile, clock), strict=True
    ):
        c = f"{table}.{column.source}"
        if hours is not None and column.kind is Kind.UTC_OFFSET:
            pieces.append(("%s", (f"{hours}.offset_cell",)))
        elif hours is not None and column.kind is Kind.LOCAL_TIME:
            # The stored ':MM:SS.ffffff'; ':MM:SS' (%.6s) to the second.
            seconds = "%s" if profile.microseconds else "%.6s"
            after = ("%s", (f"{hours}.after",)) if profile.offset_in_local else ("", ())
            pieces.append(
                (f"%s{seconds}{after[0]}", (f"{hours}.local", f"substr({c}, 14)", *after[1]))
            )
        elif column.kind is Kind.UTC_TIME and column.derived is None:
            pieces.append(_sqlite_utc_piece(c, profile))
        else:
            pieces.append(("%s", (sql,)))
    return pieces


def _sqlite_utc_piece(c: str, profile: Profile) -> Piece:
    suffix = profile.utc_suffix.replace("%", "%%")
    if not profile.microseconds and profile.separator == " ":
        return f"%.19s{suffix}", (c,)
    text = c if profile.microseconds else f"substr({c}, 1, 19)"
    if profile.separator != " ":
        text = f"replace({text}, ' ', '{profile.separator}')"
    return f"%s{suffix}", (text,)


def python_cell(column: Column, stored: Any, zone: tzinfo, profile: Profile) -> Any:
    """A zoned cell formatted in Python from the stored UTC time (the SQLite path's fallback,
    and the reference its SQL is tested against); other cells come formatted from SQL."""
    if not column.zoned or stored is None:
        return stored
    instant = datetime.fromisoformat(stored).replace(tzinfo=UTC)
    if column.kind is Kind.UTC_OFFSET:
        return profile.offset(instant.astimezone(zone).utcoffset() or timedelta(0))
    return profile.local(instant, zone)
