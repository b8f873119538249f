"""Opening the main window in GUI tests, as a signed-in staff member would see it."""

from __future__ import annotations

from PySide6.QtWidgets import QApplication

from nvadmin.context import Context
from nvadmin.identity import Role, StaffIdentity
from nvadmin.ui.main_window import MainWindow
from nvadmin.ui.session import Session

ADMIN = StaffIdentity(1, "dana@nvadmin.example", "Dana Admin", Role.ADMIN)


def open_main_window(qtbot, context: Context, identity: StaffIdentity = ADMIN) -> MainWindow:  # type: ignore[no-untyped-def]
    """The window shown, its workspaces listed and its first page loaded."""
    window = MainWindow(context, identity)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.state.loaded)
    qtbot.waitUntil(lambda: not window.model.loading)
    return window


def open_session_window(  # type: ignore[no-untyped-def]
    qtbot, session: Session, identity: StaffIdentity, *, owned: bool = True
) -> MainWindow:
    """What a session does once sign-in succeeds: the window opens, loads its first page and
    takes the keyboard. ``owned=False``: a window the session deletes itself (sign-out) is
    not handed to qtbot."""
    session.identity = identity
    session.open_window()
    window = session.window
    assert isinstance(window, MainWindow)
    if owned:
        qtbot.addWidget(window)
    qtbot.waitUntil(
        lambda: window.state.loaded and window.model.rowCount() > 0 and not window.model.loading,
    )
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    return window
