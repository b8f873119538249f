"""Wall-clock time of events in a time zone, in SQL, the same on both backends.

PostgreSQL converts with ``AT TIME ZONE`` (the ``timezone()`` function). SQLite knows no zones,
so the UTC offsets of the zone over a range are computed here from the IANA database and handed
to SQLite as a ``CASE`` of ``datetime(t, '±N minutes')`` modifiers, one per stretch between two
daylight-saving changes: the same wall-clock result, to the microsecond, on both backends for
events inside that range.

It is also the one place that turns a zone's name into a zone, a day into the instants it
covers, and a zone back into its name; the search bar, the filter bar, exports, reports and the
command line all use these.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import case, func

from nvadmin.db.models import ActivityEvent as E
from nvadmin.errors import UserError


def zone_info(name: str) -> ZoneInfo:
    """The IANA zone ``name``; :class:`UserError` saying so when there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise UserError(
            f"unknown time zone {name!r} (use an IANA name such as Europe/Paris)"
        ) from None


def zone_name(zone: tzinfo) -> str:
    """The name of a zone: its IANA name, ``UTC`` for the fixed UTC zone."""
    key = getattr(zone, "key", None)
    return str(key) if key else (zone.tzname(None) or "UTC")


def day_start(day: date, zone: tzinfo) -> datetime:
    """The UTC instant the day ``day`` starts at in ``zone``."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def day_range(first: date, last: date, zone: str | tzinfo) -> tuple[datetime, datetime]:
    """``first`` 00:00 to the end of ``last`` (inclusive) in ``zone``, as [start, end) in UTC."""
    if last < first:
        raise UserError(f"the range ends ({last}) before it starts ({first})")
    tz = zone_info(zone) if isinstance(zone, str) else zone
    return day_start(first, tz), day_start(last + timedelta(days=1), tz)


def offset_spans(zone: ZoneInfo, start: datetime, end: datetime) -> list[tuple[datetime, int]]:
    """``[(until, minutes), ...]``: the zone's UTC offset in minutes up to each instant where
    it changes, over ``[start, end)``; the last entry's ``until`` is ``end``."""

    def minutes(at: datetime) -> int:
        offset = at.astimezone(zone).utcoffset()
        assert offset is not None
        return int(offset.total_seconds() // 60)

    spans: list[tuple[datetime, int]] = []
    current = minutes(start)
    cursor = start
    day = timedelta(days=1)
    while cursor < end:
        step_end = min(cursor + day, end)
        # At the end of the range, the last instant inside it (``end`` is excluded).
        later = minutes(step_end if step_end < end else end - timedelta(microseconds=1))
        if later != current:
            # Bisect the change to the second; zones change offsets on whole seconds.
            low, high = cursor, step_end
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                if minutes(middle) == current:
                    low = middle
                else:
                    high = middle
            change = high.replace(microsecond=0)
            if minutes(change) == current:
                change += timedelta(seconds=1)
            spans.append((change, current))
            current = minutes(change)
            cursor = change
        else:
            cursor = step_end
    spans.append((end, current))
    return spans


def local_clock(dialect: str, zone: ZoneInfo, start: datetime, end: datetime) -> Any:
    """The wall-clock time of each event in ``zone``: a ``timestamp`` on PostgreSQL, the text
    ``YYYY-MM-DD HH:MM:SS`` on SQLite (exact for events in ``[start, end)``)."""
    if dialect == "postgresql":
        return func.timezone(zone.key, E.occurred_at)
    spans = offset_spans(zone, start, end)

    def modifier(minutes: int) -> str:
        return f"{minutes:+d} minutes"

    if len(spans) == 1:
        return func.datetime(E.occurred_at, modifier(spans[0][1]))
    whens = [(E.occurred_at < until, modifier(m)) for until, m in spans[:-1]]
    return func.datetime(E.occurred_at, case(*whens, else_=modifier(spans[-1][1])))


def to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    """A naive local wall-clock time as a UTC instant (the earlier one when it repeats)."""
    return local.replace(tzinfo=zone, fold=0).astimezone(UTC)


_CLOCK_ONLY = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?")


def parse_moment(text: str, zone: ZoneInfo, day: date) -> datetime:
    """The moment a person typed or pasted, as a UTC instant.

    ``2026-11-05 10:06:00``, ``2026-11-05 10:06``, ``2026-11-05T10:06`` and ``2026-11-05`` are
    wall-clock times in ``zone`` unless they carry an offset or ``Z``; a clock time alone
    (``10:06``, ``9:06:30``) is on ``day``. Raises ValueError with a message for the user.
    """
    cleaned = " ".join(text.split())
    if not cleaned:
        raise ValueError("Type a date and time, e.g. 2026-11-05 10:06:00, or a time such as 10:06.")
    clock = _CLOCK_ONLY.fullmatch(cleaned)
    try:
        if clock is not None:
            hour, minute, second, fraction = clock.groups()
            moment = datetime.combine(
                day,
                time(
                    int(hour),
                    int(minute),
                    int(second or 0),
                    int((fraction or "0").ljust(6, "0")),
                ),
            )
        else:
            moment = datetime.fromisoformat(cleaned)
    except ValueError:
        raise ValueError(
            f"“{cleaned}” is not a date and time: type e.g. 2026-11-05 10:06:00, "
            "2026-11-05 10:06 or 10:06."
        ) from None
    if moment.tzinfo is None:
        return to_utc(moment, zone)
    return moment.astimezone(UTC)
