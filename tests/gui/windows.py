"""Opening the main window in GUI tests, as a signed-in staff member would see it."""

from __future__ import annotations

from nvadmin.auth.roles import Role, StaffIdentity
from nvadmin.context import Context
from nvadmin.ui.main_window import MainWindow

ADMIN = StaffIdentity(1, "dana@nvadmin.example", "Dana Admin", Role.ADMIN)


def open_main_window(qtbot, context: Context, identity: StaffIdentity = ADMIN) -> MainWindow:  # type: ignore[no-untyped-def]
    """The window shown, its workspaces listed and its first page loaded."""
    window = MainWindow(context, identity)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window._workspaces_loaded, timeout=15_000)
    qtbot.waitUntil(lambda: not window.model.loading, timeout=15_000)
    return window
