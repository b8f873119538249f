"""File → Open case file… as a reviewer meets it: a file that is no case file is refused in
one sentence before any passphrase is typed, a wrong passphrase is asked again (not left in
the browser's banner beside a Retry that searches again), a case already open comes to the
front instead of opening twice, and a tampered page found while verifying is blamed on the
case file, not on "the SQLite file"."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QFileDialog, QInputDialog, QLabel, QMessageBox

from nvadmin.casefile import encrypted
from nvadmin.casefile.builder import create_case_file
from nvadmin.casefile.container import CaseFileError
from nvadmin.casefile.reader import open_case_file
from nvadmin.context import Context
from nvadmin.query.filters import EventFilter
from nvadmin.ui import compliance
from nvadmin.ui.main_window import MainWindow
from nvadmin.ui.verify_dialog import VerifyDialog
from tests.gui.test_compliance import PASSPHRASE, REVIEWER, close_and_wait, open_window, seed


@pytest.fixture
def context(db_url: str) -> Iterator[Context]:
    ctx = Context.create(db_url)
    yield ctx
    ctx.dispose()


class Person:
    """Answers each window that asks something, as it appears, with real key presses: a
    passphrase prompt gets the next of ``passphrases`` (then Escape once none is left), a
    message is read and closed with Enter. ``seen`` is what was asked or said, in order."""

    def __init__(self, qtbot, passphrases: list[str]) -> None:  # type: ignore[no-untyped-def]
        self.qtbot = qtbot
        self.passphrases = list(passphrases)
        self.seen: list[str] = []
        self.timer = QTimer()
        self.timer.timeout.connect(self._look)
        self.timer.start(20)

    def _look(self) -> None:
        modal = QApplication.activeModalWidget()
        # Marked on the window itself: a prompt deleted and the next made can share an id().
        if modal is None or modal.property("answered") or not modal.isVisible():
            return
        modal.setProperty("answered", True)
        if isinstance(modal, QInputDialog):
            self.seen.append(f"asked: {modal.labelText()}")
            field = modal.focusWidget() or modal
            if self.passphrases:
                self.qtbot.keyClicks(field, self.passphrases.pop(0))
                self.qtbot.keyClick(field, Qt.Key.Key_Return)
            else:
                self.qtbot.keyClick(field, Qt.Key.Key_Escape)
        elif isinstance(modal, QMessageBox):
            self.seen.append(f"message: {modal.text()}")
            self.qtbot.keyClick(modal.focusWidget() or modal, Qt.Key.Key_Return)
        else:
            modal.setProperty("answered", False)  # a progress dialog: it closes by itself

    def stop(self) -> None:
        self.timer.stop()


def choose_in_file_dialog(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """The file dialog answered with ``path`` (typing into it with keys is test_first_hour's)."""
    monkeypatch.setattr(
        QFileDialog, "getOpenFileName", staticmethod(lambda *args, **kwargs: (str(path), ""))
    )


def save_case(qtbot, window: MainWindow, ws: int, path: Path) -> None:  # type: ignore[no-untyped-def]
    job = window.features.compliance.save_case(path, PASSPHRASE, EventFilter(workspace_ids=(ws,)))
    with qtbot.waitSignal(job.finished):
        pass
    assert path.exists()


def open_from_menu(window: MainWindow) -> None:
    window.features.compliance.open_case_action.trigger()


def wait_for(qtbot, done: Callable[[], bool]) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(done)


def case_to_open(qtbot, context: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The main window, and a case file saved from it that File → Open case file… will pick."""
    ws = seed(context.engine)
    window = open_window(qtbot, context)
    path = tmp_path / "incident.nvcase"
    save_case(qtbot, window, ws, path)
    choose_in_file_dialog(monkeypatch, path)
    return window, path


def answering(qtbot, window, answers: list[str], done: Callable[[], bool]) -> list[str]:  # type: ignore[no-untyped-def]
    """File → Open case file…, each prompt answered in turn with ``answers`` until ``done``;
    what the person saw."""
    person = Person(qtbot, answers)
    try:
        open_from_menu(window)
        wait_for(qtbot, done)
    finally:
        person.stop()
    return person.seen


@pytest.mark.parametrize("what", ["empty", "folder", "not a case file", "truncated"])
def test_open_case_file_refuses_a_bad_file_before_asking_the_passphrase(
    qtbot, context: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, what: str
) -> None:  # type: ignore[no-untyped-def]
    ws = seed(context.engine)
    window = open_window(qtbot, context)
    path = tmp_path / "incident.nvcase"
    if what == "empty":
        path.write_bytes(b"")
    elif what == "folder":
        path.mkdir()
    elif what == "not a case file":
        path.write_text("Patient notes, not a case file\n", encoding="utf-8")
    else:
        save_case(qtbot, window, ws, tmp_path / "whole.nvcase")
        whole = (tmp_path / "whole.nvcase").read_bytes()
        path.write_bytes(whole[: len(whole) // 2])
    choose_in_file_dialog(monkeypatch, path)
    person = Person(qtbot, [PASSPHRASE])
    try:
        open_from_menu(window)
        wait_for(qtbot, lambda: bool(person.seen) and QApplication.activeModalWidget() is None)
    finally:
        person.stop()
    # One sentence naming the file, and no passphrase typed for nothing.
    assert len(person.seen) == 1, person.seen
    assert person.seen[0].startswith("message: incident.nvcase cannot be opened: "), person.seen
    if what == "empty":  # not "not a case file, or its end is missing (truncated?)"
        assert "the file is empty" in person.seen[0], person.seen
    assert window.features.compliance.case_windows == []
    # Not the browser's banner, whose Retry would only search the log again.
    assert not window.banner.isVisible()


def test_a_wrong_passphrase_is_asked_again_and_the_right_one_opens(
    qtbot, context: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    window, _ = case_to_open(qtbot, context, tmp_path, monkeypatch)
    seen = answering(
        qtbot,
        window,
        ["not the passphrase at all", PASSPHRASE],
        lambda: bool(window.features.compliance.case_windows) or window.banner.isVisible(),
    )
    assert not window.banner.isVisible(), window.banner.text()
    assert seen == [
        "asked: Passphrase for incident.nvcase:",
        "asked: That is not its passphrase; try again.\nPassphrase for incident.nvcase:",
    ]
    (case_window,) = window.features.compliance.case_windows
    assert "case file incident.nvcase" in case_window.windowTitle()
    close_and_wait(qtbot, case_window)


def test_escape_at_the_passphrase_opens_nothing_and_says_nothing(
    qtbot, context: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    window, _ = case_to_open(qtbot, context, tmp_path, monkeypatch)
    person = Person(qtbot, [])
    try:
        open_from_menu(window)
        wait_for(qtbot, lambda: bool(person.seen) and QApplication.activeModalWidget() is None)
    finally:
        person.stop()
    assert person.seen == ["asked: Passphrase for incident.nvcase:"]
    assert window.features.compliance.case_windows == []
    assert not window.banner.isVisible()


def test_opening_an_open_case_again_brings_its_window_forward(
    qtbot, context: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    ws = seed(context.engine)
    window = open_window(qtbot, context)
    path = tmp_path / "incident.nvcase"
    save_case(qtbot, window, ws, path)
    opening = window.features.compliance.open_case(path, PASSPHRASE)
    with qtbot.waitSignal(opening.finished):
        pass
    (case_window,) = window.features.compliance.case_windows
    choose_in_file_dialog(monkeypatch, path)
    person = Person(qtbot, [PASSPHRASE])
    try:
        open_from_menu(window)  # from the window it was first opened from
        open_from_menu(case_window)  # and from the case window itself
        wait_for(qtbot, lambda: QApplication.activeModalWidget() is None)
    finally:
        person.stop()
    assert person.seen == []  # no passphrase asked for a case that is open
    assert window.features.compliance.case_windows == [case_window]
    assert case_window.features.compliance.case_windows == []
    assert "incident.nvcase is already open" in window.statusBar().currentMessage()
    close_and_wait(qtbot, case_window)


def _tamper_with_an_event_page(path: Path, tmp_path: Path) -> Path:
    """A copy of ``path`` with one byte changed in a page of the events table: the case still
    opens (pages are authenticated as they are read), and reading the events finds it."""
    data = path.read_bytes()
    for page in range(1, len(data) // 4096):
        changed = bytearray(data)
        changed[page * 4096 + 2000] ^= 0xFF
        candidate = tmp_path / f"tampered-{page}.nvcase"
        candidate.write_bytes(bytes(changed))
        try:
            case = open_case_file(candidate, PASSPHRASE)
        except CaseFileError:
            continue  # a page read to open it: refused at once, as it should be
        try:
            with case.engine.connect() as connection:
                raw = connection.connection.driver_connection
                assert raw is not None
                raw.execute("SELECT * FROM activity_events").fetchall()
        except encrypted.DatabaseError:
            return candidate
        finally:
            case.close()
    raise AssertionError("no page of the events table found to change")


def test_verifying_a_tampered_case_file_blames_the_case_file(
    qtbot, context: Context, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    ws = seed(context.engine)
    path = tmp_path / "incident.nvcase"
    create_case_file(
        context.engine, REVIEWER, EventFilter(workspace_ids=(ws,)), path, PASSPHRASE, source="test"
    )
    case = open_case_file(_tamper_with_an_event_page(path, tmp_path), PASSPHRASE)
    try:
        dialog = VerifyDialog(case.engine, REVIEWER, compliance.KeyStore(tmp_path), case=case)
        qtbot.addWidget(dialog)
        dialog.show()
        qtbot.waitExposed(dialog)
        qtbot.keyClick(dialog.focusWidget() or dialog, Qt.Key.Key_Return)  # Verify: the default
        qtbot.waitUntil(
            lambda: dialog.job is None and dialog.headline.text() != "Not verified yet."
        )
        headline = dialog.headline.text()
        assert headline == encrypted.PAGE_FAILURE[:1].upper() + encrypted.PAGE_FAILURE[1:]
        assert "SQLite" not in headline
    finally:
        case.close()


def test_the_save_dialog_names_the_encryption_the_file_really_has(
    qtbot, context: Context, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """Case files are SQLCipher databases (AES-256, an HMAC on every page); AES-256-GCM is
    only how version 1 files, no longer written, were sealed."""
    ws = seed(context.engine)
    window = open_window(qtbot, context)
    window.apply_filter(EventFilter(workspace_ids=(ws,)))
    dialog = window.features.compliance.ask_save_case()
    qtbot.waitExposed(dialog)
    (note,) = [
        label.text() for label in dialog.findChildren(QLabel) if "nobody can open" in label.text()
    ]
    assert "SQLCipher" in note and "HMAC-SHA512 on every page" in note
    assert "GCM" not in note
    qtbot.keyClick(dialog.focusWidget() or dialog, Qt.Key.Key_Escape)
    assert not dialog.isVisible()
