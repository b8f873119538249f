"""A case file of one workspace answers the case browser from its own, smaller index set.

The case browser is the ordinary browser over the open case file (``EventPager`` on the case's
engine), so every plan here is asked of SQLCipher's planner on a real case file, built from
either backend. SQLite names the index it reads and says "USE TEMP B-TREE FOR ORDER BY" when
it sorts; without statistics (a case file has none) its plans do not depend on the number of
rows, so a tiny case shows the plans of a large one. The one order left unindexed is the
workspace sort while "All workspaces" is chosen (every event of the case has the same
workspace: see nvadmin/casefile/schema.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text

from nvadmin.audit.verify import _fast_sql, _stream_sql
from nvadmin.casefile import schema
from nvadmin.casefile.builder import create_case_file
from nvadmin.casefile.reader import SEGMENT_SOURCE, OpenCase, open_case_file, verify_case
from nvadmin.db.models import ActivityEvent as E
from nvadmin.identity import Role, StaffIdentity
from nvadmin.query.filters import EventFilter, Term, where_clause
from nvadmin.query.paging import EventPager, Sort
from tests.factories import T0, add_member, add_workspace, draft, write
from tests.plans import explain, sorted_inside_a_part

REVIEWER = StaffIdentity(7, "casey@nvadmin.example", "Casey Reviewer", Role.COMPLIANCE)
ADMIN = StaffIdentity(1, "dana@nvadmin.example", "Dana", Role.ADMIN)
PASSPHRASE = "correct horse battery staple"
PAGES = ("first", "after", "last", "before")
MODES = ("one workspace", "all workspaces")
V2_MAIN_INDEXES = Path(__file__).parent.parent / "data" / "case-file-v2-schema1.nvcase"


@pytest.fixture
def case(engine: Engine, tmp_path: Path) -> Iterator[tuple[OpenCase, int]]:
    workspace = add_workspace(engine)
    add_workspace(engine, "lakeside", "Lakeside Clinic")  # not in the case
    add_member(engine, workspace, "ana@riverside.example", "Ana Ruiz", "physician")
    write(
        engine,
        workspace,
        [
            draft(
                i,
                action=("chart.view", "chart.print", "auth.sign_in")[i % 3],
                email=f"m{i % 4}@riverside.example",
                name=f"Member {i % 4}",
                actor_role=("physician", "nurse", None)[i % 3],
                outcome="failure" if i % 7 == 0 else "success",
                failure_reason="denied" if i % 7 == 0 else None,
                patient_id=f"P{i % 5}" if i % 6 else None,
                resource_type="chart",
                resource_id=f"R{i % 9}" if i % 4 else None,
                ip=f"10.0.0.{i % 3}",
            )
            for i in range(40)
        ],
    )
    summary = create_case_file(
        engine,
        REVIEWER,
        EventFilter(workspace_ids=(workspace,)),
        tmp_path / "case.nvcase",
        PASSPHRASE,
        source="test database",
    )
    opened = open_case_file(summary.path, PASSPHRASE)
    try:
        yield opened, workspace
    finally:
        opened.close()


def _pager(opened: OpenCase, workspace: int, mode: str, sort: Sort, **terms: str) -> EventPager:
    chosen = (workspace,) if mode == "one workspace" else ()
    event_filter = EventFilter(
        workspace_ids=chosen, terms=tuple(Term(k, v) for k, v in terms.items())
    )
    identity = REVIEWER if mode == "one workspace" else ADMIN
    return EventPager(opened.engine, identity, event_filter, sort)


def _reads(plan: str) -> list[str]:
    return [line for line in plan.splitlines() if "activity_events" in line]


def test_a_case_file_of_one_workspace_has_its_own_indexes(case: tuple[OpenCase, int]) -> None:
    opened, workspace = case
    assert opened.manifest["case_schema"] == schema.ONE_WORKSPACE
    with opened.engine.connect() as c:
        made = dict(
            c.execute(
                text(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                    "AND tbl_name = 'activity_events'"
                )
            ).all()
        )
        listed = c.execute(text("SELECT id FROM workspaces")).scalars().all()
    assert set(made) == set(schema.event_indexes())
    # None starts with the workspace: SQLite would take it for every browser query and sort.
    assert not [name for name, sql in made.items() if "(workspace_id" in sql.replace(" ", "")]
    # Only the case's workspace is listed, so "All workspaces" reads just its rows.
    assert listed == [workspace]


# The workspace sort over all workspaces is left out: a case file of one workspace offers
# no "All workspaces" (BrowserState.may_browse_all), and that sort has no index in it.
SORTS = [
    (key, mode)
    for key in [*schema.sorted_keys(), "workspace"]
    for mode in MODES
    if not (key == "workspace" and mode == "all workspaces")
]


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize(("key", "mode"), SORTS)
def test_each_sort_of_a_case_file_reads_its_index(
    case: tuple[OpenCase, int], key: str, descending: bool, mode: str
) -> None:
    opened, workspace = case
    pager = _pager(opened, workspace, mode, Sort(key, descending))
    first = pager.first()
    assert len(first.rows) > 5
    index = "time_order" if key in ("time", "workspace") else f"{key}_order"
    for page in PAGES:
        plan = explain(opened.engine, pager.statement(page, first.rows[5].cursor))
        reads = _reads(plan)
        assert reads, plan
        for line in reads:
            assert f"ix_case_events_{index}" in line and "INDEX" in line, (key, page, plan)
        if page in ("first", "last"):
            assert "TEMP B-TREE" not in plan, (key, page, plan)
        assert not sorted_inside_a_part(plan), (key, page, plan)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("field", "value", "index"),
    [
        ("patient", "P1", "patient_order"),
        ("user", "m1@riverside.example", "user_time"),
        ("action", "chart.print", "action_order"),
        ("outcome", "failure", "outcome_order"),
        ("category", "chart_views", "category_order"),
        ("ip", "10.0.0.1", "ip_order"),
        ("resource", "R1", "resource_order"),
    ],
)
def test_a_search_in_time_order_reads_an_index(
    case: tuple[OpenCase, int], field: str, value: str, index: str, mode: str
) -> None:
    opened, workspace = case
    pager = _pager(opened, workspace, mode, Sort("time", True), **{field: value})
    assert pager.first().rows
    plan = explain(opened.engine, pager.statement("first"))
    reads = _reads(plan)
    assert reads and all(f"ix_case_events_{index}" in line for line in reads), plan
    assert "TEMP B-TREE" not in plan, plan


def test_a_time_range_reads_the_time_index(case: tuple[OpenCase, int]) -> None:
    opened, workspace = case
    event_filter = EventFilter(
        workspace_ids=(workspace,), start=T0 + timedelta(minutes=5), end=T0 + timedelta(hours=1)
    )
    pager = EventPager(opened.engine, REVIEWER, event_filter, Sort("time", True))
    assert len(pager.first().rows) == 35
    plan = explain(opened.engine, pager.statement("first"))
    assert "ix_case_events_time_order (occurred_at>? AND occurred_at<?)" in plan, plan
    assert "TEMP B-TREE" not in plan, plan


def test_counting_and_verifying_read_the_chain_index(case: tuple[OpenCase, int]) -> None:
    """The workspace's count reads the narrow chain index, not the events; verification
    walks the chain from it (sorting at most the rows of one ``seq``, never the case)."""
    opened, workspace = case
    count = select(func.count()).select_from(E).where(where_clause(EventFilter((workspace,))))
    plan = explain(opened.engine, count)
    assert "COVERING INDEX ix_case_events_chain" in plan, plan
    # Both passes read the case's events and their chain context each from its own index,
    # merged: a sort of every row would hold the whole case in memory (temp_store = MEMORY).
    with opened.engine.connect() as c:
        raw = c.connection.driver_connection
        assert raw is not None
        for sql, arms in (
            _fast_sql("sqlite", SEGMENT_SOURCE, "?"),
            _stream_sql("sqlite", SEGMENT_SOURCE, "?"),
        ):
            lines = [
                r[-1] for r in raw.execute(f"EXPLAIN QUERY PLAN {sql}", (workspace, 1, 40) * arms)
            ]
            assert "MERGE (UNION ALL)" in lines, lines
            assert any("ix_case_events_chain (seq>? AND seq<?)" in line for line in lines), lines
            assert "USE TEMP B-TREE FOR ORDER BY" not in lines, lines
    (result,) = verify_case(opened, REVIEWER)
    assert result.intact and result.events_verified == 40


def test_a_case_file_of_several_workspaces_keeps_the_main_indexes(
    engine: Engine, tmp_path: Path
) -> None:
    first, second = add_workspace(engine), add_workspace(engine, "lakeside", "Lakeside Clinic")
    write(engine, first, [draft(i) for i in range(3)])
    write(engine, second, [draft(i) for i in range(2)])
    summary = create_case_file(
        engine,
        ADMIN,
        EventFilter(workspace_ids=(first, second)),
        tmp_path / "two.nvcase",
        PASSPHRASE,
        source="test database",
    )
    opened = open_case_file(summary.path, PASSPHRASE)
    try:
        assert opened.manifest["case_schema"] == schema.SEVERAL_WORKSPACES
        with opened.engine.connect() as c:
            names = c.execute(
                text("SELECT name FROM sqlite_master WHERE tbl_name = 'activity_events'")
            ).scalars()
            assert "ix_activity_events_workspace_patient_order" in set(names)
        assert [s["matching_events"] for s in opened.manifest["segments"]] == [3, 2]
        assert all(r.intact for r in verify_case(opened, ADMIN))
    finally:
        opened.close()


def test_a_version_2_case_file_with_the_main_indexes_still_opens_and_browses() -> None:
    """Written by nvadmin before case schema 2 (the events of the ``clinic`` of
    test_casefile.py matching its patient), with the main database's 14 event indexes."""
    opened = open_case_file(V2_MAIN_INDEXES, PASSPHRASE)
    try:
        assert "case_schema" not in opened.manifest and opened.in_place
        with opened.engine.connect() as c:
            names = set(
                c.execute(text("SELECT name FROM sqlite_master WHERE type = 'index'")).scalars()
            )
        assert "ix_activity_events_workspace_patient_order" in names
        assert not names & set(schema.event_indexes())
        workspace = opened.manifest["workspaces"][0]["id"]
        pager = EventPager(
            opened.engine, REVIEWER, EventFilter((workspace,)), Sort("patient", False)
        )
        assert len(pager.first().rows) == 10
        (result,) = verify_case(opened, REVIEWER)
        assert result.intact and result.events_verified == 37
    finally:
        opened.close()
