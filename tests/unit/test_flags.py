"""Security flags on seeded demo data: each rule finds exactly the planted cases, on both
backends, and nothing at all in a clean data set; thresholds and working hours change what
is found; every finding's filter shows exactly the events it counts."""

from __future__ import annotations

import csv
import io
import json
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import make_url

from nvadmin.analysis.flags.catalog import RULES
from nvadmin.analysis.flags.evaluation import evaluate, set_working_hours
from nvadmin.analysis.flags.report import Finding, FlagReport, to_csv
from nvadmin.db.engine import make_engine, sqlite_url
from nvadmin.db.models import ActivityEvent, Workspace
from nvadmin.demo.seed import SeedPlan, seed
from nvadmin.errors import AccessDenied, UserError
from nvadmin.identity import Role, StaffIdentity
from nvadmin.query.filters import EventFilter, Term, where_clause
from nvadmin.workers.cancel import Cancelled, CancelToken
from tests.conftest import _pg_admin
from tests.factories import add_workspace, draft, write

ADMIN = StaffIdentity(1, "dana@nvadmin.example", "Dana Admin", Role.ADMIN)
SUPPORT = StaffIdentity(2, "sam@nvadmin.example", "Sam Support", Role.SUPPORT)
END = date(2026, 11, 1)
# Two clinics of ~16k events each: both large enough for planted cases.
PLAN = SeedPlan(workspaces=2, events=32_000, seed=7, end=END)


@dataclass
class Seeded:
    engine: Engine
    planted: set[tuple[str, str, str, str]]


def _seeded(
    request: pytest.FixtureRequest, backend: str, plant: bool, now: datetime | None = None
) -> Iterator[Seeded]:
    """A seeded database per module (seeding takes seconds; the rules only read)."""
    if backend == "sqlite":
        folder = request.getfixturevalue("tmp_path_factory").mktemp("seeded")
        path = Path(folder) / "audit.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        url = sqlite_url(path)
        drop = None
    else:
        server = request.getfixturevalue("pg_server_url")
        template = request.getfixturevalue("pg_template")
        name = f"nvadmin_flags_{uuid.uuid4().hex[:8]}"
        _pg_admin(server, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        url = make_url(server).set(database=name).render_as_string(hide_password=False)
        drop = (server, name)
    engine = make_engine(url)
    changes: dict[str, object] = {"plant": plant}
    if now is not None:
        changes["now"] = now
    report = seed(engine, SeedPlan(**{**PLAN.__dict__, **changes}))
    planted = {(c.flag, c.workspace, c.subject, c.day) for c in report.planted}
    yield Seeded(engine, planted)
    engine.dispose()
    if drop:
        _pg_admin(drop[0], f'DROP DATABASE IF EXISTS "{drop[1]}" WITH (FORCE)')


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)]


@pytest.fixture(scope="module", params=BACKENDS)
def planted_db(request: pytest.FixtureRequest) -> Iterator[Seeded]:
    yield from _seeded(request, request.param, plant=True)


@pytest.fixture(scope="module", params=BACKENDS)
def clean_db(request: pytest.FixtureRequest) -> Iterator[Seeded]:
    yield from _seeded(request, request.param, plant=False)


# The morning of the last local day (10:12 in Chicago, 08:12 in Los Angeles): the seed cuts off
# the rest of that day.
NOW = datetime.combine(END - timedelta(days=1), datetime.min.time(), UTC) + timedelta(
    hours=15, minutes=12
)


@pytest.fixture(scope="module", params=BACKENDS)
def cut_db(request: pytest.FixtureRequest) -> Iterator[Seeded]:
    yield from _seeded(request, request.param, plant=True, now=NOW)


def whole_range() -> EventFilter:
    start = datetime.combine(END - timedelta(days=PLAN.days + 1), datetime.min.time(), UTC)
    return EventFilter(
        start=start, end=datetime.combine(END + timedelta(days=1), datetime.min.time(), UTC)
    )


