"""Saved searches: a name, the search-bar text and the workspace, kept in the UI settings.

The search text is stored (not the resolved filter) so "last 24 hours" stays relative. The
workspace is stored by id; a search whose workspace no longer exists says so when opened.
"""

from __future__ import annotations

from dataclasses import asdict

from nvadmin.ui.browser.state import SavedSearch
from nvadmin.ui.settings import SAVED_SEARCHES, UiSettings

__all__ = ["SavedSearch", "SavedSearchStore"]

ALL = "all"


class SavedSearchStore:
    def __init__(self, settings: UiSettings) -> None:
        self._settings = settings

    def all(self) -> list[SavedSearch]:
        raw = self._settings.json(SAVED_SEARCHES, [])
        found: list[SavedSearch] = []
        for item in raw if isinstance(raw, list) else []:
            try:
                found.append(SavedSearch(**item))
            except TypeError:
                continue
        return sorted(found, key=lambda s: s.name.casefold())

    def get(self, name: str) -> SavedSearch | None:
        return next((s for s in self.all() if s.name == name), None)

    def save(self, search: SavedSearch) -> None:
        """Add ``search``, replacing one with the same name."""
        kept = [s for s in self.all() if s.name != search.name]
        self._write([*kept, search])

    def delete(self, name: str) -> None:
        self._write([s for s in self.all() if s.name != name])

    def _write(self, searches: list[SavedSearch]) -> None:
        self._settings.set_json(SAVED_SEARCHES, [asdict(s) for s in searches])
        self._settings.sync()
