"""Every field of an activity event, declared once.

One :class:`EventField` says everything nvadmin does with a field: the search-bar qualifiers
that filter on it (and the SQL they compare, the parser of a typed value, the filter-bar
widget), the line in the detail pane, the column in the activity table and the column in a CSV
export. The search language (:mod:`nvadmin.query.search`), the filter (:mod:`.query`), the
table model, the detail pane, the filter bar and the export columns are all derived from
:data:`FIELDS`; ``tests/unit/test_fields.py`` checks that every entry is wired end to end.

Adding a field means adding one entry here (and its test). A field stored in a new column of
the event table also needs that column (model, migration, :class:`~.paging.EventRow`); a
field derived from stored ones, like :data:`AGENT`, needs nothing else.

Orders: the detail pane reads the fields in the order of :data:`FIELDS`. Table and export
columns carry explicit positions instead, because both are kept outside the program (a saved
table layout remembers columns by position; a CSV file's columns are a contract with whoever
reads it): existing positions never change, a new column takes the next free one.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, String, case, cast, func, literal, literal_column
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from nvadmin.db.models import ActivityEvent as E
from nvadmin.db.taxonomy import (
    ACTIONS,
    CATEGORY_ALIASES,
    CATEGORY_SHORT,
    Category,
    Outcome,
    action_label,
    reason_label,
    role_label,
)
from nvadmin.query.localtime import zone_name

if TYPE_CHECKING:
    from nvadmin.query.paging import EventRow


# -- SQL of derived fields ----------------------------------------------------------------------


class ApiStatus(FunctionElement[str]):
    """The HTTP status an API request was answered with (``details.status``), as text;
    NULL for events that have none."""

    type = String()
    inherit_cache = True


@compiles(ApiStatus, "postgresql")
def _api_status_pg(element: ApiStatus, compiler: Any, **kw: Any) -> str:
    # The key as a literal: GROUP BY must repeat the select's expression exactly.
    expression = func.jsonb_extract_path_text(cast(E.details, JSONB), literal_column("'status'"))
    return str(compiler.process(expression, **kw))


@compiles(ApiStatus)
def _api_status(element: ApiStatus, compiler: Any, **kw: Any) -> str:
    expression = cast(func.json_extract(E.details, literal_column("'$.status'")), String)
    return str(compiler.process(expression, **kw))


class _HasText(FunctionElement[bool]):
    """``column`` contains ``needle``, exactly (case and all), on both backends alike."""

    inherit_cache = True

    def __init__(self, column: Any, needle: str) -> None:
        super().__init__(column, literal(needle, String()))


@compiles(_HasText, "postgresql")
def _has_text_pg(element: _HasText, compiler: Any, **kw: Any) -> str:
    column, needle = element.clauses
    return f"(strpos({compiler.process(column, **kw)}, {compiler.process(needle, **kw)}) > 0)"


@compiles(_HasText)
def _has_text(element: _HasText, compiler: Any, **kw: Any) -> str:
    column, needle = element.clauses
    return f"(instr({compiler.process(column, **kw)}, {compiler.process(needle, **kw)}) > 0)"


# -- the browser or app behind a user agent ------------------------------------------------------
#
# A user agent names its program in tokens (``Chrome/131.0``, ``curl/8.5``). The first rule
# whose tokens all occur in it (exactly, case and all) names the family, so more specific
# rules come first (Edge's agent also says Chrome, Chrome's also says Safari). The same rules
# become a SQL CASE, so a search, the table and an export name the same family on either
# backend. A parsing library (ua-parser) would know more programs, but the database could not
# filter by its answer; these rules name the browsers, clinical clients ("Hyperspace", Epic's)
# and HTTP tools seen in the log, and anything else is "Other". Matching is a scan (no index):
# on a large log, combine agent: with a time range or another indexed filter.
AGENT_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("nvadmin", ("nvadmin/",)),
    ("Epic Hyperspace", ("Hyperspace",)),
    ("curl", ("curl/",)),
    ("python-requests", ("python-requests/",)),
    ("Postman", ("PostmanRuntime/",)),
    ("Edge", ("Edg/",)),
    ("Opera", ("OPR/",)),
    ("Firefox", ("Firefox/",)),
    ("Chrome", ("Chrome/",)),
    ("Chrome", ("CriOS/",)),
    ("Safari", ("Safari/",)),
    ("iOS app", ("AppleWebKit/", "Mobile/")),
)
AGENT_OTHER = "Other"  # a user agent no rule knows
AGENT_FAMILIES: tuple[str, ...] = (*dict.fromkeys(name for name, _ in AGENT_RULES), AGENT_OTHER)


def agent_family(user_agent: str | None) -> str | None:
    """The family of a user agent (None when the event has none)."""
    if not user_agent:
        return None
    for family, tokens in AGENT_RULES:
        if all(token in user_agent for token in tokens):
            return family
    return AGENT_OTHER


def agent_family_sql(column: Any = E.user_agent) -> ColumnElement[str]:
    """:func:`agent_family` in SQL, over ``column``."""
    whens: list[tuple[Any, Any]] = [
        (column.is_(None) | (column == literal("", String())), literal(None, String()))
    ]
    for family, tokens in AGENT_RULES:
        condition: Any = _HasText(column, tokens[0])
        for token in tokens[1:]:
            condition = condition & _HasText(column, token)
        whens.append((condition, literal(family, String())))
    return case(*whens, else_=literal(AGENT_OTHER, String()))


# -- values typed in the search bar -------------------------------------------------------------

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# ``status:none``: API requests with no status recorded.
NO_STATUS = "none"


def _as_typed(value: str) -> str:
    return value


def _parse_category(value: str) -> str:
    category = CATEGORY_ALIASES.get(value.lower())
    if category is None:
        names = ", ".join(CATEGORY_SHORT.values())
        raise ValueError(f"unknown category {value!r} (use one of {names})")
    return category.value


def _write_category(value: str) -> str:
    with contextlib.suppress(ValueError):
        return CATEGORY_SHORT[Category(value)]
    return value


def _parse_outcome(value: str) -> str:
    if value.lower() not in {o.value for o in Outcome}:
        raise ValueError("outcome: is success or failure")
    return value.lower()


def _parse_action(value: str) -> str:
    if value not in ACTIONS:
        guess = difflib.get_close_matches(value, list(ACTIONS), n=1)
        hint = f" (did you mean {guess[0]}?)" if guess else ""
        raise ValueError(f"unknown action {value!r}{hint}")
    return value


def _parse_user(value: str) -> str:
    _check_user(value)
    return value.lower() if "@" in value else value


def _check_user(value: str) -> None:
    # A name's start is matched as a prefix, and every name starts with the empty text: a
    # blank value would silently stand for every member.
    if not value.strip():
        raise ValueError("give a team member's e-mail or the start of a name, not a blank")


def _parse_weekday(value: str) -> str:
    # "mon", "Monday", "tues": three letters or more of a weekday's English name.
    day = value.lower()
    for short, full in zip(WEEKDAYS, _WEEKDAY_NAMES, strict=True):
        if len(day) >= 3 and full.startswith(day):
            return short
    raise ValueError("weekday: is mon, tue, wed, thu, fri, sat or sun")


def _check_weekday(value: str) -> None:
    if value not in WEEKDAYS:
        raise ValueError(f"not a weekday: {value!r}")


def _parse_hour(value: str) -> str:
    if not re.fullmatch(r"[0-9]{1,2}", value) or int(value) > 23:
        raise ValueError("hour: is an hour of the day, 0 to 23")
    return str(int(value))


def _check_hour(value: str) -> None:
    if value not in {str(h) for h in range(24)}:
        raise ValueError(f"not an hour of the day: {value!r}")


def _parse_status(value: str) -> str:
    if value.lower() == NO_STATUS:
        return NO_STATUS
    if not re.fullmatch(r"[0-9]{3}", value):
        raise ValueError("status: is an HTTP status such as 200 or 500, or none")
    return value


def _parse_agent(value: str) -> str:
    by_folded = {family.casefold(): family for family in AGENT_FAMILIES}
    family = by_folded.get(value.casefold())
    if family is None:
        guess = difflib.get_close_matches(value.casefold(), list(by_folded), n=1)
        hint = f" (did you mean {by_folded[guess[0]]}?)" if guess else ""
        raise ValueError(f"unknown browser or app {value!r}{hint}")
    return family


# -- how an event is shown ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class View:
    """What showing an event depends on besides the event: the zone on screen and the
    workspaces' names."""

    zone: tzinfo = UTC
    workspace_names: dict[int, str] | None = None

    def workspace(self, workspace_id: int) -> str | None:
        return (self.workspace_names or {}).get(workspace_id)


