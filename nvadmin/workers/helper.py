"""nvadmin started again to do one job in a process of its own.

Some jobs are done outside this process: a SQLite source attached to a case database, so that
SQLCipher never touches this process's locks on it (:mod:`nvadmin.casefile.copier`); and, on
the computer's other cores, stretches of a long chain verified (:mod:`nvadmin.audit.fastpass`)
and every page of a case file checked while its chains are walked
(:mod:`nvadmin.casefile.encrypted`). The helper is nvadmin itself (the bundle's executable, or
this Python with ``-m nvadmin``) with :data:`ENVIRONMENT` naming the job's kind. The job
arrives as JSON on its standard input, never on the command line (which other users of the
computer can read); the helper reports on its standard output and says why it failed on its
standard error.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
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
    child.stdin = None  # given: communicate() then only reads
    return child


def main(kind: str) -> int:
    """The helper's side: do the job read from standard input."""
    if kind not in KINDS:
        print(f"unknown helper job {kind!r}", file=sys.stderr)
        return 2
    module: Any = importlib.import_module(KINDS[kind])
    return int(module.helper_main(json.load(sys.stdin)))
