"""Usage analysis: counts of activity over time, per team member, per API client and per hour
of the week, computed by the database.

Every number here is a ``GROUP BY`` in SQL (``date_trunc`` on PostgreSQL, ``strftime`` on
SQLite); no event is ever loaded into Python, so the cost grows with the number of buckets
shown, not with the number of events counted.

Time zone. Buckets are wall-clock hours, days and weeks (weeks start on Monday) in one zone:
the workspace's own zone when one workspace is shown, otherwise the zone the caller passes
(UTC for "all workspaces"), converted in SQL by :mod:`nvadmin.query.localtime` (the same
wall-clock result, to the microsecond, on both backends). On the autumn night the clocks go
back, the repeated local hour is one bucket two real hours long (as ``date_trunc`` on local
time makes it); the skipped spring hour has no bucket. The filter behind a bucket covers
exactly the real instants that fall into it, so a click shows exactly the counted events.

Every bucket's events are shown again by :meth:`Insights.filter_for_bucket` and friends: the
browser's filter narrowed to the bucket's instants and the clicked value (a heat-map cell is
``weekday:`` and ``hour:`` terms read in the insights' zone; an API status is ``status:``).
Same-field terms of the browser's filter are replaced, not added to (added terms of a field
are OR-ed, which would widen the result instead of narrowing it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, and_, case, func, select
from sqlalchemy.exc import SQLAlchemyError

from nvadmin.db.engine import translate
from nvadmin.db.models import ActivityEvent as E
from nvadmin.db.taxonomy import ActorType, Category
from nvadmin.errors import UserError
from nvadmin.identity import StaffIdentity
from nvadmin.query.filters import WEEKDAYS as WEEKDAY_TERMS
from nvadmin.query.filters import ApiStatus, EventFilter, Term, where_clause
from nvadmin.query.localtime import local_clock, to_utc
from nvadmin.query.paging import authorize, browse_connection
from nvadmin.workers.cancel import Cancelled, CancelToken, no_progress

log = logging.getLogger(__name__)

# A chart query scans every event of the range once; this bounds a runaway one.
INSIGHTS_TIMEOUT_MS = 300_000
TOP_MEMBERS = 20
# Up to this span the activity and heat-map charts share one pass counting local hours
# (at most ~2,400 hours x 7 categories of rows); longer ranges count their bars directly.
ONE_SCAN_SPAN = timedelta(days=100)
SIGN_IN_ACTIONS = ("auth.sign_in", "staff.sign_in")
FAILED_SIGN_IN_ACTIONS = ("auth.sign_in_failed", "staff.sign_in_failed")
# The categories drawn, in stacking order (the rest, if any, follow alphabetically).
CATEGORY_ORDER = tuple(c.value for c in Category)
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

ProgressFn = Callable[[int, int | None, str], None]


class Bucket(StrEnum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"

    @property
    def step(self) -> timedelta:
        return {
            Bucket.HOUR: timedelta(hours=1),
            Bucket.DAY: timedelta(days=1),
            Bucket.WEEK: timedelta(weeks=1),
        }[self]


def choose_bucket(start: datetime, end: datetime) -> Bucket:
    """Hours up to three days, days up to two months, weeks beyond: 24-90 bars at most
    for the common ranges, so every bar stays wide enough to click."""
    span = end - start
    if span <= timedelta(days=3):
        return Bucket.HOUR
    if span <= timedelta(days=62):
        return Bucket.DAY
    return Bucket.WEEK


def bucket_key(dialect: str, bucket: Bucket, clock: Any) -> Any:
    """The local start of each event's bucket (``date_trunc`` / ``strftime``)."""
    if dialect == "postgresql":
        return func.date_trunc(bucket.value, clock)
    if bucket is Bucket.HOUR:
        return func.strftime("%Y-%m-%d %H:00:00", clock)
    if bucket is Bucket.DAY:
        return func.strftime("%Y-%m-%d 00:00:00", clock)
    # 'weekday 0' moves forward to Sunday (staying on a Sunday); six days back is its Monday.
    return func.strftime("%Y-%m-%d 00:00:00", clock, "weekday 0", "-6 days")