def found(report: FlagReport) -> set[tuple[str, str, str, str]]:
    return {(f.rule, f.workspace, f.subject, f.day.isoformat()) for f in report.findings()}


def test_the_demo_plants_a_case_for_every_rule(planted_db: Seeded) -> None:
    assert {p[0] for p in planted_db.planted} == set(RULES)
    with planted_db.engine.connect() as connection:
        stored = json.loads(
            connection.execute(
                text("SELECT value FROM nvadmin_meta WHERE key = 'demo_planted'")
            ).scalar_one()
        )
    assert {(p["flag"], p["workspace"], p["subject"], p["day"]) for p in stored} == (
        planted_db.planted
    )


@pytest.mark.parametrize("rule", list(RULES))
def test_each_rule_finds_exactly_the_planted_cases(planted_db: Seeded, rule: str) -> None:
    report = evaluate(planted_db.engine, ADMIN, whole_range(), rules=(rule,))
    expected = {p for p in planted_db.planted if p[0] == rule}
    assert found(report) == expected
    assert report.results[0].count == len(expected)


def test_a_seed_that_cuts_off_the_future_still_finds_exactly_the_planted_cases(
    cut_db: Seeded,
) -> None:
    with cut_db.engine.connect() as connection:
        newest, total = connection.execute(
            select(func.max(ActivityEvent.occurred_at), func.count())
        ).one()
    assert newest.astimezone(UTC) <= NOW and total == PLAN.events
    assert {p[0] for p in cut_db.planted} == set(RULES)
    assert all(p[3] < NOW.date().isoformat() for p in cut_db.planted)
    report = evaluate(cut_db.engine, ADMIN, whole_range())
    assert found(report) == cut_db.planted


def test_nothing_is_flagged_in_a_clean_data_set(clean_db: Seeded) -> None:
    report = evaluate(clean_db.engine, ADMIN, whole_range())
    assert clean_db.planted == set()
    assert report.findings() == []
    assert [r.count for r in report.results] == [0] * len(RULES)


def test_a_finding_counts_exactly_the_events_its_filter_shows(planted_db: Seeded) -> None:
    report = evaluate(planted_db.engine, ADMIN, whole_range())
    with planted_db.engine.connect() as connection:
        for finding in report.findings():
            shown = connection.execute(
                select(func.count())
                .select_from(ActivityEvent)
                .where(where_clause(finding.event_filter))
            ).scalar_one()
            assert shown == finding.events > 0, finding
            assert finding.event_filter.workspace_ids == (finding.workspace_id,)
    by_rule = {f.rule: f for f in report.findings()}
    # The planted bursts are exactly the events counted.
    assert by_rule["failed_sign_in_burst"].events == 8
    assert by_rule["ip_failed_sign_in_burst"].events == 10


def test_a_search_lists_the_findings_that_involve_its_events(planted_db: Seeded) -> None:
    """Rules still see the whole workspace; the browser's search terms pick the findings
    with at least one matching event, and the others are counted, not lost."""
    everything = evaluate(planted_db.engine, ADMIN, whole_range())
    member = next(f for f in everything.findings() if f.rule == "chart_view_spike").subject
    searched = whole_range().with_terms(Term("user", member))
    report = evaluate(planted_db.engine, ADMIN, searched)

    def involves(finding: Finding) -> bool:
        with planted_db.engine.connect() as connection:
            return bool(
                connection.execute(
                    select(func.count())
                    .select_from(ActivityEvent)
                    .where(where_clause(finding.event_filter), ActivityEvent.actor_email == member)
                ).scalar_one()
            )

    expected = {f for f in everything.findings() if involves(f)}
    assert member in {f.subject for f in expected}
    assert found(report) == {(f.rule, f.workspace, f.subject, f.day.isoformat()) for f in expected}
    assert report.hidden == len(everything.findings()) - len(expected) > 0
    assert report.event_filter.terms == (Term("user", member),)


