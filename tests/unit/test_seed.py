from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, select

from nvadmin.audit.chain import GENESIS_HASH, STORED_FIELDS, digest, utc_text
from nvadmin.db.models import ActivityEvent as E
from nvadmin.db.models import Meta, TeamMember, Workspace
from nvadmin.demo.seed import SeedPlan, seed
from nvadmin.errors import UserError

PLAN = SeedPlan(workspaces=2, events=30_000, seed=11, end=date(2026, 6, 1), days=60)


def _chain_rows(engine: Engine, workspace_id: int) -> list[tuple]:
    columns = [getattr(E, name) for name in STORED_FIELDS]
    with engine.connect() as c:
        return list(
            c.execute(select(*columns).where(E.workspace_id == workspace_id).order_by(E.seq))
        )


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    report = seed(engine, PLAN)
    assert report.events == PLAN.events
    return engine


def test_seed_writes_exactly_the_requested_events_in_verifiable_chains(seeded: Engine) -> None:
    with seeded.connect() as c:
        assert c.execute(select(func.count()).select_from(E)).scalar_one() == PLAN.events
        workspaces = c.execute(select(Workspace.id).where(Workspace.is_system.is_(False))).all()
    assert len(workspaces) == 2
    for (workspace_id,) in workspaces:
        prev = GENESIS_HASH
        rows = _chain_rows(seeded, workspace_id)
        assert [r[1] for r in rows] == list(range(1, len(rows) + 1))
        times = [r[2] for r in rows]
        assert times == sorted(times), "chain order follows time"
        for r in rows:
            values = list(r[:20])
            values[2] = utc_text(values[2])
            assert r[20] == prev and r[21] == digest(prev, values)
            prev = r[21]


def test_seed_is_realistic(seeded: Engine) -> None:
    with seeded.connect() as c:
        zones = {
            z
            for (z,) in c.execute(select(Workspace.timezone).where(Workspace.is_system.is_(False)))
        }
        roles = {r for (r,) in c.execute(select(TeamMember.role).distinct())}
        categories = Counter(
            dict(c.execute(select(E.category, func.count()).group_by(E.category)).all())
        )
        updates = (
            c.execute(select(E.details).where(E.action == "patient_record.update").limit(50))
            .scalars()
            .all()
        )
        members = c.execute(
            select(E.occurred_at, Workspace.timezone)
            .join(Workspace)
            .where(E.action == "chart.view")
            .limit(5000)
        ).all()
    assert len(zones) == 2
    assert {"physician", "front_desk", "billing"} <= roles
    assert set(categories) >= {
        "chart_views",
        "patient_records",
        "sign_ins",
        "failed_sign_ins",
        "api_usage",
    }
    assert all("before" in json.dumps(json.loads(d)) and "after" in d for d in updates)
    local = [t.astimezone(ZoneInfo(z)) for t, z in members]
    in_hours = sum(7 <= t.hour < 19 for t in local) / len(local)
    weekdays = sum(t.weekday() < 5 for t in local) / len(local)
    assert in_hours > 0.9 and weekdays > 0.85


def test_seed_plants_cases_worth_finding(seeded: Engine) -> None:
    with seeded.connect() as c:
        planted = json.loads(
            c.execute(select(Meta.value).where(Meta.key == "demo_planted")).scalar_one()
        )
        bursts = [p for p in planted if p["flag"] == "failed_sign_in_burst"]
        failures = [
            c.execute(
                select(func.count())
                .select_from(E)
                .where(E.action == "auth.sign_in_failed", E.actor_email == p["subject"])
            ).scalar_one()
            for p in bursts
        ]
    flags = Counter(p["flag"] for p in planted)
    assert {
        "failed_sign_in_burst",
        "failed_burst_then_success",
        "ip_failed_sign_in_burst",
        "after_hours",
        "chart_view_spike",
        "many_distinct_patients",
        "api_spike",
        "new_ip",
    } <= set(flags)
    assert flags["failed_sign_in_burst"] == 2, "both workspaces are big enough for planted cases"
    assert all(n >= 8 for n in failures)


def test_seed_is_deterministic(tmp_path, sqlite_template) -> None:  # type: ignore[no-untyped-def]
    import shutil

    from nvadmin.db.engine import make_engine, sqlite_url

    hashes = []
    for name in ("a", "b"):
        path = tmp_path / f"{name}.sqlite3"
        shutil.copyfile(sqlite_template, path)
        engine = make_engine(sqlite_url(path))
        seed(engine, SeedPlan(workspaces=3, events=3_000, seed=5, end=date(2026, 1, 1)))
        with engine.connect() as c:
            hashes.append(c.execute(select(E.hash).order_by(E.workspace_id, E.seq)).scalars().all())
        engine.dispose()
    assert hashes[0] == hashes[1] and len(hashes[0]) == 3_000


