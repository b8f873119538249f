"""Disclosures from the Requests dock with real keys: Alt+I asks for the workspace (the
selected request's) and a patient, the report is produced in the background and shown, and
saved as CSV and PDF from the report view's buttons."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QFileDialog
from sqlalchemy import select

from nvadmin.auth.accounts import command_line_operator
from nvadmin.context import Context
from nvadmin.db.models import ActivityEvent
from nvadmin.export import requests
from nvadmin.export.requests import Operation
from nvadmin.query import workspaces
from tests.factories import draft, write
from tests.gui.test_requests_dock import add_by_command_line, open_window
from tests.gui.test_requests_dock import context as context


def delivered(context: Context, ticket: str, folder: Path) -> None:
    operator = command_line_operator()
    request_id = requests.find_request(context.engine, ticket).id
    requests.fulfil(context.engine, operator, request_id, folder)
    requests.move(context.engine, operator, request_id, Operation.DELIVER)


def test_disclosures_of_one_patient_with_keys(  # type: ignore[no-untyped-def]
    qtbot,
    context: Context,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws = workspaces.by_slug(context.engine, "riverside").id
    write(context.engine, ws, [draft(occurred_at=datetime(2025, 3, 5, tzinfo=UTC),
                                     patient_id="P-1")])  # fmt: skip
    add_by_command_line(db_url, monkeypatch, "--requester", "olga@riverside.example",
                        "--ticket", "WHOLE", "--recipient", "External auditor",
                        "--purpose", "annual audit")  # fmt: skip
    add_by_command_line(db_url, monkeypatch, "--requester", "olga@riverside.example",
                        "--ticket", "OTHER-PATIENT", "--patient", "P-2")  # fmt: skip
    add_by_command_line(db_url, monkeypatch, "--requester", "olga@riverside.example",
                        "--ticket", "OPEN")  # fmt: skip
    delivered(context, "WHOLE", tmp_path)
    delivered(context, "OTHER-PATIENT", tmp_path)

    window = open_window(qtbot, context)
    panel = window.features.requests.panel
    ctrl_shift = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    qtbot.keyClick(QApplication.focusWidget() or window, Qt.Key.Key_R, ctrl_shift)
    qtbot.waitUntil(lambda: panel.table.hasFocus() and panel.current() is not None)

    qtbot.keyClick(panel.table, Qt.Key.Key_I, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: panel.disclosures_dialog is not None)
    dialog = panel.disclosures_dialog
    qtbot.waitUntil(lambda: dialog.isVisible() and dialog.workspace_box.count() > 0)
    assert dialog.workspace_box.currentData() == "riverside"  # the selected request's
    qtbot.waitUntil(lambda: dialog.focusWidget() is not None)
    qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_P, Qt.KeyboardModifier.AltModifier)
    assert dialog.focusWidget() is dialog.patient_edit
    qtbot.keyClicks(dialog.patient_edit, "P-1")
    qtbot.keyClick(dialog.patient_edit, Qt.Key.Key_Return)  # Produce report

    qtbot.waitUntil(lambda: panel.report_view is not None)
    view = panel.report_view
    qtbot.waitUntil(view.isVisible)
    text = view.browser.toPlainText()
    assert "P-1" in text and "WHOLE" in text and "External auditor" in text
    assert "OTHER-PATIENT" not in text and "OPEN" not in text
    assert view.status.text() == "1 disclosures"

    # Save as CSV (Alt+C) and PDF (Alt+D): the file chooser answers with a path.
    for key, name in ((Qt.Key.Key_C, "p1.csv"), (Qt.Key.Key_D, "p1.pdf")):
        target = tmp_path / name
        monkeypatch.setattr(
            QFileDialog, "getSaveFileName", lambda *_a, _t=target, **_k: (str(_t), "")
        )
        view.activateWindow()
        qtbot.waitUntil(lambda: QApplication.activeWindow() is view)
        qtbot.keyClick(view.focusWidget() or view, key, Qt.KeyboardModifier.AltModifier)
        # Saved, and its buttons back (they are off while a save runs)
        qtbot.waitUntil(lambda _t=target: view.status.text() == f"Saved {_t}")
        qtbot.waitUntil(view.pdf_button.isEnabled)
    csv_text = (tmp_path / "p1.csv").read_text(encoding="utf-8-sig")
    assert "Patient,P-1" in csv_text and "WHOLE" in csv_text
    assert (tmp_path / "p1.pdf").read_bytes().startswith(b"%PDF")
    # Each file is an export of the workspace's log, on record in it with its SHA-256.
    with context.engine.connect() as connection:
        recorded = [
            (workspace, json.loads(details))
            for workspace, details in connection.execute(
                select(ActivityEvent.workspace_id, ActivityEvent.details).where(
                    ActivityEvent.action == "activity_log.export"
                )
            )
        ]
    # Producing the accounting read the log: a view naming the patient is on record.
    with context.engine.connect() as connection:
        viewed = [
            json.loads(details)
            for details in connection.execute(
                select(ActivityEvent.details).where(
                    ActivityEvent.action == "activity_log.view", ActivityEvent.workspace_id == ws
                )
            ).scalars()
        ]
    assert {"field": "patient", "value": "P-1", "negate": False} in [
        term for v in viewed if v["purpose"] == "disclosures" for term in v["filter"]["terms"]
    ]
    reports = [(w, d) for w, d in recorded if d.get("kind") == "report"]
    assert [(w, d["file"], d["report"]) for w, d in reports] == [
        (ws, "p1.csv", "Accounting of disclosures"),
        (ws, "p1.pdf", "Accounting of disclosures"),
    ]
    for _w, facts in reports:
        data = (tmp_path / facts["file"]).read_bytes()
        assert facts["sha256"] == hashlib.sha256(data).hexdigest() and facts["rows"] == 1
    view.close()
    window.close()


def test_a_bad_patient_id_is_named_and_nothing_is_lost(  # type: ignore[no-untyped-def]
    qtbot,
    context: Context,
) -> None:
    window = open_window(qtbot, context)
    panel = window.features.requests.panel
    ctrl_shift = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    qtbot.keyClick(QApplication.focusWidget() or window, Qt.Key.Key_R, ctrl_shift)
    qtbot.waitUntil(lambda: panel.table.hasFocus())
    qtbot.keyClick(panel.table, Qt.Key.Key_I, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: panel.disclosures_dialog is not None)
    dialog = panel.disclosures_dialog
    qtbot.waitUntil(lambda: dialog.isVisible() and dialog.workspace_box.count() > 0)
    qtbot.keyClick(dialog.focusWidget() or dialog, Qt.Key.Key_P, Qt.KeyboardModifier.AltModifier)
    qtbot.keyClicks(dialog.patient_edit, "x" * 41)
    qtbot.keyClick(dialog.patient_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "patient id" in dialog.error.text())
    assert dialog.isVisible() and dialog.patient_edit.text() == "x" * 41
    assert panel.report_view is None
    dialog.close()
    window.close()


def test_a_patient_scoped_request_is_fulfilled_from_the_form(  # type: ignore[no-untyped-def]
    qtbot,
    context: Context,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    owner = context.engine
    ws = workspaces.by_slug(owner, "riverside").id
    write(owner, ws, [draft(occurred_at=datetime(2025, 3, d, tzinfo=UTC), patient_id="P-7")
                      for d in (5, 6)])  # fmt: skip
    add_by_command_line(db_url, monkeypatch, "--requester", "olga@riverside.example",
                        "--ticket", "PATIENT-7", "--patient", "P-7")  # fmt: skip
    request_id = requests.find_request(owner, "PATIENT-7").id
    window = open_window(qtbot, context)
    feature = window.features.requests
    panel = feature.panel
    feature.last_folder = tmp_path
    ctrl_shift = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    qtbot.keyClick(QApplication.focusWidget() or window, Qt.Key.Key_R, ctrl_shift)
    qtbot.waitUntil(lambda: panel.table.hasFocus() and panel.current() is not None)
    qtbot.keyClick(panel.table, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: getattr(feature, "dialog", None) is not None)
    dialog = feature.dialog
    qtbot.waitUntil(lambda: dialog.isVisible() and dialog.last_count == 2)  # P-7's events only
    assert dialog.keep_other_box.isChecked() and not dialog.keep_other_box.isEnabled()
    qtbot.keyClick(dialog.focusWidget() or dialog, Qt.Key.Key_Return)  # Start
    qtbot.waitUntil(lambda: requests.get_request(owner, request_id).status.value == "exported")
    assert requests.get_request(owner, request_id).export_rows == 2
    window.close()
