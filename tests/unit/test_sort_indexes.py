"""Every order the browser offers is read from an index, never by sorting the workspace.

The plans are asked of the real planner. On PostgreSQL, sorting and sequential scans are
priced out of reach (``enable_sort``/``enable_seqscan`` off) so the tiny test table cannot
make a scan look cheaper: a plan still sorting rows from a scan, or scanning sequentially,
means no index has the order (as before migration 0004). A sort of limited pages (merging a
page's two parts, or the workspaces' first rows) is allowed. SQLite names the index it reads
and says "USE TEMP B-TREE FOR ORDER BY" when it sorts.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlalchemy import Engine

from nvadmin.identity import Role, StaffIdentity
from nvadmin.query.filters import EventFilter, Term
from nvadmin.query.paging import EventPager, Sort
from nvadmin.ui.activity_model import SORT_KEY_OF
from tests.factories import add_workspace, draft, write
from tests.plans import explain, sorted_inside_a_part

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


def unbounded_sorts(plan: str) -> list[str]:
    """PostgreSQL: the Sort nodes that sort rows straight from a scan of the table, as
    opposed to a sort of pages already limited (the merge of a page's parts or of the
    workspaces' first rows, a few hundred rows at most)."""
    found: list[str] = []

    def reaches_scan(node: dict[str, Any]) -> bool:
        if node["Node Type"] == "Limit":
            return False
        if "Scan" in node["Node Type"] and node["Node Type"] != "Subquery Scan":
            return True
        return any(reaches_scan(child) for child in node.get("Plans", []))

    def walk(node: dict[str, Any]) -> None:
        if node["Node Type"] == "Sort" and reaches_scan(node):
            found.append(str(node.get("Sort Key")))
        for child in node.get("Plans", []):
            walk(child)

    walk(json.loads(plan)[0]["Plan"])
    return found


def assert_sqlite_reads_index(plan: str, key: str, page: str) -> None:
    """Every read of the events goes through the order's index; the first and last pages
    are one ordered index scan. A page after a cursor merges two ordered parts (the same
    value later in time, the values beyond), a merge SQLite may do with a small sort, but
    neither part sorts what it reads (the same value's part sorted every earlier event of
    a role, 1.3 s at 5M)."""
    index = {"time": "_time", "workspace": "_time", "category": "category_time"}
    reads = [line for line in plan.splitlines() if "activity_events" in line]
    assert reads, plan
    for line in reads:
        assert index.get(key, f"{key}_order") in line and "INDEX" in line, (key, page, plan)
    if page in ("first", "last"):
        assert "TEMP B-TREE" not in plan, (key, page, plan)
    assert not sorted_inside_a_part(plan), (key, page, plan)


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
            assert not unbounded_sorts(plan), (key, page, plan)
            assert '"Node Type": "Seq Scan"' not in plan, (key, page, plan)
            assert "Index" in plan, (key, page, plan)
        else:
            assert_sqlite_reads_index(plan, key, page)


@pytest.mark.parametrize("key", ["action", "outcome", "category"])
def test_filter_by_a_value_in_time_order_reads_its_index(engine: Engine, key: str) -> None:
    workspace = _seed(engine)
    value = {"action": "chart.view", "outcome": "failure", "category": "chart_views"}[key]
    event_filter = EventFilter(workspace_ids=(workspace,), terms=(Term(key, value),))
    pager = EventPager(engine, ADMIN, event_filter, Sort("time", True))
    plan = _plan(engine, pager.statement("first"))
    if engine.dialect.name == "postgresql":
        assert not unbounded_sorts(plan), plan
        assert f"{key}_" in plan, plan
    else:
        assert "TEMP B-TREE" not in plan, plan
        assert f"{key}_" in plan, plan


@pytest.mark.parametrize(
    ("field", "value", "index"),
    [("patient", "P1", "patient_time"), ("user", "ana@riverside.example", "actor_time")],
)
def test_a_patient_or_a_member_in_time_order_reads_their_index(
    engine: Engine, field: str, value: str, index: str
) -> None:
    """A patient's (or a member's) events in time order, and their count, read the patient's
    (member's) index, never the workspace's whole time index, which SQLite took for
    ``workspace_id = ?`` (2-5 s at 5M events). The same patient id and member in another
    workspace stay out."""
    workspace = _seed(engine)
    _seed(engine, "lakeside")
    event_filter = EventFilter(workspace_ids=(workspace,), terms=(Term(field, value),))
    pager = EventPager(engine, ADMIN, event_filter, Sort("time", True))
    rows = pager.first().rows
    assert len(rows) == (6 if field == "patient" else 30)
    assert {row.workspace_id for row in rows} == {workspace}
    assert pager.count() == len(rows)
    for page in ("first", "last"):
        plan = _plan(engine, pager.statement(page))
        if engine.dialect.name == "postgresql":
            assert not unbounded_sorts(plan), plan
            assert '"Node Type": "Seq Scan"' not in plan, plan
        else:
            reads = [line for line in plan.splitlines() if "activity_events" in line]
            assert reads and all(index in line for line in reads), plan
            assert "TEMP B-TREE" not in plan, plan


@pytest.mark.parametrize(("field", "value"), [("ip", "10.0.0.1")])
def test_a_search_by_a_sorted_nullable_column_reads_its_sort_index(
    engine: Engine, field: str, value: str
) -> None:
    """``ip:`` (like ``resource:`` and ``role:``) compares ``coalesce(ip, '')``, the
    expression of the IP sort's index, so that index is read in time order instead of the
    workspace's time index filtered by IP address (every event of the workspace for a rare
    address: 3.6 s at 5M events on SQLite)."""
    workspace = _seed(engine)
    pager = EventPager(
        engine,
        ADMIN,
        EventFilter(workspace_ids=(workspace,), terms=(Term(field, value),)),
        Sort("time", True),
    )
    rows = pager.first().rows
    assert len(rows) == 10 and {row.ip for row in rows} == {value}
    plan = _plan(engine, pager.statement("first"))
    if engine.dialect.name == "postgresql":
        assert not unbounded_sorts(plan), plan
        assert '"Node Type": "Seq Scan"' not in plan, plan
        # (the partitions' indexes are named by PostgreSQL: the condition says which)
        searched = [json.loads(f"{{{c}}}") for c in re.findall(r'"Index Cond": "[^"]*"', plan)]
        assert any(f"COALESCE({field}," in c["Index Cond"] for c in searched), plan
    else:
        reads = [line for line in plan.splitlines() if "activity_events" in line]
        assert reads and all(f"{field}_order" in line for line in reads), plan
        assert "TEMP B-TREE" not in plan, plan


def test_a_patient_over_all_workspaces_reads_a_patient_index(engine: Engine) -> None:
    """``patient:`` compares the column and the sort's ``coalesce(patient_id, '')`` (one
    index serves both in a case file); over every workspace too, the plan reads a patient
    index, never a sort of the events."""
    workspace = _seed(engine)
    _seed(engine, "lakeside")
    event_filter = EventFilter(terms=(Term("patient", "P1"),))
    pager = EventPager(engine, ADMIN, event_filter, Sort("time", True))
    assert len(pager.first().rows) == 12
    assert workspace in {row.workspace_id for row in pager.first().rows}
    plan = _plan(engine, pager.statement("first"))
    if engine.dialect.name == "postgresql":
        assert not unbounded_sorts(plan), plan
        assert '"Node Type": "Seq Scan"' not in plan, plan
        assert "patient_" in plan, plan
    else:
        reads = [line for line in plan.splitlines() if "activity_events" in line]
        assert reads and all("patient_" in line and "INDEX" in line for line in reads), plan
        assert "TEMP B-TREE" not in plan, plan


@pytest.mark.parametrize("key", [k for k in CLICKABLE if k not in ("time", "workspace")])
def test_a_sort_over_several_workspaces_reads_each_workspace_index(
    engine: Engine, key: str
) -> None:
    first, second = _seed(engine), _seed(engine, "lakeside")
    for workspaces in [(), (first, second)]:
        pager = EventPager(engine, ADMIN, EventFilter(workspace_ids=workspaces), Sort(key, True))
        cursor = pager.first().rows[5].cursor
        for page in PAGES:
            plan = _plan(engine, pager.statement(page, cursor))
            if engine.dialect.name == "postgresql":
                assert not unbounded_sorts(plan), (key, page, plan)
                assert '"Node Type": "Seq Scan"' not in plan, (key, page, plan)
            else:
                # Each workspace's rows come straight from the order's index; the merge of
                # those few rows may sort (SQLite's "MERGE (UNION ALL)" steps).
                index = "category_time" if key == "category" else f"{key}_order"
                reads = [line for line in plan.splitlines() if "activity_events" in line]
                assert reads and all(index in line for line in reads), (key, page, plan)
                assert not sorted_inside_a_part(plan), (key, page, plan)
