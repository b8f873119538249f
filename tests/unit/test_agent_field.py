"""The browser or app behind each event's user agent (``agent:`` / ``browser:``): one family,
worked out the same way by the database (search, export) and by nvadmin (table, detail pane)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from nvadmin.db.models import ActivityEvent as E
from nvadmin.export.columns import DEFAULT_COLUMNS
from nvadmin.export.service import ExportRequest, export_csv
from nvadmin.identity import Role, StaffIdentity
from nvadmin.query import fields
from nvadmin.query.fields import View, agent_family, agent_family_sql, detail_lines
from nvadmin.query.filters import EventFilter, Term, where_clause
from nvadmin.query.paging import EventPager
from nvadmin.query.search import SearchError, format_filter, parse
from tests.factories import add_workspace, draft, write

ADMIN = StaffIdentity(7, "dana@nvadmin.example", "Dana Admin", Role.ADMIN)
CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"
AGENTS: list[tuple[str | None, str | None]] = [
    (CHROME, "Chrome"),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 "
        "Version/18.1 Safari/605.1.15",
        "Safari",
    ),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox"),
    ("Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148", "iOS app"),
    (CHROME + " Edg/131.0.2903.86", "Edge"),
    ("Mozilla/5.0 (Windows NT 10.0) Epic Hyperspace/10.4 (Trident)", "Epic Hyperspace"),
    ("curl/8.5.0", "curl"),
    ("BillingExport/2.7 python-requests/2.32", "python-requests"),
    ("nvadmin/0.9 (desk-7; sam)", "nvadmin"),
    ("EhrBridge/4.2", "Other"),
    ("CHROME/1.0", "Other"),  # tokens are matched exactly, case and all
    ("", None),
    (None, None),
]


def _write_agents(engine: Engine) -> int:
    ws = add_workspace(engine)
    write(engine, ws, [draft(i, user_agent=agent) for i, (agent, _) in enumerate(AGENTS)])
    return ws


def _families(engine: Engine, event_filter: EventFilter) -> list[str | None]:
    statement = select(E.user_agent).where(where_clause(event_filter)).order_by(E.id)
    with engine.connect() as connection:
        return [agent_family(agent) for agent in connection.execute(statement).scalars()]


def test_the_database_names_the_family_as_nvadmin_does(engine: Engine) -> None:
    ws = _write_agents(engine)
    statement = select(E.user_agent, agent_family_sql()).where(E.workspace_id == ws).order_by(E.id)
    with engine.connect() as connection:
        rows = connection.execute(statement).all()
    assert [family for _, family in rows] == [family for _, family in AGENTS]
    assert [agent_family(agent) for agent, _ in rows] == [family for _, family in AGENTS]


def test_agent_qualifier_filters_by_family(engine: Engine) -> None:
    ws = _write_agents(engine)
    search = parse("agent:chrome", fields.View().zone)
    assert search.terms == (Term("agent", "Chrome"),)
    assert format_filter(search.to_filter()) == "agent:Chrome"
    assert _families(engine, search.to_filter((ws,))) == ["Chrome"]
    assert _families(engine, parse('browser:"ios APP" agent:curl').to_filter((ws,))) == [
        "iOS app",
        "curl",
    ]
    # Excluding a family keeps the events without a user agent.
    left = _families(engine, parse("-agent:Chrome -agent:other").to_filter((ws,)))
    assert left == [f for _, f in AGENTS if f not in ("Chrome", "Other")]
    with pytest.raises(SearchError, match=r"unknown browser or app 'chrom' \(did you mean Chrome"):
        parse("agent:chrom")


def test_table_and_detail_pane_show_the_family(engine: Engine) -> None:
    ws = _write_agents(engine)
    page = EventPager(engine, ADMIN, EventFilter(workspace_ids=(ws,))).first()
    by_agent = {row.user_agent: row for row in page.rows}
    row = by_agent[CHROME]
    assert ("Browser/app", "Chrome") in detail_lines(row, View())
    column = fields.TABLE.index(fields.AGENT)
    shown = fields.TABLE[column].table
    assert shown is not None and shown.hidden  # the default columns keep fitting the window
    assert shown.text(row, View()) == "Chrome"
    assert shown.filter_by is not None and shown.filter_by(row) == ("agent", "Chrome")
    assert shown.text(by_agent[None], View()) == ""


def test_export_offers_the_family_without_changing_the_default_file(
    engine: Engine, tmp_path: Path
) -> None:
    ws = _write_agents(engine)
    assert "user_agent_family" not in DEFAULT_COLUMNS
    out = tmp_path / "agents.csv"
    export_csv(
        engine,
        ADMIN,
        ExportRequest(
            event_filter=EventFilter(workspace_ids=(ws,)),
            output=out,
            time_zone="UTC",
            ticket="SUP-1",
            columns=("seq", "user_agent", "user_agent_family"),
        ),
    )
    with out.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["user_agent_family"] for r in rows] == [f or "" for _, f in AGENTS]
