"""Quitting or signing out while an export runs asks first: Esc keeps nvadmin open and the
export finishes; "Cancel them and quit" stops it cleanly (no file) before the window goes."""

from __future__ import annotations

import csv
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from nvadmin.auth import accounts
from nvadmin.auth.accounts import command_line_operator
from nvadmin.auth.signin import Authenticator
from nvadmin.context import Context
from nvadmin.paths import Paths
from nvadmin.ui import export_panel
from nvadmin.ui.export_dialog import ExportDialog
from nvadmin.ui.export_panel import ExportRow, State
from nvadmin.ui.main_window import MainWindow
from nvadmin.ui.session import Session
from tests.factories import add_workspace, draft, write
from tests.gui.windows import open_session_window

PASSWORD = "quiet-river-stones"
CTRL = Qt.KeyboardModifier.ControlModifier


@pytest.fixture
def context(sqlite_db_url: str) -> Iterator[Context]:
    ctx = Context(Paths.from_environment(), sqlite_db_url, is_default_database=False)
    workspace = add_workspace(ctx.engine)
    now = datetime.now(UTC).replace(microsecond=0)
    write(
        ctx.engine,
        workspace,
        [draft(occurred_at=now - timedelta(hours=2, minutes=i)) for i in range(50)],
    )
    accounts.add_staff(ctx.engine, command_line_operator(), "ana@n.example", PASSWORD, "admin")
    yield ctx
    ctx.dispose()


