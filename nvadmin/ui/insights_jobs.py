"""The computations behind one insights window (charts, flags): each new request outdates the
older ones, their progress is combined into one bar, and a window closed under a running job
is simply not told."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from nvadmin.workers.cancel import ProgressUpdate
from nvadmin.workers.jobs import Job, JobControl


class InsightsJobs(QObject):
    """``busy_changed(bool)``; ``progressed(percent, step)``; ``problem(text)`` for a failure
    or a cancellation of the newest request (``failed`` tells which)."""

    busy_changed = Signal(bool)
    progressed = Signal(int, str)
    problem = Signal(str, bool)  # text, failed (False: cancelled)

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self._window = window
        self.running: dict[str, Job] = {}
        self._progress: dict[str, ProgressUpdate] = {}
        self.generation = 0

    def outdate(self) -> int:
        """Results of the requests so far are dropped; the new request's generation."""
        self.generation += 1
        return self.generation

    def start(
        self,
        name: str,
        work: Callable[[JobControl], Any],
        generation: int,
        done: Callable[[Any], None],
    ) -> None:
        # No parent: a job outlives a window closed under it (the pool thread still holds
        # it) and reports into the void instead of into a deleted widget.
        job = Job(work, name=f"insights {name}")
        job.progressed.connect(self.alive(lambda update: self._on_progress(name, update)))

        def succeeded(result: Any) -> None:
            if generation == self.generation:
                done(result)

        def failed(message: str) -> None:
            if generation == self.generation:
                self.problem.emit(f"Insights could not be computed: {message}", True)

        def cancelled() -> None:
            if generation == self.generation:
                self.problem.emit("Insights cancelled.", False)

        job.succeeded.connect(self.alive(succeeded))
        job.failed.connect(self.alive(failed))
        job.cancelled.connect(self.alive(cancelled))
        job.finished.connect(self.alive(lambda: self._on_finished(name, job)))
        self.running[name] = job
        self._progress[name] = ProgressUpdate(0, None, "Starting")
        self.busy_changed.emit(True)
        job.start()

    def alive(self, slot: Callable[..., Any]) -> Callable[..., Any]:
        """``slot``, skipped once the window's C++ side is gone."""

        def guarded(*args: Any) -> None:
            if shiboken6.isValid(self._window):
                slot(*args)

        return guarded

    def cancel(self) -> None:
        for job in list(self.running.values()):
            # Cancelling asks the server to stop the query over a new connection: never let
            # a slow network hold the GUI thread for that.
            threading.Thread(target=job.cancel, name="insights-cancel", daemon=True).start()

    def busy(self) -> bool:
        return bool(self.running)

    def _on_finished(self, name: str, job: Job) -> None:
        if self.running.get(name) is job:
            del self.running[name]
            self._progress.pop(name, None)
        self.busy_changed.emit(self.busy())

    def _on_progress(self, name: str, update: ProgressUpdate) -> None:
        self._progress[name] = update
        fractions = [u.fraction or 0.0 for u in self._progress.values()]
        self.progressed.emit(int(100 * sum(fractions) / max(1, len(fractions))), update.message)
