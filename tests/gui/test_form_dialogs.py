"""The form dialogs share one shape: fields, an error line in the palette's error tone, the
buttons; a refusal keeps the form open, is read out with its field and squeezes nothing."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLabel, QWidget
from sqlalchemy import Engine

from nvadmin.analysis.reports import PATIENT_ACCESS
from nvadmin.identity import Role, StaffIdentity
from nvadmin.query.filters import EventFilter
from nvadmin.ui.browser.go_to_time import GoToTimeDialog
from nvadmin.ui.compliance import CaseFileDialog
from nvadmin.ui.export_dialog import ExportDialog
from nvadmin.ui.form_dialog import FormDialog
from nvadmin.ui.report_view import ReportRequestDialog
from nvadmin.ui.staff_dialog import AccountForm

SUPPORT = StaffIdentity(2, "sam@n.example", "Sam", Role.SUPPORT)


def test_every_form_shows_its_error_in_the_palette_error_tone(
    qtbot, engine: Engine, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    parent = QWidget()
    qtbot.addWidget(parent)
    export = ExportDialog(engine, SUPPORT, folder=tmp_path, parent=parent)
    with qtbot.waitSignal(export.workspaces_loaded):
        pass  # nothing of it still running when the test ends
    forms: list[FormDialog] = [
        GoToTimeDialog(datetime(2026, 11, 5, 10, 6), ZoneInfo("UTC"), parent),
        ReportRequestDialog(PATIENT_ACCESS, workspace_label="Clinic", zone="UTC", parent=parent),
        CaseFileDialog(EventFilter(workspace_ids=(1,)), tmp_path, parent),
        AccountForm(parent),
        export,
    ]
    for form in forms:
        assert form.error.property("tone") == "error", type(form).__name__
        assert form.error.isHidden()
        # No colour of their own anywhere: every red comes from nvadmin.ui.palette.
        for label in form.findChildren(QLabel):
            assert "color" not in label.styleSheet(), (type(form).__name__, label.objectName())
        form.done(0)


def test_an_error_line_shows_whole_and_squeezes_no_field(qtbot) -> None:  # type: ignore[no-untyped-def]
    dialog = GoToTimeDialog(datetime(2026, 11, 5, 10, 6), ZoneInfo("UTC"))
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    dialog.edit.selectAll()
    qtbot.keyClicks(dialog.edit, "not a time")
    qtbot.keyClick(dialog.edit, Qt.Key.Key_Return)
    qtbot.waitUntil(dialog.error.isVisible)
    assert dialog.isVisible()  # the form stays open with what was typed
    assert dialog.edit.text() == "not a time"
    hint = next(label for label in dialog.findChildren(QLabel) if label.text() == dialog.hint)

    def laid_out_whole() -> bool:
        return (
            dialog.edit.height() >= dialog.edit.minimumSizeHint().height()
            and hint.height() >= hint.heightForWidth(hint.width())
            and dialog.error.height() >= dialog.error.heightForWidth(dialog.error.width())
            and hint.geometry().bottom() < dialog.error.geometry().top()
        )

    qtbot.waitUntil(laid_out_whole)
    assert dialog.error.text() in dialog.edit.accessibleDescription()
    qtbot.keyClicks(dialog.edit, "x")  # typing again clears the refusal
    assert dialog.error.isHidden() and dialog.edit.accessibleDescription() == dialog.hint


def test_tab_reads_the_fields_then_the_buttons(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    parent = QWidget()
    qtbot.addWidget(parent)
    parent.show()
    for form, first in (
        (AccountForm(parent), "accountEmail"),
        (CaseFileDialog(EventFilter(workspace_ids=(1,)), tmp_path, parent), "casePath"),
    ):
        form.show()
        qtbot.waitUntil(lambda f=form: QApplication.focusWidget() is not None)
        assert QApplication.focusWidget().objectName() == first  # type: ignore[union-attr]
        chain: list[QWidget] = []
        widget = form.nextInFocusChain()
        while widget is not form:
            if widget.isVisible() and widget.focusPolicy() & Qt.FocusPolicy.TabFocus:
                chain.append(widget)
            widget = widget.nextInFocusChain()
        assert chain[0].objectName() == first
        assert chain[-2:] == form.buttons.buttons(), [w.objectName() for w in chain]
        form.done(0)
