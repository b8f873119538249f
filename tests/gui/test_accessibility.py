"""Accessibility basics: every input, chart and table has an accessible name, Tab moves
through each window in reading order (real Tab presses), and nothing is told by colour
alone."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import date, datetime

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QAccessible
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLineEdit,
    QPlainTextEdit,
    QWidget,
)

from nvadmin.auth.credentials import CredentialStore
from nvadmin.context import Context
from nvadmin.demo.accounts import create_demo_accounts
from nvadmin.demo.seed import SeedPlan, seed
from nvadmin.paths import Paths
from nvadmin.query import fields
from nvadmin.ui.activity_model import column_of
from nvadmin.ui.export_dialog import ExportDialog
from nvadmin.ui.main_window import MainWindow
from nvadmin.ui.sign_in import SignInDialog
from tests.gui.windows import ADMIN, open_main_window

INPUTS = (
    QLineEdit,
    QComboBox,
    QAbstractButton,
    QAbstractItemView,
    QAbstractSpinBox,
    QPlainTextEdit,
)


@pytest.fixture
def context(sqlite_db_url: str) -> Iterator[Context]:
    ctx = Context(Paths.from_environment(), sqlite_db_url, is_default_database=False)
    seed(ctx.engine, SeedPlan(workspaces=1, events=2_000, seed=5, end=date(2026, 11, 1)))
    yield ctx
    ctx.dispose()


def open_window(qtbot, context: Context) -> MainWindow:  # type: ignore[no-untyped-def]
    window = open_main_window(qtbot, context, ADMIN)
    window.resize(1280, 720)
    return window


def nameless(top: QWidget) -> list[str]:
    """Visible, focusable inputs a screen reader would announce without a name."""
    missing = []
    for widget in top.findChildren(QWidget):
        if not widget.isVisible() or widget.focusPolicy() == Qt.FocusPolicy.NoFocus:
            continue
        parent = widget.parentWidget()
        if isinstance(widget, QLineEdit) and isinstance(parent, QComboBox | QAbstractSpinBox):
            continue  # the combo box or spin box around it carries the name
        if isinstance(widget, INPUTS):
            interface = QAccessible.queryAccessibleInterface(widget)
            if not interface or not interface.text(QAccessible.Text.Name).strip():
                missing.append(describe(widget))
    return missing


def focused() -> QWidget | None:
    """The widget a person sees focused: the combo or spin box, not the line edit inside."""
    widget = QApplication.focusWidget()
    parent = widget.parentWidget() if widget is not None else None
    return parent if isinstance(parent, QComboBox | QAbstractSpinBox) else widget


def tab_chain(qtbot, top: QWidget, first: QWidget, limit: int = 40) -> list[QWidget]:  # type: ignore[no-untyped-def]
    """Focus ``first`` and press Tab until focus comes back round (or leaves ``top``)."""
    top.activateWindow()
    first.setFocus(Qt.FocusReason.TabFocusReason)
    qtbot.waitUntil(lambda: focused() is first)
    chain = [first]
    for _ in range(limit):
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        widget = focused()
        if widget is None or widget is first or not top.isAncestorOf(widget):
            break
        chain.append(widget)
    return chain


def out_of_reading_order(top: QWidget, chain: list[QWidget]) -> list[str]:
    """Pairs where Tab goes up the window, or leftwards on the same line."""
    wrong = []
    for before, after in itertools.pairwise(chain):
        a = before.mapTo(top, QPoint(0, before.height() // 2))
        b = after.mapTo(top, QPoint(0, after.height() // 2))
        same_line = abs(a.y() - b.y()) <= max(before.height(), after.height()) // 2
        if (same_line and b.x() < a.x()) or (not same_line and b.y() < a.y()):
            wrong.append(f"{describe(before)} -> {describe(after)}")
    return wrong


def describe(widget: QWidget) -> str:
    name = widget.accessibleName() or widget.objectName()
    text = getattr(widget, "text", None)
    return f"{type(widget).__name__}({name or (text() if callable(text) else '')})"


def test_main_window_inputs_are_named_and_tab_reads_in_order(qtbot, context) -> None:  # type: ignore[no-untyped-def]
    window = open_window(qtbot, context)
    assert nameless(window) == []
    chain = tab_chain(qtbot, window, window.picker)
    assert window.filter_bar.search_edit in chain and window.table in chain
    assert window.presets_button in chain
    assert out_of_reading_order(window, chain) == []
    # With a custom range its two days join the order where they are shown.
    box = window.filter_bar.range_box
    box.setFocus()
    qtbot.keyClick(box, Qt.Key.Key_End)
    qtbot.waitUntil(lambda: window.filter_bar.from_date.isVisible())
    chain = tab_chain(qtbot, window, window.picker)
    assert window.filter_bar.from_date in chain and window.filter_bar.to_date in chain
    assert out_of_reading_order(window, chain) == []


def test_insights_charts_and_flags_are_named(qtbot, context) -> None:  # type: ignore[no-untyped-def]
    window = open_window(qtbot, context)
    view = window.features.insights.open()
    qtbot.waitUntil(lambda: view.insights is not None)
    qtbot.waitUntil(lambda: not view.busy())
    for chart in view.charts:
        assert chart.accessibleName(), chart
        assert chart.accessibleDescription(), chart  # the chart in words, bar by bar
    assert nameless(view) == []
    view.tabs.setCurrentIndex(1)
    assert nameless(view) == []


def test_sign_in_dialog_is_named_and_in_order(qtbot, context) -> None:  # type: ignore[no-untyped-def]
    create_demo_accounts(context.engine)
    dialog = SignInDialog(context, CredentialStore(timeout=2))
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.demo_box.isVisible())
    assert nameless(dialog) == []
    top = dialog.connection_box if dialog.connection_box.isVisible() else dialog.email_edit
    chain = tab_chain(qtbot, dialog, top)
    assert dialog.password_edit in chain and dialog.sign_in_button in chain
    assert out_of_reading_order(dialog, chain) == []


def test_export_form_is_named_and_in_order(qtbot, context) -> None:  # type: ignore[no-untyped-def]
    window = open_window(qtbot, context)
    dialog = ExportDialog(context.engine, ADMIN, initial_filter=window.current_filter())
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.workspaces != [])
    assert nameless(dialog) == []
    chain = tab_chain(qtbot, dialog, dialog.workspace_box)
    assert dialog.ticket_edit in chain
    assert out_of_reading_order(dialog, chain) == []


def test_outcome_and_category_are_told_in_words_too(qtbot, context) -> None:  # type: ignore[no-untyped-def]
    window = open_window(qtbot, context)
    window.table.setColumnHidden(column_of(fields.CATEGORY), False)
    model = window.model
    for row in range(min(50, model.rowCount())):
        outcome = model.data(model.index(row, column_of(fields.OUTCOME)))
        assert outcome.split(":")[0] in ("success", "failure")
        category = model.data(model.index(row, column_of(fields.CATEGORY)))
        assert category  # the label beside the coloured symbol
        icon = model.data(
            model.index(row, column_of(fields.CATEGORY)), Qt.ItemDataRole.DecorationRole
        )
        assert icon is None or not icon.isNull()


def test_lock_screen_tab_order(qtbot, context) -> None:  # type: ignore[no-untyped-def]
    from nvadmin.ui.lock_screen import LockScreen

    screen = LockScreen(context, ADMIN, "Locked after 15 minutes without activity.")
    qtbot.addWidget(screen)
    screen.show()
    assert nameless(screen) == []
    chain = tab_chain(qtbot, screen, screen.password_edit)
    assert chain == [screen.password_edit, screen.sign_out_button, screen.unlock_button]
    assert out_of_reading_order(screen, chain) == []


def test_report_request_and_thresholds_dialogs(qtbot, context) -> None:  # type: ignore[no-untyped-def]
    from nvadmin.analysis.reports import PATIENT_ACCESS
    from nvadmin.ui.insights import ThresholdsDialog
    from nvadmin.ui.report_view import ReportRequestDialog

    request = ReportRequestDialog(PATIENT_ACCESS, workspace_label="Riverside", zone="UTC")
    qtbot.addWidget(request)
    request.show()
    assert nameless(request) == []
    chain = tab_chain(qtbot, request, request.subject)
    assert request.first in chain and request.last in chain
    assert out_of_reading_order(request, chain) == []

    thresholds = ThresholdsDialog({}, (8, 18), "Riverside", True)
    qtbot.addWidget(thresholds)
    thresholds.show()
    assert nameless(thresholds) == []


def named_and_in_order(qtbot, top: QWidget, first: QWidget, expected: list[QWidget]) -> None:  # type: ignore[no-untyped-def]
    """``top`` has no nameless input, and Tab from ``first`` reaches ``expected`` in reading
    order (each one pressed to, not set)."""
    assert nameless(top) == []
    chain = tab_chain(qtbot, top, first)
    assert [widget for widget in expected if widget not in chain] == []
    assert out_of_reading_order(top, chain) == []


def test_staff_dialog_and_its_forms(qtbot, context) -> None:  # type: ignore[no-untyped-def]
    from nvadmin.ui.staff_dialog import StaffDialog

    create_demo_accounts(context.engine)
    dialog = StaffDialog(context, ADMIN)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.table.rowCount() > 0)
    dialog.table.setFocus()
    qtbot.keyClick(dialog.table, Qt.Key.Key_Down)  # a selected account enables its buttons
    qtbot.waitUntil(dialog.reset_button.isEnabled)
    assert dialog.table.accessibleDescription()  # what the rows are and how to act on one
    named_and_in_order(
        qtbot,
        dialog,
        dialog.table,
        [dialog.add_button, dialog.reset_button, dialog.role_box, dialog.role_button],
    )
    # The status column says the status in words; colour only repeats it.
    statuses = {dialog.table.item(row, 3).text() for row in range(dialog.table.rowCount())}
    assert all(status.split()[0] in ("active", "disabled", "locked") for status in statuses)

    form = dialog.add_account()
    qtbot.waitUntil(form.isVisible)
    named_and_in_order(
        qtbot, form, form.email, [form.name, form.role, form.password, form.repeat, form.totp]
    )
    qtbot.keyClicks(form.email, "not an address")
    qtbot.keyClick(form.email, Qt.Key.Key_Return)
    qtbot.waitUntil(form.email_error.isVisible)
    assert form.email_error.text()  # the error is told in words, not by its red alone
    assert form.email.accessibleDescription() == form.email_error.text()
    form.reject()

    reset = dialog.reset_selected_password()
    assert reset is not None
    qtbot.waitUntil(reset.isVisible)
    named_and_in_order(qtbot, reset, reset.password, [reset.repeat])
    reset.reject()


def test_verify_dialog_is_named_and_in_order(qtbot, context) -> None:  # type: ignore[no-untyped-def]
    window = open_window(qtbot, context)
    dialog = window.features.compliance.open_verify()
    qtbot.waitUntil(lambda: dialog.workspace.count() > 0)
    dialog.ranged.setChecked(True)
    named_and_in_order(
        qtbot,
        dialog,
        dialog.workspace,
        [dialog.whole, dialog.first, dialog.last, dialog.details, dialog.verify_button],
    )
    assert dialog.first.accessibleName() != dialog.last.accessibleName()
    # The headline says intact or broken in words; its colour only repeats it.
    qtbot.keyClick(dialog.verify_button, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: bool(dialog.results))
    assert "chain intact" in dialog.headline.text() or "broken" in dialog.headline.text()
    assert dialog.headline.text() in dialog.details.accessibleDescription()


def test_case_file_dialog_is_named_and_in_order(qtbot, context) -> None:  # type: ignore[no-untyped-def]
    window = open_window(qtbot, context)
    dialog = window.features.compliance.ask_save_case()
    qtbot.waitUntil(dialog.isVisible)
    browse = next(b for b in dialog.findChildren(QAbstractButton) if "Browse" in b.text())
    named_and_in_order(qtbot, dialog, dialog.path, [browse, dialog.passphrase, dialog.confirm])
    qtbot.keyClicks(dialog.passphrase, "short")
    qtbot.keyClick(dialog.passphrase, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: bool(dialog.error.text()))
    assert dialog.isVisible() and dialog.passphrase.accessibleDescription() == dialog.error.text()
    dialog.reject()


def test_open_case_passphrase_prompt_is_named(qtbot, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from nvadmin.ui.compliance import passphrase_prompt

    prompt = passphrase_prompt(None, tmp_path / "case.nvcase")
    qtbot.addWidget(prompt)
    prompt.show()
    edit = prompt.findChild(QLineEdit)
    assert edit is not None and edit.echoMode() == QLineEdit.EchoMode.Password
    named_and_in_order(qtbot, prompt, edit, [])
    assert "case.nvcase" in edit.accessibleName()


def test_go_to_time_dialog_is_named_and_in_order(qtbot, context) -> None:  # type: ignore[no-untyped-def]
    from zoneinfo import ZoneInfo

    from nvadmin.ui.main_window import GoToTimeDialog

    dialog = GoToTimeDialog(datetime(2026, 11, 5, 10, 6), ZoneInfo("UTC"))
    qtbot.addWidget(dialog)
    dialog.show()
    buttons = dialog.findChildren(QAbstractButton)
    named_and_in_order(qtbot, dialog, dialog.edit, buttons)
    assert dialog.edit.accessibleDescription()  # the forms it takes, from the hint
    dialog.edit.selectAll()
    qtbot.keyClicks(dialog.edit, "tomorrow")
    qtbot.keyClick(dialog.edit, Qt.Key.Key_Return)
    qtbot.waitUntil(dialog.error.isVisible)
    assert dialog.isVisible() and dialog.error.text()
    assert dialog.error.text() in dialog.edit.accessibleDescription()


def test_report_view_is_named_and_in_order(qtbot, context) -> None:  # type: ignore[no-untyped-def]
    from nvadmin.analysis.reports import USER_ACTIVITY, Report, ReportRow, ReportSection
    from nvadmin.ui.report_view import ReportView

    rows = [ReportRow(("2025-03-01", "x", "Viewed chart"), event_id=1)]
    report = Report(
        USER_ACTIVITY,
        "ana@riverside.example",
        [("Produced at", "2025-03-02T00:00:00+00:00")],
        ("Time", "UTC", "Action"),
        [ReportSection("Monday", rows)],
        row_count=1,
    )
    view = ReportView(report)
    qtbot.addWidget(view)
    view.show()
    named_and_in_order(
        qtbot, view, view.browser, [view.print_button, view.pdf_button, view.csv_button]
    )


def test_crash_dialog_is_named_and_in_order(qtbot, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from nvadmin.ui import crash

    try:
        raise KeyError("x")
    except KeyError as error:
        report = crash.build_report(
            KeyError, error, error.__traceback__, tmp_path / "nvadmin.log", "MainThread"
        )
    dialog = crash.CrashDialog(report)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.toggle_details()
    qtbot.waitUntil(dialog.details_view.isVisible)
    buttons = [
        dialog.details_button,
        dialog.copy_button,
        dialog.folder_button,
        dialog.quit_button,
        dialog.continue_button,
    ]
    named_and_in_order(qtbot, dialog, dialog.details_view, buttons)
    assert dialog.details_view.accessibleName()
