"""The activity browser window, end to end on real databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtCore import Qt
from sqlalchemy import Engine, func, select

from nvadmin.context import Context
from nvadmin.db.models import ActivityEvent
from nvadmin.identity import Role, StaffIdentity
from nvadmin.query.filters import EventFilter, Term
from nvadmin.ui.activity_model import EventRole
from nvadmin.ui.main_window import MainWindow
from tests.factories import T0, add_member, add_workspace, draft, sign_in_as, write

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
    # On PostgreSQL the window runs as that role's own staff login, as on a real desktop.
    window = MainWindow(context, sign_in_as(context, identity))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(
        lambda: (
            window.model.rowCount() > 0
            or (window.model.event_filter is not None and not window.model.loading)
        ),
    )
    qtbot.waitUntil(lambda: not window.model.loading)
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
    qtbot.waitUntil(lambda: window.model.rowCount() == 200)
    assert window.current_filter().workspace_ids == (riverside,)
    assert window.display_zone().key == "America/Chicago"
    assert window.model.rowCount() == 200
    qtbot.waitUntil(lambda: window.model.count is not None)
    assert window.model.count == 451  # 450 events + this view
    assert count_views(context.engine, riverside) == 1
    # Newest first: the view event just written is on top.
    assert window.model.row_at(0).action == "activity_log.view"
    window.apply_filter(
        EventFilter(workspace_ids=(riverside,), terms=(Term("outcome", "failure"),))
    )
    qtbot.waitUntil(lambda: window.model.count == 90)
    assert count_views(context.engine, riverside) == 2
    window.refresh()
    qtbot.waitUntil(lambda: not window.model.loading)
    assert count_views(context.engine, riverside) == 2


def sql_count(engine: Engine, *conditions) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count()).select_from(ActivityEvent).where(*conditions)
            ).scalar_one()
        )


def wait_loaded(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: not window.model.loading and window.model.count is not None)


def test_every_filter_widget_matches_an_independent_count(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    riverside, _ = seed(context.engine)
    window = open_window(qtbot, context)
    window.apply_filter(EventFilter(workspace_ids=(riverside,), include_log_access=False))
    wait_loaded(qtbot, window)
    bar = window.filter_bar
    E = ActivityEvent
    base = (E.workspace_id == riverside, E.category != "activity_log_access")
    assert window.model.count == sql_count(context.engine, *base) == 450

    def check(*conditions) -> None:  # type: ignore[no-untyped-def]
        bar.flush()
        wait_loaded(qtbot, window)
        assert window.model.count == sql_count(context.engine, *base, *conditions)

    bar.choice_boxes["outcome"].setCurrentIndex(bar.choice_boxes["outcome"].findData("failure"))
    bar.choice_boxes["outcome"].activated.emit(bar.choice_boxes["outcome"].currentIndex())
    check(E.outcome == "failure")
    assert "outcome:failure" in bar.search_edit.text()
    bar.choice_boxes["outcome"].setCurrentIndex(0)
    bar.choice_boxes["outcome"].activated.emit(0)
    check()
    qtbot.keyClicks(bar.line_edits["patient"], "P3")
    check(E.patient_id == "P3")
    bar.line_edits["patient"].clear()
    bar.line_edits["patient"].textEdited.emit("")
    qtbot.keyClicks(bar.line_edits["ip"], "10.0.0.9")
    check(E.ip == "10.0.0.9")
    bar.line_edits["ip"].clear()
    bar.line_edits["ip"].textEdited.emit("")
    qtbot.keyClicks(bar.members_edit, "bo@riverside.example, ana@riverside.example")
    check(E.actor_email.in_(["bo@riverside.example", "ana@riverside.example"]))
    bar.members_edit.clear()
    bar.members_edit.textEdited.emit("")
    bar.category_actions["failed_sign_ins"].setChecked(True)
    check(E.category == "failed_sign_ins")
    bar.category_actions["chart_views"].setChecked(True)
    check(E.category.in_(["failed_sign_ins", "chart_views"]))
    bar.category_actions["failed_sign_ins"].setChecked(False)
    bar.category_actions["chart_views"].setChecked(False)
    bar.choice_boxes["action"].setCurrentIndex(bar.choice_boxes["action"].findData("chart.view"))
    bar.choice_boxes["action"].activated.emit(bar.choice_boxes["action"].currentIndex())
    check(E.action == "chart.view")
    bar.choice_boxes["action"].setCurrentIndex(0)
    bar.choice_boxes["action"].activated.emit(0)
    qtbot.keyClicks(bar.text_edit, "allergies")
    check(E.details.like("%allergies%"))
    bar.text_edit.clear()
    bar.text_edit.textEdited.emit("")
    # Custom range: March 3 (Chicago) to March 3, the whole day; T0 is 03:00 Chicago time.
    bar.range_box.setCurrentIndex(bar.range_box.findData("custom"))
    bar.range_box.activated.emit(bar.range_box.currentIndex())
    from PySide6.QtCore import QDate

    bar.from_date.setDate(QDate(2025, 3, 3))
    bar.to_date.setDate(QDate(2025, 3, 3))
    end_of_day = datetime(2025, 3, 4, 6, tzinfo=UTC)  # midnight in Chicago, in UTC
    check(E.occurred_at < end_of_day)
    assert "on:2025-03-03" in bar.search_edit.text()
    bar.to_date.setDate(QDate(2025, 3, 2))  # an end before the start is said, never moved
    assert bar.to_date.date() == QDate(2025, 3, 2) and bar.has_error()
    bar.from_date.setDate(QDate(2025, 3, 4))
    bar.to_date.setDate(QDate(2025, 3, 5))
    check(E.occurred_at >= end_of_day)
    assert window.model.count == 0


def test_search_bar_sync_and_errors_at_the_spot(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    riverside, _ = seed(context.engine)
    window = open_window(qtbot, context)
    window.apply_filter(EventFilter(workspace_ids=(riverside,)))
    wait_loaded(qtbot, window)
    before = window.model.generation
    bar = window.filter_bar
    bar.search_edit.setText("patient:P1 usr:bo")
    qtbot.keyClick(bar.search_edit, Qt.Key.Key_Return)
    assert bar.has_error()
    assert "did you mean user:?" in bar.error_label.text()
    assert bar.search_edit.selectedText() == "usr"
    assert window.model.generation == before  # nothing was run
    bar.search_edit.setText("user:bo@riverside.example outcome:failure -ip:10.0.0.1")
    qtbot.keyClick(bar.search_edit, Qt.Key.Key_Return)
    assert not bar.has_error()
    wait_loaded(qtbot, window)
    assert bar.choice_boxes["outcome"].currentData() == "failure"
    assert bar.members_edit.text() == "bo@riverside.example"
    assert window.model.count == sql_count(
        context.engine,
        ActivityEvent.workspace_id == riverside,
        ActivityEvent.actor_email == "bo@riverside.example",
        ActivityEvent.outcome == "failure",
    )
    # Esc clears every filter and runs.
    qtbot.keyClick(bar.search_edit, Qt.Key.Key_Escape)
    assert bar.search_edit.text() == ""
    wait_loaded(qtbot, window)
    assert window.current_filter().terms == ()


def test_stale_results_are_dropped(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    riverside, _ = seed(context.engine)
    window = open_window(qtbot, context)
    model = window.model
    first = EventFilter(workspace_ids=(riverside,), terms=(Term("outcome", "failure"),))
    second = EventFilter(workspace_ids=(riverside,), terms=(Term("patient", "P2"),))
    model.run(first, log_view=False)
    model.run(second, log_view=False)
    wait_loaded(qtbot, window)
    assert {r.patient_id for r in model.rows()} == {"P2"}
    # A page of an older generation arriving late changes nothing.
    from nvadmin.query.paging import EventPager

    stale = EventPager(context.engine, ADMIN, first).first()
    model._on_page(model.generation - 1, stale, model._replace)
    assert {r.patient_id for r in model.rows()} == {"P2"}


def test_sorting_by_header_is_done_in_sql(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    riverside, _ = seed(context.engine)
    window = open_window(qtbot, context)
    window.apply_filter(EventFilter(workspace_ids=(riverside,), include_log_access=False))
    wait_loaded(qtbot, window)
    from nvadmin.query import fields
    from nvadmin.ui.activity_model import column_of

    window.table.horizontalHeader().setSortIndicator(
        column_of(fields.PATIENT), Qt.SortOrder.AscendingOrder
    )
    qtbot.waitUntil(lambda: not window.model.loading)
    rows = window.model.rows()
    keys = [(r.patient_id or "", r.id) for r in rows]
    assert keys == sorted(keys)
    assert rows[0].patient_id is None  # no patient sorts first, on both backends
    # Details cannot be sorted: the indicator goes back to the patient column.
    window.table.horizontalHeader().setSortIndicator(
        column_of(fields.DETAILS), Qt.SortOrder.AscendingOrder
    )
    assert window.table.horizontalHeader().sortIndicatorSection() == column_of(fields.PATIENT)


def test_deep_scroll_keeps_a_bounded_window(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    riverside, _ = seed(context.engine)
    from nvadmin.ui.activity_model import ActivityModel

    model = ActivityModel()
    model.set_source(context.engine, ADMIN)
    model.page_size, model.max_rows = 50, 120
    model.run(EventFilter(workspace_ids=(riverside,)), log_view=False)
    qtbot.waitUntil(lambda: model.count is not None and not model.loading)
    seen = [r.id for r in model.rows()]
    while not model.at_end:
        model.fetch_after()
        qtbot.waitUntil(lambda: not model.loading)
        assert model.rowCount() <= 120
        known = set(seen)
        seen += [r.id for r in model.rows() if r.id not in known]
    assert len(seen) == len(set(seen)) == model.count
    assert not model.at_start  # the top was dropped
    while not model.at_start:
        model.fetch_before()
        qtbot.waitUntil(lambda: not model.loading)
        assert model.rowCount() <= 120
    assert model.rows()[0].id == seen[0]


def test_jump_to_end_and_go_to_time(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    riverside, _ = seed(context.engine)
    window = open_window(qtbot, context)
    window.apply_filter(EventFilter(workspace_ids=(riverside,), include_log_access=False))
    wait_loaded(qtbot, window)
    window.table.setFocus()
    qtbot.keyClick(window.table, Qt.Key.Key_End, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.model.at_end and not window.model.loading)
    current = window.model.data(window.table.currentIndex(), EventRole)
    assert current.occurred_at == T0  # the oldest event, at the end of newest-first order
    window.go_to_time(T0 + timedelta(minutes=100, seconds=1))
    qtbot.waitUntil(lambda: not window.model.loading)
    current = window.model.data(window.table.currentIndex(), EventRole)
    assert current.occurred_at == T0 + timedelta(minutes=101)
    assert window.detail.shown == current
    assert "Details:" in window.detail.text.toPlainText()


def test_copy_rows_as_tab_separated_text(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    riverside, _ = seed(context.engine)
    window = open_window(qtbot, context)
    window.apply_filter(EventFilter(workspace_ids=(riverside,), include_log_access=False))
    wait_loaded(qtbot, window)
    qtbot.waitUntil(lambda: window.model.rowCount() == 200)
    window.table.setFocus()
    qtbot.waitUntil(
        lambda: (window.table.selectRow(0), window.browser_table.selected_rows() == [0])[1]
    )
    lines = window.browser_table.selection_as_text().splitlines()
    qtbot.keyClick(window.table, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    from PySide6.QtGui import QGuiApplication

    assert QGuiApplication.clipboard().text().splitlines() in ([], lines)  # no clipboard offscreen
    assert lines[0].split("\t")[0] == "Time (America/Chicago)"
    assert (
        len(lines) == 2 and "Ana Ruiz <ana@riverside.example>\tPhysician\tViewed chart" in lines[1]
    )


def test_filter_by_and_exclude_this_value(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    riverside, _ = seed(context.engine)
    window = open_window(qtbot, context)
    window.apply_filter(EventFilter(workspace_ids=(riverside,), include_log_access=False))
    wait_loaded(qtbot, window)
    from nvadmin.query import fields
    from nvadmin.ui.activity_model import column_of

    menu = window.browser_table.cell_menu(window.model.index(0, column_of(fields.IP)))
    labels = [a.text() for a in menu.actions()]
    assert labels[:3] == ["Filter by this value", "Exclude this value", "Copy"]
    window.filter_by_value("ip", "10.0.0.9", negate=True)
    wait_loaded(qtbot, window)
    assert "-ip:10.0.0.9" in window.filter_bar.search_edit.text()
    assert window.model.count == 450 - 90


def test_support_staff_cannot_pick_all_workspaces(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    seed(context.engine)
    window = open_window(qtbot, context, SUPPORT)
    assert not window.picker.allow_all
    window.apply_filter(EventFilter())
    assert "Only admins" in window.banner.text()
    assert window.current_filter().workspace_ids != ()


def test_saved_search_with_a_missing_workspace(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    riverside, _ = seed(context.engine)
    window = open_window(qtbot, context)
    window.apply_filter(EventFilter(workspace_ids=(riverside,), terms=(Term("patient", "P1"),)))
    wait_loaded(qtbot, window)
    saved = window.save_search("Patient P1")
    assert window.saved_searches.get("Patient P1") == saved
    from dataclasses import replace as dc_replace

    assert not window.open_saved_search(dc_replace(saved, workspace_id=9999))
    assert "does not exist" in window.banner.text()
    window.filter_bar.clear()
    wait_loaded(qtbot, window)
    assert window.open_saved_search(saved)
    wait_loaded(qtbot, window)
    assert window.current_filter().terms == (Term("patient", "P1"),)


def test_lock_empties_everything(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    _riverside, _ = seed(context.engine)
    window = open_window(qtbot, context)
    window.table.selectRow(0)
    window.set_locked(True)
    assert window.model.rowCount() == 0
    assert window.detail.shown is None and window.detail.text.toPlainText() == ""
    assert window.filter_bar.isHidden()
    window.set_locked(False)
    qtbot.waitUntil(lambda: window.model.rowCount() > 0)


def test_layout_and_last_filters_persist(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    riverside, _ = seed(context.engine)
    window = open_window(qtbot, context)
    window.apply_filter(EventFilter(workspace_ids=(riverside,), terms=(Term("patient", "P4"),)))
    wait_loaded(qtbot, window)
    from nvadmin.query import fields
    from nvadmin.ui.activity_model import column_of

    window.table.setColumnHidden(column_of(fields.IP), True)
    window.table.setColumnHidden(column_of(fields.TIME_UTC), False)
    window.close()
    again = open_window(qtbot, context)
    wait_loaded(qtbot, again)
    assert again.current_workspace().id == riverside
    assert again.current_filter().terms == (Term("patient", "P4"),)
    assert again.table.isColumnHidden(column_of(fields.IP))
    assert not again.table.isColumnHidden(column_of(fields.TIME_UTC))


def test_model_passes_qt_model_tester(qtbot, qtmodeltester, context: Context) -> None:  # type: ignore[no-untyped-def]
    riverside, _ = seed(context.engine)
    window = open_window(qtbot, context)
    window.apply_filter(EventFilter(workspace_ids=(riverside,)))
    wait_loaded(qtbot, window)
    qtmodeltester.check(window.model, force_py=True)