def category_label(value: str) -> str:
    try:
        return Category(value).label
    except ValueError:
        return value


def outcome_text(row: EventRow) -> str:
    """``success``, or ``failure: wrong password`` (the reason beside it, not off-screen)."""
    reason = reason_label(row.failure_reason)
    return f"{row.outcome}: {reason}" if reason else row.outcome


def format_time(instant: datetime, zone: tzinfo) -> str:
    return instant.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def details_summary(row: EventRow, limit: int = 160) -> str:
    """One line from the details JSON: ``key: value`` pairs, nested values compacted."""
    parts: list[str] = []
    if row.details:
        try:
            data = json.loads(row.details)
        except ValueError:
            data = row.details
        if isinstance(data, dict):
            for key, value in data.items():
                if isinstance(value, dict | list):
                    value = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
                parts.append(f"{key}: {value}")
        else:
            parts.append(str(data))
    text = "; ".join(parts)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _member(row: EventRow) -> str:
    if row.actor_email and row.actor_email != row.actor_name:
        return f"{row.actor_name} <{row.actor_email}>"
    return row.actor_name


def _resource(row: EventRow) -> str:
    return " ".join(p for p in (row.resource_type, row.resource_id) if p)


def _utc_iso(row: EventRow) -> str:
    return row.occurred_at.astimezone(UTC).isoformat()