def _naive(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    return datetime.fromisoformat(str(value))


def truncate(local: datetime, bucket: Bucket) -> datetime:
    """A naive local wall-clock time truncated to its bucket's start."""
    if bucket is Bucket.HOUR:
        return local.replace(minute=0, second=0, microsecond=0)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if bucket is Bucket.DAY:
        return day
    return day - timedelta(days=day.weekday())


# -- results ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimeBucket:
    local: datetime  # naive wall-clock start in the insights' zone
    start: datetime  # UTC, clipped to the range
    end: datetime  # UTC, exclusive, clipped to the range

    def label(self, bucket: Bucket) -> str:
        if bucket is Bucket.HOUR:
            return self.local.strftime("%a %d %b %H:00")
        if bucket is Bucket.DAY:
            return self.local.strftime("%a %d %b")
        return "wk " + self.local.strftime("%d %b")


@dataclass(frozen=True, slots=True)
class MemberViews:
    email: str
    name: str
    count: int


@dataclass(frozen=True, slots=True)
class ClientUsage:
    client: str
    # HTTP status -> requests. None: no status recorded (``status:none``), and also the rare
    # status that is not a number, which no filter term names (the only click-through that
    # could then show fewer requests than counted).
    statuses: dict[int | None, int]

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    @property
    def errors(self) -> int:
        return sum(n for s, n in self.statuses.items() if s is None or s >= 400)


@dataclass
class Insights:
    """Everything the insights view draws, for one filter, zone and bucket size."""

    event_filter: EventFilter
    zone: str
    bucket: Bucket
    start: datetime
    end: datetime
    buckets: list[TimeBucket]
    activity: dict[str, list[int]]  # category -> count per bucket
    sign_ins: dict[str, list[int]]  # "succeeded" / "failed" -> count per bucket
    members: list[MemberViews]  # busiest first, at most TOP_MEMBERS
    members_total: int  # chart views by team members, all of them
    members_count: int  # team members with at least one chart view
    api: list[ClientUsage]  # busiest client first
    hours: dict[tuple[int, int], int] = field(default_factory=dict)
    # (weekday Mon=0, local hour) -> events

    @property
    def total(self) -> int:
        return sum(sum(v) for v in self.activity.values())

    def heat(self) -> list[list[int]]:
        """7 x 24 counts, Monday first."""
        grid = [[0] * 24 for _ in range(7)]
        for (weekday, hour), count in self.hours.items():
            grid[weekday][hour] = count
        return grid

    # -- click-through filters ------------------------------------------------------------

    def filter_for_bucket(self, index: int, category: str | None = None) -> EventFilter:
        b = self.buckets[index]
        f = replace(self.event_filter, start=b.start, end=b.end)
        return narrow(f, "category", category) if category else f

    def filter_for_sign_ins(self, index: int, outcome: str) -> EventFilter:
        actions = SIGN_IN_ACTIONS if outcome == "succeeded" else FAILED_SIGN_IN_ACTIONS
        return narrow(self.filter_for_bucket(index), "action", *actions)

    def filter_for_member(self, email: str) -> EventFilter:
        f = narrow(self.event_filter, "category", Category.CHART_VIEWS.value)
        f = narrow(f, "actor_type", ActorType.MEMBER.value)
        return narrow(f, "user", email)

    def filter_for_client(self, client: str) -> EventFilter:
        f = narrow(self.event_filter, "category", Category.API_USAGE.value)
        f = narrow(f, "actor_type", ActorType.API_CLIENT.value)
        return narrow(f, "name", client)

    def filter_for_status(self, client: str, status: int | None) -> EventFilter:
        """A client's requests answered with ``status`` (None: with no status recorded)."""
        value = "none" if status is None else str(status)
        return narrow(self.filter_for_client(client), "status", value)

    def filter_for_cell(self, weekday: int, hour: int) -> EventFilter:
        """The events of one heat-map cell: that weekday and local hour, every week of the
        range, in the insights' zone."""
        f = replace(self.event_filter, start=self.start, end=self.end, zone=self.zone)
        return narrow(narrow(f, "weekday", WEEKDAY_TERMS[weekday]), "hour", str(hour))


def narrow(event_filter: EventFilter, field_name: str, *values: str) -> EventFilter:
    """``event_filter`` with the positive terms of ``field_name`` replaced by ``values``.

    The data drawn already satisfies the old terms, so replacing them narrows exactly."""
    kept = tuple(t for t in event_filter.terms if t.field != field_name or t.negate)
    return replace(event_filter, terms=(*kept, *(Term(field_name, v) for v in values)))


# -- computing --------------------------------------------------------------------------------


def analytic(connection: Connection) -> None:
    """Settings for these few large aggregations (SET LOCAL: they end with the transaction,
    pooled connections are unaffected). Measured on one workspace's 500k events of a 10M
    table, a 5.0 s query took about 2 s:

    * ``jit = off``: the JIT compiler spent 4.4 s compiling a query to save far less;
    * ``random_page_cost = 1.1``: one workspace is a tenth of each monthly partition, and its
      (workspace_id, occurred_at) index beats a scan of the whole month when pages are in
      memory or on SSD, which the default cost (4, spinning disks) does not believe;
    * ``work_mem = 64MB``: the per-member, per-day groups sort in memory, not on disk."""
    if connection.dialect.name == "postgresql":
        for setting in ("jit = off", "random_page_cost = 1.1", "work_mem = '64MB'"):
            connection.exec_driver_sql(f"SET LOCAL {setting}")


def resolve_range(
    connection: Connection, event_filter: EventFilter, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """The filter's range; an open end is closed at the newest event (or now)."""
    start, end = event_filter.start, event_filter.end
    if start is None or end is None:
        bounds = select(func.min(E.occurred_at), func.max(E.occurred_at))
        if event_filter.workspace_ids:
            bounds = bounds.where(E.workspace_id.in_(event_filter.workspace_ids))
        low, high = connection.execute(bounds).one()
        now = now or datetime.now(UTC)
        start = start or (_aware(low) if low else now - timedelta(days=1))
        end = end or (_aware(high) + timedelta(microseconds=1) if high else now)
    if end <= start:
        end = start + timedelta(microseconds=1)
    return start, end


def _aware(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def time_buckets(
    start: datetime, end: datetime, zone: ZoneInfo, bucket: Bucket
) -> list[TimeBucket]:
    """Every bucket of the range in order (empty ones too: a gap is information)."""
    local = truncate(start.astimezone(zone).replace(tzinfo=None), bucket)
    out: list[TimeBucket] = []
    while True:
        following = local + bucket.step
        if bucket is not Bucket.HOUR:
            following = truncate(following, bucket)
        b_start, b_end = to_utc(local, zone), to_utc(following, zone)
        b_start, b_end = max(b_start, start), min(b_end, end)
        if b_start < b_end:
            out.append(TimeBucket(local, b_start, b_end))
        if to_utc(following, zone) >= end:
            break
        local = following
    return out


def compute(
    engine: Engine,
    identity: StaffIdentity,
    event_filter: EventFilter,
    zone: str,
    *,
    bucket: Bucket | None = None,
    token: CancelToken | None = None,
    progress: ProgressFn = no_progress,
) -> Insights:
    """Run the five aggregations for ``event_filter``; cancellable through ``token`` (the
    running statement is cancelled on the server)."""
    authorize(identity, event_filter)
    try:
        tz = ZoneInfo(zone)
    except (KeyError, ValueError) as error:
        raise UserError(f"unknown time zone {zone!r}") from error
    steps = 6
    try:
        with browse_connection(engine, INSIGHTS_TIMEOUT_MS, token) as connection:
            analytic(connection)
            progress(0, steps, "Finding the range")
            start, end = resolve_range(connection, event_filter)
            f = replace(event_filter, start=start, end=end)
            chosen = bucket or choose_bucket(start, end)
            dialect = connection.dialect.name
            clock = local_clock(dialect, tz, start, end)
            where = where_clause(f)
            buckets = time_buckets(start, end, tz, chosen)
            index = {b.local: i for i, b in enumerate(buckets)}

            def run(statement: Any, step: int, message: str) -> Sequence[Any]:
                if token is not None:
                    token.check()
                progress(step, steps, message)
                return connection.execute(statement).all()

            key = bucket_key(dialect, chosen, clock).label("bucket")
            hour_key = bucket_key(dialect, Bucket.HOUR, clock).label("hour")
            activity: dict[str, list[int]] = {}
            by_hour: dict[datetime, int] = {}

            def add(category: str, local_bucket: datetime, count: int) -> None:
                i = index.get(local_bucket)
                if i is None:  # cannot happen: every instant of the range has a bucket
                    log.warning("event bucket %s outside the range", local_bucket)
                    return
                activity.setdefault(category, [0] * len(buckets))[i] += count

            if end - start <= ONE_SCAN_SPAN:
                # One pass over the events for two charts: counts per local hour and
                # category, summed here into the bars (every bar is a union of whole local
                # hours) and into the heat map.
                rows = run(
                    select(hour_key, E.category, func.count())
                    .where(where)
                    .group_by(hour_key, E.category),
                    1,
                    "Counting activity by hour and category",
                )
                for raw, category, count in rows:
                    local = _naive(raw)
                    add(category, truncate(local, chosen), int(count))
                    by_hour[local] = by_hour.get(local, 0) + int(count)
            else:
                rows = run(
                    select(key, E.category, func.count()).where(where).group_by(key, E.category),
                    1,
                    "Counting activity by category",
                )
                for raw, category, count in rows:
                    add(category, _naive(raw), int(count))
            activity = dict(sorted(activity.items(), key=lambda kv: _category_rank(kv[0])))

            outcome = case((E.action.in_(SIGN_IN_ACTIONS), "succeeded"), else_="failed")
            rows = run(
                select(key, outcome.label("outcome"), func.count())
                .where(where, E.action.in_(SIGN_IN_ACTIONS + FAILED_SIGN_IN_ACTIONS))
                .group_by(key, outcome),
                2,
                "Counting sign-ins",
            )
            sign_ins = {"succeeded": [0] * len(buckets), "failed": [0] * len(buckets)}
            for raw, result, count in rows:
                i = index.get(_naive(raw))
                if i is not None:
                    sign_ins[result][i] += int(count)

            views = and_(
                where,
                E.category == Category.CHART_VIEWS.value,
                E.actor_type == ActorType.MEMBER.value,
            )
            who = func.coalesce(E.actor_email, "")
            rows = run(
                select(who, func.max(E.actor_name), func.count().label("n"))
                .where(views)
                .group_by(who)
                .order_by(func.count().desc(), who),
                3,
                "Counting chart views per team member",
            )
            members = [MemberViews(e, n, int(c)) for e, n, c in rows[:TOP_MEMBERS]]
            members_total = sum(int(r[2]) for r in rows)
            members_count = len(rows)

            status = ApiStatus().label("status")
            rows = run(
                select(E.actor_name, status, func.count())
                .where(where, E.category == Category.API_USAGE.value)
                .where(E.actor_type == ActorType.API_CLIENT.value)
                .group_by(E.actor_name, status),
                4,
                "Counting API requests",
            )
            clients: dict[str, dict[int | None, int]] = {}
            for client, code, count in rows:
                statuses = clients.setdefault(client, {})
                parsed = _int_or_none(code)
                statuses[parsed] = statuses.get(parsed, 0) + int(count)
            api = sorted(
                (ClientUsage(c, s) for c, s in clients.items()), key=lambda u: (-u.total, u.client)
            )

            if not by_hour and end - start > ONE_SCAN_SPAN:
                rows = run(
                    select(hour_key, func.count()).where(where).group_by(hour_key),
                    5,
                    "Finding the busiest hours",
                )
                by_hour = {_naive(raw): int(count) for raw, count in rows}
            hours: dict[tuple[int, int], int] = {}
            for local, count in by_hour.items():
                cell = (local.weekday(), local.hour)
                hours[cell] = hours.get(cell, 0) + count
            progress(steps, steps, "Done")
    except SQLAlchemyError as error:
        if token is not None and token.cancelled:
            raise Cancelled() from error
        raise translate(error) from error
    return Insights(
        event_filter=f,
        zone=zone,
        bucket=chosen,
        start=start,
        end=end,
        buckets=buckets,
        activity=activity,
        sign_ins=sign_ins,
        members=members,
        members_total=members_total,
        members_count=members_count,
        api=api,
        hours=hours,
    )


def _category_rank(category: str) -> tuple[int, str]:
    try:
        return (CATEGORY_ORDER.index(category), category)
    except ValueError:
        return (len(CATEGORY_ORDER), category)


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
