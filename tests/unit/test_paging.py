"""Keyset pages agree with a plain SQL ORDER BY on both backends, at any depth."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import StaticPool

from nvadmin.db import migrate
from nvadmin.errors import AccessDenied
from nvadmin.identity import Role, StaffIdentity
from nvadmin.query.filters import EventFilter, Term
from nvadmin.query.paging import SORT_KEYS, EventCount, EventPager, Sort
from tests.factories import T0, add_workspace, draft, write

ADMIN = StaffIdentity(1, "dana@nvadmin.example", "Dana", Role.ADMIN)
SUPPORT = StaffIdentity(2, "sam@nvadmin.example", "Sam", Role.SUPPORT)

NULLABLE = {
    "user": "actor_email",
    "role": "actor_role",
    "patient": "patient_id",
    "resource": "resource_id",
    "ip": "ip",
}
PLAIN = {
    "time": "occurred_at",
    "workspace": "workspace_id",
    "member": "actor_name",
    "action": "action",
    "category": "category",
    "outcome": "outcome",
}


def seed(engine: Engine, slug: str = "riverside") -> int:
    workspace = add_workspace(engine, slug)
    drafts = []
    for i in range(97):
        drafts.append(
            draft(
                # Times out of id order, two events per minute: ties in value go by time,
                # ties in time by id.
                (i * 37) % 97 // 2,
                ["chart.view", "auth.sign_in", "api.request", "patient_record.update"][i % 4],
                email=None if i % 6 == 0 else f"u{i % 5}@riverside.example",
                name=f"User {i % 5}",
                actor_role=None if i % 3 == 0 else ["physician", "nurse"][i % 2],
                patient_id=None if i % 2 == 0 else f"P{i % 7}",
                resource_id=None if i % 5 == 0 else f"R{i % 3}",
                ip=None if i % 4 == 0 else f"10.0.0.{i % 3}",
                outcome="failure" if i % 9 == 0 else "success",
            )
        )
    write(engine, workspace, drafts)
    return workspace


def expected_ids(engine: Engine, key: str, descending: bool, where: str = "1=1") -> list[int]:
    column = NULLABLE.get(key)
    expression = f"coalesce({column}, '')" if column else PLAIN[key]
    direction = "DESC" if descending else "ASC"
    then_time = "" if key == "time" else f", occurred_at {direction}"
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                f"SELECT id FROM activity_events WHERE {where} "
                f"ORDER BY {expression} {direction}{then_time}, id {direction}"
            )
        )
        return [r[0] for r in rows]


@pytest.mark.parametrize("key", sorted(SORT_KEYS))
@pytest.mark.parametrize("descending", [False, True])
def test_every_sort_key_pages_forward_and_back(engine: Engine, key: str, descending: bool) -> None:
    workspace = seed(engine)
    pager = EventPager(
        engine, ADMIN, EventFilter(workspace_ids=(workspace,)), Sort(key, descending), page_size=10
    )
    page = pager.first()
    forward = list(page.rows)
    while not page.at_end:
        page = pager.after(page.rows[-1].cursor)
        forward += page.rows
    assert [r.id for r in forward] == expected_ids(engine, key, descending)
    page = pager.last()
    backward = list(page.rows)
    while not page.at_start:
        page = pager.before(page.rows[0].cursor)
        backward = list(page.rows) + backward
    assert [r.id for r in backward] == [r.id for r in forward]


@pytest.mark.parametrize("key", sorted(SORT_KEYS))
@pytest.mark.parametrize("descending", [False, True])
def test_every_sort_pages_across_workspaces(engine: Engine, key: str, descending: bool) -> None:
    # Several workspaces are read one by one from their indexes and merged: the merged
    # order must be the same single order a plain ORDER BY gives.
    first, _second, third = seed(engine), seed(engine, "lakeside"), seed(engine, "hillside")
    for workspaces, where in [
        ((), "1=1"),
        ((first, third), f"workspace_id IN ({first}, {third})"),
    ]:
        pager = EventPager(
            engine, ADMIN, EventFilter(workspace_ids=workspaces), Sort(key, descending), page_size=9
        )
        page = pager.first()
        forward = list(page.rows)
        while not page.at_end:
            page = pager.after(page.rows[-1].cursor)
            forward += page.rows
        assert [r.id for r in forward] == expected_ids(engine, key, descending, where)
        page = pager.last()
        backward = list(page.rows)
        while not page.at_start:
            page = pager.before(page.rows[0].cursor)
            backward = list(page.rows) + backward
        assert [r.id for r in backward] == [r.id for r in forward]


def test_filtered_pages_and_count(engine: Engine) -> None:
    workspace = seed(engine)
    event_filter = EventFilter(
        workspace_ids=(workspace,),
        terms=(Term("outcome", "success"), Term("ip", "10.0.0.1", negate=True)),
    )
    pager = EventPager(engine, ADMIN, event_filter, Sort("ip", False), page_size=7)
    seen = []
    page = pager.first()
    seen += page.rows
    while not page.at_end:
        page = pager.after(page.rows[-1].cursor)
        seen += page.rows
    where = "outcome = 'success' AND (ip IS NULL OR ip != '10.0.0.1')"
    assert [r.id for r in seen] == expected_ids(engine, "ip", False, where)
    assert pager.count() == len(seen)


@pytest.mark.parametrize("descending", [False, True])
def test_go_to_time_lands_on_first_event_at_or_after(engine: Engine, descending: bool) -> None:
    workspace = seed(engine)
    pager = EventPager(
        engine,
        ADMIN,
        EventFilter(workspace_ids=(workspace,)),
        Sort("time", descending),
        page_size=10,
    )
    page = pager.at_time(T0 + timedelta(minutes=10, seconds=30))
    anchor = page.rows[page.anchor]
    assert anchor.occurred_at == T0 + timedelta(minutes=11)
    assert anchor.id == min(r.id for r in page.rows if r.occurred_at == anchor.occurred_at)
    # The rows around it are contiguous in display order.
    ids = [r.id for r in page.rows]
    full = expected_ids(engine, "time", descending)
    start = full.index(ids[0])
    assert full[start : start + len(ids)] == ids
    # Past the newest event: the nearest event is the newest one.
    late = pager.at_time(T0 + timedelta(days=30))
    assert late.rows[late.anchor].id == expected_ids(engine, "time", True)[0]


def test_all_workspaces_needs_the_admin_role(engine: Engine) -> None:
    seed(engine)
    with pytest.raises(AccessDenied):
        EventPager(engine, SUPPORT, EventFilter())
    assert EventPager(engine, ADMIN, EventFilter()).count() == 97


def test_unknown_sort_key_is_refused_before_sql() -> None:
    for key in ("id; drop table activity_events", "details", "hash"):
        with pytest.raises(ValueError):
            Sort(key)


def test_in_memory_sqlite_engine_works() -> None:
    # Offline case files open as an in-memory SQLite database: no file path at all.
    engine = create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )
    migrate.upgrade(engine)
    workspace = seed(engine)
    pager = EventPager(engine, ADMIN, EventFilter(workspace_ids=(workspace,)), page_size=50)
    page = pager.first()
    assert len(page.rows) == 50 and not page.at_end
    assert len(pager.after(page.rows[-1].cursor).rows) == 47


@pytest.mark.pg
def test_slow_query_is_stopped_with_a_clear_message(pg_url: str) -> None:
    from nvadmin.db.engine import describe, make_engine

    engine = make_engine(pg_url)
    try:
        workspace = seed(engine)
        pager = EventPager(engine, ADMIN, EventFilter(workspace_ids=(workspace,)), timeout_ms=50)
        original = pager._fetch

        def slow(statement, token):  # type: ignore[no-untyped-def]
            from nvadmin.query.paging import browse_connection

            with browse_connection(engine, 50, token) as connection:
                connection.exec_driver_sql("SELECT pg_sleep(2)")
            return original(statement, token)

        pager._fetch = slow  # type: ignore[method-assign]
        with pytest.raises(Exception) as caught:
            pager.first()
        assert describe(caught.value) == (
            "the query took too long and was stopped: narrow your filters"
        )
    finally:
        engine.dispose()


def test_count_labels_say_which_are_approximate() -> None:
    assert EventCount(1, exact=True).label() == "1 event"
    assert EventCount(5_000_000, exact=True).label() == "5,000,000 events"
    assert EventCount(4_999_816, exact=False).label() == "about 5.0M events (estimate; counting…)"
    assert EventCount(999_700, exact=False).label() == "about 1.0M events (estimate; counting…)"
    assert EventCount(13_290, exact=False).label() == "about 13k events (estimate; counting…)"
    assert EventCount(10_000, exact=False, more_than=True).label() == (
        "more than 10,000 events (counting…)"
    )