def _precise(instant: datetime, zone: tzinfo) -> str:
    return instant.astimezone(zone).isoformat(sep=" ", timespec="microseconds")


# -- the declaration's shape ------------------------------------------------------------------


def nullable(column: Any) -> Any:
    """A nullable column as it is sorted and indexed: ``coalesce(column, '')``, the ``''``
    written into the SQL, not bound (the planner matches an expression index only against
    the same text: see :mod:`nvadmin.query.paging`)."""
    return func.coalesce(column, literal_column("''"))


def nullable_sql(name: str) -> str:
    """The text of :func:`nullable` for the column ``name``, unqualified, as an index on it
    is spelled (``coalesce(ip, '')``)."""
    return str(nullable(literal_column(name)))


class Match(StrEnum):
    """How a filter term compares its values with the field's SQL."""

    EQUAL = "equal"  # the field equals one of the values (NULL-safe when excluded)
    PERSON = "person"  # an e-mail exactly, or the start of an e-mail or a name
    CLOCK = "clock"  # the wall-clock weekday or hour of the event in the filter's zone


class Widget(StrEnum):
    """The filter-bar widget that edits a field's terms."""

    MEMBERS = "members"  # e-mails, comma-separated, with suggestions
    CATEGORIES = "categories"  # a checkable menu
    CHOICE = "choice"  # one of a list
    LINE = "line"  # one typed value


@dataclass(frozen=True, slots=True)
class Searched:
    """How the search bar and the filter reach a field."""

    qualifiers: tuple[str, ...]  # the first is the one written back into the bar
    column: Any = None  # the SQL compared (a clock field's is built per filter)
    parse: Callable[[str], str] = _as_typed  # typed value -> stored value; ValueError: why not
    write: Callable[[str], str] = _as_typed  # stored value -> the value written in the bar
    check: Callable[[str], None] | None = None  # what a term must hold (ValueError)
    match: Match = Match.EQUAL
    null_value: str | None = None  # the value that means "no value at all"
    to_sql: Callable[[str], Any] = str
    widget: Widget | None = None
    placeholder: str = ""  # a LINE widget's hint; a LINE or CHOICE widget's accessible name
    example: str = ""  # a value as typed (the registry's test searches for it)
    # A CHOICE widget's entries (label, value), its "no choice" and "several chosen" labels.
    choices: Callable[[], tuple[tuple[str, str], ...]] | None = None
    any_label: str = ""
    several_label: str = ""


