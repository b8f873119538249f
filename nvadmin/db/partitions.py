"""Monthly partitions of the event table on PostgreSQL (a no-op on SQLite).

Partitions are made by nvadmin itself, never by hand: the chain writer and the seeder create
the months they write into, the app creates the coming months at start, and
``nvadmin db partitions`` does so on demand (e.g. from cron). The SQL function doing the work
(``nvadmin_ensure_event_partition``) lives in the initial migration.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime

from sqlalchemy import Connection, Engine, text


def months_between(first: datetime, last: datetime) -> list[date]:
    start, end = first.astimezone(UTC), last.astimezone(UTC)
    months = []
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        months.append(date(year, month, 1))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def ensure(engine: Engine, months: Iterable[date]) -> None:
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as connection:
        ensure_in(connection, months)


def ensure_in(connection: Connection, months: Iterable[date]) -> None:
    """:func:`ensure` inside ``connection``'s transaction (a month that exists costs a lookup)."""
    if connection.dialect.name != "postgresql":
        return
    for month in sorted(set(months)):
        connection.execute(text("SELECT nvadmin_ensure_event_partition(:month)"), {"month": month})


def ensure_ahead(engine: Engine, now: datetime, months_ahead: int) -> list[date]:
    """Make sure this month and the next ``months_ahead`` months have partitions."""
    first = date(now.year, now.month, 1)
    months = [first]
    for _ in range(months_ahead):
        last = months[-1]
        months.append(date(last.year + last.month // 12, last.month % 12 + 1, 1))
    ensure(engine, months)
    return months


def existing(engine: Engine) -> list[str]:
    if engine.dialect.name != "postgresql":
        return []
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'activity_events'::regclass ORDER BY c.relname"
            )
        )
        return [r[0] for r in rows]
