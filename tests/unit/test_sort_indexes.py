"""Every order the browser offers is read from an index, never by sorting the workspace.

The plans are asked of the real planner. On PostgreSQL, sorting and sequential scans are
priced out of reach (``enable_sort``/``enable_seqscan`` off) so the tiny test table cannot
make a scan look cheaper: a plan still containing a Sort or Seq Scan means no index has the
order (as before migration 0004). SQLite says "USE TEMP B-TREE FOR ORDER BY" when it sorts.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from nvadmin.audit.paging import EventPager, Sort
from nvadmin.audit.query import EventFilter, Term
from nvadmin.auth.roles import Role, StaffIdentity
from nvadmin.ui.activity_model import SORT_KEY_OF
from tests.factories import add_workspace, draft, write
from tests.plans import explain

ADMIN = StaffIdentity(1, "dana@nvadmin.example", "Dana", Role.ADMIN)
CLICKABLE = sorted(set(SORT_KEY_OF.values()))
PAGES = ("first", "after", "last", "before")


def _plan(engine: Engine, statement: object) -> str:
    return explain(engine, statement, price_out_sorts=True)


def _seed(engine: Engine, slug: str = "riverside") -> int:
    workspace = add_workspace(engine, slug)
    write(
        engine,
        workspace,
        [draft(i, patient_id=f"P{i % 5}", ip=f"10.0.0.{i % 3}") for i in range(30)],
    )
    return workspace


@pytest.mark.parametrize("key", CLICKABLE)
@pytest.mark.parametrize("descending", [False, True])
def test_each_sort_reads_an_index(engine: Engine, key: str, descending: bool) -> None:
    workspace = _seed(engine)
    pager = EventPager(
        engine, ADMIN, EventFilter(workspace_ids=(workspace,)), Sort(key, descending)
    )
    cursor = pager.first().rows[5].cursor
    for page in PAGES:
        plan = _plan(engine, pager.statement(page, cursor))
        if engine.dialect.name == "postgresql":
            assert '"Node Type": "Sort"' not in plan, (key, page, plan)
            assert '"Node Type": "Seq Scan"' not in plan, (key, page, plan)
            assert "Index" in plan, (key, page, plan)
        else:
            assert "TEMP B-TREE" not in plan, (key, page, plan)
            assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, (key, page, plan)


@pytest.mark.parametrize("key", ["action", "outcome", "category"])
def test_filter_by_a_value_in_time_order_reads_its_index(engine: Engine, key: str) -> None:
    workspace = _seed(engine)
    value = {"action": "chart.view", "outcome": "failure", "category": "chart_views"}[key]
    event_filter = EventFilter(workspace_ids=(workspace,), terms=(Term(key, value),))
    pager = EventPager(engine, ADMIN, event_filter, Sort("time", True))
    plan = _plan(engine, pager.statement("first"))
    if engine.dialect.name == "postgresql":
        assert '"Node Type": "Sort"' not in plan, plan
        assert f"{key}_" in plan, plan
    else:
        assert "TEMP B-TREE" not in plan, plan
        assert f"{key}_" in plan, plan


@pytest.mark.parametrize("key", [k for k in CLICKABLE if k not in ("time", "workspace")])
def test_a_sort_over_several_workspaces_reads_each_workspace_index(
    engine: Engine, key: str
) -> None:
    # PostgreSQL: one Sort is allowed, the merge of each workspace's first rows.
    first, second = _seed(engine), _seed(engine, "lakeside")
    for workspaces in [(), (first, second)]:
        pager = EventPager(engine, ADMIN, EventFilter(workspace_ids=workspaces), Sort(key, True))
        cursor = pager.first().rows[5].cursor
        for page in PAGES:
            plan = _plan(engine, pager.statement(page, cursor))
            if engine.dialect.name == "postgresql":
                assert plan.count('"Node Type": "Sort"') <= 1, (key, page, plan)
                assert '"Node Type": "Seq Scan"' not in plan, (key, page, plan)
            else:
                # Each workspace's rows come straight from the order's index; the merge of
                # those few rows may sort (SQLite's "MERGE (UNION ALL)" steps).
                index = "category_time" if key == "category" else f"{key}_order"
                reads = [line for line in plan.splitlines() if "activity_events" in line]
                assert reads and all(index in line for line in reads), (key, page, plan)