@dataclass(frozen=True, slots=True)
class Shown:
    """A column of the activity table."""

    position: int  # the logical column: never renumbered (saved layouts keep positions)
    title: str  # ``{zone}`` stands for the zone on screen
    text: Callable[[EventRow, View], str]
    sort: str | None = None  # a paging.SORT_KEYS key; None: not sortable
    width: str | None = None  # sample text the default width fits
    hidden: bool = False  # hidden until the user shows it
    tooltip: Callable[[EventRow], str] | None = None
    filter_by: Callable[[EventRow], tuple[str, str | None]] | None = None


class Kind(StrEnum):
    """How an export cell is written."""

    TEXT = "text"  # free text: neutralised
    NUMBER = "number"
    LOCAL_TIME = "local_time"  # occurred_at in the export's zone (see export.profiles)
    UTC_OFFSET = "utc_offset"  # the export zone's UTC offset at occurred_at
    UTC_TIME = "utc_time"  # occurred_at in UTC
    HEX = "hex"  # bytes as lowercase hex
    LABEL = "label"  # a name from a fixed list nvadmin chose (nothing to neutralise)


@dataclass(frozen=True, slots=True)
class Exported:
    """A column of a CSV export."""

    position: int  # the column's place in the file (manifests name columns by key)
    key: str  # also the CSV header
    label: str  # shown in the export form
    kind: Kind = Kind.TEXT
    source: str | None = None  # the event table column (default: the field's key)
    sql: Callable[[], Any] | None = None  # a derived column's SQL over the event table
    default: bool = True  # in the default columns (False: chosen in the export form)
    # A number that names something (an event, a team member): a JSON string in JSON Lines,
    # so no reader rounds it or does arithmetic on it.
    identifier: bool = False


@dataclass(frozen=True, slots=True)
class EventField:
    key: str  # the filter field (``Term.field``) when searched
    label: str  # the detail pane's name for it; ``{zone}`` stands for the zone on screen
    search: Searched | None = None
    detail: Callable[[EventRow, View], str | None] | None = None  # None: no line
    table: Shown | None = None
    export: Exported | None = None


# -- the fields ----------------------------------------------------------------------------------


def _workspace_line(row: EventRow, view: View) -> str:
    name = view.workspace(row.workspace_id)
    return f"{name} (id {row.workspace_id})" if name else str(row.workspace_id)


def _utc_line(row: EventRow, view: View) -> str | None:
    # Once is enough when the zone shown is UTC itself (e.g. all workspaces).
    return None if zone_name(view.zone) == "UTC" else _precise(row.occurred_at, UTC)


def _member_filter(row: EventRow) -> tuple[str, str | None]:
    return ("user", row.actor_email) if row.actor_email else ("name", row.actor_name)


