"""nvadmin started again to do one job in a process of its own.

Some jobs are done outside this process: a SQLite source attached to a case database, so that
SQLCipher never touches this process's locks on it (:mod:`nvadmin.casefile.copier`); and, on
the computer's other cores, stretches of a long chain verified (:mod:`nvadmin.audit.fastpass`)
and every page of a case file checked while its chains are walked
(:mod:`nvadmin.casefile.encrypted`). The helper is nvadmin itself (the bundle's executable, or
this Python with ``-m nvadmin``) with :data:`ENVIRONMENT` naming the job's kind. The job
arrives as JSON on its standard input, never on the command line (which other users of the
computer can read). On its standard output the helper reports how far it has got, a number
per line (:func:`report`), then its result, one JSON object on the last line (:func:`answer`);
it says why it failed on its standard error. :class:`Running` is this process's side.
"""

from __future__ import annotations

import importlib
import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

ENVIRONMENT = "NVADMIN_HELPER"
# Job kind -> the module whose ``helper_main(job)`` does it (imported only in the helper).
KINDS = {
    "case-copy": "nvadmin.casefile.copier",
    "case-check": "nvadmin.casefile.encrypted",
    "verify-stretch": "nvadmin.audit.fastpass",
}


def command() -> list[str]:
    """How to start nvadmin again: the bundle's executable, or this Python with the package."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    return [sys.executable, "-m", "nvadmin"]


def _folder() -> Path | None:
    """Where a helper starts: ``python -m`` looks for the package in the current folder
    first, so it starts in the folder holding this very package, never in the user's
    (a folder with a package named ``nvadmin`` in it would run that instead, and be handed
    the job, a case file's key included). The bundle's executable looks nowhere."""
    if getattr(sys, "frozen", False):
        return None
    return Path(__file__).resolve().parents[2]


def start(kind: str, job: dict[str, Any]) -> subprocess.Popen[bytes]:
    """A helper doing ``job`` (every path in it absolute: the helper starts in another
    folder), its job already given. Raises OSError when it cannot start."""
    assert kind in KINDS, kind
    child = subprocess.Popen(
        command(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, ENVIRONMENT: kind},
        cwd=_folder(),
        # Windows: no console window flashes up for a helper started from the windowed app.
        creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
    )
    assert child.stdin is not None
    try:
        child.stdin.write(json.dumps(job).encode())
        child.stdin.close()
    except BrokenPipeError:  # it ended before reading its job: its stderr says why
        pass
    return child


def main(kind: str) -> int:
    """The helper's side: do the job read from standard input."""
    if kind not in KINDS:
        print(f"unknown helper job {kind!r}", file=sys.stderr)
        return 2
    module: Any = importlib.import_module(KINDS[kind])
    return int(module.helper_main(json.load(sys.stdin)))


def report(done: int) -> None:
    """The helper's side: how far it has got."""
    print(done, flush=True)


def answer(result: dict[str, Any]) -> None:
    """The helper's side: its result, last."""
    print(json.dumps(result), flush=True)


class Failed(Exception):
    """A helper ended without a result; the message is its own reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class Running:
    """A helper at work. A thread of this process reads its reports as they come (a
    blocking read, which waits without Python's interpreter lock). Raises OSError when it
    cannot start."""

    def __init__(self, kind: str, job: dict[str, Any]) -> None:
        self.done = 0  # its last report
        self._result: dict[str, Any] | None = None
        # A wake-up per report, then None at the end of its output.
        self._updates: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self._process = start(kind, job)
        self._reader = threading.Thread(target=self._read, name=f"helper {kind}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        try:
            for line in self._process.stdout:
                if line.strip().isdigit():
                    self.done = int(line)
                    self._updates.put(self.done)
                elif line.startswith(b"{"):
                    self._result = json.loads(line)
        finally:
            self._updates.put(None)

    def wait(self, progress: Callable[[int], None] = lambda _done: None) -> dict[str, Any]:
        """Its result, once it has ended; ``progress`` gets its latest report as each comes.
        Raises :class:`Failed` when it ends without one."""
        while self._updates.get() is not None:
            progress(self.done)
        assert self._process.stderr is not None
        failure = self._process.stderr.read().decode(errors="replace").strip()
        status = self._process.wait()
        if status != 0 or self._result is None:
            reason = failure.splitlines()[-1] if failure else f"exit status {status}"
            raise Failed(status, reason if status != 0 else "it reported no result")
        return self._result

    def ended(self) -> bool:
        """Whether it has ended (its result, or why not, from :meth:`wait`)."""
        return self._process.poll() is not None

    def kill(self) -> None:
        """End it now (from any thread: a cancelled job may be waiting for it)."""
        self._process.kill()

    def close(self) -> None:
        """End it if it still runs, and let it go."""
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        self._reader.join()
        for stream in (self._process.stdout, self._process.stderr):
            if stream is not None:
                stream.close()