def test_seed_refuses_a_database_that_holds_activity(seeded: Engine) -> None:
    with pytest.raises(UserError, match="empty database"):
        seed(seeded, SeedPlan(workspaces=1, events=100, end=date(2026, 1, 1)))
    with seeded.connect() as c:
        assert c.execute(select(func.count()).select_from(E)).scalar_one() == PLAN.events


@pytest.mark.parametrize("events", [0, 1, 7, 401])
def test_tiny_seeds_are_exact(engine: Engine, events: int) -> None:
    seed(engine, SeedPlan(workspaces=2, events=events, seed=3, end=date(2026, 1, 1)))
    with engine.connect() as c:
        assert c.execute(select(func.count()).select_from(E)).scalar_one() == events


# A Wednesday afternoon: 15:12 in Chicago and 13:12 in Los Angeles (the plan's two clinics); the
# rest of that day has not happened yet.
NOW = datetime(2026, 6, 3, 20, 12, 7, 250_000, tzinfo=UTC)
CUT = SeedPlan(workspaces=2, events=30_000, seed=11, end=date(2026, 6, 4), days=60, now=NOW)


def _planted(engine: Engine) -> list[dict]:
    with engine.connect() as c:
        return json.loads(
            c.execute(select(Meta.value).where(Meta.key == "demo_planted")).scalar_one()
        )


def test_no_event_is_later_than_the_moment_of_the_seed(engine: Engine) -> None:
    report = seed(engine, CUT)
    with engine.connect() as c:
        newest = c.execute(select(func.max(E.occurred_at))).scalar_one()
        total = c.execute(select(func.count()).select_from(E)).scalar_one()
        today = c.execute(
            select(E.occurred_at, Workspace.timezone)
            .join(Workspace)
            .where(E.action == "chart.view", E.occurred_at >= NOW - timedelta(hours=10))
        ).all()
    assert report.events == total == CUT.events
    assert newest.astimezone(UTC) <= NOW
    # The day that holds now has its morning's work, in working hours.
    local = [t.astimezone(ZoneInfo(z)) for t, z in today]
    on_the_day = [t for t in local if t.date() == date(2026, 6, 3)]
    assert len(on_the_day) > 100
    assert all(7 <= t.hour < 19 for t in on_the_day)
    planted = _planted(engine)
    assert len(planted) == len(report.planted) > 0
    # Every planted case lies on a local day that ended before now.
    assert all(date.fromisoformat(p["day"]) < date(2026, 6, 3) for p in planted)


def test_the_default_end_stops_at_now_in_every_zone(engine: Engine) -> None:
    """Without --end the range ends tomorrow (UTC); in Honolulu at 03:00 UTC that whole day,
    and most of the local day before it, have not begun."""
    now = datetime(2026, 3, 9, 3, 0, tzinfo=UTC)
    plan = SeedPlan(workspaces=6, events=20_000, seed=2, days=30, now=now)
    assert plan.end == date(2026, 3, 10)
    seed(engine, plan)
    with engine.connect() as c:
        newest = c.execute(select(func.max(E.occurred_at))).scalar_one()
        total = c.execute(select(func.count()).select_from(E)).scalar_one()
        zones = c.execute(select(Workspace.timezone)).scalars().all()
    assert "Pacific/Honolulu" in zones
    assert total == 20_000
    assert newest.astimezone(UTC) <= now


def test_an_end_in_the_past_gives_the_same_events_whenever_the_seed_runs(
    tmp_path, sqlite_template
) -> None:  # type: ignore[no-untyped-def]
    """The moment the last local day ended (in Honolulu, the last of the five zones) and years
    later: the same events, byte for byte."""
    import shutil

    from nvadmin.db.engine import make_engine, sqlite_url

    ended = datetime.combine(date(2026, 1, 1), time(10), UTC)  # midnight in Honolulu
    hashes = []
    for name, now in (("a", ended), ("b", datetime(2031, 7, 1, tzinfo=UTC))):
        path = tmp_path / f"{name}.sqlite3"
        shutil.copyfile(sqlite_template, path)
        engine = make_engine(sqlite_url(path))
        plan = SeedPlan(workspaces=5, events=3_000, seed=5, end=date(2026, 1, 1), now=now)
        seed(engine, plan)
        with engine.connect() as c:
            hashes.append(c.execute(select(E.hash).order_by(E.workspace_id, E.seq)).scalars().all())
        engine.dispose()
    assert hashes[0] == hashes[1] and len(hashes[0]) == 3_000


def test_an_end_after_tomorrow_is_refused() -> None:
    now = datetime(2026, 5, 31, 20, 12, tzinfo=UTC)
    assert SeedPlan(end=date(2026, 6, 1), now=now).end == date(2026, 6, 1)
    with pytest.raises(UserError, match=r"give 2026-06-01 \(tomorrow, UTC\) or earlier"):
        SeedPlan(end=date(2026, 6, 2), now=now)


