"""Reports are long work like the others: their progress offers Cancel, closing the window or
signing out asks first, and a report done after the window locked, closed or signed out
opens nothing over the lock screen or after the window went. A user activity report starts
from a whole address only. An admin demoted meanwhile: the window stops claiming the role and
offering Account → Staff…. Both backends."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox, QProgressDialog, QWidget

from nvadmin.auth import accounts
from nvadmin.auth.signin import Authenticator
from nvadmin.context import Context
from nvadmin.identity import Role, StaffIdentity
from nvadmin.query.filters import EventFilter, Term
from nvadmin.ui import compliance
from nvadmin.ui.main_window import MainWindow
from nvadmin.ui.report_view import ReportView
from nvadmin.ui.session import Session
from nvadmin.ui.staff_dialog import StaffDialog
from tests.factories import add_workspace, draft, sign_in_as, write
from tests.gui.test_compliance import context, open_window  # noqa: F401 (the fixture)
from tests.gui.test_report_window import open_request
from tests.gui.test_staff_odd_input import select_row
from tests.gui.windows import open_session_window
from tests.waiting import HANG_GUARD_MS

ALT = Qt.KeyboardModifier.AltModifier
CTRL = Qt.KeyboardModifier.ControlModifier
PATIENT = "P-17"
ANA = "ana@riverside.example"
BEN = "ben@riverside.example"


class Held:
    """Holds the real report functions until the test opens the gate, so "a report is being
    produced" does not depend on timing."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.entered = threading.Event()
        self.open = threading.Event()
        for name in ("patient_access_report", "user_activity_report"):
            monkeypatch.setattr(compliance, name, self._held(getattr(compliance, name)))

    def _held(self, real: Callable[..., object]) -> Callable[..., object]:
        def held(*args: object, **kwargs: object) -> object:
            self.entered.set()
            self.open.wait(HANG_GUARD_MS / 1000)
            return real(*args, **kwargs)

        return held


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[Held]:
    gate = Held(monkeypatch)
    yield gate
    gate.open.set()


def seed_recent(into: Context) -> int:
    """Events of the last days (the report's default days), by Ana and Ben."""
    workspace = add_workspace(into.engine)
    now = datetime.now(UTC).replace(microsecond=0)
    write(
        into.engine,
        workspace,
        [
            draft(
                occurred_at=now - timedelta(days=2, minutes=40 - i),
                email=ANA if i % 2 else BEN,
                name="Ana Ruiz" if i % 2 else "Ben Okafor",
                patient_id=PATIENT,
            )
            for i in range(40)
        ],
    )
    return workspace


def press(  # type: ignore[no-untyped-def]
    qtbot, key: Qt.Key, modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier
) -> None:
    """One key, into the open menu or else the widget that has focus, as the keyboard does."""
    widget = QApplication.activePopupWidget() or QApplication.focusWidget()
    assert widget is not None
    qtbot.keyClick(widget, key, modifiers)


def request_patient_report(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    request = open_request(qtbot, window, Qt.Key.Key_P)
    qtbot.keyClick(request.subject, Qt.Key.Key_A, CTRL)
    qtbot.keyClicks(request.subject, PATIENT)
    qtbot.keyClick(request.subject, Qt.Key.Key_Return)  # Produce report


def reports_shown() -> list[QWidget]:
    return [w for w in QApplication.topLevelWidgets() if isinstance(w, ReportView)]


def nouns(window: MainWindow) -> list[str]:
    return [work.noun for work in window.running_work()]


def held_report(qtbot, window: MainWindow, held: Held) -> None:  # type: ignore[no-untyped-def]
    """A patient access report asked for and being produced, held before it reads."""
    request_patient_report(qtbot, window)
    qtbot.waitUntil(held.entered.is_set)
    assert nouns(window) == ["report"]  # closing or signing out asks about it


def test_a_report_is_cancelled_from_its_progress(qtbot, context: Context, held: Held) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    seed_recent(context)
    window = open_window(qtbot, context)
    held_report(qtbot, window, held)
    progress = window.findChild(QProgressDialog, "reportProgress")
    assert progress is not None
    qtbot.waitUntil(progress.isVisible)  # shown once the work takes a moment
    assert progress.labelText() == "Producing the patient access report…"
    progress.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is progress)
    press(qtbot, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not progress.isVisible())
    held.open.set()
    qtbot.waitUntil(lambda: not window.running_work())
    qtbot.waitUntil(
        lambda: (
            window.statusBar().currentMessage() == "Patient access report not produced (cancelled)."
        )
    )
    assert reports_shown() == []


def test_a_report_done_after_the_window_closed_opens_nothing(
    qtbot,
    context: Context,  # noqa: F811
    held: Held,
) -> None:  # type: ignore[no-untyped-def]
    seed_recent(context)
    window = open_window(qtbot, context)
    held_report(qtbot, window, held)
    window.close()  # the window manager's close button
    qtbot.waitUntil(lambda: window.stop_work_box is not None)
    box = window.stop_work_box
    assert isinstance(box, QMessageBox) and box.text() == "1 report running"
    qtbot.waitUntil(box.isVisible)
    box.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is box)
    press(qtbot, Qt.Key.Key_C, ALT)  # Cancel them and quit
    qtbot.waitUntil(lambda: window.stop_work_box is None)
    held.open.set()
    qtbot.waitUntil(lambda: not window.isVisible())
    qtbot.waitUntil(lambda: not window.running_work())
    assert reports_shown() == []


