"""The export form as a support agent types into it: keys into the focused widget only."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from PySide6.QtCore import QDate, Qt
from PySide6.QtWidgets import (
    QApplication,
    QCalendarWidget,
    QComboBox,
    QLabel,
    QScrollArea,
    QWidget,
)
from sqlalchemy import Engine

from nvadmin.context import Context
from nvadmin.identity import Role, StaffIdentity
from nvadmin.ui.export_dialog import ExportDialog
from nvadmin.ui.filter_bar import FilterBar
from tests.factories import add_workspace, draft, sign_in_as, write

SUPPORT = StaffIdentity(8, "sam@nvadmin.example", "Sam Support", Role.SUPPORT)
ADMIN = StaffIdentity(9, "dana@nvadmin.example", "Dana Admin", Role.ADMIN)
CHICAGO = "America/Chicago"


@pytest.fixture
def workspace(engine: Engine) -> int:
    ws = add_workspace(engine)  # riverside, in America/Chicago
    write(engine, ws, [draft(i) for i in range(12)])
    return ws


def open_form(qtbot, engine: Engine, identity: StaffIdentity, folder: Path) -> ExportDialog:  # type: ignore[no-untyped-def]
    dialog = ExportDialog(engine, identity, display_zone=CHICAGO, folder=folder)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    qtbot.waitUntil(lambda: dialog.current_workspace() is not None)
    dialog.activateWindow()
    return dialog


def focused() -> QWidget | None:
    return QApplication.focusWidget()


def type_into(qtbot, widget: QWidget, text: str) -> None:  # type: ignore[no-untyped-def]
    """Focus ``widget``, select what it holds and type ``text``, as a person does."""
    widget.setFocus()
    qtbot.waitUntil(lambda: focused() is widget)
    qtbot.keyClick(widget, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(widget, text)


def press_start(qtbot, dialog: ExportDialog) -> None:  # type: ignore[no-untyped-def]
    """Enter in the focused field: the form's default button, Start export."""
    widget = focused()
    assert widget is not None and widget.window() is dialog
    qtbot.keyClick(widget, Qt.Key.Key_Return)


def choose(qtbot, box: QComboBox, label: str) -> None:  # type: ignore[no-untyped-def]
    """Pick ``label`` in a closed list with the arrow keys, as a keyboard user does."""
    box.setFocus()
    qtbot.waitUntil(lambda: focused() is box)
    qtbot.keyClick(box, Qt.Key.Key_Home)
    for _ in range(box.count()):
        if box.currentText() == label:
            return
        qtbot.keyClick(box, Qt.Key.Key_Down)
    assert box.currentText() == label


def shown_texts(dialog: ExportDialog) -> list[str]:
    return [label.text() for label in dialog.findChildren(QLabel) if label.isVisible()]


def qdate(day: date) -> QDate:
    return QDate(day.year, day.month, day.day)


@pytest.fixture
def chicago_today() -> Iterator[date]:
    yield datetime.now(UTC).astimezone(ZoneInfo(CHICAGO)).date()


# -- the ticket id -----------------------------------------------------------------------------


