"""One account signing in from many addresses within an hour: the rule finds its planted demo
case and nothing in ordinary demo activity, counts its window's edges right, and each finding
shows exactly the sign-ins it counts. On both backends."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine, func, select

from nvadmin.analysis.flags.evaluation import evaluate
from nvadmin.analysis.flags.report import FlagReport
from nvadmin.audit.chain import EventDraft
from nvadmin.db.models import ActivityEvent
from nvadmin.demo.seed import SeedPlan, seed
from nvadmin.identity import Role, StaffIdentity
from nvadmin.query.filters import EventFilter, Term, where_clause
from tests.factories import add_workspace, draft, write

ADMIN = StaffIdentity(1, "dana@nvadmin.example", "Dana Admin", Role.ADMIN)
RULE = "account_many_ips"
END = date(2026, 11, 1)
# One clinic just large enough for every planted case.
PLAN = SeedPlan(workspaces=1, events=9_000, seed=3, end=END)
T0 = datetime(2025, 3, 3, 16, 0, tzinfo=UTC)  # 10:00 in Chicago


def whole_range() -> EventFilter:
    start = datetime.combine(END - timedelta(days=PLAN.days + 1), datetime.min.time(), UTC)
    return EventFilter(start=start, end=datetime.combine(END, datetime.min.time(), UTC))


def found(report: FlagReport) -> set[tuple[str, str, str]]:
    return {(f.workspace, f.subject, f.day.isoformat()) for f in report.findings()}


def count(engine: Engine, event_filter: EventFilter) -> int:
    with engine.connect() as connection:
        statement = select(func.count()).select_from(ActivityEvent)
        return int(connection.execute(statement.where(where_clause(event_filter))).scalar_one())


def test_the_rule_finds_exactly_its_planted_case(engine: Engine) -> None:
    report = seed(engine, PLAN)
    planted = {(c.workspace, c.subject, c.day) for c in report.planted if c.flag == RULE}
    assert len(planted) == 1
    flags = evaluate(engine, ADMIN, whole_range(), rules=(RULE,))
    assert found(flags) == planted
    (finding,) = flags.findings()
    # Three failed tries from three addresses, then a sign-in from a fourth.
    assert finding.events == 4 == count(engine, finding.event_filter)
    assert finding.detail == "4 addresses within 36 min (3 failed, 1 signed in)"
    assert flags.results[0].explanation.startswith(
        "Sign-ins or failed sign-ins for one account from 3 or more different IP addresses "
        "within 60 minutes"
    )


def test_ordinary_activity_is_not_flagged(engine: Engine) -> None:
    seed(engine, SeedPlan(**{**PLAN.__dict__, "plant": False}))
    assert evaluate(engine, ADMIN, whole_range(), rules=(RULE,)).findings() == []


def _sign_in(email: str, minute: float, ip: str, *, failed: bool = False) -> EventDraft:
    if failed:
        return draft(
            minute,
            "auth.sign_in_failed",
            email,
            occurred_at=T0 + timedelta(minutes=minute),
            outcome="failure",
            failure_reason="wrong_password",
            ip=ip,
        )
    return draft(minute, "auth.sign_in", email, occurred_at=T0 + timedelta(minutes=minute), ip=ip)


def test_the_window_and_the_number_of_addresses(engine: Engine) -> None:
    """Three addresses within the hour are flagged, and only the sign-ins are shown; two
    addresses, or three spread over more than an hour, are not."""
    ws = add_workspace(engine)
    drafts = [
        _sign_in("three@c.example", 0, "203.0.113.1", failed=True),
        draft(5, "chart.view", "three@c.example", ip="203.0.113.1"),  # not a sign-in
        _sign_in("three@c.example", 20, "198.51.100.2", failed=True),
        _sign_in("three@c.example", 50, "192.0.2.3"),
        _sign_in("three@c.example", 52, "192.0.2.3"),
        _sign_in("two@c.example", 0, "203.0.113.1"),
        _sign_in("two@c.example", 10, "198.51.100.2"),
        _sign_in("two@c.example", 20, "203.0.113.1"),
        _sign_in("slow@c.example", 0, "203.0.113.1"),
        _sign_in("slow@c.example", 45, "198.51.100.2"),
        _sign_in("slow@c.example", 90, "192.0.2.3"),
    ]
    write(engine, ws, sorted(drafts, key=lambda d: d.occurred_at))
    f = EventFilter(workspace_ids=(ws,), start=T0 - timedelta(days=1), end=T0 + timedelta(days=1))
    report = evaluate(engine, ADMIN, f, rules=(RULE,))
    (finding,) = report.findings()
    assert (finding.subject, finding.events) == ("three@c.example", 4)
    assert finding.first == T0 and finding.last == T0 + timedelta(minutes=52)
    assert finding.detail == "3 addresses within 52 min (2 failed, 2 signed in)"
    assert Term("user", "three@c.example") in finding.event_filter.terms
    assert count(engine, finding.event_filter) == 4
    # An hour and a half catches the slow one; two addresses are enough when asked.
    wider = evaluate(engine, ADMIN, f, {RULE: {"minutes": 91}}, rules=(RULE,))
    assert {x.subject for x in wider.findings()} == {"three@c.example", "slow@c.example"}
    two = evaluate(engine, ADMIN, f, {RULE: {"addresses": 2}}, rules=(RULE,))
    assert {x.subject for x in two.findings()} == {
        "three@c.example",
        "two@c.example",
        "slow@c.example",
    }