def test_every_rule_is_explained_with_its_thresholds(planted_db: Seeded) -> None:
    report = evaluate(
        planted_db.engine,
        ADMIN,
        whole_range(),
        {"failed_sign_in_burst": {"failures": 7, "minutes": 3}},
    )
    result = {r.rule.name: r for r in report.results}
    assert result["failed_sign_in_burst"].explanation.startswith(
        "7 or more failed sign-ins for one account within 3 minutes"
    )
    assert "07:00-19:00" in result["after_hours"].explanation or (
        "each workspace" in result["after_hours"].explanation
    )
    for r in report.results:
        assert r.explanation and "{" not in r.explanation


def test_thresholds_change_what_is_found(planted_db: Seeded) -> None:
    strict = {"failed_sign_in_burst": {"failures": 9}, "many_distinct_patients": {"patients": 500}}
    report = evaluate(
        planted_db.engine,
        ADMIN,
        whole_range(),
        strict,
        rules=("failed_sign_in_burst", "many_distinct_patients"),
    )
    assert report.findings() == []
    # Out-of-range values are clamped to the threshold's limits, not trusted.
    assert RULES["failed_sign_in_burst"].values({"failed_sign_in_burst": {"failures": -4}}) == {
        "failures": 2,
        "minutes": 10,
    }


def test_working_hours_are_per_workspace(planted_db: Seeded) -> None:
    engine = planted_db.engine
    with engine.connect() as connection:
        ids = dict(connection.execute(select(Workspace.slug, Workspace.id)).all())
    owl_workspace = sorted(p[1] for p in planted_db.planted if p[0] == "after_hours")[0]
    ws = ids[owl_workspace]
    try:
        set_working_hours(engine, ADMIN, ws, 0, 24)  # around the clock: nothing is after hours
        report = evaluate(engine, ADMIN, whole_range(), rules=("after_hours",))
        assert {f.workspace for f in report.findings()} == (
            {p[1] for p in planted_db.planted if p[0] == "after_hours"} - {owl_workspace}
        )
    finally:
        set_working_hours(engine, ADMIN, ws, 7, 19)
    with pytest.raises(UserError):
        set_working_hours(engine, ADMIN, ws, 9, 9)
    with pytest.raises(AccessDenied):
        set_working_hours(engine, SUPPORT, ws, 8, 18)


def test_burst_edges_on_a_small_log(engine: Engine) -> None:
    """N failures within M minutes is a burst; N-1, or N spread wider, is not."""
    ws = add_workspace(engine)
    t0 = datetime(2025, 3, 3, 15, 0, tzinfo=UTC)  # 09:00 in Chicago

    def fail(email: str, minute: float, ip: str = "203.0.113.9") -> object:
        return draft(
            occurred_at=t0 + timedelta(minutes=minute),
            action="auth.sign_in_failed",
            email=email,
            outcome="failure",
            failure_reason="wrong_password",
            ip=ip,
        )

    drafts = [fail("five@c.example", m * 2) for m in range(5)]  # 5 within 8 min
    drafts += [fail("four@c.example", 60 + m) for m in range(4)]  # only 4
    drafts += [fail("slow@c.example", 120 + m * 3) for m in range(5)]  # 5 within 12 min
    write(engine, ws, sorted(drafts, key=lambda d: d.occurred_at))  # type: ignore[attr-defined]
    f = EventFilter(workspace_ids=(ws,), start=t0 - timedelta(days=1), end=t0 + timedelta(days=1))
    report = evaluate(engine, ADMIN, f, rules=("failed_sign_in_burst",))
    assert [(x.subject, x.events) for x in report.findings()] == [("five@c.example", 5)]
    wider = evaluate(
        engine, ADMIN, f, {"failed_sign_in_burst": {"minutes": 13}}, rules=("failed_sign_in_burst",)
    )
    assert {x.subject for x in wider.findings()} == {"five@c.example", "slow@c.example"}