EVENT_ID = EventField(
    "event_id",
    "Event id",
    detail=lambda row, view: str(row.id),
    export=Exported(
        4, "event_id", "Event id", Kind.NUMBER, source="id", default=False, identifier=True
    ),
)
WORKSPACE = EventField(
    "workspace",
    "Workspace",
    detail=_workspace_line,
    table=Shown(
        2,
        "Workspace",
        lambda row, view: view.workspace(row.workspace_id) or str(row.workspace_id),
        sort="workspace",
        width="Riverside Family Clinic",
        hidden=True,
    ),
)
SEQ = EventField(
    "seq",
    "Sequence",
    detail=lambda row, view: str(row.seq),
    export=Exported(5, "seq", "Chain sequence number", Kind.NUMBER),
)
TIME = EventField(
    "time",
    "Time ({zone})",
    detail=lambda row, view: _precise(row.occurred_at, view.zone),
    table=Shown(
        0,
        "Time ({zone})",
        lambda row, view: format_time(row.occurred_at, view.zone),
        sort="time",
        width="2026-11-29 21:33:35",
        tooltip=_utc_iso,
    ),
    export=Exported(
        1, "occurred_at_local", "Time (export time zone)", Kind.LOCAL_TIME, source="occurred_at"
    ),
)
# The offset between the two times: a cell of its own, since spreadsheets read no time that
# carries one (see nvadmin.export.profiles).
UTC_OFFSET = EventField(
    "utc_offset",
    "UTC offset",
    export=Exported(
        2, "utc_offset", "UTC offset of the local time", Kind.UTC_OFFSET, source="occurred_at"
    ),
)
TIME_UTC = EventField(
    "time_utc",
    "Time (UTC)",
    detail=_utc_line,
    table=Shown(
        1,
        "Time (UTC)",
        lambda row, view: format_time(row.occurred_at, UTC),
        sort="time",
        width="2026-11-29 21:33:35",
        hidden=True,
        tooltip=_utc_iso,
    ),
    export=Exported(3, "occurred_at_utc", "Time (UTC)", Kind.UTC_TIME, source="occurred_at"),
)
ACTION = EventField(
    "action",
    "Action",
    search=Searched(
        ("action",),
        E.action,
        parse=_parse_action,
        widget=Widget.CHOICE,
        placeholder="Action",
        example="chart.view",
        choices=lambda: tuple((f"{label} ({name})", name) for name, (_, label) in ACTIONS.items()),
        any_label="Any action",
        several_label="Several actions",
    ),
    detail=lambda row, view: f"{action_label(row.action)} ({row.action})",
    table=Shown(
        5,
        "Action",
        lambda row, view: action_label(row.action),
        sort="action",
        width="Viewed activity log",
        tooltip=lambda row: row.action,
        filter_by=lambda row: ("action", row.action),
    ),
    export=Exported(10, "action", "Action"),
)
CATEGORY = EventField(
    "category",
    "Category",
    search=Searched(
        ("category", "cat"),
        E.category,
        parse=_parse_category,
        write=_write_category,
        widget=Widget.CATEGORIES,
        example="api",
    ),
    detail=lambda row, view: category_label(row.category),
    table=Shown(
        6,
        "Category",
        lambda row, view: category_label(row.category),
        sort="category",
        width="Activity log access",
        hidden=True,
        filter_by=lambda row: ("category", row.category),
    ),
    export=Exported(11, "category", "Category"),
)
OUTCOME = EventField(
    "outcome",
    "Outcome",
    search=Searched(
        ("outcome",),
        E.outcome,
        parse=_parse_outcome,
        widget=Widget.CHOICE,
        placeholder="Outcome",
        example="failure",
        choices=lambda: (("Success", Outcome.SUCCESS.value), ("Failure", Outcome.FAILURE.value)),
        any_label="Any outcome",
        several_label="Success or failure",
    ),
    detail=lambda row, view: outcome_text(row),
    table=Shown(
        7,
        "Outcome",
        lambda row, view: outcome_text(row),
        sort="outcome",
        width="failure: wrong password",
        filter_by=lambda row: ("outcome", row.outcome),
    ),
    export=Exported(12, "outcome", "Outcome"),
)
FAILURE_REASON = EventField(
    "failure_reason", "Failure reason", export=Exported(13, "failure_reason", "Failure reason")
)
ACTOR_TYPE = EventField(
    "actor_type",
    "Actor type",
    search=Searched(("actor",), E.actor_type, example="api_client"),
    detail=lambda row, view: row.actor_type,
    export=Exported(6, "actor_type", "Actor type"),
)
NAME = EventField(
    "name",
    "Team member",
    search=Searched(("name",), E.actor_name, example="Ana Ruiz"),
    detail=lambda row, view: row.actor_name,
    table=Shown(
        3,
        "Team member",
        lambda row, view: _member(row),
        sort="member",
        width="Dr. Ingrid Silva <ingrid.sil",
        filter_by=_member_filter,
    ),
    export=Exported(8, "actor_name", "Team member name"),
)
USER = EventField(
    "user",
    "E-mail",
    search=Searched(
        ("user", "email"),
        E.actor_email,
        parse=_parse_user,
        check=_check_user,
        match=Match.PERSON,
        widget=Widget.MEMBERS,
        example="Ana@Riverside.example",
    ),
    detail=lambda row, view: row.actor_email or "",
    export=Exported(7, "actor_email", "Team member e-mail"),
)
ROLE = EventField(
    "role",
    "Role",
    search=Searched(("role",), E.actor_role, example="physician"),
    detail=lambda row, view: role_label(row.actor_role),
    table=Shown(
        4,
        "Role",
        lambda row, view: role_label(row.actor_role),
        sort="role",
        width="Medical assistant",
        filter_by=lambda row: ("role", row.actor_role),
    ),
    export=Exported(9, "actor_role", "Role"),
)
ACTOR_ID = EventField(
    "actor_id",
    "Actor id",
    detail=lambda row, view: "" if row.actor_id is None else str(row.actor_id),
    # Chain evidence: with the hash columns, a recipient recomputes each row's hash offline.
    export=Exported(24, "actor_id", "Actor id", Kind.NUMBER, default=False, identifier=True),
)
PATIENT = EventField(
    "patient",
    "Patient",
    search=Searched(
        ("patient",), E.patient_id, widget=Widget.LINE, placeholder="Patient id", example="P0300404"
    ),
    detail=lambda row, view: row.patient_id or "",
    table=Shown(
        8,
        "Patient",
        lambda row, view: row.patient_id or "",
        sort="patient",
        width="P0300078",
        filter_by=lambda row: ("patient", row.patient_id),
    ),
    export=Exported(16, "patient_id", "Patient id"),
)
RESOURCE_TYPE = EventField(
    "resource_type",
    "Resource type",
    search=Searched(("type",), E.resource_type, example="api_endpoint"),
    export=Exported(14, "resource_type", "Resource type"),
)
RESOURCE = EventField(
    "resource",
    "Resource",
    search=Searched(("resource",), E.resource_id, example="GET /v1/claims"),
    detail=lambda row, view: _resource(row),
    table=Shown(
        9,
        "Resource",
        lambda row, view: _resource(row),
        sort="resource",
        width="api_endpoint GET /v1",
        hidden=True,
        filter_by=lambda row: ("resource", row.resource_id),
    ),
    export=Exported(15, "resource_id", "Resource id"),
)
IP = EventField(
    "ip",
    "IP address",
    search=Searched(
        ("ip",), E.ip, widget=Widget.LINE, placeholder="IP address", example="10.0.0.9"
    ),
    detail=lambda row, view: row.ip or "",
    table=Shown(
        10,
        "IP address",
        lambda row, view: row.ip or "",
        sort="ip",
        width="255.255.255.255",
        filter_by=lambda row: ("ip", row.ip),
    ),
    export=Exported(17, "ip", "IP address"),
)
USER_AGENT = EventField(
    "user_agent",
    "User agent",
    detail=lambda row, view: row.user_agent or "",
    export=Exported(18, "user_agent", "User agent"),
)
AGENT = EventField(
    "agent",
    "Browser/app",
    search=Searched(("agent", "browser"), agent_family_sql(), parse=_parse_agent, example="chrome"),
    detail=lambda row, view: agent_family(row.user_agent) or "",
    table=Shown(
        12,
        "Browser/app",
        lambda row, view: agent_family(row.user_agent) or "",
        width="Epic Hyperspace",
        hidden=True,
        filter_by=lambda row: ("agent", agent_family(row.user_agent)),
    ),
    export=Exported(
        23,
        "user_agent_family",
        "Browser or app (from the user agent)",
        Kind.LABEL,
        source="user_agent",
        sql=agent_family_sql,
        default=False,
    ),
)
SESSION = EventField(
    "session",
    "Session",
    search=Searched(("session",), E.session_id, example="sess_7f3a"),
    detail=lambda row, view: row.session_id or "",
    export=Exported(19, "session_id", "Session id"),
)
REQUEST = EventField(
    "request",
    "Request",
    search=Searched(("request",), E.request_id, example="req_0001"),
    detail=lambda row, view: row.request_id or "",
    export=Exported(20, "request_id", "Request id"),
)
HASH = EventField(
    "hash",
    "Hash",
    detail=lambda row, view: row.hash.hex() if row.hash else "",
    export=Exported(22, "hash", "Event hash (SHA-256)", Kind.HEX, default=False),
)
PREV_HASH = EventField(
    "prev_hash",
    "Previous hash",
    export=Exported(25, "prev_hash", "Previous event's hash (SHA-256)", Kind.HEX, default=False),
)
# The details JSON: the detail pane prints it whole below the fields.
DETAILS = EventField(
    "details",
    "Details",
    table=Shown(
        11,
        "Details",
        lambda row, view: details_summary(row),
        # Folded to one line in the cell; whole, a pair per line, in the tooltip.
        tooltip=lambda row: details_summary(row, limit=4000).replace("; ", "\n"),
    ),
    export=Exported(21, "details", "Details (JSON)"),
)
STATUS = EventField(
    "status",
    "HTTP status",
    search=Searched(
        ("status",), ApiStatus(), parse=_parse_status, null_value=NO_STATUS, example="500"
    ),
)
WEEKDAY = EventField(
    "weekday",
    "Weekday",
    search=Searched(
        ("weekday",),
        parse=_parse_weekday,
        check=_check_weekday,
        match=Match.CLOCK,
        to_sql=WEEKDAYS.index,
        example="Monday",
    ),
)
HOUR = EventField(
    "hour",
    "Hour",
    search=Searched(
        ("hour",),
        parse=_parse_hour,
        check=_check_hour,
        match=Match.CLOCK,
        to_sql=int,
        example="9",
    ),
)

