"""The browser's menus and actions: View (find, refresh, go to time, jumps, UTC, detail pane,
theme, columns, presets, saved searches), Account (lock, sign out), File → Quit, Help."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QInputDialog, QMenu, QMessageBox, QPushButton

from nvadmin.ui import settings as keys
from nvadmin.ui.browser.state import FAILED_SIGN_INS, LOG_ACCESS, SavedSearch
from nvadmin.ui.features import Menus, WindowActions
from nvadmin.ui.palette import Theme, apply_theme, current_theme

if TYPE_CHECKING:
    from nvadmin.ui.main_window import MainWindow

log = logging.getLogger(__name__)

ABOUT_BROWSER = (
    "Search qualifiers: user: name: role: action: category: outcome: patient: ip: "
    "resource: type: session: request: status: weekday: hour: after: before: on: "
    "last:\n"
    "Prefix with - to exclude (e.g. -category:api). Dates, weekdays and hours are in "
    "the zone shown in the table; an end date includes the whole day; status:none is "
    "an API request with no status recorded.\n\n"
    "Ctrl+F search · Enter run · Esc clear · F5 refresh · Ctrl+G go to time · "
    "Ctrl+End jump to the end · Ctrl+C copy rows"
)


class BrowserMenus(QObject):
    """Builds the window's menus and actions and answers the ones about searches."""

    def __init__(
        self, window: MainWindow, presets_button: QPushButton, saved_button: QPushButton
    ) -> None:
        super().__init__(window)
        self.window = window
        bar = window.menuBar()
        # Menus first, in the order features rely on.
        self.menus = Menus(
            file=bar.addMenu("&File"),
            view=bar.addMenu("&View"),
            tools=bar.addMenu("&Tools"),
            account=bar.addMenu("&Account"),
            help=bar.addMenu("&Help"),
        )
        view = self.menus.view
        table = window.browser_table
        self.window_actions = WindowActions(
            find=self._action("&Find…", window.focus_search, QKeySequence.StandardKey.Find),
            refresh=self._action("&Refresh", window.refresh, QKeySequence.StandardKey.Refresh),
            go_to_time=self._action("&Go to time…", window.ask_go_to_time, "Ctrl+G"),
            jump_start=self._action("Jump to &newest/first", table.jump_to_start, "Ctrl+Home"),
            jump_end=self._action("Jump to the &end", table.jump_to_end, "Ctrl+End"),
            copy=table.copy_action,
            lock=self._action("&Lock", window.lock_requested.emit, "Ctrl+L", self.menus.account),
            sign_out=self._action("Sign &out", window.signed_out.emit, None, self.menus.account),
            quit=self._action(
                "&Quit", window.close, QKeySequence.StandardKey.Quit, self.menus.file
            ),
            about=self._action("&About the activity browser", self.about, None, self.menus.help),
        )
        for act in (self.window_actions.jump_start, self.window_actions.jump_end):
            # The table handles these keys itself (see BrowserTable); the menu shows them.
            act.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        # Built in menu order: the account, file and help actions above went to their menus.
        view.insertSeparator(self.window_actions.go_to_time)
        view.addSeparator()
        self.utc_action = QAction("Show times in &UTC", window)
        self.utc_action.setCheckable(True)
        self.utc_action.setChecked(window.settings.flag(keys.TIMES_IN_UTC))
        view.addAction(self.utc_action)
        self.detail_action = QAction("Show &detail pane", window)
        self.detail_action.setCheckable(True)
        self.detail_action.setChecked(True)
        self.detail_action.toggled.connect(window.detail.setVisible)
        view.addAction(self.detail_action)
        self.theme_actions = self._theme_menu(view.addMenu("&Theme"))
        self.columns_menu = view.addMenu("&Columns")
        self.columns_menu.aboutToShow.connect(lambda: table.fill_column_menu(self.columns_menu))

        self.presets_menu = QMenu("&Presets", window)
        for text, slot in (
            (FAILED_SIGN_INS.label, lambda: window.show_search(FAILED_SIGN_INS.search)),
            ("Everything this user did", window.preset_user),
            ("Who accessed this patient", window.preset_patient),
            (LOG_ACCESS.label, lambda: window.show_search(LOG_ACCESS.search)),
            ("Clear all filters", window.filter_bar.clear),
        ):
            self.presets_menu.addAction(text).triggered.connect(lambda _c=False, s=slot: s())
        presets_button.setMenu(self.presets_menu)
        view.addMenu(self.presets_menu)
        self.saved_menu = QMenu("&Saved searches", window)
        self.saved_menu.aboutToShow.connect(self._fill_saved_menu)
        saved_button.setMenu(self.saved_menu)
        view.addMenu(self.saved_menu)

    def _action(
        self,
        text: str,
        slot: Callable[[], object],
        shortcut: QKeySequence | QKeySequence.StandardKey | str | None,
        menu: QMenu | None = None,
    ) -> QAction:
        act = QAction(text, self.window)
        if shortcut is not None:
            act.setShortcut(shortcut)
        act.triggered.connect(lambda _checked=False: slot())
        (menu or self.menus.view).addAction(act)
        return act

    def _theme_menu(self, menu: QMenu) -> dict[Theme, QAction]:
        actions: dict[Theme, QAction] = {}
        group = QActionGroup(self.window)
        for theme in Theme:
            act = menu.addAction(theme.label)
            act.setCheckable(True)
            act.setChecked(theme is current_theme())
            act.triggered.connect(lambda _checked=False, t=theme: self.set_theme(t))
            group.addAction(act)
            actions[theme] = act
        return actions

    def set_theme(self, theme: Theme) -> None:
        """View → Theme: switch now and remember it for the next start."""
        apply_theme(theme)
        self.theme_actions[theme].setChecked(True)
        settings = self.window.settings
        settings.set_desktop_text(keys.THEME, theme.value)
        try:
            settings.sync()
        except OSError as error:
            log.warning("could not save the theme: %s", error)

    # -- saved searches --------------------------------------------------------------------------

    def _fill_saved_menu(self) -> None:
        menu = self.saved_menu
        menu.clear()
        menu.addAction("Save current search…").triggered.connect(self.ask_save_search)
        searches = self.window.saved_searches.all()
        if searches:
            menu.addSeparator()
        for saved in searches:
            menu.addAction(saved.name).triggered.connect(
                lambda _checked=False, s=saved: self.window.open_saved_search(s)
            )
        if searches:
            menu.addSeparator()
            delete = menu.addMenu("Delete")
            for saved in searches:
                delete.addAction(saved.name).triggered.connect(
                    lambda _checked=False, s=saved: self._delete_saved(s)
                )

    def ask_save_search(self) -> None:
        name, ok = QInputDialog.getText(self.window, "Save search", "Name of this search:")
        if ok and name.strip():
            self.window.save_search(name.strip())

    def _delete_saved(self, saved: SavedSearch) -> None:
        answer = QMessageBox.question(self.window, "Delete saved search", f"Delete “{saved.name}”?")
        if answer == QMessageBox.StandardButton.Yes:
            self.window.saved_searches.delete(saved.name)

    def about(self) -> None:
        QMessageBox.information(self.window, "Activity browser", ABOUT_BROWSER)
