"""Cancellation and throttled progress for long jobs. No Qt here: the domain code uses these."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


class Cancelled(Exception):
    """Raised inside a job when its cancel token was triggered."""


class CancelToken:
    def __init__(self) -> None:
        self._event = threading.Event()
        self._callbacks: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self) -> None:
        with self._lock:
            if self._event.is_set():
                return
            self._event.set()
            callbacks = list(self._callbacks)
        for callback in callbacks:
            callback()

    def on_cancel(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from the cancelling thread) when cancelled, e.g. to stop a
        server-side query. Runs at once if already cancelled."""
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)
                return
        callback()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled()


@dataclass(frozen=True, slots=True)
class ProgressUpdate:
    done: int
    total: int | None
    message: str = ""

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return min(1.0, self.done / self.total)


class ProgressReporter:
    """Passes progress on at most ``rate`` times a second (the last update is never lost
    when :meth:`finish` is called)."""

    def __init__(self, sink: Callable[[ProgressUpdate], None], rate: float = 10.0) -> None:
        self._sink = sink
        self._interval = 1.0 / rate
        self._last = 0.0
        self._pending: ProgressUpdate | None = None

    def __call__(self, done: int, total: int | None = None, message: str = "") -> None:
        update = ProgressUpdate(done, total, message)
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._last = now
            self._pending = None
            self._sink(update)
        else:
            self._pending = update

    def finish(self) -> None:
        if self._pending is not None:
            self._sink(self._pending)
            self._pending = None


def no_progress(done: int, total: int | None = None, message: str = "") -> None:
    """A progress callback that ignores progress (for callers that do not show any)."""