def test_missing_ticket_sends_focus_to_the_ticket_field_and_clears_once_filled(
    qtbot, engine: Engine, workspace: int, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    dialog = open_form(qtbot, engine, SUPPORT, tmp_path)
    dialog.members_edit.setFocus()
    qtbot.waitUntil(lambda: focused() is dialog.members_edit)
    press_start(qtbot, dialog)
    assert dialog.isVisible() and dialog.request() is None
    assert "ticket id" in dialog.error.text()
    assert dialog.error.isVisible()
    assert focused() is dialog.ticket_edit
    qtbot.keyClicks(focused(), "SUP-42")
    assert dialog.ticket_edit.text() == "SUP-42"
    assert not dialog.error.isVisible(), dialog.error.text()
    press_start(qtbot, dialog)
    made = dialog.request()
    assert made is not None and made.ticket == "SUP-42"


# -- the days ----------------------------------------------------------------------------------


def test_a_typed_day_is_the_day_used(qtbot, engine: Engine, workspace: int, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dialog = open_form(qtbot, engine, ADMIN, tmp_path)
    # Select everything and type: the year typed is the year used.
    type_into(qtbot, dialog.from_edit, "2025-01-01")
    assert dialog.from_edit.date() == QDate(2025, 1, 1)
    # Tab into the field (which selects it) and type, separators and all.
    dialog.to_edit.setFocus()
    qtbot.waitUntil(lambda: focused() is dialog.to_edit)
    qtbot.keyClick(dialog.to_edit, Qt.Key.Key_Backtab, Qt.KeyboardModifier.ShiftModifier)
    assert focused() is dialog.from_edit
    qtbot.keyClicks(dialog.from_edit, "2024-02-29")
    qtbot.keyClick(dialog.from_edit, Qt.Key.Key_Tab)
    assert focused() is dialog.to_edit
    qtbot.keyClicks(dialog.to_edit, "2024-03-05")
    assert (dialog.from_edit.date(), dialog.to_edit.date()) == (
        QDate(2024, 2, 29),
        QDate(2024, 3, 5),
    )
    assert dialog.from_edit.text() == "2024-02-29" and dialog.to_edit.text() == "2024-03-05"
    made = dialog.build_request()
    start = made.event_filter.start
    assert start is not None and start.astimezone(ZoneInfo(CHICAGO)).date() == date(2024, 2, 29)
    # Up steps a day from the day typed.
    qtbot.keyClick(dialog.to_edit, Qt.Key.Key_Up)
    assert dialog.to_edit.date() == QDate(2024, 3, 6)
    # F4 opens the calendar on that day; Right, Enter picks the next one.
    qtbot.keyClick(dialog.to_edit, Qt.Key.Key_F4)
    qtbot.waitUntil(lambda: QApplication.activePopupWidget() is not None)
    calendar = QApplication.activePopupWidget().findChild(QCalendarWidget)
    assert calendar is not None and calendar.selectedDate() == QDate(2024, 3, 6)
    qtbot.waitUntil(lambda: calendar.isAncestorOf(focused()))
    qtbot.keyClick(focused(), Qt.Key.Key_Right)
    qtbot.keyClick(focused(), Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: QApplication.activePopupWidget() is None)
    assert dialog.to_edit.text() == "2024-03-07"


def test_a_typed_text_that_is_no_day_is_kept_and_named(
    qtbot, engine: Engine, workspace: int, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    dialog = open_form(qtbot, engine, ADMIN, tmp_path)
    type_into(qtbot, dialog.to_edit, "2025-02-30")
    press_start(qtbot, dialog)
    assert dialog.request() is None
    assert dialog.to_edit.text() == "2025-02-30"  # nothing silently rewritten
    assert "“2025-02-30” is not a day" in dialog.error.text()
    assert focused() is dialog.to_edit


def test_end_before_start_is_reported_once(
    qtbot, engine: Engine, workspace: int, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    dialog = open_form(qtbot, engine, ADMIN, tmp_path)
    with qtbot.waitSignal(dialog.count_changed, check_params_cb=lambda c: c is None):
        type_into(qtbot, dialog.from_edit, "2025-03-10")
        type_into(qtbot, dialog.to_edit, "2025-03-01")

    def mentions() -> int:
        return sum("before it starts" in text for text in shown_texts(dialog))

    assert mentions() == 1, shown_texts(dialog)
    press_start(qtbot, dialog)
    assert dialog.request() is None
    assert mentions() == 1, shown_texts(dialog)
    assert focused() is dialog.to_edit
    # Fixed: the message goes and the count comes back.
    with qtbot.waitSignal(dialog.count_changed, check_params_cb=lambda c: c == 0):
        qtbot.keyClick(dialog.to_edit, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
        qtbot.keyClicks(dialog.to_edit, "2025-03-31")
    assert mentions() == 0, shown_texts(dialog)


# -- presets -----------------------------------------------------------------------------------


def previous_month(today: date) -> tuple[date, date]:
    first_this = date(today.year, today.month, 1)
    last = first_this - timedelta(days=1)
    return date(last.year, last.month, 1), last


def test_range_presets_in_the_form(
    qtbot, engine: Engine, workspace: int, tmp_path: Path, chicago_today: date
) -> None:  # type: ignore[no-untyped-def]
    dialog = open_form(qtbot, engine, SUPPORT, tmp_path)
    box = dialog.range_preset_box
    expected = {
        "Last month": previous_month(chicago_today),
        "This month": (chicago_today.replace(day=1), chicago_today),
        "Last 7 days": (chicago_today - timedelta(days=6), chicago_today),
    }
    for label, (first, last) in expected.items():
        choose(qtbot, box, label)
        assert (dialog.from_edit.date(), dialog.to_edit.date()) == (qdate(first), qdate(last))
    # Typing other days shows that no preset applies any more.
    type_into(qtbot, dialog.to_edit, "2020-01-31")
    assert box.currentText() == "Days chosen below"
    # ... and typing a preset's days names it.
    first, last = expected["Last month"]
    type_into(qtbot, dialog.from_edit, first.isoformat())
    type_into(qtbot, dialog.to_edit, last.isoformat())
    assert box.currentText() == "Last month"
    qtbot.keyClicks(dialog.ticket_edit, "SUP-7")
    made = dialog.build_request()
    zone = ZoneInfo(CHICAGO)
    assert made.event_filter.start == datetime(first.year, first.month, 1, tzinfo=zone)
    assert made.event_filter.end == datetime(
        chicago_today.year, chicago_today.month, 1, tzinfo=zone
    )


def test_range_presets_in_the_browsers_range_list(qtbot, chicago_today: date) -> None:  # type: ignore[no-untyped-def]
    from nvadmin.ui.filter_bar import RANGE_PRESETS

    bar = FilterBar()
    qtbot.addWidget(bar)
    zone = ZoneInfo(CHICAGO)
    bar.set_zone(zone)
    bar.show()
    qtbot.waitExposed(bar)
    bar.activateWindow()
    box = bar.range_box
    labels = [box.itemText(i) for i in range(box.count())]
    # The form and the browser offer the same presets, in the same order.
    assert [p.label for p in RANGE_PRESETS] == [
        label for label in labels if label in {p.label for p in RANGE_PRESETS}
    ]

    def midnight(day: date) -> datetime:
        return datetime(day.year, day.month, day.day, tzinfo=zone)

    first, last = previous_month(chicago_today)
    expected = {
        "Last month": (midnight(first), midnight(last + timedelta(days=1))),
        "This month": (midnight(chicago_today.replace(day=1)), None),
        "Last 7 days": (midnight(chicago_today - timedelta(days=6)), None),
    }
    for label, (start, end) in expected.items():
        choose(qtbot, box, label)
        ran = bar.search()
        assert (ran.start, ran.end) == (start, end)
        assert not bar.from_date.isVisible()  # a preset, not a custom range
    # The search bar shows the days; running it again keeps the preset's name in the list.
    assert bar.search_edit.text() == f"after:{chicago_today - timedelta(days=6)}"
    bar.search_edit.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is bar.search_edit)
    qtbot.keyClick(bar.search_edit, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(bar.search_edit, f"after:{first} before:{last}")
    with qtbot.waitSignal(bar.search_requested):
        qtbot.keyClick(bar.search_edit, Qt.Key.Key_Return)
    assert box.currentText() == "Last month"


# -- Save as -----------------------------------------------------------------------------------


def test_enter_in_save_as_does_not_start_the_export(
    qtbot, engine: Engine, workspace: int, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    dialog = open_form(qtbot, engine, ADMIN, tmp_path)
    type_into(qtbot, dialog.output_edit, str(tmp_path / "for-ticket-77"))
    qtbot.keyClick(dialog.output_edit, Qt.Key.Key_Return)
    assert dialog.isVisible() and dialog.request() is None
    assert focused() is dialog.output_edit
    assert dialog.output_edit.text() == str(tmp_path / "for-ticket-77.csv")
    dialog.members_edit.setFocus()
    qtbot.waitUntil(lambda: focused() is dialog.members_edit)
    press_start(qtbot, dialog)
    made = dialog.request()
    assert made is not None and made.output == tmp_path / "for-ticket-77.csv"


# -- the Exports dock --------------------------------------------------------------------------


def test_exports_dock_takes_only_the_space_its_rows_need(
    qtbot, db_url: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from nvadmin.ui.export_panel import State
    from nvadmin.ui.main_window import MainWindow

    context = Context.create(db_url)
    try:
        ws = add_workspace(context.engine)
        write(context.engine, ws, [draft(i) for i in range(12)])
        window = MainWindow(context, sign_in_as(context, SUPPORT))
        qtbot.addWidget(window)
        window.resize(1280, 720)
        window.show()
        qtbot.waitExposed(window)
        window.activateWindow()
        qtbot.waitUntil(lambda: window.current_workspace() is not None)
        feature = window.features.export
        feature.last_folder = tmp_path
        panel = feature.panel

        def start_export(ticket: str) -> None:
            rows = len(panel.rows)
            dialog = feature.open_dialog()
            qtbot.waitUntil(lambda: dialog.current_workspace() is not None)
            dialog.ticket_edit.setFocus()
            qtbot.waitUntil(lambda: focused() is dialog.ticket_edit)
            qtbot.keyClicks(dialog.ticket_edit, ticket)
            press_start(qtbot, dialog)
            qtbot.waitUntil(lambda: len(panel.rows) == rows + 1)
            row = panel.rows[0]
            qtbot.waitUntil(lambda: row.state is State.DONE)

        def unused_height() -> int:
            """Pixels of the dock's list below its last row."""
            viewport = panel.findChild(QScrollArea).viewport()
            bottom = max(row.geometry().bottom() for row in panel.rows)
            return viewport.height() - bottom

        start_export("SUP-1")
        assert feature.dock.isVisible()
        qtbot.waitUntil(lambda: unused_height() < 16)
        for row in panel.rows:
            assert row.visibleRegion().boundingRect().size() == row.size()
        one_row = feature.dock.height()
        # A second export grows the dock by about a row; the table keeps the rest.
        start_export("SUP-2")
        qtbot.waitUntil(lambda: unused_height() < 16)
        for row in panel.rows:
            assert row.visibleRegion().boundingRect().size() == row.size()
        assert feature.dock.height() > one_row
        assert window.table.height() > feature.dock.height()
        window.close()
    finally:
        context.dispose()


def test_the_browsers_custom_range_uses_the_days_typed(qtbot) -> None:  # type: ignore[no-untyped-def]
    bar = FilterBar()
    qtbot.addWidget(bar)
    zone = ZoneInfo(CHICAGO)
    bar.set_zone(zone)
    bar.show()
    qtbot.waitExposed(bar)
    bar.activateWindow()
    choose(qtbot, bar.range_box, "Custom range")
    assert bar.from_date.isVisible()
    type_into(qtbot, bar.to_date, "2025-01-31")
    with qtbot.waitSignal(bar.search_requested) as ran:
        type_into(qtbot, bar.from_date, "2025-01-01")
    assert (ran.args[0].start, ran.args[0].end) == (
        datetime(2025, 1, 1, tzinfo=zone),
        datetime(2025, 2, 1, tzinfo=zone),
    )
    # An end before the start is said, and the day typed is kept.
    type_into(qtbot, bar.to_date, "2024-12-31")
    assert bar.to_date.text() == "2024-12-31"
    assert bar.has_error() and "before it starts" in bar.error_label.text()
    assert bar.search().end == datetime(2025, 2, 1, tzinfo=zone)  # nothing else was run
