"""What a rule works with while it is evaluated: one workspace, its zone and range, one
connection, and the few places where PostgreSQL and SQLite spell SQL differently."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select, text

from nvadmin.analysis.flags.report import Finding
from nvadmin.db.models import ActivityEvent as E
from nvadmin.db.types import sqlite_timestamp
from nvadmin.query.filters import EventFilter, Term, where_clause
from nvadmin.query.localtime import offset_spans, to_utc
from nvadmin.workers.cancel import CancelToken

if TYPE_CHECKING:
    from nvadmin.analysis.flags.rule import FlagRule
    from nvadmin.query.workspaces import WorkspaceInfo

# Baselines (a member's usual day, a client's usual hour) are the days before the judged one.
BASELINE_DAYS = 30

T = TypeVar("T")


class Sql:
    """The few places where PostgreSQL and SQLite spell things differently."""

    def __init__(self, dialect: str, zone: ZoneInfo, start: datetime, end: datetime) -> None:
        self.pg = dialect == "postgresql"
        self.zone = zone
        self.spans = offset_spans(zone, start, end)

    def ts(self, instant: datetime) -> Any:
        return instant if self.pg else sqlite_timestamp(instant)

    @staticmethod
    def parse(value: Any) -> datetime:
        if isinstance(value, datetime):
            return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)

    def local(self, column: str) -> str:
        """Wall-clock time in the workspace's zone (``:zone`` is bound on PostgreSQL)."""
        if self.pg:
            return f"timezone(:zone, {column})"
        whens = " ".join(
            f"WHEN {column} < '{sqlite_timestamp(until)}' THEN '{minutes:+d} minutes'"
            for until, minutes in self.spans[:-1]
        )
        last = f"'{self.spans[-1][1]:+d} minutes'"
        modifier = f"CASE {whens} ELSE {last} END" if whens else last
        return f"datetime({column}, {modifier})"

    def local_hour(self, column: str) -> str:
        if self.pg:
            return f"CAST(extract(hour FROM {self.local(column)}) AS integer)"
        return f"CAST(strftime('%H', {self.local(column)}) AS integer)"

    def day_number(self, column: str) -> str:
        """Local day as days since 1970-01-01."""
        if self.pg:
            return f"(CAST({self.local(column)} AS date) - DATE '1970-01-01')"
        return f"CAST(julianday(date({self.local(column)})) - 2440587.5 AS integer)"

    def hour_number(self, column: str) -> str:
        """UTC hour as hours since the epoch."""
        if self.pg:
            return f"CAST(floor(extract(epoch FROM {column}) / 3600) AS bigint)"
        return f"(CAST(strftime('%s', {column}) AS integer) / 3600)"

    def within(self, later: str, earlier: str, seconds_param: str) -> str:
        """``earlier <= later < earlier + seconds``."""
        if self.pg:
            return (
                f"{later} >= {earlier} AND "
                f"{later} < {earlier} + make_interval(secs => :{seconds_param})"
            )
        return (
            f"{later} >= {earlier} AND "
            f"(julianday({later}) - julianday({earlier})) * 86400.0 < :{seconds_param}"
        )


class WorkspaceCheck:
    """The rules' view of one workspace and range, on one connection.

    SQL given to :meth:`rows` may use ``:ws``, ``:start``, ``:end`` (the range), ``:bstart``
    (the start of the :attr:`baseline_days` before it, and a day more) and, on PostgreSQL,
    ``:zone``."""

    def __init__(
        self,
        connection: Connection,
        workspace: WorkspaceInfo,
        zone: ZoneInfo,
        start: datetime,
        end: datetime,
        token: CancelToken | None,
        thresholds: Mapping[str, Mapping[str, float]] | None = None,
    ) -> None:
        self.c = connection
        self.ws = workspace
        self.zone = zone
        self.start, self.end = start, end
        self.baseline_days = BASELINE_DAYS
        self.baseline_start = start - timedelta(days=BASELINE_DAYS + 1)
        self.sql = Sql(connection.dialect.name, zone, self.baseline_start, end)
        self.token = token
        self.thresholds = thresholds
        self._shared: dict[str, Any] = {}

    def values(self, rule: FlagRule) -> dict[str, float]:
        """The thresholds in force for a rule (also for a rule that reads another's)."""
        return rule.values(self.thresholds)

    def shared(self, key: str, compute: Callable[[], T]) -> T:
        """A result several rules read (a burst list, a baseline), computed once."""
        if key not in self._shared:
            self._shared[key] = compute()
        return self._shared[key]  # type: ignore[no-any-return]

    def rows(self, sql: str, **params: Any) -> list[Any]:
        if self.token is not None:
            self.token.check()
        bound = {
            "ws": self.ws.id,
            "start": self.sql.ts(self.start),
            "end": self.sql.ts(self.end),
            "bstart": self.sql.ts(self.baseline_start),
            **params,
        }
        if self.sql.pg:
            bound["zone"] = self.zone.key
        return list(self.c.execute(text(sql), bound).all())

    def event_filter(self, first: datetime, end: datetime, *terms: tuple[str, str]) -> EventFilter:
        """The click-through filter of a finding: this workspace, ``first`` to ``end`` (kept
        within the range) and ``(field, value)`` terms as the search bar reads them."""
        return EventFilter(
            workspace_ids=(self.ws.id,),
            start=max(first, self.start),
            end=min(end, self.end),
            terms=tuple(Term(field, value) for field, value in terms),
        )

    def count(self, event_filter: EventFilter) -> int:
        if self.token is not None:
            self.token.check()
        statement = select(func.count()).select_from(E).where(where_clause(event_filter))
        return int(self.c.execute(statement).scalar_one())

    def local_day(self, instant: datetime) -> date:
        return instant.astimezone(self.zone).date()

    def day_bounds(self, day: date) -> tuple[datetime, datetime]:
        midnight = datetime(day.year, day.month, day.day)
        return to_utc(midnight, self.zone), to_utc(midnight + timedelta(days=1), self.zone)

    def finding(
        self,
        rule: FlagRule,
        subject: str,
        first: datetime,
        last: datetime,
        event_filter: EventFilter,
        detail: str,
    ) -> Finding:
        """A finding whose event count is the count of exactly ``event_filter``."""
        return Finding(
            rule=rule.name,
            workspace_id=self.ws.id,
            workspace=self.ws.slug,
            subject=subject,
            day=self.local_day(first),
            first=first,
            last=last,
            events=self.count(event_filter),
            detail=detail,
            event_filter=event_filter,
        )
