"""A4: idle lock and Ctrl+L clear the screen and need the password; sign-out closes up."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from nvadmin.auth import accounts
from nvadmin.auth.accounts import command_line_operator
from nvadmin.auth.signin import Authenticator
from nvadmin.context import Context
from nvadmin.db.models import ActivityEvent
from nvadmin.paths import Paths
from nvadmin.ui.lock_screen import UNLOCK_REFUSED
from nvadmin.ui.session import Session
from tests.factories import add_workspace, draft, write

PASSWORD = "quiet-river-stones"


@pytest.fixture
def context(sqlite_db_url: str):  # type: ignore[no-untyped-def]
    ctx = Context(Paths.from_environment(), sqlite_db_url, is_default_database=False)
    workspace = add_workspace(ctx.engine)
    write(ctx.engine, workspace, [draft(i, patient_id=f"P{i}") for i in range(30)])
    accounts.add_staff(ctx.engine, command_line_operator(), "ana@n.example", PASSWORD, "admin")
    yield ctx
    ctx.dispose()


def signed_in(qtbot, context: Context, idle_ms: int, *, owned: bool = True) -> Session:  # type: ignore[no-untyped-def]
    session = Session(context, idle_timeout_ms=idle_ms)
    session.identity = Authenticator(context.engine).sign_in("ana@n.example", PASSWORD).identity
    session.open_window()
    if owned:  # a window the session deletes itself (sign-out) is not handed to qtbot
        qtbot.addWidget(session.window)
    # The idle countdown starts again once the rows are on screen: loading may take longer
    # than a short idle time on a busy machine, and a lock during loading clears the rows.
    assert session.watcher is not None
    session.watcher.stop()
    window = session.window
    qtbot.waitUntil(lambda: window.state.loaded)
    window.picker.select(
        window.picker.workspace_by_id(2) or window.picker.workspace_by_id(1), notify=True
    )
    qtbot.waitUntil(lambda: window.model.rowCount() > 0)
    window.table.selectRow(0)
    session.watcher.start()
    return session


def session_actions(context: Context) -> list[str]:
    with DbSession(context.engine) as db:
        return list(
            db.execute(
                select(ActivityEvent.action)
                .where(ActivityEvent.action.like("staff.s%"))
                .order_by(ActivityEvent.seq)
            ).scalars()
        )


def unlock(qtbot, session: Session, password: str) -> None:  # type: ignore[no-untyped-def]
    screen = session.lock_screen
    assert screen is not None
    screen.password_edit.setText(password)
    screen.unlock_button.click()


def test_idle_lock_clears_data_and_needs_password(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    session = signed_in(qtbot, context, idle_ms=400)
    window = session.window
    assert window.detail.isVisible()
    qtbot.waitUntil(lambda: session.locked)
    assert window.model.rowCount() == 0  # nothing left on screen behind the lock
    assert window.filter_bar.isHidden()
    screen = session.lock_screen
    assert screen is not None and "without input" in screen.reason_label.text()

    # A wrong password typed and Return: the message speaks of the password it asked for.
    screen.activateWindow()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is screen.password_edit)
    qtbot.keyClicks(screen.password_edit, "not-my-password")
    qtbot.keyClick(screen.password_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: screen.message.isVisible())
    assert screen.message.text() == UNLOCK_REFUSED
    assert "password is wrong" in UNLOCK_REFUSED and "e-mail" not in UNLOCK_REFUSED
    assert "code" not in UNLOCK_REFUSED
    assert session.locked and window.model.rowCount() == 0

    # Unlocking restarts the idle countdown; stopped right after (same event) so that the
    # reload, however slow, is seen before a second idle lock clears the rows again.
    screen.unlocked.connect(session.watcher.stop)
    unlock(qtbot, session, PASSWORD)
    qtbot.waitUntil(lambda: not session.locked)
    qtbot.waitUntil(lambda: window.model.rowCount() > 0)
    qtbot.waitUntil(lambda: "staff.session_locked" in session_actions(context))
    assert session_actions(context)[-3:] == [
        "staff.session_locked",
        "staff.sign_in_failed",
        "staff.sign_in",
    ]
    session.watcher.stop()


def test_input_postpones_the_idle_lock(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    # 20 x 150 ms of typing: longer than the limit, and a pause between two keys stays far
    # below it even when a busy machine holds the event loop back for a second.
    session = signed_in(qtbot, context, idle_ms=2_000)
    for _ in range(20):
        qtbot.keyClick(session.window.table, Qt.Key.Key_Down)
        qtbot.wait(150)
        assert not session.locked
    qtbot.waitUntil(lambda: session.locked)
    unlock(qtbot, session, PASSWORD)
    qtbot.waitUntil(lambda: not session.locked)
    session.watcher.stop()


def test_ctrl_l_locks_at_once(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    session = signed_in(qtbot, context, idle_ms=60_000)
    window = session.window
    window.activateWindow()
    window.window_actions.lock.trigger()  # the Account menu's "Lock" (Ctrl+L)
    assert session.locked and window.model.rowCount() == 0
    assert "on request" in session.lock_screen.reason_label.text()
    unlock(qtbot, session, PASSWORD)
    qtbot.waitUntil(lambda: not session.locked)
    session.watcher.stop()


def test_admin_gets_staff_menu_and_sign_out_closes_connections(
    qtbot, context: Context, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    session = signed_in(qtbot, context, idle_ms=60_000, owned=False)
    assert session.staff_action is not None
    titles = [a.text() for a in session.window.menus.account.actions()]
    assert "&Staff…" in titles and "&Keyring status…" in titles
    asked_again = []
    monkeypatch.setattr(session, "_sign_in_again", lambda: asked_again.append(True))
    assert context._engine is not None
    with qtbot.waitSignal(session.signed_out):
        session.window.window_actions.sign_out.trigger()
    assert session.window is None and session.identity is None
    assert context._engine is None  # pooled connections disposed
    qtbot.waitUntil(lambda: bool(asked_again))
    assert session_actions(context)[-1] == "staff.sign_out"


def test_support_gets_no_staff_menu(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    accounts.add_staff(
        context.engine, command_line_operator(), "sam@n.example", PASSWORD, "support"
    )
    session = Session(context, idle_timeout_ms=60_000)
    session.identity = Authenticator(context.engine).sign_in("sam@n.example", PASSWORD).identity
    session.open_window()
    qtbot.addWidget(session.window)
    assert session.staff_action is None
    session.watcher.stop()


def test_a_wrong_password_is_logged_as_one_line(qtbot, caplog, context: Context) -> None:  # type: ignore[no-untyped-def]
    """A user's slip is no fault: the log file gets one line, not a traceback."""
    session = signed_in(qtbot, context, idle_ms=400)
    qtbot.waitUntil(lambda: session.locked)
    screen = session.lock_screen
    assert screen is not None
    caplog.set_level("INFO", logger="nvadmin.workers.jobs")
    screen.activateWindow()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is screen.password_edit)
    qtbot.keyClicks(screen.password_edit, "not-my-password")
    qtbot.keyClick(screen.password_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: screen.message.isVisible())
    failed = [r for r in caplog.records if r.name == "nvadmin.workers.jobs"]
    assert [r.getMessage() for r in failed] == [f"unlock failed: {UNLOCK_REFUSED}"]
    assert failed[0].exc_info is None or failed[0].exc_info is False
    session.watcher.stop()
