"""Flag rules over a range that does not start on the hour or at midnight (a "last 24 hours"
range, a range a reviewer typed): a finding rests only on the events its filter shows, so its
detail and its event count agree and nothing outside the range is judged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from nvadmin.analysis.flags.evaluation import evaluate
from nvadmin.identity import Role, StaffIdentity
from nvadmin.query.filters import EventFilter
from tests.factories import add_workspace, draft, write

ADMIN = StaffIdentity(1, "dana@nvadmin.example", "Dana Admin", Role.ADMIN)
HOUR = datetime(2025, 3, 12, 20, 0, tzinfo=UTC)  # 15:00 in Chicago


def api_call(at: datetime, failed: bool) -> object:
    return draft(
        occurred_at=at,
        action="api.request",
        email=None,
        name="Billing Export",
        actor_type="api_client",
        outcome="failure" if failed else "success",
        details={"method": "GET", "path": "/v1/notes", "status": 500 if failed else 200},
    )


def test_an_api_hour_cut_by_the_range_start_is_judged_on_its_events_in_the_range(
    engine: Engine,
) -> None:
    """60 failing requests in the first half of an hour and 10 good ones in its second half:
    a range starting at half past shows 10 good requests, which is no error spike."""
    ws = add_workspace(engine)
    calls = [api_call(HOUR + timedelta(seconds=25 * i), True) for i in range(60)]
    calls += [api_call(HOUR + timedelta(minutes=40, seconds=30 * i), False) for i in range(10)]
    write(engine, ws, calls)  # type: ignore[arg-type]
    rules = ("api_spike",)
    whole = EventFilter(
        workspace_ids=(ws,), start=HOUR - timedelta(days=1), end=HOUR + timedelta(days=1)
    )
    (spike,) = evaluate(engine, ADMIN, whole, rules=rules).findings()
    assert spike.events == 70 and spike.detail.startswith("70 requests in 1 h, 60 failed")

    cut = EventFilter(
        workspace_ids=(ws,), start=HOUR + timedelta(minutes=30), end=HOUR + timedelta(days=1)
    )
    assert evaluate(engine, ADMIN, cut, rules=rules).findings() == []

    # Cut so that enough failing requests stay: the finding counts only those, from the cut.
    late = EventFilter(
        workspace_ids=(ws,), start=HOUR + timedelta(minutes=5), end=HOUR + timedelta(days=1)
    )
    report = evaluate(engine, ADMIN, late, {"api_spike": {"min_requests": 20}}, rules=rules)
    (kept,) = report.findings()
    in_range = 70 - 12  # the failures at 0:00, 0:25, ... 4:35 are before the cut
    assert kept.events == in_range and kept.first == late.start
    assert kept.detail.startswith(f"{in_range} requests in 1 h, 48 failed")
