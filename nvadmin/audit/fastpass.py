"""The fast pass over a chain (see :mod:`nvadmin.audit.verify`): the loop that confirms its
events, for both databases, and on SQLite stretches of it verified by helper processes on the
computer's other cores.

On SQLite the fast pass runs in this process: SQLite lays each event out (``json_array``),
nvadmin hashes the layout and checks the number, the link and the hash. One core does all of
it, and a second thread in this process would not help: the checks need Python's interpreter
lock, which a thread reading rows gives up and takes back at every row (measured: 1M events,
2.06 s in one thread, 2.55 s in two). So a long chain is cut into stretches, one per core: this
process walks the first, and a helper (:mod:`nvadmin.workers.helper`) walks each of the
others, with a read-only connection of its own, and reports how far it confirmed the chain.

A helper's word is taken only where it joins the chain confirmed here: its stretch's first
event must link to the hash of the last event confirmed before it (the *seam*), which the
helper reports, as it reports the hash of the last event it confirmed, to which the next
stretch must link. It checks the signed commitments in its stretch like the walk here. From
the first event a helper cannot confirm, this process takes over again, and a helper that
fails, or reports a seam that does not join, has its stretch read here instead, as if there
were no helper. A helper reads in a snapshot of its own, taken a moment after this process's:
events are only ever appended past the chain head, so the stretches (all before the head this
process read) are the same in both, and a row changed in between is seen by whichever
snapshot holds it, as a walk started a moment later would see it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nvadmin.workers import helper

log = logging.getLogger(__name__)

# Rows per fetch. A thousand half-kilobyte layouts stay in the processor's cache while they
# are hashed: 5,000 made the pass 10% slower.
BATCH = 1_000
LINK = 32  # bytes of a link (a SHA-256)
# A helper is worth starting for at least this many events (it starts in about 0.05 s, in
# which this process confirms some 25,000).
MIN_STRETCH = 200_000
MAX_HELPERS = 3
# A helper reports its progress every this many events (rounded to its batches).
REPORT_EVERY = 20_000

Row = tuple[Any, ...]  # (seq, stored hash, domain tag || link || layout, or None)


@dataclass
class Reach:
    """How far a pass has confirmed the chain."""

    expected: int  # the next event's number
    prev: bytes | None  # the hash it must link to (None: trust its own link)
    last_link: bytes | None = None  # the link of the last event confirmed (None: none yet)
    # The link the first event carried, taken on trust because ``prev`` was None.
    trusted: bytes | None = None

    def take(self, other: Reach) -> None:
        """Stand where ``other`` stands (a stretch confirmed that joins this one)."""
        self.expected, self.prev, self.last_link = other.expected, other.prev, other.last_link


# How a row is confirmed: the stored hash of the event in ``row`` when the row links to
# ``prev`` and its hash is right, else None.
Check = Callable[[Row, bytes], "bytes | None"]
# The link the first row carries, taken on trust when nothing before it was confirmed.
FirstLink = Callable[[Row], "bytes | None"]


def laid_out(links_at: int) -> tuple[Check, FirstLink]:
    """SQLite's rows ``(seq, stored hash, tag || link || layout)`` (the layout None when the
    link is not ``LINK`` bytes long, or the event could not be laid out): a row is confirmed
    when its layout carries the link at ``links_at`` and hashes to the stored hash."""
    sha256 = hashlib.sha256

    def check(row: Row, prev: bytes) -> bytes | None:
        hashed = row[2]
        linked = hashed is not None and hashed.startswith(prev, links_at)
        if linked and sha256(hashed).digest() == row[1]:
            return row[1]  # type: ignore[no-any-return]
        return None

    def first_link(row: Row) -> bytes | None:
        return None if row[2] is None else row[2][links_at : links_at + LINK]

    return check, first_link


def confirm(
    batches: Iterable[Sequence[Row]],
    reach: Reach,
    signed: Mapping[int, bytes],
    after_batch: Callable[[int], None],
    check: Check,
    first_link: FirstLink,
) -> bool:
    """Confirm the events of ``batches``, rows starting with the event's number, each
    confirmed by ``check`` (SQLite: :func:`laid_out`; PostgreSQL's rows carry the server's
    verdict), and move ``reach`` past them. ``signed`` maps numbers to the hash a commitment
    gives them; ``after_batch`` gets the next number after each batch. True at the first
    event that cannot be confirmed (``reach`` then stands just before it), False at the end.

    One loop for both databases: a call to ``check`` per event costs 0.06 s per million
    events against the loop written out for SQLite's rows (0.61 s), and verifying 1M events
    0.03 s on SQLite (1.22 s) and 0.04 s on PostgreSQL (2.73 s)."""
    expected, prev, last_link = reach.expected, reach.prev, reach.last_link
    commitments = iter(sorted(seq for seq in signed if seq >= expected))
    due = next(commitments, 0)
    try:
        for batch in batches:
            if prev is None:  # no anchor: the first event's own link is trusted
                prev = reach.trusted = first_link(batch[0])
                if prev is None:  # it has none: the event cannot be confirmed
                    return True
            for row in batch:
                seq = row[0]
                confirmed = check(row, prev)
                if seq != expected or confirmed is None:
                    return True
                if seq == due:
                    if signed[seq] != confirmed:
                        return True
                    due = next(commitments, 0)
                last_link, prev = prev, confirmed
                expected += 1
            after_batch(expected)
        return False
    finally:
        reach.expected, reach.prev, reach.last_link = expected, prev, last_link


def batches(cursor: Any, errors: type[Exception], size: int = 0) -> Iterator[list[Row]]:
    """The rows of an executed fast-pass query in lists of up to ``size`` (default
    ``BATCH``). A value SQLite cannot lay out (a byte string in a text column: ``json_array``
    refuses it) ends them with one row of Nones, which :func:`confirm` doubts."""
    while True:
        try:
            batch = cursor.fetchmany(size or BATCH)
        except errors as error:
            log.info("the fast pass stops: %s", error)
            batch = [(None, None, None)]
        if not batch:
            return
        yield batch
        if batch[-1][0] is None:
            return


def cores() -> int:
    """The processor cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def stretches(first: int, last: int) -> list[tuple[int, int]]:
    """``first..last`` cut into one stretch per core (at most ``MAX_HELPERS`` + 1), none
    shorter than ``MIN_STRETCH``: the first for this process, the others for helpers."""
    count = max(1, min(cores(), MAX_HELPERS + 1, (last - first + 1) // MIN_STRETCH))
    size = -(-(last - first + 1) // count)
    return [(start, min(start + size - 1, last)) for start in range(first, last + 1, size)]


class Helper:
    """A helper process verifying one stretch, ``first..last``."""

    def __init__(
        self,
        database: str,
        statement: str,
        parameters: Sequence[Any],
        links_at: int,
        first: int,
        last: int,
        signed: Mapping[int, bytes],
    ) -> None:
        self.first, self.last = first, last
        job = {
            "database": database,
            "statement": statement,
            "parameters": list(parameters),
            "links_at": links_at,
            "first": first,
            "batch": BATCH,
            "report_every": REPORT_EVERY,
            "signed": {str(s): h.hex() for s, h in signed.items() if first <= s <= last},
        }
        self._running: helper.Running | None = None
        try:
            self._running = helper.Running("verify-stretch", job)
        except OSError:
            log.warning("could not start a process verifying events", exc_info=True)

    def poll(self) -> int:
        """The events it has confirmed so far, by its last report."""
        return self._running.done if self._running is not None else 0

    def result(self, waiting: Callable[[int], None]) -> Reach | None:
        """Wait for it to end; ``waiting`` gets its progress meanwhile. How far it confirmed
        its stretch (``trusted``: the seam, the link its first event carries), or None when
        it failed or confirmed nothing."""
        if self._running is None:
            return None
        try:
            reported = self._running.wait(waiting)
        except helper.Failed as failure:
            log.warning("a process verifying events failed: %s", failure)
            return None
        if not reported:  # it confirmed nothing
            return None
        links = [bytes.fromhex(reported[k]) for k in ("prev", "last_link", "trusted")]
        return Reach(int(reported["expected"]), *links)

    def kill(self) -> None:
        """End it now (from any thread: a cancelled walk may be waiting for it)."""
        if self._running is not None:
            self._running.kill()

    def stop(self) -> None:
        """End it if it still runs, and let it go."""
        if self._running is not None:
            self._running.close()


def helper_main(job: dict[str, Any]) -> int:
    """The helper's side: confirm the stretch, then report how far it got (one JSON line)."""
    connection = sqlite3.connect(job["database"], uri=True)
    try:
        cursor = connection.execute(job["statement"], job["parameters"])
        first = int(job["first"])
        reach = Reach(first, None)
        signed = {int(s): bytes.fromhex(h) for s, h in job["signed"].items()}

        size, every = int(job["batch"]), int(job["report_every"])

        def report(expected: int) -> None:
            if (expected - first) % every < size:
                helper.report(expected - first)

        rows = batches(cursor, sqlite3.DatabaseError, size)
        confirm(rows, reach, signed, report, *laid_out(int(job["links_at"])))
    except sqlite3.Error as error:
        print(error, file=sys.stderr)
        return 1
    finally:
        connection.close()
    confirmed = reach.expected - first
    reported: dict[str, Any] = {}
    if confirmed:  # then every field is set: the first event's link, and those after it
        assert reach.prev and reach.last_link and reach.trusted
        reported = {
            "expected": reach.expected,
            "prev": reach.prev.hex(),
            "last_link": reach.last_link.hex(),
            "trusted": reach.trusted.hex(),
        }
    helper.report(confirmed)
    helper.answer(reported)
    return 0
