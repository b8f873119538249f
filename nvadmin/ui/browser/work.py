"""Long work features run for the window (exports, verifications, case files being built):
closing the window or signing out asks before losing it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from nvadmin.workers.jobs import Job


@dataclass(frozen=True, slots=True)
class RunningWork:
    """Long work a feature runs for the window (an export, a verification, a case file being
    built) that closing the window or signing out would lose."""

    noun: str  # "export", "verification", "case file"
    job: Job


WorkSource = Callable[[], Iterable[RunningWork]]


def describe_work(work: list[RunningWork]) -> str:
    """``2 exports and 1 verification``."""
    counts: dict[str, int] = {}
    for item in work:
        counts[item.noun] = counts.get(item.noun, 0) + 1
    parts = [f"{n} {noun}{'s' if n != 1 else ''}" for noun, n in counts.items()]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


class WorkGuard(QObject):
    """Asks "N exports running — wait / cancel them and …" before the window goes.

    ``say(text)`` puts a line in the window's status bar.
    """

    def __init__(self, window: QWidget, say: Callable[[str], None]) -> None:
        super().__init__(window)
        self._window = window
        self._say = say
        self._sources: list[WorkSource] = []
        self.box: QMessageBox | None = None  # the question, while it is asked

    def add_source(self, source: WorkSource) -> None:
        """``source()`` lists a feature's running work; closing or signing out asks first."""
        self._sources.append(source)

    def running(self) -> list[RunningWork]:
        return [w for source in self._sources for w in source() if w.job.running]

    def stop_first(self, verb: str, then: Callable[[], object]) -> bool:
        """True when nothing runs, so the caller may ``verb`` ("quit", "sign out") now.

        Otherwise asks "N exports running — wait / cancel them and quit" and returns False:
        Wait (and Esc) keeps the window open and lets the work finish; cancelling stops the
        work and calls ``then`` once every job has ended, so nothing is cut off half-written.
        """
        work = self.running()
        if not work:
            return True
        if self.box is not None:
            self.box.raise_()
            return False
        running = describe_work(work)
        parent = QApplication.activeModalWidget() or self._window
        box = QMessageBox(parent)
        box.setObjectName("stopWorkBox")
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Work still running")
        box.setText(f"{running} running")
        box.setInformativeText(
            f"Wait keeps nvadmin open until the work is done. Cancelling leaves no partial "
            f"files behind. If the work is done before you answer, nvadmin goes on to {verb}."
        )
        wait = box.addButton("&Wait", QMessageBox.ButtonRole.RejectRole)
        stop = box.addButton(f"&Cancel them and {verb}", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(wait)
        box.setEscapeButton(wait)
        self.box = box

        def answered() -> None:
            self.box = None
            box.deleteLater()
            if box.clickedButton() is stop:
                self._cancel_then(then)
            else:
                self._say(f"{running} still running; nothing was stopped.")

        def one_ended() -> None:
            # Nothing left to lose: do what was asked without waiting for an answer.
            if self.box is box and not self.running():
                box.finished.disconnect(answered)
                self.box = None
                box.done(0)
                box.deleteLater()
                then()

        for item in work:
            # Queued after the job's own bookkeeping, so ``running`` is already False here.
            item.job.finished.connect(one_ended, Qt.ConnectionType.QueuedConnection)
        # A job that ended just before these connections still has its bookkeeping queued.
        QTimer.singleShot(0, one_ended)
        box.finished.connect(answered)
        box.open()
        return False

    def _cancel_then(self, then: Callable[[], object]) -> None:
        work = self.running()
        if not work:
            then()
            return
        self._say(f"Cancelling {describe_work(work)}…")
        pending = [then]  # emptied by the first call that finds nothing running

        def one_ended() -> None:
            if pending and not self.running():
                pending.pop()()

        for item in work:
            # Queued after the job's own bookkeeping, so ``running`` is already False here.
            item.job.finished.connect(one_ended, Qt.ConnectionType.QueuedConnection)
            item.job.cancel()
        QTimer.singleShot(0, one_ended)