def test_a_report_done_while_locked_opens_after_the_unlock(
    qtbot,
    context: Context,  # noqa: F811
    held: Held,
) -> None:  # type: ignore[no-untyped-def]
    seed_recent(context)
    window = open_window(qtbot, context)
    held_report(qtbot, window, held)
    window.set_locked(True)  # what the idle lock and Account → Lock do to the window
    held.open.set()
    qtbot.waitUntil(lambda: not window.running_work())
    assert reports_shown() == []  # nothing over the lock screen (shown before the job ends)
    window.set_locked(False)
    qtbot.waitUntil(lambda: len(reports_shown()) == 1)
    (view,) = reports_shown()
    assert isinstance(view, ReportView) and view.report.subject == PATIENT
    view.close()


def test_the_status_line_names_the_report_produced(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    seed_recent(context)
    window = open_window(qtbot, context)
    request = open_request(qtbot, window, Qt.Key.Key_U)
    qtbot.keyClick(request.subject, Qt.Key.Key_A, CTRL)
    qtbot.keyClicks(request.subject, ANA)
    qtbot.keyClick(request.subject, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len(reports_shown()) == 1)
    assert window.statusBar().currentMessage() == "User activity report: 20 events"
    reports_shown()[0].close()


def test_a_user_report_starts_from_a_whole_address_only(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """``user:ana`` is the start of several addresses or names: the request starts from the
    selected event's team member, whose address is whole."""
    seed_recent(context)
    window = open_window(qtbot, context)
    window.focus_search()
    qtbot.keyClicks(window.filter_bar.search_edit, "user:ben")
    qtbot.keyClick(window.filter_bar.search_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.current_filter().values("user") == ["ben"])
    qtbot.waitUntil(lambda: not window.model.loading and window.model.rowCount() == 20)
    window.table.setFocus()
    press(qtbot, Qt.Key.Key_Down)
    qtbot.waitUntil(lambda: window.current_event() is not None)
    request = open_request(qtbot, window, Qt.Key.Key_U)
    assert request.subject.text() == BEN
    request.reject()


def test_the_address_a_user_report_starts_from() -> None:
    def by(*values: str) -> EventFilter:
        return EventFilter(terms=tuple(Term("user", v) for v in values))

    assert compliance._team_member_address(None, by("ana")) == ""
    assert compliance._team_member_address(None, by(ANA)) == ANA
    assert compliance._team_member_address(None, by(ANA, BEN)) == ""  # which one?
    assert compliance._team_member_address(None, by()) == ""


# -- an admin demoted or disabled meanwhile ---------------------------------------------------

BOSS = StaffIdentity(21, "boss@n.example", "Boss Admin", Role.ADMIN)
SECOND = StaffIdentity(22, "second@n.example", "Second Admin", Role.ADMIN)
STAFF_PASSWORD = "a long staff password"


def offered(menu) -> list[str]:  # type: ignore[no-untyped-def]
    return [a.text().replace("&", "") for a in menu.actions() if a.isVisible() and a.text()]


@pytest.mark.parametrize("change", ["demote", "disable"])
def test_an_admin_changed_meanwhile_is_no_longer_shown_as_one(
    qtbot,
    context: Context,  # noqa: F811
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    change: str,
) -> None:  # type: ignore[no-untyped-def]
    operator = accounts.command_line_operator()
    for who in (BOSS, SECOND):
        accounts.add_staff(
            context.engine, operator, who.email, STAFF_PASSWORD, who.role, who.display_name
        )
    accounts.add_staff(context.engine, operator, ANA, STAFF_PASSWORD, Role.SUPPORT, "Ana")
    seed_recent(context)
    boss = sign_in_as(context, BOSS, STAFF_PASSWORD)
    if context.session_key is None:  # SQLite: the identity as signed in
        boss = Authenticator(context.engine).sign_in(BOSS.email, STAFF_PASSWORD).identity
    session = Session(context, idle_timeout_ms=600_000)
    window = open_session_window(qtbot, session, boss)
    assert window.status.identity_label.text() == "Boss Admin (admin)"
    assert "Staff…" in offered(window.menus.account)
    # Account → Staff…, as the session opens it (its own event loop aside).
    dialog = StaffDialog(context, boss, window)
    dialog.show()
    qtbot.waitUntil(lambda: len(dialog.accounts) == 3)
    dialog.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is dialog)
    select_row(qtbot, dialog, ANA)
    theirs = Context.create(db_url)  # another admin's desktop, meanwhile
    try:
        second = sign_in_as(theirs, SECOND, STAFF_PASSWORD)
        if theirs.session_key is None:
            second = Authenticator(theirs.engine).sign_in(SECOND.email, STAFF_PASSWORD).identity
        if change == "demote":
            accounts.change_role(theirs.engine, second, BOSS.email, "support")
        else:
            accounts.disable_staff(theirs.engine, second, BOSS.email)
    finally:
        theirs.dispose()
    qtbot.keyClick(dialog.table, Qt.Key.Key_D, ALT)  # disable Ana: refused
    qtbot.waitUntil(lambda: not dialog._busy)
    with qtbot.waitSignal(dialog.finished):
        qtbot.keyClick(dialog.table, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: window.identity_changed)
    assert window.status.identity_label.text() == "Boss Admin (no longer admin)"
    assert "Staff…" not in offered(window.menus.account)
    assert session.window is window and session.identity is not None  # still signed in
    assert session.watcher is not None
    session.watcher.stop()