@pytest.mark.parametrize(
    "now",
    [
        # Chicago springs forward at 02:00: 03:20 CDT is only 2h20 after midnight, and the
        # nightly API batch runs at 2 am wall time, an hour that does not exist that night.
        datetime(2026, 3, 8, 8, 20, tzinfo=UTC),
        # ...and falls back at 02:00: 01:30 CST comes after 01:30 CDT.
        datetime(2026, 11, 1, 7, 30, tzinfo=UTC),
        datetime(2026, 11, 1, 6, 45, tzinfo=UTC),
    ],
)
def test_no_event_is_later_than_now_on_a_daylight_saving_change(
    engine: Engine, now: datetime
) -> None:
    plan = SeedPlan(
        workspaces=1, events=12_000, seed=4, days=20, end=now.date() + timedelta(days=1), now=now
    )
    seed(engine, plan)
    with engine.connect() as c:
        newest = c.execute(select(func.max(E.occurred_at))).scalar_one()
        total = c.execute(select(func.count()).select_from(E)).scalar_one()
    assert total == 12_000
    assert newest.astimezone(UTC) <= now


# -- the same plan, the same bytes -------------------------------------------------------------

# The rules whose demo cases the fingerprints below include. A rule added later plants its own
# case in every seed, which changes the demo data; these fingerprints pin the data of exactly
# these rules' cases, so a new rule leaves them alone while a change to the generator, or to
# one of these cases, shows.
FINGERPRINTED_RULES = (
    "failed_sign_in_burst",
    "ip_failed_sign_in_burst",
    "failed_burst_then_success",
    "after_hours",
    "chart_view_spike",
    "many_distinct_patients",
    "api_spike",
    "new_ip",
)
_SEEDED_AT = datetime(2026, 11, 29, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("plan", "planted", "fingerprint"),
    [
        pytest.param(
            SeedPlan(
                workspaces=1, events=9_000, seed=4, end=date(2026, 5, 1), days=45, now=_SEEDED_AT
            ),
            13,
            "09125af3b3146e442a605b3b10845f062b40d14b737f6980ca20a778dcecfb5d",
            id="one-clinic",
        ),
        pytest.param(
            SeedPlan(
                workspaces=3, events=3_000, seed=8, end=date(2026, 2, 1), days=30, now=_SEEDED_AT
            ),
            0,
            "29174c94d7f89c522e2aebe88fdc4ca60b8c4a303f39ce6b67c633f40376c035",
            id="too-small-to-plant",
        ),
        pytest.param(
            SeedPlan(
                workspaces=2,
                events=24_000,
                seed=2,
                end=date(2026, 3, 9),
                days=45,
                now=datetime(2026, 3, 8, 17, 30, tzinfo=UTC),
            ),
            26,
            "867b35bb9699259368c24ee2e78c79e78c1378f4d2afebcf7a1098f150ea0c98",
            id="cut-at-now",
        ),
    ],
)
def test_a_plan_gives_the_same_demo_data_byte_for_byte(
    tmp_path, sqlite_template, plan: SeedPlan, planted: int, fingerprint: str
) -> None:  # type: ignore[no-untyped-def]
    """Workspaces, team members, API clients, the planted list and every stored field of every
    event (chain hashes included), as recorded before the seeder's pieces and the rules' demo
    cases were reorganised."""
    import hashlib
    import shutil

    from sqlalchemy import text

    from nvadmin.analysis.flags.catalog import RULES
    from nvadmin.db.engine import make_engine, sqlite_url

    path = tmp_path / "audit.sqlite3"
    shutil.copyfile(sqlite_template, path)
    engine = make_engine(sqlite_url(path))
    report = seed(engine, plan, rules=[RULES[name] for name in FINGERPRINTED_RULES])
    digest_ = hashlib.sha256()
    with engine.connect() as c:
        for query in (
            "SELECT id, slug, name, timezone, work_day_start, work_day_end FROM workspaces "
            "ORDER BY id",
            "SELECT id, workspace_id, email, display_name, role, active FROM team_members "
            "ORDER BY id",
            "SELECT id, workspace_id, name, client_key FROM api_clients ORDER BY id",
            "SELECT key, value FROM nvadmin_meta WHERE key LIKE 'demo_%' ORDER BY key",
            f"SELECT {', '.join(STORED_FIELDS)} FROM activity_events ORDER BY workspace_id, seq",
        ):
            for row in c.execute(text(query)):
                digest_.update(repr(tuple(row)).encode())
    engine.dispose()
    assert len(report.planted) == planted
    assert digest_.hexdigest() == fingerprint
