"""Days typed into the report and verification forms are the days used.

Found on an earlier version: their ``QDateEdit`` fields edited one section at a time, so
selecting everything and typing ``2025-01-01`` gave ``2026-01-01`` (as the export form did)."""

from __future__ import annotations

from datetime import date

from PySide6.QtCore import Qt

from nvadmin.analysis.reports import PATIENT_ACCESS
from nvadmin.ui.report_view import ReportRequestDialog


def retype(qtbot, field, text: str) -> None:  # type: ignore[no-untyped-def]
    field.setFocus()
    qtbot.keyClick(field, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(field, text)


def test_report_form_uses_the_days_typed(qtbot) -> None:  # type: ignore[no-untyped-def]
    dialog = ReportRequestDialog(PATIENT_ACCESS, workspace_label="Riverside", zone="UTC")
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.keyClicks(dialog.subject, "P-0027")
    retype(qtbot, dialog.first, "2025-01-01")
    retype(qtbot, dialog.last, "2025-02-28")
    assert dialog.days() == (date(2025, 1, 1), date(2025, 2, 28))
    # A text that is no day is named, not replaced by another day.
    retype(qtbot, dialog.last, "2025-02-30")
    with qtbot.assertNotEmitted(dialog.accepted):
        dialog.submit()
    assert "last day is not a day" in dialog.error.text()
    assert dialog.last.text() == "2025-02-30"
