"""The window's own shortcuts, whatever widget has the keyboard."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QAction, QKeyEvent, QKeySequence
from PySide6.QtWidgets import QApplication, QMainWindow, QWidget


class WindowShortcuts(QObject):
    """Keeps the window's own shortcuts (Ctrl+E, Ctrl+G, Ctrl+F, F5, Ctrl+L...) working
    whatever widget has focus.

    A focused line edit claims some keys for itself before any shortcut sees them (on X11,
    Ctrl+E moves to the end of the line, so Ctrl+E in the workspace picker exported nothing).
    Each widget of the window that takes focus gets this filter, which hands the keys of the
    window's actions back to the window.
    """

    def __init__(self, window: QMainWindow) -> None:
        super().__init__(window)
        self._window = window
        app = QApplication.instance()
        if isinstance(app, QApplication):
            app.focusChanged.connect(self._on_focus_changed)

    def keys(self) -> set[str]:
        found: set[str] = set()
        for act in self._window.findChildren(QAction):
            if act.isEnabled() and act.shortcutContext() in (
                Qt.ShortcutContext.WindowShortcut,
                Qt.ShortcutContext.ApplicationShortcut,
            ):
                found.update(s.toString() for s in act.shortcuts() if not s.isEmpty())
        return found

    def _on_focus_changed(self, _old: QWidget | None, new: QWidget | None) -> None:
        if new is not None and new.window() is self._window:
            new.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent):
            pressed = QKeySequence(event.keyCombination()).toString()
            if pressed and pressed in self.keys():
                event.ignore()  # not the widget's: the shortcut goes to the window's action
                return True
        return False
