"""The browser's UI settings (window layout, columns, last filters, saved searches).

One INI file under ``context.paths.settings_file`` so tests and portable installs redirect it
with ``NVADMIN_HOME``; every key is declared here once. Everything is kept per staff account
(a group named after the account's e-mail): the next person to sign in on the same computer
never opens on the last one's search, patient or saved searches.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

log = logging.getLogger(__name__)

GEOMETRY = "browser/geometry"
WINDOW_STATE = "browser/window_state"
SPLITTER = "browser/splitter"
HEADER = "browser/header"
# How many columns the table had when its header was saved (absent: the first twelve).
HEADER_COLUMNS = "browser/header_columns"
SEARCH_TEXT = "browser/search"
WORKSPACE_ID = "browser/workspace"  # "" for all workspaces, absent for "not chosen yet"
TIMES_IN_UTC = "browser/times_in_utc"
SAVED_SEARCHES = "browser/saved_searches"
# View → Theme (system, light or dark) belongs to the screen, like the desktop's own dark mode,
# not to a staff account: it is kept outside the accounts' groups and applied at start.
THEME = "app/theme"
# Written by versions that shared one set of settings between every staff account; they may
# hold the last person's search (a patient id), so they are removed, never read.
SHARED_BEFORE = "browser"


def account_group(account: str) -> str:
    """The settings group of one staff account (its e-mail, in any case)."""
    return "staff/" + account.strip().lower().replace("/", "_").replace("\\", "_")


def desktop_text(path: Path, key: str) -> str | None:
    value = QSettings(str(path), QSettings.Format.IniFormat).value(key)
    return None if value is None else str(value)


class UiSettings:
    def __init__(self, path: Path, *, account: str) -> None:
        self.path = path
        self.account = account
        self._settings = QSettings(str(path), QSettings.Format.IniFormat)
        if SHARED_BEFORE in self._settings.childGroups():
            self._settings.remove(SHARED_BEFORE)
        self._settings.beginGroup(account_group(account))

    def desktop_text(self, key: str) -> str | None:
        """A setting of this desktop, shared by every account (the theme)."""
        return desktop_text(self.path, key)

    def set_desktop_text(self, key: str, value: str) -> None:
        QSettings(str(self.path), QSettings.Format.IniFormat).setValue(key, value)

    def bytes(self, key: str) -> QByteArray | None:
        value = self._settings.value(key)
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def set_bytes(self, key: str, value: QByteArray) -> None:
        self._settings.setValue(key, value)

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self._settings.value(key)
        return default if value is None else str(value)

    def set_text(self, key: str, value: str) -> None:
        self._settings.setValue(key, value)

    def flag(self, key: str, default: bool = False) -> bool:
        value = self._settings.value(key)
        if value is None:
            return default
        return str(value).lower() in ("1", "true", "yes")

    def set_flag(self, key: str, value: bool) -> None:
        self._settings.setValue(key, "true" if value else "false")

    def json(self, key: str, default: Any) -> Any:
        raw = self._settings.value(key)
        if raw is None:
            return default
        try:
            return json.loads(str(raw))
        except ValueError:
            log.warning("ignoring unreadable setting %s", key)
            return default

    def set_json(self, key: str, value: Any) -> None:
        self._settings.setValue(key, json.dumps(value, ensure_ascii=False))

    def remove(self, key: str) -> None:
        self._settings.remove(key)

    def sync(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._settings.sync()
