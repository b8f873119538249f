"""Insights aggregates on both backends: every number equals an independent count of the
events its click-through filter shows, buckets follow the workspace's wall clock (daylight
saving included), and the filters narrow the browser's filter instead of widening it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, select

from nvadmin.analysis.insights import Bucket, choose_bucket, compute, narrow, time_buckets
from nvadmin.db.models import ActivityEvent, Workspace
from nvadmin.errors import AccessDenied, UserError
from nvadmin.identity import Role, StaffIdentity
from nvadmin.query.filters import EventFilter, Term, where_clause
from nvadmin.query.localtime import offset_spans
from nvadmin.workers.cancel import Cancelled, CancelToken
from tests.factories import add_workspace, draft, write
from tests.unit.test_flags import Seeded, planted_db  # noqa: F401  (module fixture)
from tests.waiting import HANG_GUARD_MS

ADMIN = StaffIdentity(1, "dana@nvadmin.example", "Dana Admin", Role.ADMIN)
SUPPORT = StaffIdentity(2, "sam@nvadmin.example", "Sam Support", Role.SUPPORT)
CHICAGO = "America/Chicago"


def count(engine: Engine, f: EventFilter) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count()).select_from(ActivityEvent).where(where_clause(f))
            ).scalar_one()
        )


def riverside(engine: Engine) -> int:
    """The seeded Chicago clinic."""
    with engine.connect() as connection:
        return int(
            connection.execute(
                select(Workspace.id).where(Workspace.slug == "riverside-family")
            ).scalar_one()
        )


def month(ws: int) -> EventFilter:
    zone = ZoneInfo(CHICAGO)
    return EventFilter(
        workspace_ids=(ws,),
        start=datetime(2026, 10, 1, tzinfo=zone).astimezone(UTC),
        end=datetime(2026, 11, 1, tzinfo=zone).astimezone(UTC),
    )


def test_every_aggregate_equals_a_count_of_its_filter(planted_db: Seeded) -> None:  # noqa: F811
    engine = planted_db.engine
    base = month(riverside(engine))
    insights = compute(engine, ADMIN, base, CHICAGO)
    assert insights.bucket is Bucket.DAY and len(insights.buckets) == 31
    assert insights.total == count(engine, base) > 5000
    for category, counts in insights.activity.items():
        assert sum(counts) == count(engine, narrow(base, "category", category))
        for i in (0, 4, 11, 30):
            assert counts[i] == count(engine, insights.filter_for_bucket(i, category)), (
                category,
                i,
            )
    for outcome, counts in insights.sign_ins.items():
        for i in range(0, 31, 5):
            assert counts[i] == count(engine, insights.filter_for_sign_ins(i, outcome))
    assert sum(insights.sign_ins["failed"]) == count(
        engine, narrow(base, "category", "failed_sign_ins")
    )
    assert insights.members and insights.members_total == count(
        engine, narrow(narrow(base, "category", "chart_views"), "actor_type", "member")
    )
    for member in insights.members:
        assert member.count == count(engine, insights.filter_for_member(member.email))
    assert [m.count for m in insights.members] == sorted(
        (m.count for m in insights.members), reverse=True
    )
    assert insights.api
    for usage in insights.api:
        assert usage.total == count(engine, insights.filter_for_client(usage.client))
        for status, n in usage.statuses.items():
            assert status is not None
            assert n == count(engine, insights.filter_for_status(usage.client, status))
        assert usage.errors == sum(n for s, n in usage.statuses.items() if s and s >= 400)
    grid = insights.heat()
    assert sum(map(sum, grid)) == insights.total
    busiest = max(((d, h) for d in range(7) for h in range(24)), key=lambda c: grid[c[0]][c[1]])
    for weekday in range(7):
        for hour in (0, 7, busiest[1], 23):
            cell = insights.filter_for_cell(weekday, hour)
            assert count(engine, cell) == grid[weekday][hour], (weekday, hour)


def test_the_api_status_count_matches_the_stored_json(planted_db: Seeded) -> None:  # noqa: F811
    """Independent of the status filter: parse every API event's details in Python."""
    engine = planted_db.engine
    base = month(riverside(engine))
    insights = compute(engine, ADMIN, base, CHICAGO)
    with engine.connect() as connection:
        rows = connection.execute(
            select(ActivityEvent.actor_name, ActivityEvent.details).where(
                where_clause(narrow(base, "category", "api_usage"))
            )
        ).all()
    expected: dict[tuple[str, int], int] = {}
    for client, details in rows:
        key = (client, json.loads(details)["status"])
        expected[key] = expected.get(key, 0) + 1
    got = {(u.client, s): n for u in insights.api for s, n in u.statuses.items()}
    assert got == expected


