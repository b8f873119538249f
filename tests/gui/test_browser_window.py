"""The activity browser window, end to end on real databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select

from nvadmin.audit.query import EventFilter, Term
from nvadmin.auth.roles import Role, StaffIdentity
from nvadmin.context import Context
from nvadmin.db.models import ActivityEvent
from nvadmin.ui.main_window import MainWindow
from tests.factories import T0, add_member, add_workspace, draft, write

ADMIN = StaffIdentity(
    id=7, email="dana@nvadmin.example", display_name="Dana Admin", role=Role.ADMIN
)
SUPPORT = StaffIdentity(
    id=8, email="sam@nvadmin.example", display_name="Sam Support", role=Role.SUPPORT
)


def seed(engine: Engine) -> tuple[int, int]:
    riverside = add_workspace(engine)
    hillside = add_workspace(engine, "hillside", "Hillside Pediatrics", "Europe/Berlin")
    add_member(engine, riverside, "ana@riverside.example", "Ana Ruiz", "physician")
    add_member(engine, riverside, "bo@riverside.example", "Bo Chen", "nurse")
    drafts = []
    for i in range(450):
        if i % 5 == 0:
            drafts.append(
                draft(
                    i,
                    "auth.sign_in_failed",
                    email="bo@riverside.example",
                    name="Bo Chen",
                    outcome="failure",
                    failure_reason="bad password",
                    ip="10.0.0.9",
                )
            )
        else:
            drafts.append(
                draft(
                    i,
                    "chart.view",
                    patient_id=f"P{i % 9}",
                    actor_role="physician",
                    ip="10.0.0.1",
                    details={"fields": ["allergies"], "n": i},
                )
            )
    write(engine, riverside, drafts)
    write(
        engine,
        hillside,
        [
            draft(i, "api.request", actor_type="api_client", name="Billing sync", email=None)
            for i in range(30)
        ],
    )
    return riverside, hillside


@pytest.fixture
def context(db_url: str) -> Iterator[Context]:
    ctx = Context.create(db_url)
    yield ctx
    ctx.dispose()


def open_window(qtbot, context: Context, identity: StaffIdentity = ADMIN) -> MainWindow:  # type: ignore[no-untyped-def]
    window = MainWindow(context, identity)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(
        lambda: (
            window.model.rowCount() > 0
            or (window.model.event_filter is not None and not window.model.loading)
        ),
        timeout=10_000,
    )
    qtbot.waitUntil(lambda: not window.model.loading, timeout=10_000)
    return window


def count_views(engine: Engine, workspace_id: int) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count()).where(
                    ActivityEvent.action == "activity_log.view",
                    ActivityEvent.workspace_id == workspace_id,
                )
            ).scalar_one()
        )


def test_window_shows_first_page_and_logs_one_view(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    riverside, _ = seed(context.engine)
    window = open_window(qtbot, context)
    # The first clinic by name opens first.
    assert window.current_workspace().slug == "hillside"
    assert window.display_zone().key == "Europe/Berlin"
    window.apply_filter(EventFilter(workspace_ids=(riverside,)))
    qtbot.waitUntil(lambda: window.model.rowCount() == 200, timeout=10_000)
    assert window.current_filter().workspace_ids == (riverside,)
    assert window.display_zone().key == "America/Chicago"
    assert window.model.rowCount() == 200
    qtbot.waitUntil(lambda: window.model.count is not None, timeout=10_000)
    assert window.model.count == 451  # 450 events + this view
    assert count_views(context.engine, riverside) == 1
    # Newest first: the view event just written is on top.
    assert window.model.row_at(0).action == "activity_log.view"
    window.apply_filter(
        EventFilter(workspace_ids=(riverside,), terms=(Term("outcome", "failure"),))
    )
    qtbot.waitUntil(lambda: window.model.count == 90, timeout=10_000)
    assert count_views(context.engine, riverside) == 2
    window.refresh()
    qtbot.waitUntil(lambda: not window.model.loading, timeout=10_000)
    assert count_views(context.engine, riverside) == 2
