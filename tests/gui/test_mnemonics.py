"""Alt+letter in the main window: each letter has one meaning, and every menu's letter
opens that menu, whatever panels the staff member's role shows."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton, QApplication, QLabel, QMenu, QWidget

from nvadmin.context import Context
from nvadmin.identity import Role, StaffIdentity
from nvadmin.ui.main_window import MainWindow
from tests.factories import add_workspace, draft, sign_in_as, write

ALT = Qt.KeyboardModifier.AltModifier
ROLES = {
    "support": StaffIdentity(8, "sam@nvadmin.example", "Sam Support", Role.SUPPORT),
    "compliance": StaffIdentity(7, "casey@nvadmin.example", "Casey Review", Role.COMPLIANCE),
    "admin": StaffIdentity(9, "dana@nvadmin.example", "Dana Admin", Role.ADMIN),
}
# "&Save" -> "s"; "&&" is a literal ampersand, not a mnemonic.
MNEMONIC = re.compile(r"(?<!&)&([^&\s])")


@pytest.fixture
def context(sqlite_db_url: str) -> Iterator[Context]:
    ctx = Context.create(sqlite_db_url)
    ws = add_workspace(ctx.engine)
    write(ctx.engine, ws, [draft(i) for i in range(5)])
    yield ctx
    ctx.dispose()


def open_window(qtbot, context: Context, identity: StaffIdentity) -> MainWindow:  # type: ignore[no-untyped-def]
    window = MainWindow(context, sign_in_as(context, identity))
    qtbot.addWidget(window)
    window.resize(1280, 720)
    window.show()
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    qtbot.waitUntil(lambda: window.state.loaded and not window.model.loading)
    return window


def letter(text: str) -> str | None:
    found = MNEMONIC.search(text)
    return found.group(1).lower() if found else None


def window_mnemonics(window: MainWindow) -> list[tuple[str, str]]:
    """(letter, what it is on) for the menu bar and every shown label and button."""
    found = [
        (key, f"menu {action.text()}")
        for action in window.menuBar().actions()
        if (key := letter(action.text()))
    ]
    for widget in window.findChildren(QWidget):
        if not widget.isVisibleTo(window) or isinstance(widget.window(), QMenu):
            continue
        labelled = isinstance(widget, QLabel) and widget.buddy() is not None
        if not (labelled or isinstance(widget, QAbstractButton)):
            continue
        text = widget.text()  # type: ignore[attr-defined]
        if key := letter(text):
            found.append((key, f"{type(widget).__name__} {text}"))
    return found


@pytest.mark.parametrize("role", list(ROLES))
def test_each_alt_letter_means_one_thing(qtbot, context: Context, role: str) -> None:  # type: ignore[no-untyped-def]
    window = open_window(qtbot, context, ROLES[role])
    found = window_mnemonics(window)
    twice = {key for key, n in Counter(k for k, _ in found).items() if n > 1}
    assert not twice, sorted(where for key, where in found if key in twice)


def test_alt_a_opens_the_account_menu_for_support(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    window = open_window(qtbot, context, ROLES["support"])
    assert window.features.requests.dock.isVisible()  # support's requests panel is shown
    window.table.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.table)
    panel = window.features.requests.panel
    assigned = panel.assignee_box.currentText()
    for action in window.menuBar().actions():
        key = letter(action.text())
        assert key is not None, action.text()
        qtbot.keyClick(
            QApplication.focusWidget() or window, getattr(Qt.Key, f"Key_{key.upper()}"), ALT
        )
        qtbot.waitUntil(lambda: QApplication.activePopupWidget() is not None)
        assert QApplication.activePopupWidget() is action.menu(), action.text()
        qtbot.keyClick(QApplication.activePopupWidget(), Qt.Key.Key_Escape)
        qtbot.keyClick(
            QApplication.activePopupWidget() or QApplication.focusWidget() or window,
            Qt.Key.Key_Escape,
        )
        qtbot.waitUntil(lambda: QApplication.activePopupWidget() is None)
    # The next Down went to the table, never to a filter of the requests panel.
    window.table.setFocus()
    qtbot.keyClick(window.table, Qt.Key.Key_Down)
    assert panel.assignee_box.currentText() == assigned