def test_the_browsers_filter_is_narrowed_not_widened(planted_db: Seeded) -> None:  # noqa: F811
    engine = planted_db.engine
    members = compute(engine, ADMIN, month(riverside(engine)), CHICAGO).members
    two = month(riverside(engine)).with_terms(
        Term("user", members[0].email), Term("user", members[1].email)
    )
    insights = compute(engine, ADMIN, two, CHICAGO)
    assert [m.email for m in insights.members] == [members[0].email, members[1].email]
    only = insights.filter_for_member(members[1].email)
    assert only.values("user") == [members[1].email]
    assert count(engine, only) == insights.members[1].count


def test_hour_buckets_follow_daylight_saving(engine: Engine) -> None:
    """On 1 Nov 2026 Chicago's clocks go back: the repeated 1 am hour is one bucket holding
    two real hours; every event lands in the bucket of its local wall-clock hour."""
    ws = add_workspace(engine)
    zone = ZoneInfo(CHICAGO)
    t0 = datetime(2026, 10, 31, 12, 0, tzinfo=UTC)
    instants = [t0 + timedelta(minutes=17 * i) for i in range(200)]  # ~2.4 days
    write(engine, ws, [draft(occurred_at=t) for t in instants])
    f = EventFilter(workspace_ids=(ws,), start=t0, end=t0 + timedelta(days=2, hours=12))
    insights = compute(engine, ADMIN, f, CHICAGO)
    assert insights.bucket is Bucket.HOUR
    counts = insights.activity["chart_views"]
    expected: dict[datetime, int] = {}
    for t in instants:
        local = t.astimezone(zone).replace(tzinfo=None, minute=0, second=0, microsecond=0)
        expected[local] = expected.get(local, 0) + 1
    got = {b.local: n for b, n in zip(insights.buckets, counts, strict=True) if n}
    assert got == expected
    one_am = next(b for b in insights.buckets if b.local == datetime(2026, 11, 1, 1))
    assert one_am.end - one_am.start == timedelta(hours=2)
    for i in range(len(insights.buckets)):
        assert counts[i] == count(engine, insights.filter_for_bucket(i))
    # Day buckets: 1 November is 25 hours long.
    days = compute(engine, ADMIN, f, CHICAGO, bucket=Bucket.DAY)
    nov1 = next(b for b in days.buckets if b.local == datetime(2026, 11, 1))
    assert nov1.end - nov1.start == timedelta(hours=25)
    assert sum(days.activity["chart_views"]) == len(instants)


def test_week_buckets_start_on_monday(engine: Engine) -> None:
    ws = add_workspace(engine)
    t0 = datetime(2025, 1, 1, 18, tzinfo=UTC)
    instants = [t0 + timedelta(hours=23 * i) for i in range(100)]
    write(engine, ws, [draft(occurred_at=t) for t in instants])
    f = EventFilter(workspace_ids=(ws,), start=t0, end=t0 + timedelta(days=100))
    insights = compute(engine, ADMIN, f, CHICAGO)
    assert insights.bucket is Bucket.WEEK
    assert all(b.local.weekday() == 0 for b in insights.buckets[1:])
    assert sum(insights.activity["chart_views"]) == len(instants)
    for i, n in enumerate(insights.activity["chart_views"]):
        assert n == count(engine, insights.filter_for_bucket(i))


def test_bucket_size_follows_the_range() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    assert choose_bucket(t, t + timedelta(days=1)) is Bucket.HOUR
    assert choose_bucket(t, t + timedelta(days=30)) is Bucket.DAY
    assert choose_bucket(t, t + timedelta(days=365)) is Bucket.WEEK
    buckets = time_buckets(t, t + timedelta(days=30), ZoneInfo("UTC"), Bucket.DAY)
    assert len(buckets) == 30 and buckets[0].start == t


