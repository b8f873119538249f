"""The event filter: one query object shared by the browser, exports, reports and case files.

A filter is plain data (safe to hand to a worker thread, to save as a search, to write into an
export manifest). :func:`conditions` turns it into SQL with bound parameters only; field names
come from an allow-list, never from user text.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Integer,
    String,
    and_,
    cast,
    extract,
    func,
    literal,
    or_,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from nvadmin.db.models import ActivityEvent as E
from nvadmin.db.taxonomy import LOG_VIEW, Category
from nvadmin.query.fields import NO_STATUS as NO_STATUS  # the query's vocabulary, re-exported
from nvadmin.query.fields import SEARCHED, Match, nullable, nullable_sql
from nvadmin.query.fields import WEEKDAYS as WEEKDAYS
from nvadmin.query.fields import ApiStatus as ApiStatus
from nvadmin.query.localtime import local_clock

# The days a range may name (in any zone): far wider than any real log, and narrow enough
# that every conversion between zones stays inside the calendar and SQLite's local clock
# (one CASE branch per daylight-saving change) stays small.
FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(2999, 12, 31)


def within_days(day: date) -> bool:
    """Whether a range may start or end on ``day`` (see :data:`FIRST_DAY`)."""
    return FIRST_DAY <= day <= LAST_DAY


# Without a range, SQLite's local clock is exact for events in these years.
_CLOCK_FROM = datetime(1970, 1, 1, tzinfo=UTC)
_CLOCK_AHEAD = timedelta(days=3 * 366)


class LocalPart(FunctionElement[int]):
    """The weekday (Monday 0) or hour (0-23) of each event's time in a zone."""

    type = Integer()
    # The SQL text depends on the zone and, on SQLite, on the range: never reuse it.
    inherit_cache = False

    def __init__(self, part: str, zone: str, start: datetime | None, end: datetime | None):
        self.part, self.zone, self.start, self.end = part, zone, start, end
        super().__init__()


@compiles(LocalPart, "postgresql")
def _local_part_pg(element: LocalPart, compiler: Any, **kw: Any) -> str:
    clock = func.timezone(element.zone, E.occurred_at)
    if element.part == "weekday":
        expression = cast(extract("isodow", clock), Integer) - 1
    else:
        expression = cast(extract("hour", clock), Integer)
    return str(compiler.process(expression, **kw))


@compiles(LocalPart)
def _local_part(element: LocalPart, compiler: Any, **kw: Any) -> str:
    start = element.start or _CLOCK_FROM
    end = element.end or datetime.now(UTC) + _CLOCK_AHEAD
    clock = local_clock("sqlite", ZoneInfo(element.zone), start, end)
    if element.part == "weekday":
        # %w counts from Sunday (0); Monday first, as everywhere in nvadmin.
        expression = (cast(func.strftime("%w", clock), Integer) + 6) % 7
    else:
        expression = cast(func.strftime("%H", clock), Integer)
    return str(compiler.process(expression, **kw))


# -- case-insensitive text ------------------------------------------------------------------
#
# Free text matches regardless of case by one rule on both backends: Unicode simple case
# folding, one character for one character (``É`` finds ``é``, ``K`` the Kelvin sign ``K``,
# ``ß`` finds ``ẞ`` but not ``ss``, and ``İ`` finds only itself). The database's own
# ``lower()``/``ILIKE`` cannot give that: SQLite folds ASCII only, and PostgreSQL folds by the
# database's collation (under some, ``İ`` lowers to ``i`` and finds every row). So the needle
# is spelled out here, each character as the set of characters that fold to the same one, as a
# ``GLOB`` pattern on SQLite and a regular expression on PostgreSQL: exact code-point matching
# that no collation, locale or server build can change.


def fold_char(char: str) -> str:
    """A character's simple case folding (itself when its folding takes several characters
    and its lower case does too, as for ``İ``)."""
    folded = char.casefold()
    if len(folded) == 1:
        return folded
    lower = char.lower()
    return lower if len(lower) == 1 else char


def fold_case(text: str) -> str:
    """``text`` with every character folded: two texts match case-insensitively when their
    folds are equal, and one contains the other when its fold does."""
    return "".join(fold_char(c) for c in text)


