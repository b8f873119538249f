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
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nvadmin.workers import helper

if TYPE_CHECKING:
    from nvadmin.workers.cancel import CancelToken

log = logging.getLogger(__name__)

# The child's exit status when the source cannot be attached (e.g. its folder is read-only and
# WAL needs a -shm file there): the parent then copies the rows itself.
NOT_ATTACHED = 3


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
) -> int | None:
    """Run ``statement`` (an ``INSERT ... SELECT`` reading the schema ``src``) in a child
    process, the case database opened with ``key`` and the source attached read-only as
    ``src``; ``progress`` gets the rows read every ``batch`` rows. The rows copied, or None
    when the source could not be attached or the process not started (nothing was copied);
    :class:`helper.Failed` with its reason when it failed."""
    job = {
        "case_file": str(case_file.resolve()),
        "key": key.hex(),
        "cache_kib": cache_kib,
        "source": Path(source_file).resolve().as_uri() + "?mode=ro",
        "statement": statement,
        "parameters": list(parameters),
        "batch": batch,
    }
    try:
        child = helper.Running("case-copy", job)
    except OSError:
        log.warning("could not start the process copying the events", exc_info=True)
        return None
    token.on_cancel(child.kill)
    try:
        result = child.wait(progress)
    except helper.Failed as failure:
        token.check()  # killed because the work was cancelled
        if failure.status == NOT_ATTACHED:
            return None
        raise
    finally:
        child.close()
    token.check()
    return int(result["copied"])


def helper_main(job: dict[str, Any]) -> int:
    """The helper's side: copy the rows, report them."""
    from nvadmin.casefile import encrypted

    key = bytes.fromhex(job["key"])
    database = encrypted.create(Path(job["case_file"]), key, cache_kib=job["cache_kib"])
    try:
        try:
            database.execute("ATTACH DATABASE ? AS src KEY ''", (job["source"],))
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
        database.execute(job["statement"], job["parameters"])
        copied = database.total_changes - before
        database.execute("DETACH DATABASE src")
    except encrypted.DatabaseError as error:
        print(error, file=sys.stderr)
        return 1
    finally:
        database.discard()
    helper.report(copied)  # progress reaches the end
    helper.answer({"copied": copied})
    return 0