def test_support_staff_may_run_flags_for_one_workspace_only(planted_db: Seeded) -> None:
    with pytest.raises(AccessDenied):
        evaluate(planted_db.engine, SUPPORT, whole_range(), rules=("new_ip",))


def test_a_cancelled_run_stops(planted_db: Seeded) -> None:
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        evaluate(planted_db.engine, ADMIN, whole_range(), token=token)


def test_flags_csv_states_scope_and_neutralises_formulas(engine: Engine) -> None:
    """An attacker chooses the e-mail typed at sign-in: it must not run in a spreadsheet."""
    ws = add_workspace(engine)
    t0 = datetime(2025, 3, 3, 15, 0, tzinfo=UTC)
    evil = '=HYPERLINK("http://x.example")@c.example'
    write(
        engine,
        ws,
        [
            draft(
                occurred_at=t0 + timedelta(minutes=m),
                action="auth.sign_in_failed",
                email=evil,
                name=evil,
                outcome="failure",
                failure_reason="unknown_user",
                ip="198.51.100.7",
            )
            for m in range(6)
        ],
    )
    f = EventFilter(workspace_ids=(ws,), start=t0 - timedelta(days=1), end=t0 + timedelta(days=1))
    report = evaluate(engine, ADMIN, f)
    data = to_csv(report, "Riverside · time zone America/Chicago")
    assert data.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    burst = [r for r in rows if r["flag"] == "failed_sign_in_burst"]
    assert [r["subject"] for r in burst] == ["'" + evil]
    assert burst[0]["events"] == "6" and burst[0]["time_zone"] == "America/Chicago"
    assert json.loads(burst[0]["events_filter"])["workspace_ids"] == [ws]
    # Every rule is stated, with its thresholds, even when it found nothing.
    assert {r["flag"] for r in rows} == set(RULES)
    assert all(r["scope"].endswith("time zone America/Chicago") for r in rows)
    assert all(r["thresholds"].startswith("{") for r in rows)


def test_a_shared_office_address_with_typos_is_not_spraying(engine: Engine) -> None:
    """Six people mistyping once at the office, each then signing in, is not an attack;
    six accounts failing from one address with no success is."""
    ws = add_workspace(engine)
    t0 = datetime(2025, 3, 3, 14, 0, tzinfo=UTC)
    drafts = []
    for i in range(6):
        email = f"member{i}@c.example"
        at = t0 + timedelta(minutes=i)
        drafts.append(
            draft(
                occurred_at=at,
                action="auth.sign_in_failed",
                email=email,
                outcome="failure",
                ip="203.0.113.10",
            )
        )
        drafts.append(
            draft(
                occurred_at=at + timedelta(seconds=30),
                action="auth.sign_in",
                email=email,
                ip="203.0.113.10",
            )
        )
        drafts.append(
            draft(
                occurred_at=at + timedelta(hours=3),
                action="auth.sign_in_failed",
                email=email,
                outcome="failure",
                ip="198.51.100.66",
            )
        )
    write(engine, ws, sorted(drafts, key=lambda d: d.occurred_at))
    f = EventFilter(workspace_ids=(ws,), start=t0 - timedelta(days=1), end=t0 + timedelta(days=1))
    report = evaluate(engine, ADMIN, f, rules=("ip_failed_sign_in_burst",))
    assert [(x.subject, x.events) for x in report.findings()] == [("198.51.100.66", 6)]


# -- nvadmin flags (for scheduled runs) ------------------------------------------------------


def _cli(seeded: Seeded, *argv: str) -> int:
    from nvadmin.__main__ import main

    url = seeded.engine.url.render_as_string(hide_password=False)
    return main(["--database", url, "flags", *argv])


def _days() -> tuple[str, str]:
    return (END - timedelta(days=PLAN.days + 1)).isoformat(), END.isoformat()