@functools.cache
def _case_classes() -> dict[str, str]:
    """Folded character -> every character that folds to it (only characters with others)."""
    classes: dict[str, set[str]] = {}
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        folded = fold_char(char)
        if folded != char:
            classes.setdefault(folded, {folded}).add(char)
    return {folded: "".join(sorted(chars)) for folded, chars in classes.items()}


def case_variants(char: str) -> str:
    """Every character that matches ``char`` case-insensitively, ``char`` included."""
    return _case_classes().get(fold_char(char), char)


def _glob_pattern(needle: str, prefix: bool) -> str:
    parts = []
    for char in needle:
        variants = case_variants(char)
        if len(variants) > 1 or char in "*?[":
            parts.append(f"[{variants}]")  # letters only, or one GLOB wildcard made literal
        else:
            parts.append(char)
    return ("" if prefix else "*") + "".join(parts) + "*"


def _regex_pattern(needle: str, prefix: bool) -> str:
    parts = []
    for char in needle:
        variants = case_variants(char)
        if len(variants) > 1:
            parts.append(f"[{variants}]")
        elif char.isascii() and not char.isalnum():
            parts.append("\\" + char)  # any ASCII punctuation or space, literally
        else:
            parts.append(char)
    return ("^" if prefix else "") + "".join(parts)


class FoldedContains(FunctionElement[bool]):
    """``column`` contains ``needle`` (starts with it when ``prefix``), case-insensitively
    by :func:`fold_case`'s rule, on both backends alike; a NULL column matches nothing."""

    type = Boolean()
    # The pattern is built from the needle at compile time: never reuse the SQL text.
    inherit_cache = False

    def __init__(self, column: Any, needle: str, *, prefix: bool = False) -> None:
        if "\x00" in needle:
            raise ValueError("text to match cannot contain a NUL character")
        self.needle, self.prefix = needle, prefix
        # The column as the function's argument, where SQLAlchemy sees it: a statement
        # rewritten for other tables (the case-file copy reads the source as an alias)
        # replaces it there too.
        super().__init__(column)

    @property
    def column(self) -> Any:
        return next(iter(self.clauses))


@compiles(FoldedContains, "postgresql")
def _folded_contains_pg(element: FoldedContains, compiler: Any, **kw: Any) -> str:
    pattern = literal(_regex_pattern(element.needle, element.prefix), String())
    return str(compiler.process(element.column.op("~")(pattern), **kw))


@compiles(FoldedContains)
def _folded_contains(element: FoldedContains, compiler: Any, **kw: Any) -> str:
    pattern = literal(_glob_pattern(element.needle, element.prefix), String())
    return str(compiler.process(element.column.op("GLOB")(pattern), **kw))


# The columns free text is looked for in.
TEXT_COLUMNS = (E.details, E.actor_name, E.actor_email, E.resource_id)

# The filterable fields, their columns and values: ``fields.SEARCHED`` (the field registry).


@dataclass(frozen=True, slots=True)
class Term:
    """``field = value`` (``!=`` when negated).

    Same-field terms are OR-ed (several users at once); negated terms are AND-ed.
    """

    field: str
    value: str
    negate: bool = False

    def __post_init__(self) -> None:
        spec = SEARCHED.get(self.field)
        if spec is None:
            raise ValueError(f"unknown filter field {self.field!r}")
        if spec.check is not None:
            spec.check(self.value)
        if "\x00" in self.value:
            raise ValueError("a filter value cannot contain a NUL character")


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events to show or export. Times are aware instants: ``start`` inclusive,
    ``end`` exclusive. An empty ``workspace_ids`` means every workspace (admins only)."""

    workspace_ids: tuple[int, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    terms: tuple[Term, ...] = ()
    text: str = ""
    include_log_access: bool = True
    zone: str = "UTC"

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.zone)
        except (KeyError, ValueError):
            raise ValueError(f"unknown time zone {self.zone!r}") from None
        for instant in (self.start, self.end):
            if instant is not None and instant.tzinfo is None:
                raise ValueError("filter times must be timezone-aware")
        if self.start and self.end and self.start >= self.end:
            raise ValueError("the start of the range must be before its end")
        if "\x00" in self.text:
            raise ValueError("search text cannot contain a NUL character")

    def with_terms(self, *terms: Term) -> EventFilter:
        return replace(self, terms=(*self.terms, *terms))

    def values(self, field_name: str, *, negate: bool = False) -> list[str]:
        return [t.value for t in self.terms if t.field == field_name and t.negate == negate]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, for saved searches, manifests and the log's view events."""
        data = asdict(self)
        data["workspace_ids"] = list(self.workspace_ids)
        data["start"] = self.start.isoformat() if self.start else None
        data["end"] = self.end.isoformat() if self.end else None
        data["terms"] = [asdict(t) for t in self.terms]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EventFilter:
        return cls(
            workspace_ids=tuple(int(w) for w in data.get("workspace_ids", ())),
            start=datetime.fromisoformat(data["start"]) if data.get("start") else None,
            end=datetime.fromisoformat(data["end"]) if data.get("end") else None,
            terms=tuple(Term(**t) for t in data.get("terms", ())),
            text=data.get("text", ""),
            include_log_access=bool(data.get("include_log_access", True)),
            zone=str(data.get("zone") or "UTC"),
        )


