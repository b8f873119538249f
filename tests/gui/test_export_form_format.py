"""The export form's Format list: JSON Lines chosen with keys, the file name follows, the CSV
profile (a spreadsheet matter) is off, and the export written is JSON Lines."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import Qt
from sqlalchemy import Engine

from nvadmin.export.formats import FileFormat
from nvadmin.export.service import export_csv
from tests.gui.test_export_form import ADMIN, choose, focused, open_form, press_start, type_into
from tests.gui.test_export_form import workspace as workspace


def test_json_lines_chosen_with_keys(qtbot, engine: Engine, workspace: int, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dialog = open_form(qtbot, engine, ADMIN, tmp_path)
    assert dialog.format_box.currentText() == "CSV"
    type_into(qtbot, dialog.from_edit, "2025-03-01")
    type_into(qtbot, dialog.to_edit, "2025-03-31")
    type_into(qtbot, dialog.output_edit, str(tmp_path / "oct.csv"))
    assert dialog.profile_box.isEnabled()  # a choice for CSV...
    choose(qtbot, dialog.format_box, "JSON Lines")
    assert dialog.output_edit.text() == str(tmp_path / "oct.jsonl")
    assert not dialog.profile_box.isEnabled()  # ...and none for a JSON Lines file
    assert dialog.windowTitle() == "Export activity to JSON Lines"
    # A name typed without a suffix gets the format's.
    type_into(qtbot, dialog.output_edit, str(tmp_path / "for-siem"))
    qtbot.keyClick(dialog.output_edit, Qt.Key.Key_Return)
    assert dialog.output_edit.text() == str(tmp_path / "for-siem.jsonl")
    dialog.members_edit.setFocus()
    qtbot.waitUntil(lambda: focused() is dialog.members_edit)
    press_start(qtbot, dialog)
    made = dialog.request()
    assert made is not None
    assert made.file_format is FileFormat.JSONL
    assert made.output == tmp_path / "for-siem.jsonl"
    result = export_csv(engine, ADMIN, made)
    lines = result.path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == result.rows == 12
    assert all(isinstance(json.loads(line), dict) for line in lines)
    assert result.manifest["file_format"] == "jsonl"
    assert not result.path.read_bytes().startswith(b"\xef\xbb\xbf")  # no BOM


def test_back_to_csv_restores_the_suffix_and_the_profile(
    qtbot, engine: Engine, workspace: int, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    dialog = open_form(qtbot, engine, ADMIN, tmp_path)
    type_into(qtbot, dialog.output_edit, str(tmp_path / "oct.csv"))
    choose(qtbot, dialog.format_box, "JSON Lines")
    choose(qtbot, dialog.format_box, "CSV")
    assert dialog.output_edit.text() == str(tmp_path / "oct.csv")
    assert dialog.profile_box.isEnabled()
