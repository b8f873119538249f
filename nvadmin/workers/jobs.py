"""Background jobs: plain Python work on a pool thread, results posted back to the GUI thread.

Usage (after Anki's QueryOp)::

    job = Job(lambda control: export(..., progress=control.progress, cancel=control.token))
    job.progressed.connect(panel.show_progress)
    job.succeeded.connect(panel.show_done)
    job.failed.connect(panel.show_error)
    job.start()

The work function receives a :class:`JobControl` (cancel token + throttled progress) and plain
data; it opens its own database connection. A :class:`UserError` becomes its message; any other
exception is logged with its traceback and reported as an unexpected error, never lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from nvadmin.db.engine import describe
from nvadmin.errors import UserError
from nvadmin.workers.cancel import Cancelled, CancelToken, ProgressReporter, ProgressUpdate

log = logging.getLogger(__name__)

_running: set[Job] = set()  # keeps jobs alive until they finish


class JobControl:
    def __init__(self, token: CancelToken, progress: ProgressReporter) -> None:
        self.token = token
        self.progress = progress


class Job(QObject):
    progressed = Signal(object)  # ProgressUpdate
    succeeded = Signal(object)  # the work function's result
    failed = Signal(str)  # a message for the user
    cancelled = Signal()
    finished = Signal()  # after any of the three above

    def __init__(
        self,
        work: Callable[[JobControl], Any],
        *,
        name: str = "job",
        pool: QThreadPool | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.name = name
        self._work = work
        self._pool = pool or QThreadPool.globalInstance()
        self.token = CancelToken()
        self.running = False

    def start(self) -> None:
        _running.add(self)
        self.running = True
        self.finished.connect(self._forget)
        self._pool.start(_Runner(self))

    def cancel(self) -> None:
        self.token.cancel()

    def _forget(self) -> None:
        self.running = False
        _running.discard(self)

    def _run(self) -> None:  # on the pool thread
        reporter = ProgressReporter(self._emit_progress)
        try:
            result = self._work(JobControl(self.token, reporter))
            reporter.finish()
        except Cancelled:
            self.cancelled.emit()
        except UserError as error:
            # A wrong password or passphrase is the user's own slip, not a fault: one line.
            # A user error raised over another exception (a lost connection, a full disk)
            # keeps the traceback, where the cause is.
            log.info("%s failed: %s", self.name, error, exc_info=_chained(error))
            if self.token.cancelled:
                self.cancelled.emit()
            else:
                self.failed.emit(str(error))
        except Exception as error:
            if self.token.cancelled:
                log.info("%s stopped by cancel: %s", self.name, error)
                self.cancelled.emit()
            else:
                log.exception("%s failed unexpectedly", self.name)
                self.failed.emit(describe(error))
        else:
            if self.token.cancelled:
                self.cancelled.emit()
            else:
                self.succeeded.emit(result)
        finally:
            self.finished.emit()

    def _emit_progress(self, update: ProgressUpdate) -> None:
        self.progressed.emit(update)


class _Runner(QRunnable):
    def __init__(self, job: Job) -> None:
        super().__init__()
        self._job = job

    def run(self) -> None:
        self._job._run()


def running_jobs() -> list[Job]:
    return list(_running)


def _chained(error: BaseException) -> bool:
    """Whether ``error`` was raised over another exception (as a traceback shows it)."""
    if error.__cause__ is not None:
        return True
    return error.__context__ is not None and not error.__suppress_context__