def escape_like(value: str) -> str:
    """Escape LIKE wildcards so user text matches literally (with ``escape='\\\\'``)."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class _WorkspaceNoIndex(FunctionElement[int]):
    """A column (the workspace), which SQLite's planner may not search an index by
    (``+workspace_id``: the same value, no longer the column); elsewhere the column itself.
    The column is the element's argument, so a statement adapted to another table (a case
    file's copy from an attached database) adapts it too."""

    type = Integer()
    inherit_cache = True


@compiles(_WorkspaceNoIndex)
def _workspace_column(element: _WorkspaceNoIndex, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(_WorkspaceNoIndex, "sqlite")
def _workspace_no_index(element: _WorkspaceNoIndex, compiler: Any, **kw: Any) -> str:
    return "+" + str(compiler.process(element.clauses, **kw))


@functools.cache
def _index_prefixes() -> frozenset[tuple[str, ...]]:
    """The first two columns (or expressions, as their SQL) of each event table index."""
    return frozenset(
        tuple(getattr(e, "name", None) or str(e) for e in list(index.expressions)[:2])
        for index in E.__table__.indexes  # type: ignore[attr-defined]
    )


def _key(name: str) -> str | None:
    return getattr(SEARCHED[name].column, "key", None)


@functools.cache
def _own_index(name: str) -> bool:
    """Whether field ``name``'s column leads an index of the event table while no index
    leads with the workspace and it (a patient's id, a member's e-mail address)."""
    key, leads = _key(name), _index_prefixes()
    own = any(names[0] == key for names in leads)
    return key is not None and own and ("workspace_id", key) not in leads


@functools.cache
def _coalesced(name: str) -> bool:
    """Whether field ``name``'s column is indexed after the workspace as ``coalesce(column,
    '')``, as the browser sorts a nullable column (its sort index: role, patient, resource,
    IP address)."""
    key = _key(name)
    return key is not None and ("workspace_id", nullable_sql(key)) in _index_prefixes()


def _selective(f: EventFilter) -> bool:
    """Whether the filter asks for values of a field with an index of its own, each value
    found by that index (an exact e-mail address, not the start of a name)."""
    for name in _fields_in(f.terms):
        wanted = f.values(name)
        spec = SEARCHED[name]
        if not wanted or not _own_index(name):
            continue
        if spec.match is Match.EQUAL and not any(_means_null(name, v) for v in wanted):
            return True
        if spec.match is Match.PERSON and all("@" in v for v in wanted):
            return True
    return False


def _equal(f: EventFilter, name: str, column: Any, wanted: list[Any]) -> ColumnElement[bool]:
    """``column IN wanted``, written for the index that should answer it. A column sorted as
    ``coalesce(column, '')`` (role, resource, IP address, patient) is compared as that
    expression (the same rows: a searched value is never NULL), so its sort index answers
    "these values, in time order": on PostgreSQL, in case files, and in one workspace on
    SQLite (a rare IP address read the workspace's whole time index: 3.6 s at 5M events). The
    column itself is compared too where an index of its own serves it (a patient over every
    workspace, or with ``+workspace_id``, see :func:`conditions`); beside the expression in
    one workspace it would make SQLite take the time index again."""
    if not _coalesced(name):
        return column.in_(wanted)
    sorted_as = nullable(column).in_(wanted)
    if f.workspace_ids and not _own_index(name):
        return sorted_as
    return and_(column.in_(wanted), sorted_as)


def conditions(event_filter: EventFilter) -> list[ColumnElement[bool]]:
    """SQL conditions for a filter, with every value bound.

    A term on a field whose column has an index of its own (not after the workspace), such
    as ``patient:`` or ``user:``, is far more selective than the workspace. Without
    statistics (nvadmin does not run ``ANALYZE``: the plans of the export and verification
    are checked without them) SQLite takes the workspace's time index for ``workspace_id =
    ?`` because it has the time order, and reads the whole workspace for a patient's few
    events (2-5 s at 5M events): with such a term the workspace is compared as
    ``+workspace_id``, which no index serves, and the term's index is read."""
    f = event_filter
    where: list[ColumnElement[bool]] = []
    if f.workspace_ids:
        workspace = _WorkspaceNoIndex(E.workspace_id) if _selective(f) else E.workspace_id
        where.append(workspace.in_(f.workspace_ids))
    if f.start is not None:
        where.append(E.occurred_at >= f.start)
    if f.end is not None:
        where.append(E.occurred_at < f.end)
    for name in _fields_in(f.terms):
        spec = SEARCHED[name]
        if spec.match is Match.PERSON:
            where.extend(_person_conditions(f, name, spec.column))
            continue
        column: Any = spec.column
        convert: Callable[[str], Any] = spec.to_sql
        if spec.match is Match.CLOCK:
            column = LocalPart(name, f.zone, f.start, f.end)
        wanted = [convert(v) for v in f.values(name) if not _means_null(name, v)]
        matches: list[ColumnElement[bool]] = []
        if wanted:
            matches.append(_equal(f, name, column, wanted))
        if len(wanted) < len(f.values(name)):
            matches.append(column.is_(None))
        if matches:
            where.append(or_(*matches))
        for value in f.values(name, negate=True):
            if _means_null(name, value):
                where.append(column.is_not(None))
            else:
                # NULL-safe: excluding a value keeps the rows that have no value at all.
                where.append(or_(column.is_(None), column != convert(value)))
    if not f.include_log_access:
        where.append(E.category != Category.LOG_ACCESS.value)
    if f.text.strip():
        needle = f.text.strip()
        where.append(or_(*(_text_in(column, needle) for column in TEXT_COLUMNS)))
    return where


def _text_in(column: Any, needle: str) -> ColumnElement[bool]:
    # LOG_VIEW is what ``access_log.record_view`` writes for every query, before its rows are
    # read. Its details are that query itself (the filter, free text included, and a
    # purpose): free text searched there would find the view of the very search being made,
    # so a search that matches nothing showed "1 event", the searcher's own, and every earlier
    # view of the same text. A view's details are a record of a question, not of something
    # that happened to the clinic's records, so free text does not look in them. The views
    # stay found by who made them (name, e-mail), by action and category, and shown by "Show
    # log access"; exports and other log-access events, whose details carry a ticket or a
    # file name, keep theirs.
    found: ColumnElement[bool] = FoldedContains(column, needle)
    if column is E.details:
        return and_(E.action != LOG_VIEW, found)
    return found


def _person_conditions(f: EventFilter, name: str, email: Any) -> list[ColumnElement[bool]]:
    """``user:`` is a team member's e-mail. A value without ``@`` is the start of an e-mail or
    of a name, in any case, as the Team members field suggests them: ``user:ingrid`` finds
    Ingrid Olsen <ingrid.olsen@...>. Excluding (``-user:``) is NULL-safe like other fields."""

    def matches(value: str) -> ColumnElement[bool]:
        if "@" in value:
            return and_(email.is_not(None), email == value)
        # The start of the e-mail or the name, by the free text's one case-folding rule.
        return or_(
            and_(email.is_not(None), FoldedContains(email, value, prefix=True)),
            and_(E.actor_name.is_not(None), FoldedContains(E.actor_name, value, prefix=True)),
        )

    found: list[ColumnElement[bool]] = []
    wanted = f.values(name)
    if wanted:
        found.append(or_(*(matches(v) for v in wanted)))
    found.extend(~matches(v) for v in f.values(name, negate=True))
    return found


def _means_null(field_name: str, value: str) -> bool:
    null_value = SEARCHED[field_name].null_value
    return null_value is not None and value == null_value


def where_clause(event_filter: EventFilter) -> ColumnElement[bool]:
    parts = conditions(event_filter)
    return and_(*parts) if parts else and_(True)


def _fields_in(terms: Iterable[Term]) -> list[str]:
    seen: dict[str, None] = {}
    for term in terms:
        seen.setdefault(term.field)
    return list(seen)