def test_offset_spans_match_the_zone_database() -> None:
    zone = ZoneInfo("Europe/London")
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    spans = offset_spans(zone, start, end)
    assert [m for _, m in spans] == [0, 60, 0]
    assert spans[0][0] == datetime(2026, 3, 29, 1, tzinfo=UTC)
    assert spans[1][0] == datetime(2026, 10, 25, 1, tzinfo=UTC)


def test_an_open_range_is_closed_at_the_data(engine: Engine) -> None:
    ws = add_workspace(engine)
    write(engine, ws, [draft(i * 60) for i in range(10)])
    insights = compute(engine, ADMIN, EventFilter(workspace_ids=(ws,)), CHICAGO)
    assert insights.total == 10


def test_access_and_bad_input(engine: Engine) -> None:
    ws = add_workspace(engine)
    with pytest.raises(AccessDenied):
        compute(engine, SUPPORT, EventFilter(), CHICAGO)
    with pytest.raises(UserError):
        compute(engine, ADMIN, EventFilter(workspace_ids=(ws,)), "Mars/Olympus")
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        compute(engine, ADMIN, EventFilter(workspace_ids=(ws,)), CHICAGO, token=token)


def test_long_ranges_count_bars_directly(engine: Engine) -> None:
    """Past 100 days the bars are counted per week in SQL and the heat map separately;
    both still equal the counts of their filters."""
    ws = add_workspace(engine)
    t0 = datetime(2025, 1, 1, 18, tzinfo=UTC)
    instants = [t0 + timedelta(hours=37 * i) for i in range(120)]  # ~185 days
    write(engine, ws, [draft(occurred_at=t) for t in instants])
    f = EventFilter(workspace_ids=(ws,), start=t0, end=t0 + timedelta(days=200))
    insights = compute(engine, ADMIN, f, CHICAGO)
    assert insights.bucket is Bucket.WEEK
    assert sum(insights.activity["chart_views"]) == sum(map(sum, insights.heat())) == 120
    for i, n in enumerate(insights.activity["chart_views"]):
        assert n == count(engine, insights.filter_for_bucket(i))
    assert insights.hours
    for (weekday, hour), n in insights.hours.items():
        assert n == count(engine, insights.filter_for_cell(weekday, hour))


@pytest.mark.pg
@pytest.mark.parametrize("what", ["charts", "flags"])
def test_cancel_stops_the_server_query(pg_url: str, what: str) -> None:
    """A query waiting on the server (here: behind a lock) is cancelled there, promptly."""
    import threading
    import time

    from nvadmin.analysis.flags.evaluation import evaluate
    from nvadmin.db.engine import make_engine

    engine = make_engine(pg_url)
    ws = add_workspace(engine)
    write(engine, ws, [draft(i) for i in range(20)])
    f = EventFilter(
        workspace_ids=(ws,),
        start=datetime(2025, 3, 1, tzinfo=UTC),
        end=datetime(2025, 4, 1, tzinfo=UTC),
    )
    token = CancelToken()
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            if what == "charts":
                compute(engine, ADMIN, f, CHICAGO, token=token)
            else:
                evaluate(engine, ADMIN, f, token=token)
        except BaseException as error:
            outcome.append(error)

    blocker = engine.connect()
    try:
        blocker.exec_driver_sql("BEGIN")
        blocker.exec_driver_sql("LOCK TABLE activity_events IN ACCESS EXCLUSIVE MODE")
        thread = threading.Thread(target=run)
        thread.start()
        waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        with engine.connect() as probe:
            deadline = time.monotonic() + HANG_GUARD_MS / 1000
            # pg_stat_activity is a snapshot per transaction: read it afresh each time.
            while probe.exec_driver_sql(waiting).scalar_one() == 0:
                probe.rollback()
                assert time.monotonic() < deadline, f"the {what} query never started: {outcome}"
                time.sleep(0.05)
        # The query waits for a lock the blocker holds until the end of the test: only the
        # cancel can end it (measured in seconds it would only show how busy the machine is).
        token.cancel()
        thread.join(HANG_GUARD_MS / 1000)
        assert not thread.is_alive()
        assert outcome and isinstance(outcome[0], Cancelled)
        with engine.connect() as probe:
            assert probe.exec_driver_sql(waiting).scalar_one() == 0
    finally:
        blocker.rollback()
        blocker.close()
        engine.dispose()
