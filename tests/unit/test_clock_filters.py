"""``weekday:``, ``hour:`` and ``status:`` filters select exactly the events a person means,
on both backends: wall-clock time in the filter's zone (across a daylight-saving change), and
the HTTP status recorded in an API request's details."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select

from nvadmin.db.models import ActivityEvent as E
from nvadmin.query.filters import WEEKDAYS, EventFilter, Term, where_clause
from tests.factories import add_workspace, draft, write

CHICAGO = ZoneInfo("America/Chicago")
# Every 97 minutes for three weeks around the spring change (2025-03-09 in Chicago).
START = datetime(2025, 2, 28, tzinfo=UTC)
INSTANTS = [START + timedelta(minutes=97 * i) for i in range(320)]


def seqs(engine: Engine, event_filter: EventFilter) -> set[int]:
    with engine.connect() as c:
        return set(c.execute(select(E.seq).where(where_clause(event_filter))).scalars())


@pytest.mark.parametrize("bounded", [True, False])
def test_weekday_and_hour_are_wall_clock_time_in_the_zone(engine: Engine, bounded: bool) -> None:
    ws = add_workspace(engine)
    write(engine, ws, [draft(occurred_at=t) for t in INSTANTS])
    start, end = (INSTANTS[0], INSTANTS[-1] + timedelta(seconds=1)) if bounded else (None, None)
    base = EventFilter(workspace_ids=(ws,), start=start, end=end, zone="America/Chicago")
    local = {seq: t.astimezone(CHICAGO) for seq, t in enumerate(INSTANTS, start=1)}
    for weekday, hour in [(0, 9), (6, 2), (5, 23), (2, 0), (6, 3)]:
        cell = base.with_terms(Term("weekday", WEEKDAYS[weekday]), Term("hour", str(hour)))
        expected = {s for s, t in local.items() if (t.weekday(), t.hour) == (weekday, hour)}
        assert seqs(engine, cell) == expected, (weekday, hour)
    # Several values of one field are either; an excluded hour is left out.
    either = base.with_terms(Term("hour", "9"), Term("hour", "17"), Term("weekday", "sat", True))
    expected = {s for s, t in local.items() if t.hour in (9, 17) and t.weekday() != 5}
    assert seqs(engine, either) == expected and expected


def test_status_is_the_recorded_http_status(engine: Engine) -> None:
    ws = add_workspace(engine)
    statuses = [200, 500, None, 429, 200, 500]
    write(
        engine,
        ws,
        [
            draft(i, action="api.request", actor_type="api_client", details=details)
            for i, details in enumerate(
                {"path": "/v1/x", "status": s} if s is not None else {"path": "/v1/x"}
                for s in statuses
            )
        ]
        + [draft(9, details={"note": '"status":500}'})],  # the text, not the field
    )
    base = EventFilter(workspace_ids=(ws,))
    assert seqs(engine, base.with_terms(Term("status", "500"))) == {2, 6}
    assert seqs(engine, base.with_terms(Term("status", "none"))) == {3, 7}
    assert seqs(engine, base.with_terms(Term("status", "200"), Term("status", "429"))) == {1, 4, 5}
    assert seqs(engine, base.with_terms(Term("status", "none", negate=True))) == {1, 2, 4, 5, 6}
    assert seqs(engine, base.with_terms(Term("status", "200", negate=True))) == {2, 3, 4, 6, 7}


def test_an_export_of_a_heat_map_cell_holds_exactly_its_events(engine: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Heat map → browser → Export: the file has the cell's events, no more, no fewer."""
    import csv

    from nvadmin.export.service import ExportRequest, export_csv
    from nvadmin.identity import Role, StaffIdentity

    ws = add_workspace(engine)
    write(engine, ws, [draft(occurred_at=t) for t in INSTANTS])
    cell = EventFilter(
        workspace_ids=(ws,),
        start=INSTANTS[0],
        end=INSTANTS[-1] + timedelta(seconds=1),
        terms=(Term("weekday", "sun"), Term("hour", "2"), Term("status", "none")),
        zone="America/Chicago",
    )
    expected = seqs(engine, cell)
    assert expected
    who = StaffIdentity(8, "cleo@nvadmin.example", "Cleo", Role.COMPLIANCE)
    out = tmp_path / "cell.csv"
    export_csv(engine, who, ExportRequest(event_filter=cell, output=out, time_zone="UTC"))
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {int(r["seq"]) for r in rows} == expected
