"""The browser's status bar: how many events match, how long the page took, who is signed in,
why Go to time went where it went, and (with read replicas) which server answered and how far
behind it is."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel, QMainWindow

from nvadmin.identity import StaffIdentity
from nvadmin.query.paging import EventCount
from nvadmin.ui.activity_model import ActivityModel, TimeLanding
from nvadmin.ui.browser.state import landing_note
from nvadmin.workers.jobs import Job

if TYPE_CHECKING:
    from nvadmin.context import Context
    from nvadmin.db.routing import ServerPosition

log = logging.getLogger(__name__)

LOADING = "Loading…"


class BrowserStatus(QObject):
    """The permanent labels of the status bar, following the model.

    ``failed(message)`` is called with the sentence to show when a page could not be loaded,
    ``note(message)`` with what Go to time says when it could not land where asked.
    """

    def __init__(
        self,
        window: QMainWindow,
        model: ActivityModel,
        identity: StaffIdentity,
        *,
        failed: Callable[[str], None],
        note: Callable[[str], None],
    ) -> None:
        super().__init__(window)
        self.model = model
        self._window = window
        self._failed = failed
        self._note = note
        self._time_note: str | None = None  # what the last Go to time said
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
        model.went_to_time.connect(self._on_went_to_time)
        model.modelReset.connect(self._forget_time_note)

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

    def _on_went_to_time(self, landing: TimeLanding) -> None:
        landed = landing.event.occurred_at if landing.event is not None else None
        model = self.model
        note = landing_note(landing.asked, landed, landing.oldest, model.event_filter, model.zone)
        if note is not None:
            self._note(note)
            self._time_note = note

    def _forget_time_note(self) -> None:
        """New rows (a search, a sort, a jump, Go to time again): what Go to time said was
        about the rows before them, so it goes. Scrolling adds rows and resets nothing."""
        bar = self._window.statusBar()
        if self._time_note is not None and bar.currentMessage() == self._time_note:
            bar.clearMessage()
        self._time_note = None

    def _on_count(self, count: EventCount | None) -> None:
        if count is None:
            self.count_label.setText("counting…" if self.model.event_filter else "")
        else:
            self.count_label.setText(count.label())


class ReplicaStatus(QObject):
    """Where the reads go, in the status bar: the standby and how far behind the primary it
    is (replay LSN and time), or the notice that reads fell back to another server. Asked
    again after every page shown, off the GUI thread."""

    notice = Signal(str)  # emitted from whichever thread opened the connection

    def __init__(self, window: QMainWindow, context: Context, model: ActivityModel) -> None:
        super().__init__(window)
        self._window = window
        self._context = context
        self._job: Job | None = None
        self.label = QLabel("", window)
        self.label.setObjectName("replicaStatus")
        self.label.setAccessibleName("Read server")
        window.statusBar().addPermanentWidget(self.label)
        self.notice.connect(self._on_notice)
        context.add_notice_listener(self.notice.emit)
        model.rows_shown.connect(self.refresh)

    def refresh(self, *_args: object) -> None:
        if self._job is not None:
            return  # the one running answers soon enough
        context = self._context
        job = Job(lambda _control: context.read_position(), name="read server", parent=self)
        job.succeeded.connect(self._on_position)
        job.failed.connect(lambda message: self.label.setText(f"Read server: {message}"))
        job.finished.connect(self._on_finished)
        self._job = job
        job.start()

    def _on_finished(self) -> None:
        self._job = None

    def _on_position(self, position: ServerPosition | None) -> None:
        if position is None:
            return
        route = self._context.read_route
        fallback = route.notice if route is not None else None
        # A fallback says why in this label, which the status bar never cuts short (its
        # passing messages get what the labels leave).
        self.label.setText(f"⚠ {fallback}" if fallback else position.lag_text)
        self.label.setToolTip(fallback or "")

    def _on_notice(self, message: str) -> None:
        log.warning("%s", message)
        route = self._context.read_route
        if route is None or route.notice is None:  # back on the standby
            self._window.statusBar().showMessage(message, 10_000)
        self.refresh()
