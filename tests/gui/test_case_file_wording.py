"""Case files in words a reviewer reads: a missing file is reported before any passphrase is
asked; the Save dialog names the clinic, its zone and the event count; offline verification
says why it checked more events than the case file holds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QInputDialog, QLabel, QMessageBox

from nvadmin.casefile.builder import create_case_file
from nvadmin.casefile.reader import open_case_file
from nvadmin.context import Context
from nvadmin.query.filters import EventFilter, Term
from nvadmin.ui import compliance
from nvadmin.ui.verify_dialog import VerifyDialog
from tests.gui.test_compliance import PASSPHRASE, REVIEWER, open_window, seed


@pytest.fixture
def context(db_url: str) -> Iterator[Context]:
    ctx = Context.create(db_url)
    yield ctx
    ctx.dispose()


def answer_every_question(qtbot, seen: list[str]) -> QTimer:  # type: ignore[no-untyped-def]
    """Note and dismiss (Esc) each modal window as it appears, as a person would."""

    def look() -> None:
        modal = QApplication.activeModalWidget()
        if modal is None:
            return
        if isinstance(modal, QMessageBox):
            seen.append(f"message: {modal.text()}")
        elif isinstance(modal, QInputDialog):
            seen.append(f"asked: {modal.labelText()}")
        else:
            seen.append(type(modal).__name__)
        qtbot.keyClick(modal, Qt.Key.Key_Escape)

    timer = QTimer()
    timer.timeout.connect(look)
    timer.start(20)
    return timer


@pytest.mark.parametrize("what", ["missing", "folder", "not a case file"])
def test_open_case_reports_a_bad_file_before_asking_the_passphrase(
    qtbot, context: Context, tmp_path: Path, what: str
) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "incident.nvcase"
    if what == "folder":
        path.mkdir()
    elif what == "not a case file":
        path.write_text("Patient notes, not a case file\n", encoding="utf-8")
    seen: list[str] = []
    timer = answer_every_question(qtbot, seen)
    try:
        assert compliance.run_case_offline(context, path) == 1
    finally:
        timer.stop()
    assert len(seen) == 1 and seen[0].startswith("message: "), seen
    expected = {
        "missing": "No such file",
        "folder": "is a folder",
        "not a case file": "not an nvadmin case file",
    }[what]
    assert expected in seen[0]


def test_save_case_dialog_names_the_clinic_zone_and_count(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    ws = seed(context.engine)
    window = open_window(qtbot, context)
    start = datetime(2025, 3, 3, 6, 0, tzinfo=UTC)  # midnight in Chicago
    window.apply_filter(
        EventFilter(
            workspace_ids=(ws,),
            terms=(Term("patient", "P-17"),),
            start=start,
            include_log_access=False,
        )
    )
    qtbot.waitUntil(lambda: not window.model.loading and window.model.count == 30)
    dialog = window.features.compliance.ask_save_case()
    summary = dialog.findChild(QLabel, "caseSummary").text()
    assert "Riverside Family Clinic" in summary and "workspace " not in summary
    assert "patient:P-17" in summary and "after:2025-03-03" in summary
    assert "America/Chicago" in summary and "UTC" not in summary
    qtbot.waitUntil(lambda: "30 events" in dialog.count_label.text())
    dialog.reject()


def test_offline_verification_says_why_it_counts_more_events(
    qtbot, context: Context, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    ws = seed(context.engine)
    path = tmp_path / "p20.nvcase"
    create_case_file(
        context.engine,
        REVIEWER,
        EventFilter(workspace_ids=(ws,), terms=(Term("patient", "P-20"),), start=None),
        path,
        PASSPHRASE,
        source="test",
    )
    case = open_case_file(path, PASSPHRASE)
    try:
        dialog = VerifyDialog(case.engine, REVIEWER, compliance.KeyStore(tmp_path), case=case)
        qtbot.addWidget(dialog)
        dialog.show()
        dialog.start()
        qtbot.waitUntil(lambda: bool(dialog.results))
        headline = dialog.headline.text()
        carried = case.manifest["events"]
        verified = sum(r.events_verified for r in dialog.results)
        assert carried == 30 and verified > carried
        assert f"{verified:,} events verified, chain intact" in headline
        assert f"The case file holds {carried:,} events" in headline
        assert "from its start" in headline
    finally:
        case.close()