class Gate:
    """Holds a real export after its first progress report until the test opens the gate
    (or the export is cancelled), so "an export is running" does not depend on timing."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.open = threading.Event()
        real = export_panel.export_csv

        def held_export(engine, identity, request, *, progress, token):  # type: ignore[no-untyped-def]
            def report(done: int, total: int | None = None, message: str = "") -> None:
                progress(done, total, message)
                while total is not None and not self.open.wait(0.02) and not token.cancelled:
                    pass

            return real(engine, identity, request, progress=report, token=token)

        monkeypatch.setattr(export_panel, "export_csv", held_export)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "exports"
    path.mkdir()
    return path


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    held = Gate(monkeypatch)
    yield held
    held.open.set()


def signed_in(qtbot, context: Context, *, owned: bool = True) -> Session:  # type: ignore[no-untyped-def]
    session = Session(context, idle_timeout_ms=600_000)
    identity = Authenticator(context.engine).sign_in("ana@n.example", PASSWORD).identity
    open_session_window(qtbot, session, identity, owned=owned)
    return session


def focused() -> QWidget:
    widget = QApplication.focusWidget()
    assert widget is not None
    return widget


def start_export(qtbot, window: MainWindow, folder: Path) -> ExportRow:  # type: ignore[no-untyped-def]
    window.features.export.last_folder = folder
    qtbot.keyClick(focused(), Qt.Key.Key_E, CTRL)
    qtbot.waitUntil(lambda: bool(window.findChildren(ExportDialog)))
    dialog = window.findChildren(ExportDialog)[0]
    qtbot.waitUntil(lambda: dialog.isVisible() and dialog.current_workspace() is not None)
    dialog.ticket_edit.setFocus()
    qtbot.keyClicks(dialog.ticket_edit, "SUP-41")
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    panel = window.features.export.panel
    qtbot.waitUntil(lambda: bool(panel.rows))
    row = panel.rows[0]
    qtbot.waitUntil(lambda: row.state is State.RUNNING)
    return row


def question(qtbot, window: MainWindow) -> QMessageBox:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(
        lambda: window.stop_work_box is not None and window.stop_work_box.isVisible(),
    )
    box = window.stop_work_box
    assert box is not None
    return box


def button(box: QMessageBox, starts: str) -> QWidget:
    found = [b for b in box.buttons() if b.text().replace("&", "").startswith(starts)]
    assert len(found) == 1, [b.text() for b in box.buttons()]
    return found[0]


def test_quit_during_an_export_asks_and_esc_lets_it_finish(
    qtbot, context: Context, gate: Gate, folder: Path
) -> None:  # type: ignore[no-untyped-def]
    session = signed_in(qtbot, context)
    window = session.window
    assert isinstance(window, MainWindow)
    row = start_export(qtbot, window, folder)
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    window.window_actions.quit.trigger()  # File → Quit
    box = question(qtbot, window)
    assert box.text() == "1 export running"
    assert button(box, "Wait") is box.escapeButton()
    button(box, "Cancel them and quit")
    qtbot.keyClick(box, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: window.stop_work_box is None)
    assert window.isVisible() and row.state is State.RUNNING
    gate.open.set()
    qtbot.waitUntil(lambda: row.state is State.DONE)
    with row.request.output.open(encoding="utf-8", newline="") as handle:
        assert sum(1 for _ in csv.DictReader(handle)) == row.result.rows >= 50
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    window.window_actions.quit.trigger()  # nothing runs now: quits at once
    qtbot.waitUntil(lambda: not window.isVisible())
    assert window.stop_work_box is None
    assert session.watcher is not None
    session.watcher.stop()


def test_cancel_them_and_quit_leaves_no_file(
    qtbot, context: Context, gate: Gate, folder: Path
) -> None:  # type: ignore[no-untyped-def]
    session = signed_in(qtbot, context)
    window = session.window
    assert isinstance(window, MainWindow)
    row = start_export(qtbot, window, folder)
    window.close()  # the window manager's close button
    box = question(qtbot, window)
    qtbot.mouseClick(button(box, "Cancel them and quit"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.isVisible())
    assert row.state is State.CANCELLED
    assert list(folder.iterdir()) == []  # neither the CSV nor a temporary file
    assert session.watcher is not None
    session.watcher.stop()


def test_sign_out_during_an_export_asks_first(
    qtbot, context: Context, gate: Gate, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    session = signed_in(qtbot, context, owned=False)
    window = session.window
    assert isinstance(window, MainWindow)
    monkeypatch.setattr(session, "_sign_in_again", lambda: None)
    row = start_export(qtbot, window, folder)
    window.window_actions.sign_out.trigger()  # Account → Sign out
    box = question(qtbot, window)
    assert "Cancel them and sign out" in [b.text().replace("&", "") for b in box.buttons()]
    qtbot.keyClick(box, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: window.stop_work_box is None)
    assert session.window is window and session.identity is not None  # still signed in
    gate.open.set()
    qtbot.waitUntil(lambda: row.state is State.DONE)
    assert row.request.output.exists()
    with qtbot.waitSignal(session.signed_out):
        window.window_actions.sign_out.trigger()  # nothing runs now: signs out at once
    assert session.window is None


def test_work_ending_while_asked_goes_on_with_the_quit(
    qtbot, context: Context, gate: Gate, folder: Path
) -> None:  # type: ignore[no-untyped-def]
    session = signed_in(qtbot, context)
    window = session.window
    assert isinstance(window, MainWindow)
    row = start_export(qtbot, window, folder)
    window.window_actions.quit.trigger()
    question(qtbot, window)
    gate.open.set()  # the export finishes before anyone answers: nothing left to lose
    qtbot.waitUntil(lambda: not window.isVisible())
    assert row.state is State.DONE and row.request.output.exists()
    assert window.stop_work_box is None
    qtbot.waitUntil(lambda: not window.findChildren(QMessageBox))
    assert session.watcher is not None
    session.watcher.stop()


def test_a_verification_and_a_case_file_being_built_are_asked_about_too(
    qtbot, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from nvadmin.query.filters import EventFilter
    from nvadmin.ui import compliance, verify_dialog
    from tests.gui.test_compliance import PASSPHRASE, open_window, seed

    release = threading.Event()

    def held(real):  # type: ignore[no-untyped-def]
        """The real work, held at its first progress report until ``release``."""

        def work(*args, progress, cancel, **kwargs):  # type: ignore[no-untyped-def]
            def report(done: int, total: int | None = None, message: str = "") -> None:
                progress(done, total, message)
                while not release.wait(0.02) and not cancel.cancelled:
                    pass

            return real(*args, progress=report, cancel=cancel, **kwargs)

        return work

    monkeypatch.setattr(verify_dialog, "verify_workspace", held(verify_dialog.verify_workspace))
    monkeypatch.setattr(compliance, "create_case_file", held(compliance.create_case_file))
    context = Context.create(db_url)
    try:
        ws = seed(context.engine)
        window = open_window(qtbot, context)
        verifying = window.features.compliance.open_verify()
        qtbot.waitUntil(verifying.verify_button.isEnabled)
        verifying.start()
        building = window.features.compliance.save_case(
            tmp_path / "held.nvcase", PASSPHRASE, EventFilter(workspace_ids=(ws,))
        )
        qtbot.waitUntil(lambda: len(window.running_work()) == 2)
        window.close()
        box = question(qtbot, window)
        assert box.text() == "1 case file and 1 verification running"
        qtbot.keyClick(box, Qt.Key.Key_Escape)
        qtbot.waitUntil(lambda: window.stop_work_box is None)
        assert window.isVisible()
        with qtbot.waitSignal(building.finished):
            release.set()
        qtbot.waitUntil(lambda: bool(verifying.results))
        assert (tmp_path / "held.nvcase").exists()
        assert "chain intact" in verifying.headline.text()
        verifying.close()
        window.close()
        qtbot.waitUntil(lambda: not window.isVisible())
    finally:
        release.set()
        context.dispose()


def test_locking_keeps_the_export_running(
    qtbot, context: Context, gate: Gate, folder: Path
) -> None:  # type: ignore[no-untyped-def]
    """Locking loses nothing, so it does not ask: the export goes on behind the lock."""
    session = signed_in(qtbot, context)
    window = session.window
    assert isinstance(window, MainWindow)
    row = start_export(qtbot, window, folder)
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    qtbot.keyClick(focused(), Qt.Key.Key_L, CTRL)
    qtbot.waitUntil(lambda: session.locked)
    assert window.stop_work_box is None
    gate.open.set()
    qtbot.waitUntil(lambda: row.state is State.DONE)
    assert session.locked and row.request.output.exists()
    assert session.watcher is not None
    session.watcher.stop()