def test_flags_command_lists_the_planted_cases_and_exits_1(
    planted_db: Seeded, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    slug = sorted({p[1] for p in planted_db.planted})[0]
    first, last = _days()
    out_csv = tmp_path / "flags.csv"
    args = ("--workspace", slug, "--from", first, "--to", last, "--quiet", "--csv", str(out_csv))
    assert _cli(planted_db, *args) == 1
    printed = capsys.readouterr().out
    mine = {p for p in planted_db.planted if p[1] == slug}
    for _flag, _ws, subject, day in mine:
        assert f"  {day}  {subject}  " in printed
    assert printed.rstrip().endswith(f"{len(mine)} findings")
    with out_csv.open(encoding="utf-8-sig", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["subject"]]
    assert {(r["flag"], r["workspace"], r["subject"], r["local_day"]) for r in rows} == mine
    with planted_db.engine.connect() as c:
        views = c.execute(
            select(ActivityEvent.details)
            .join(Workspace, Workspace.id == ActivityEvent.workspace_id)
            .where(Workspace.slug == slug, ActivityEvent.action == "activity_log.view")
        ).scalars()
        assert any('"purpose":"flags"' in (d or "") for d in views)


def test_flags_command_exits_0_when_nothing_is_flagged(
    clean_db: Seeded, capsys: pytest.CaptureFixture[str]
) -> None:
    with clean_db.engine.connect() as c:
        slug = c.execute(
            select(Workspace.slug).where(Workspace.is_system.is_(False)).limit(1)
        ).scalar_one()
    first, last = _days()
    assert _cli(clean_db, "--workspace", slug, "--from", first, "--to", last, "--quiet") == 0
    assert capsys.readouterr().out.rstrip().endswith("nothing flagged")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--set", "api_spike.nope=3"), "unknown threshold 'api_spike.nope'"),
        (("--set", "api_spike.error_rate=5"), "must be between 0.01 and 1"),
        (("--set", "api_spike.error_rate=lots"), "needs a number"),
        (("--last", "7d", "--from", "2026-10-01"), "either --last or --from/--to"),
        (("--last", "soon"), "--last takes hours or days"),
        (("--from", "2026-10-05", "--to", "2026-10-01"), "ends before it starts"),
    ],
)
def test_flags_command_refuses_bad_input_plainly(
    planted_db: Seeded, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str
) -> None:
    slug = sorted({p[1] for p in planted_db.planted})[0]
    assert _cli(planted_db, "--workspace", slug, "--quiet", *argv) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_flags_command_names_an_unknown_workspace(
    planted_db: Seeded, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(planted_db, "--workspace", "nowhere", "--last", "7d", "--quiet") == 1
    assert "no workspace 'nowhere'" in capsys.readouterr().err


def test_changing_working_hours_is_recorded_in_the_workspace_log(engine: Engine) -> None:
    """Working hours decide what is "after hours", for past activity too: who changed them,
    and from what, is in the workspace's own log (as the server records it for staff logins,
    tests/pg/test_security_boundary.py)."""
    ws = add_workspace(engine)
    set_working_hours(engine, ADMIN, ws, 0, 24)
    with engine.connect() as connection:
        event = connection.execute(
            select(ActivityEvent.action, ActivityEvent.actor_email, ActivityEvent.details)
            .where(ActivityEvent.workspace_id == ws)
            .order_by(ActivityEvent.seq.desc())
            .limit(1)
        ).one()
    assert (event.action, event.actor_email) == ("activity_log.working_hours_changed", ADMIN.email)
    assert json.loads(event.details) == {
        "work_day_start": 0, "work_day_end": 24, "was_work_day_start": 7, "was_work_day_end": 19
    }  # fmt: skip
    with pytest.raises(UserError, match="does not exist"):
        set_working_hours(engine, ADMIN, ws + 1000, 8, 18)
