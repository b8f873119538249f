"""The search bar's language: qualifiers <-> the fields of an :class:`EventFilter`.

Example::

    user:alice@clinic.example action:chart.view patient:P0300404 after:2025-03-01
    before:2025-03-31 outcome:failure -category:api "free text"

Rules a reader can predict:

* the same qualifier given twice is OR-ed (``user:a user:b`` = either of them);
  ``-field:value`` excludes a value;
* ``after:D`` starts at the beginning of day D and ``before:D`` includes all of day D, in the
  time zone shown on screen (an end date means the whole day, never "up to midnight that
  started it"); with a time (``after:2025-03-01T09:30``) the instant is exact, and ``before:``
  is then exclusive;
* ``on:D`` is the whole day D; ``last:24h`` / ``last:7d`` is relative to when the search runs;
* ``weekday:mon`` and ``hour:10`` (``hour:9`` = 09:00-09:59) pick events by their wall-clock
  time in the zone on screen, every week of the range (the insights heat map's cells);
* ``status:500`` is an API request's HTTP status (``status:none``: no status recorded);
* ``session:ID`` is the session id recorded on the event; ``agent:chrome`` the browser or app
  behind its user agent;
* ``-category:log`` hides the Activity log access events (the same as the toggle);
* words without a qualifier search the details, names, e-mails and resources.

Every qualifier (and alias), the field it filters and the parser of its value are declared in
the field registry (:mod:`nvadmin.query.fields`); this module adds the time qualifiers and the
syntax. A malformed search raises :class:`SearchError` naming the problem and where it is, so the
search bar can point at the spot instead of running something else than what was meant.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

from nvadmin.db.taxonomy import Category
from nvadmin.errors import UserError
from nvadmin.query.fields import QUALIFIERS, parse_value, qualifier_of, searched
from nvadmin.query.filters import FIRST_DAY, LAST_DAY, EventFilter, Term, within_days
from nvadmin.query.localtime import day_start, zone_name

# qualifier (or alias) -> filter field, from the field registry
TERM_QUALIFIERS: dict[str, str] = QUALIFIERS
TIME_QUALIFIERS = ("after", "before", "on", "last")
ALL_QUALIFIERS = sorted({*TERM_QUALIFIERS, *TIME_QUALIFIERS})

# Relative ranges offered as presets; ``last:`` also accepts any ``<n>h`` / ``<n>d``.
PRESETS: dict[str, str] = {"24h": "Last 24 hours", "7d": "Last 7 days", "30d": "Last 30 days"}
_RELATIVE = re.compile(r"^([0-9]{1,4})([hd])$")
# Longer searches are refused: nobody types them, and matching one over every workspace
# outlasts the database's statement timeout.
MAX_SEARCH_LENGTH = 500


class SearchError(UserError):
    """A malformed search; ``start``/``end`` locate the offending text."""

    def __init__(self, message: str, start: int, end: int) -> None:
        super().__init__(message)
        self.start = start
        self.end = max(end, start + 1)


@dataclass(frozen=True, slots=True)
class Search:
    """What the search bar says, before it becomes a filter (``last`` stays relative)."""

    terms: tuple[Term, ...] = ()
    text: str = ""
    start: datetime | None = None
    end: datetime | None = None
    last: str | None = None
    include_log_access: bool = True
    zone: str = "UTC"  # the zone weekday: and hour: are read in
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    def to_filter(
        self, workspace_ids: tuple[int, ...] = (), now: datetime | None = None
    ) -> EventFilter:
        start, end = self.start, self.end
        if self.last:
            start, end = relative_range(self.last, now), None
        return EventFilter(
            workspace_ids=workspace_ids,
            start=start,
            end=end,
            terms=self.terms,
            text=self.text,
            include_log_access=self.include_log_access,
            zone=self.zone,
        )

    @classmethod
    def from_filter(cls, event_filter: EventFilter) -> Search:
        return cls(
            terms=event_filter.terms,
            text=event_filter.text,
            start=event_filter.start,
            end=event_filter.end,
            include_log_access=event_filter.include_log_access,
            zone=event_filter.zone,
        )

    def with_terms(self, *terms: Term) -> Search:
        return replace(self, terms=(*self.terms, *terms))

    def without_field(self, field_name: str) -> Search:
        return replace(self, terms=tuple(t for t in self.terms if t.field != field_name))


def relative_range(spec: str, now: datetime | None = None) -> datetime:
    """Where ``last:<spec>`` (``24h``, ``7d``) starts; ValueError for anything else,
    ``0h`` and ``0d`` included (an empty range would always say "nothing found")."""
    match = _RELATIVE.match(spec)
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"not a relative range: {spec!r}")
    amount, unit = int(match.group(1)), match.group(2)
    span = timedelta(hours=amount) if unit == "h" else timedelta(days=amount)
    return (now or datetime.now(UTC)) - span


# -- tokenising ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Token:
    negate: bool
    qualifier: str | None
    value: str
    start: int  # where the token starts in the text
    value_start: int
    end: int


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start = i
        negate = False
        if text[i] == "-" and i + 1 < n and text[i + 1].isalpha():
            negate = True
            i += 1
        qualifier = None
        match = re.match(r"([A-Za-z_]+):", text[i:])
        if match:
            qualifier = match.group(1).lower()
            i += match.end()
        value_start = i
        if i < n and text[i] == '"':
            i += 1
            chars: list[str] = []
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(text[i])
                i += 1
            if i >= n:
                raise SearchError("this quote is never closed", value_start, n)
            i += 1
            value = "".join(chars)
        else:
            while i < n and not text[i].isspace():
                i += 1
            value = text[value_start:i]
        tokens.append(_Token(negate, qualifier, value, start, value_start, i))
    return tokens


# -- parsing -------------------------------------------------------------------------------


def parse(text: str, zone: tzinfo = UTC) -> Search:
    """Parse the search bar. Dates without a zone are read in ``zone``."""
    _check_characters(text)
    terms: list[Term] = []
    words: list[str] = []
    start = end = None
    start_token = end_token = None
    last: str | None = None
    last_token: _Token | None = None
    include_log_access = True
    for token in _tokens(text):
        q = token.qualifier
        if q is None:
            if token.negate:
                raise SearchError(
                    "only a qualifier can be excluded, e.g. -category:api",
                    token.start,
                    token.end,
                )
            if token.value:
                words.append(token.value)
            continue
        if q not in TERM_QUALIFIERS and q not in TIME_QUALIFIERS:
            guess = difflib.get_close_matches(q, ALL_QUALIFIERS, n=1)
            hint = f" (did you mean {guess[0]}:?)" if guess else ""
            raise SearchError(f"unknown qualifier {q}:{hint}", token.start, token.value_start - 1)
        if not token.value:
            raise SearchError(f"{q}: needs a value", token.start, token.end)
        if q in TIME_QUALIFIERS:
            if token.negate:
                raise SearchError(f"{q}: cannot be excluded", token.start, token.end)
            if q == "last":
                try:
                    relative_range(token.value.lower())
                except ValueError:
                    raise SearchError(
                        "last: takes hours or days, e.g. last:24h or last:7d",
                        token.value_start,
                        token.end,
                    ) from None
                if last is not None:
                    raise SearchError("last: is given twice", token.start, token.end)
                last, last_token = token.value.lower(), token
                continue
            day_start, day_end = _instant_range(token, zone)
            if q in ("after", "on"):
                if start is not None:
                    raise SearchError(
                        "the start of the range is given twice", token.start, token.end
                    )
                start, start_token = day_start, token
            if q in ("before", "on"):
                if end is not None:
                    raise SearchError("the end of the range is given twice", token.start, token.end)
                end, end_token = day_end, token
            continue
        field_name = TERM_QUALIFIERS[q]
        value = _term_value(field_name, token)
        if field_name == "category" and value == Category.LOG_ACCESS.value and token.negate:
            include_log_access = False
            continue
        terms.append(Term(field_name, value, token.negate))
    if last is not None and (start is not None or end is not None):
        assert last_token is not None
        raise SearchError(
            "use either last: or after:/before:, not both", last_token.start, last_token.end
        )
    if start is not None and end is not None and start >= end:
        culprit = end_token or start_token
        assert culprit is not None
        raise SearchError("the range ends before it starts", culprit.start, culprit.end)
    return Search(
        terms=tuple(terms),
        text=" ".join(words),
        start=start,
        end=end,
        last=last,
        include_log_access=include_log_access,
        zone=zone_name(zone),
    )


def _check_characters(text: str) -> None:
    """Refuse what no backend can search for alike: NUL (PostgreSQL text cannot hold it,
    SQLite would cut the search short there), unpaired surrogates, and overlong searches."""
    if len(text) > MAX_SEARCH_LENGTH:
        raise SearchError(
            f"the search is too long: {len(text):,} characters, at most {MAX_SEARCH_LENGTH:,}",
            MAX_SEARCH_LENGTH,
            len(text),
        )
    for at, char in enumerate(text):
        if char == "\x00":
            raise SearchError("a search cannot contain a NUL character (\\0)", at, at + 1)
        if "\ud800" <= char <= "\udfff":
            raise SearchError(f"{char!r} is not a character", at, at + 1)


def _term_value(field_name: str, token: _Token) -> str:
    try:
        return parse_value(field_name, token.value)
    except ValueError as error:
        raise SearchError(str(error), token.value_start, token.end) from None


def _instant_range(token: _Token, zone: tzinfo) -> tuple[datetime, datetime]:
    """The instants a date or date-time value stands for: a whole day for a date, an exact
    instant otherwise (then both ends are that instant)."""
    value = token.value
    try:
        if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
            day = date.fromisoformat(value)
            _check_day(day, token)
            return day_start(day, zone), day_start(day + timedelta(days=1), zone)
        instant = datetime.fromisoformat(value.replace(" ", "T"))
    except ValueError:
        raise SearchError(
            f"{value!r} is not a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM",
            token.value_start,
            token.end,
        ) from None
    _check_day(instant.date(), token)
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=zone)
    instant = instant.astimezone(UTC)
    return instant, instant


def _check_day(day: date, token: _Token) -> None:
    if not within_days(day):
        raise SearchError(
            f"{token.qualifier}:{token.value} is outside the days a search can cover "
            f"({FIRST_DAY} to {LAST_DAY})",
            token.value_start,
            token.end,
        )


# -- formatting ----------------------------------------------------------------------------


def _quote(value: str) -> str:
    if value and not re.search(r'[\s":]', value) and not value.startswith("-"):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _format_term(term: Term) -> str:
    value = searched(term.field).write(term.value)
    sign = "-" if term.negate else ""
    return f"{sign}{qualifier_of(term.field)}:{_quote(value)}"


def _format_start(instant: datetime, zone: tzinfo) -> str:
    local = instant.astimezone(zone)
    if local.time() == time(0) and local.microsecond == 0:
        return local.date().isoformat()
    return _format_time(local)


def _format_end(instant: datetime, zone: tzinfo) -> str:
    local = instant.astimezone(zone)
    if local.time() == time(0):
        # An exclusive midnight is written as the (inclusive) day before it.
        return (local.date() - timedelta(days=1)).isoformat()
    return _format_time(local)


def _format_time(local: datetime) -> str:
    if local.microsecond:
        return local.strftime("%Y-%m-%dT%H:%M:%S.%f")
    if local.second:
        return local.strftime("%Y-%m-%dT%H:%M:%S")
    return local.strftime("%Y-%m-%dT%H:%M")


def format_search(search: Search, zone: tzinfo = UTC) -> str:
    """The canonical search-bar text for ``search`` (``parse`` reads it back unchanged)."""
    parts = [_format_term(t) for t in search.terms if not t.negate]
    parts += [_format_term(t) for t in search.terms if t.negate]
    if search.last:
        parts.append(f"last:{search.last}")
    else:
        start_day = end_day = None
        if search.start is not None:
            start_day = _format_start(search.start, zone)
        if search.end is not None:
            end_day = _format_end(search.end, zone)
        if (
            start_day is not None
            and start_day == end_day
            and search.end is not None
            and search.start is not None
            and re.fullmatch(r"\d{4}-\d{2}-\d{2}", start_day)
        ):
            parts.append(f"on:{start_day}")
        else:
            if start_day is not None:
                parts.append(f"after:{start_day}")
            if end_day is not None:
                parts.append(f"before:{end_day}")
    if not search.include_log_access:
        parts.append("-category:log")
    if search.text:
        parts.append(_quote(search.text))
    return " ".join(parts)


def format_filter(event_filter: EventFilter, zone: tzinfo = UTC) -> str:
    return format_search(Search.from_filter(event_filter), zone)


def describe_scope(event_filter: EventFilter, zone: str, workspace: str) -> str:
    """One line naming what a chart or flag list covers: workspace, range, search, zone."""
    tz = ZoneInfo(zone)
    parts = [workspace]
    if event_filter.start and event_filter.end:
        last = event_filter.end - timedelta(microseconds=1)
        first = event_filter.start.astimezone(tz)
        parts.append(f"{first:%Y-%m-%d %H:%M} to {last.astimezone(tz):%Y-%m-%d %H:%M}")
    search = format_search(
        Search.from_filter(
            EventFilter(
                terms=event_filter.terms,
                text=event_filter.text,
                include_log_access=event_filter.include_log_access,
            )
        ),
        tz,
    )
    parts.append(f"search: {search}" if search else "no search terms")
    parts.append(f"time zone {zone}")
    return " · ".join(parts)
