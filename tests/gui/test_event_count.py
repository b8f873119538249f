"""The match count in the status bar: an approximation at once, the exact number when ready."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt
from sqlalchemy import func, select

from nvadmin.context import Context
from nvadmin.db.models import ActivityEvent
from nvadmin.identity import Role, StaffIdentity
from nvadmin.query.paging import EventCount
from nvadmin.ui.main_window import MainWindow
from tests.factories import add_workspace, draft, sign_in_as, write

ADMIN = StaffIdentity(id=7, email="dana@nvadmin.example", display_name="Dana", role=Role.ADMIN)


@pytest.fixture
def context(db_url: str) -> Iterator[Context]:
    ctx = Context.create(db_url)
    yield ctx
    ctx.dispose()


def test_large_result_shows_an_estimate_then_the_exact_count(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    workspace = add_workspace(context.engine)
    write(context.engine, workspace, [draft(i, ip=f"10.0.0.{i % 4}") for i in range(300)])
    with context.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # The planner's statistics, as autovacuum keeps them on a real server.
            connection.exec_driver_sql("ANALYZE activity_events")
            connection.commit()
    window = MainWindow(context, sign_in_as(context, ADMIN))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.state.loaded and not window.model.loading)
    # Counting 50 events is "quick"; more than that shows an approximation first.
    window.model.quick_count_limit = 50
    seen: list[tuple[EventCount | None, str]] = []
    window.model.count_changed.connect(lambda c: seen.append((c, window.status.count_label.text())))
    bar = window.filter_bar
    bar.search_edit.clear()
    qtbot.keyClicks(bar.search_edit, "-ip:10.0.0.3")
    with qtbot.waitSignal(
        window.model.count_changed,
        check_params_cb=lambda c: c is not None and c.exact,
    ):
        qtbot.keyClick(bar.search_edit, Qt.Key.Key_Return)
    with context.engine.connect() as connection:
        exact = connection.execute(
            select(func.count()).where(
                ActivityEvent.workspace_id == workspace, ActivityEvent.ip != "10.0.0.3"
            )
        ).scalar_one()
    assert exact > 50  # 225 events and the view just logged
    counts = [c for c, _ in seen if c is not None]
    labels = [label for c, label in seen if c is not None]
    first, last = counts[0], counts[-1]
    assert not first.exact and window.model.count == exact
    if context.engine.dialect.name == "postgresql":
        assert labels[0].startswith("about ") and "estimate" in labels[0], labels
    else:
        assert labels[0] == "more than 50 events (counting…)", labels
    assert last.exact and last.value == exact
    assert labels[-1] == f"{exact} events"


def test_small_result_is_exact_at_once(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    workspace = add_workspace(context.engine)
    write(context.engine, workspace, [draft(i) for i in range(30)])
    window = MainWindow(context, sign_in_as(context, ADMIN))
    qtbot.addWidget(window)
    seen: list[EventCount | None] = []
    window.model.count_changed.connect(seen.append)
    window.show()
    qtbot.waitUntil(lambda: window.model.count is not None)
    counts = [c for c in seen if c is not None]
    assert len(counts) == 1 and counts[0].exact and counts[0].value == 31  # and the view
    assert window.status.count_label.text() == "31 events"
