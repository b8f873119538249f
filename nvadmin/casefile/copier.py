"""A SQLite source's events copied into a case database by a process of its own.

SQLite copies them fastest itself, with one ``INSERT ... SELECT`` from the source attached to
the case database (1M events: 15 s, against 24 s through Python). But the case database is
SQLCipher's, a second copy of SQLite, and POSIX advisory locks belong to a process, not to a
connection: inside nvadmin, SQLCipher closing the attached source would release every lock
nvadmin's own connections hold on that file (SQLite's "How To Corrupt An SQLite Database
File", 2.2.1), and another program could then empty the write-ahead log under one of its
readers. So the attaching is done by a helper process that opens nothing else
(:mod:`nvadmin.workers.helper`), given the case database's file and key, the source file and
the query, and reporting the rows read, every batch, then the rows copied.

The parent gives up its exclusive hold on the case database meanwhile and takes it back
afterwards; SQLite then sees the file's change counter moved and reads the pages anew.

Rows SQLite cannot read itself (from PostgreSQL) take the same way through a staging
database: the parent binds them there, encrypted under a key of the job's own, while the
child *follows* it, moving each stretch of rows the parent has committed on into the case
database, whose indexes are most of a build's work (:func:`follow`). The two then run on two
cores; the staging database says when it is complete.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nvadmin.casefile import encrypted
from nvadmin.workers import helper

if TYPE_CHECKING:
    from nvadmin.workers.cancel import CancelToken

log = logging.getLogger(__name__)

# The child's exit status when the source cannot be attached (e.g. its folder is read-only and
# WAL needs a -shm file there): the parent then copies the rows itself.
NOT_ATTACHED = 3
# Its exit statuses when the copy fails, naming the cause: the source could not be read (read
# again alone, it fails too), or the disk is full; any other failure (1) is the case
# database's, which could not be written.
SOURCE_UNREADABLE = 4
DISK_FULL = 5
_SQLITE_FULL = 13
# Following a staging database: its rows, and its count once the parent has staged them all.
STAGED, STAGED_TOTAL = "staged", "staged_total"
# How long the child waits before looking again when it has caught up with the parent.
_CAUGHT_UP_PAUSE = 0.01


def start(
    case_file: Path,
    key: bytes,
    cache_kib: int,
    source: str,
    statement: str,
    parameters: Sequence[Any],
    batch: int,
    *,
    source_key: bytes | None = None,
    window: int = 0,
    reading: str = "",
    reading_parameters: Sequence[Any] = (),
) -> helper.Running | None:
    """The child process, running ``statement`` (an ``INSERT ... SELECT`` reading the schema
    ``src``), the case database opened with ``key`` and ``source`` (a file's path) attached
    read-only as ``src``, under ``source_key`` when it is encrypted. With ``window``, it
    follows a staging database (:func:`follow`). ``reading`` is the statement's ``SELECT``
    alone, run when the copy fails to tell a source that cannot be read from a case database
    that cannot be written. None when it cannot start."""
    job = {
        "case_file": str(case_file.resolve()),
        "key": key.hex(),
        "cache_kib": cache_kib,
        "source": Path(source).resolve().as_uri() + "?mode=ro",
        "source_key": encrypted.raw_key(source_key) if source_key else "",
        "statement": statement,
        "parameters": list(parameters),
        "batch": batch,
        "window": window,
        "reading": reading,
        "reading_parameters": list(reading_parameters),
    }
    try:
        return helper.Running("case-copy", job)
    except OSError:
        log.warning("could not start the process copying the events", exc_info=True)
        return None


def finish(
    child: helper.Running, progress: Callable[[int], None], token: CancelToken
) -> int | None:
    """The rows the child copied, once it has ended; ``progress`` gets the rows read every
    ``batch`` rows. None when the source could not be attached (nothing was copied);
    :class:`helper.Failed` with its reason when it failed."""
    try:
        result = child.wait(progress)
    except helper.Failed as failure:
        token.check()  # killed because the work was cancelled
        if failure.status == NOT_ATTACHED:
            return None
        raise
    token.check()
    return int(result["copied"])


def copy(
    case_file: Path,
    key: bytes,
    cache_kib: int,
    source_file: str,
    statement: str,
    parameters: Sequence[Any],
    batch: int,
    progress: Callable[[int], None],
    token: CancelToken,
    *,
    reading: str = "",
    reading_parameters: Sequence[Any] = (),
) -> int | None:
    """Run ``statement`` in a child process (:func:`start`) and wait for it (:func:`finish`).
    None when the source could not be attached or the process not started (nothing was
    copied)."""
    child = start(
        case_file,
        key,
        cache_kib,
        source_file,
        statement,
        parameters,
        batch,
        reading=reading,
        reading_parameters=reading_parameters,
    )
    if child is None:
        return None
    token.on_cancel(child.kill)
    try:
        return finish(child, progress, token)
    finally:
        child.close()


def follow(database: Any, statement: str, window: int) -> int:
    """The child's side of a staging database attached as ``src``: run ``statement`` (rows
    ``rowid > ?`` and ``<= ?`` of ``src.staged`` into the case database) over each stretch
    of at most ``window`` rows the parent has committed, until ``src.staged_total`` says
    every row is staged and all are copied. Each stretch is a transaction of its own: one
    reads the rows committed when it starts. (Stretches of 200,000 rows cost nothing over one
    statement; of 50,000, a third more: each commit writes out the pages it changed.)"""
    copied = 0
    while True:
        complete = database.execute(f"SELECT total FROM src.{STAGED_TOTAL}").fetchone()
        (last,) = database.execute(f"SELECT coalesce(max(rowid), 0) FROM src.{STAGED}").fetchone()
        if last > copied:
            upto = min(last, copied + window)
            database.execute(statement, (copied, upto))
            copied = upto
        elif complete is not None:
            return copied
        else:
            time.sleep(_CAUGHT_UP_PAUSE)


def helper_main(job: dict[str, Any]) -> int:
    """The helper's side: copy the rows, report them."""
    key = bytes.fromhex(job["key"])
    database = encrypted.create(Path(job["case_file"]), key, cache_kib=job["cache_kib"])
    try:
        try:
            database.execute("ATTACH DATABASE ? AS src KEY ?", (job["source"], job["source_key"]))
        except encrypted.DatabaseError as error:
            print(error, file=sys.stderr)
            return NOT_ATTACHED
        batch, seen = int(job["batch"]), 0

        def tick() -> int:
            # Called for the rows read (some may still fail a later condition): progress.
            nonlocal seen
            seen += 1
            if seen % batch == 0:
                helper.report(seen)
            return 1

        before = database.total_changes
        database.create_function("nvadmin_copying", 0, tick)
        if job["window"]:
            follow(database, job["statement"], int(job["window"]))
        else:
            database.execute(job["statement"], job["parameters"])
        copied = database.total_changes - before
        database.execute("DETACH DATABASE src")
    except encrypted.DatabaseError as error:
        print(error, file=sys.stderr)
        return _failure(database, job, error)
    finally:
        database.discard()
    helper.report(copied)  # progress reaches the end
    helper.answer({"copied": copied})
    return 0


def _failure(database: Any, job: dict[str, Any], error: Exception) -> int:
    """The exit status naming what made the copy fail with ``error``."""
    if (getattr(error, "sqlite_errorcode", None) or 0) & 0xFF == _SQLITE_FULL:
        return DISK_FULL
    if job.get("reading"):
        # Read alone, nothing written: if that fails too, the source is at fault.
        try:
            for _row in database.execute(job["reading"], job["reading_parameters"]):
                pass
        except encrypted.DatabaseError as unreadable:
            print(f"reading the source alone: {unreadable}", file=sys.stderr)
            return SOURCE_UNREADABLE
    return 1
