"""A long walk's fast pass runs in two halves at once (``verify._fast_pass_in_two``, the
second half in a forked process); the verdict must be the one the walk in one piece gives,
whatever was tampered with and wherever.

Random tamperings (hypothesis) on both backends: each chain is verified with the split off
and with it on (tiny thresholds and batches, so that breaks fall in either half, on the
joint and across batch boundaries), and the reports must be identical line for line.
"""

from __future__ import annotations

import sys
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from nvadmin.audit import verify as module
from nvadmin.audit.verify import verify_workspace
from nvadmin.casefile.builder import create_case_file
from nvadmin.casefile.reader import open_case_file, verify_case
from nvadmin.identity import Role, StaffIdentity
from nvadmin.query.filters import EventFilter
from tests.factories import add_workspace, draft, write
from tests.unit.test_verify import attacker, insert_twin, rehash, row

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the halves run by fork")
REVIEWER = StaffIdentity(7, "casey@nvadmin.example", "Casey", Role.COMPLIANCE)
EVENTS = 40
_slugs = count()

TAMPERINGS = st.lists(
    st.tuples(
        st.sampled_from(["edit", "rehash", "delete", "swap", "twin", "reseq"]),
        st.integers(1, EVENTS),
        st.integers(1, EVENTS),
    ),
    min_size=0,
    max_size=2,
)


def _tamper(engine: Engine, ws: int, kind: str, seq: int, other: int) -> None:
    where = f"workspace_id = {ws} AND seq = {seq}"
    with attacker(engine) as c:
        if kind == "edit":
            c.execute(text(f"UPDATE activity_events SET actor_name = 'Mallory' WHERE {where}"))
        elif kind == "rehash":  # content changed and its own hash recomputed
            values = row(c, ws, seq)
            values["actor_name"] = "Mallory"
            new = rehash(c, values, bytes(values["prev_hash"]))
            c.execute(
                text(f"UPDATE activity_events SET actor_name = 'Mallory', hash = :h WHERE {where}"),
                {"h": new},
            )
        elif kind == "delete":
            c.execute(text(f"DELETE FROM activity_events WHERE {where}"))
        elif kind == "swap" and other != seq:
            c.execute(text(f"UPDATE activity_events SET seq = -1 WHERE {where}"))
            c.execute(
                text(
                    f"UPDATE activity_events SET seq = {seq} "
                    f"WHERE workspace_id = {ws} AND seq = {other}"
                )
            )
            c.execute(
                text(
                    f"UPDATE activity_events SET seq = {other} "
                    f"WHERE workspace_id = {ws} AND seq = -1"
                )
            )
        elif kind == "twin":
            rows = c.execute(text(f"SELECT count(*) FROM activity_events WHERE {where}"))
            if rows.scalar_one() == 1:
                insert_twin(c, ws, seq)
        elif kind == "reseq":  # an event moved to a number past the others
            c.execute(text(f"UPDATE activity_events SET seq = {EVENTS + other} WHERE {where}"))


def _report(engine: Engine, slug: str) -> tuple[Any, ...]:
    result = verify_workspace(engine, REVIEWER, slug)
    return (result.lines(), result.broken, result.events_verified, result.last_seq)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(tamperings=TAMPERINGS, batch=st.sampled_from([3, 7, 50]))
def test_split_walk_gives_the_same_verdict_as_one_walk(
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    tamperings: list[tuple[str, int, int]],
    batch: int,
) -> None:
    slug = f"split-{next(_slugs)}"
    ws = add_workspace(engine, slug)
    write(engine, ws, [draft(i, patient_id=f"P-{i % 3}", details={"i": i}) for i in range(EVENTS)])
    for kind, seq, other in tamperings:
        _tamper(engine, ws, kind, seq, other)
    monkeypatch.setattr(module, "_BATCH", batch)
    monkeypatch.setattr(module, "SPLIT_MIN_EVENTS", 10**12)
    whole = _report(engine, slug)
    splits: list[bool] = []
    in_two = module._fast_pass_in_two

    def watched(*args: Any, **kwargs: Any) -> bool:
        splits.append(True)
        return in_two(*args, **kwargs)

    monkeypatch.setattr(module, "_fast_pass_in_two", watched)
    monkeypatch.setattr(module, "SPLIT_MIN_EVENTS", 2)
    split = _report(engine, slug)
    assert splits  # the split really ran
    assert split == whole


def test_an_intact_chain_is_walked_in_two_halves_to_the_same_end(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second half's work is used: this process reads the first half and then only what
    lies past the chain head."""
    ws = add_workspace(engine, "halves")
    write(engine, ws, [draft(i) for i in range(30)])
    monkeypatch.setattr(module, "_BATCH", 4)
    monkeypatch.setattr(module, "SPLIT_MIN_EVENTS", 2)
    read_here: list[tuple[int, int]] = []
    fast_pass = module._fast_pass

    def watched(connection: Any, source: str, ws: int, last: int, at: Any, *rest: Any) -> bool:
        read_here.append((at.expected_seq, last))
        return fast_pass(connection, source, ws, last, at, *rest)

    monkeypatch.setattr(module, "_fast_pass", watched)
    seen: list[int] = []
    result = verify_workspace(
        engine, REVIEWER, "halves", progress=lambda done, _total, _m: seen.append(done)
    )
    assert result.intact and result.events_verified == 30 and result.last_seq == 30
    assert seen[-1] == 30
    assert read_here == [(1, 15), (31, module._MAX_SEQ)]


def test_a_case_file_is_verified_in_one_piece(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second connection to an encrypted case file would decrypt its pages a second time:
    slower, measured; its chain is walked in one piece."""
    ws = add_workspace(engine, "case-halves")
    write(engine, ws, [draft(i, patient_id=f"P-{i % 3}") for i in range(30)])
    summary = create_case_file(
        engine,
        REVIEWER,
        EventFilter(workspace_ids=(ws,)),
        tmp_path / "c",
        "a passphrase, long",
        source="test",
    )
    monkeypatch.setattr(module, "SPLIT_MIN_EVENTS", 2)
    read_here: list[int] = []
    fast_pass = module._fast_pass

    def watched(connection: Any, source: str, ws: int, last: int, at: Any, *rest: Any) -> bool:
        read_here.append(at.expected_seq)
        return fast_pass(connection, source, ws, last, at, *rest)

    monkeypatch.setattr(module, "_fast_pass", watched)
    case = open_case_file(summary.path, "a passphrase, long")
    try:
        (result,) = verify_case(case, REVIEWER)
    finally:
        case.close()
    assert result.intact and result.events_verified == 30
    assert read_here == [1]