# In the detail pane's order (see the module docstring for the table's and the export's).
FIELDS: tuple[EventField, ...] = (
    EVENT_ID,
    WORKSPACE,
    SEQ,
    TIME,
    UTC_OFFSET,
    TIME_UTC,
    ACTION,
    CATEGORY,
    OUTCOME,
    FAILURE_REASON,
    ACTOR_TYPE,
    NAME,
    USER,
    ROLE,
    ACTOR_ID,
    PATIENT,
    RESOURCE_TYPE,
    RESOURCE,
    IP,
    USER_AGENT,
    AGENT,
    SESSION,
    REQUEST,
    HASH,
    PREV_HASH,
    DETAILS,
    STATUS,
    WEEKDAY,
    HOUR,
)


# -- derived views of the registry -----------------------------------------------------------------

BY_KEY: dict[str, EventField] = {f.key: f for f in FIELDS}
# Filter field -> how it is searched.
SEARCHED: dict[str, Searched] = {f.key: f.search for f in FIELDS if f.search is not None}
# Qualifier (and alias) -> filter field.
QUALIFIERS: dict[str, str] = {q: key for key, s in SEARCHED.items() for q in s.qualifiers}
# The activity table's columns, by logical position.
TABLE: tuple[EventField, ...] = tuple(
    sorted((f for f in FIELDS if f.table is not None), key=lambda f: f.table.position)  # type: ignore[union-attr]
)
# A CSV export's columns, in file order.
EXPORTED: tuple[EventField, ...] = tuple(
    sorted((f for f in FIELDS if f.export is not None), key=lambda f: f.export.position)  # type: ignore[union-attr]
)


def searched(key: str) -> Searched:
    """How the filter field ``key`` is searched (KeyError when it is not a filter field)."""
    return SEARCHED[key]


def qualifier_of(key: str) -> str:
    """The qualifier written back into the search bar for the filter field ``key``."""
    return SEARCHED[key].qualifiers[0]


def parse_value(key: str, value: str) -> str:
    """A value typed for the filter field ``key``, as stored in a term (ValueError: why not)."""
    return SEARCHED[key].parse(value)


def detail_lines(row: EventRow, view: View) -> list[tuple[str, str]]:
    """The detail pane's lines: (label, text) in the registry's order."""
    lines = []
    for f in FIELDS:
        if f.detail is None:
            continue
        text = f.detail(row, view)
        if text is not None:
            lines.append((f.label.format(zone=zone_name(view.zone)), text))
    return lines
