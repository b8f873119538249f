"""The browser's status bar: how many events match, how long the page took, who is signed in."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QLabel, QMainWindow

from nvadmin.identity import StaffIdentity
from nvadmin.query.paging import EventCount
from nvadmin.ui.activity_model import ActivityModel

LOADING = "Loading…"


class BrowserStatus(QObject):
    """The permanent labels of the status bar, following the model.

    ``failed(message)`` is called with the sentence to show when a page could not be loaded.
    """

    def __init__(
        self,
        window: QMainWindow,
        model: ActivityModel,
        identity: StaffIdentity,
        failed: Callable[[str], None],
    ) -> None:
        super().__init__(window)
        self.model = model
        self._failed = failed
        self.count_label = QLabel("", window)
        self.time_label = QLabel("", window)
        self.identity_label = QLabel(f"{identity.display_name} ({identity.role})", window)
        status = window.statusBar()
        for label in (self.count_label, self.time_label, self.identity_label):
            status.addPermanentWidget(label)
        model.loading_changed.connect(self._on_loading)
        model.rows_shown.connect(self._on_rows_shown)
        model.count_changed.connect(self._on_count)
        model.failed.connect(self._on_failed)

    def clear(self) -> None:
        self.count_label.setText("")
        self.time_label.setText("")

    def _on_loading(self, loading: bool) -> None:
        if loading:
            self.time_label.setText(LOADING)
        elif self.time_label.text() == LOADING:
            self.time_label.setText("")

    def _on_failed(self, message: str) -> None:
        self.time_label.setText("")
        if self.model.count is None:
            self.count_label.setText("")
        self._failed(f"Could not load the events: {message}")

    def _on_rows_shown(self, shown: float, sql: float) -> None:
        self.time_label.setText(f"query {sql * 1000:.0f} ms, shown in {shown * 1000:.0f} ms")

    def _on_count(self, count: EventCount | None) -> None:
        if count is None:
            self.count_label.setText("counting…" if self.model.event_filter else "")
        else:
            self.count_label.setText(count.label())
