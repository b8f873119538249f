"""A long SQLite chain verified in stretches, the later ones by helper processes (nvadmin
started again): the verdicts are those of one walk, wherever a break falls, whatever a helper
does. The stretches are made 10 events long here (40 events: this process walks #1-#10,
helpers #11-#20, #21-#30, #31-#40)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from nvadmin.audit import fastpass
from nvadmin.audit.verify import BreakKind, sign_checkpoint
from nvadmin.db.engine import make_engine
from nvadmin.workers import helper
from nvadmin.workers.cancel import Cancelled, CancelToken
from tests.factories import draft, write
from tests.unit.test_verify import (
    REVIEWER,
    attacker,
    chain,
    keys,
    rehash,
    rewrite_from,
    row,
    verify,
)
from tests.unit.test_verify_witness import append_forged

__all__ = ["keys"]  # a fixture, used here


@pytest.fixture
def engine(sqlite_db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """A SQLite file, and stretches of 10 events on four cores."""
    monkeypatch.setattr(fastpass, "MIN_STRETCH", 10)
    monkeypatch.setattr(fastpass, "cores", lambda: 4)
    engine = make_engine(sqlite_db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[subprocess.Popen[bytes]]:
    """The helper processes started."""
    processes: list[subprocess.Popen[bytes]] = []
    real = helper.start

    def start(kind: str, job: dict[str, Any]) -> subprocess.Popen[bytes]:
        processes.append(real(kind, job))
        return processes[-1]

    monkeypatch.setattr(helper, "start", start)
    return processes


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The first event of each stretch whose helper's report was used."""
    firsts: list[int] = []
    real = fastpass.Helper.result

    def result(self: fastpass.Helper, waiting: Any) -> fastpass.Reach | None:
        reached = real(self, waiting)
        if reached is not None:
            firsts.append(self.first)
        return reached

    monkeypatch.setattr(fastpass.Helper, "result", result)
    return firsts


def test_helpers_verify_the_later_stretches(
    engine: Engine, started: list[Any], taken: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every stretch after the first is taken from its helper; progress, theirs included,
    only ever goes up (every 2 events here, helpers' reports too) and ends at the total."""
    monkeypatch.setattr(fastpass, "BATCH", 2)
    monkeypatch.setattr(fastpass, "REPORT_EVERY", 2)
    chain(engine, 40)
    seen: list[int] = []
    result = verify(engine, progress=lambda done, _total, _m: seen.append(done))
    assert result.intact and result.events_verified == 40
    assert len(started) == 3 and taken == [11, 21, 31]
    assert all(p.returncode == 0 for p in started)
    assert seen == sorted(seen) and seen[-1] == 40


def test_a_package_named_nvadmin_in_the_current_folder_is_not_run(
    engine: Engine, taken: list[int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python -m nvadmin`` looks in the current folder first: helpers start in the folder
    holding nvadmin itself, so a hostile package where the user happens to be is never
    handed a job."""
    hostile = tmp_path / "downloads"
    (hostile / "nvadmin").mkdir(parents=True)
    (hostile / "nvadmin" / "__init__.py").write_text("")
    ran = hostile / "ran"
    (hostile / "nvadmin" / "__main__.py").write_text(
        f"import pathlib, sys; pathlib.Path({str(ran)!r}).write_text(sys.stdin.read())"
    )
    monkeypatch.chdir(hostile)
    chain(engine, 40)
    result = verify(engine)
    assert result.intact and result.events_verified == 40
    assert taken == [11, 21, 31] and not ran.exists()


def _edit(engine: Engine, seq: int) -> None:
    with attacker(engine) as c:
        c.execute(text(f"UPDATE activity_events SET actor_name = 'Mallory' WHERE seq = {seq}"))


def _edit_and_rehash(engine: Engine, ws: int, seq: int) -> None:
    with attacker(engine) as c:
        values = row(c, ws, seq)
        values["patient_id"] = "P-elsewhere"
        c.execute(
            text("UPDATE activity_events SET patient_id = 'P-elsewhere', hash = :h WHERE seq = :s"),
            {"h": rehash(c, values, bytes(values["prev_hash"])), "s": seq},
        )


# The last event walked here, each stretch's first (the seam) and last, one inside.
PLACES = [10, 11, 15, 20, 21, 31, 40]


@pytest.mark.parametrize("seq", PLACES)
def test_an_edited_event_is_located_in_any_stretch(engine: Engine, seq: int) -> None:
    ws = chain(engine, 40)
    _edit(engine, seq)
    result = verify(engine)
    assert result.broken and (result.broken.kind, result.broken.seq) == (BreakKind.ALTERED, seq)
    assert result.events_verified == seq - 1
    with engine.connect() as c:
        assert result.broken.event_id == row(c, ws, seq)["id"]


@pytest.mark.parametrize("seq", PLACES)
def test_an_event_rehashed_after_editing_is_located_in_any_stretch(
    engine: Engine, seq: int
) -> None:
    """Its own hash checks out; the next event's link (across a seam for #10, #20) gives it
    away, or for the last event the chain head."""
    ws = chain(engine, 40)
    _edit_and_rehash(engine, ws, seq)
    broken = verify(engine).broken
    assert broken and (broken.kind, broken.seq) == (BreakKind.ALTERED, seq)


@pytest.mark.parametrize("seq", [11, 25, 31])
def test_a_deleted_event_is_located_in_a_helper_s_stretch(engine: Engine, seq: int) -> None:
    chain(engine, 40)
    with attacker(engine) as c:
        c.execute(text(f"DELETE FROM activity_events WHERE seq = {seq}"))
    result = verify(engine)
    assert result.broken and (result.broken.kind, result.broken.seq) == (BreakKind.MISSING, seq)
    assert result.events_verified == seq - 1


def test_an_event_past_the_chain_head_is_read_here(engine: Engine) -> None:
    """Helpers stop at the chain head this walk read; an event forged behind the head's back
    is still found."""
    ws = chain(engine, 40)
    with attacker(engine) as c:
        append_forged(c, engine, ws, 41)
    broken = verify(engine).broken
    assert broken and (broken.kind, broken.seq) == (BreakKind.INSERTED, 41)


def test_a_rewritten_chain_contradicts_a_checkpoint_in_a_helper_s_stretch(
    engine: Engine, keys: Any
) -> None:
    """Event #15 rewritten and every later one re-linked and re-hashed: the chain is
    self-consistent, and only the signed checkpoint at #40, checked by the last helper, gives
    it away."""
    ws = chain(engine, 40)
    sign_checkpoint(engine, REVIEWER, "riverside", keys.create_signing_key())
    rewrite_from(engine, ws, 15, 40)
    broken = verify(engine, keys).broken
    assert broken and broken.kind is BreakKind.ALTERED
    assert (broken.seq, broken.through) == (1, 40)


def _helpers_run(monkeypatch: pytest.MonkeyPatch, program: str) -> None:
    """Helpers are ``python -c program`` instead of nvadmin."""
    monkeypatch.setattr(helper, "command", lambda: [sys.executable, "-c", program])


LIES = {
    "cannot start": None,
    "fails": "import sys; sys.stderr.write('disk I/O error\\n'); sys.exit(1)",
    "says nothing": "",
    # Every event of its stretch confirmed, it says, but its seam joins nothing.
    "does not join": (
        "import json, sys; job = json.load(sys.stdin); print(json.dumps({'expected': "
        "job['first'] + 10, 'prev': '00' * 32, 'last_link': '11' * 32, 'trusted': '22' * 32}))"
    ),
}


@pytest.mark.parametrize("helpers", list(LIES))
def test_whatever_a_helper_does_the_verdict_is_the_same(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, helpers: str
) -> None:
    """A helper that cannot start, fails, reports nothing or reports a stretch that does not
    join the chain has its stretch walked here: an intact chain is intact, an edit found."""
    program = LIES[helpers]
    if program is None:
        monkeypatch.setattr(helper, "command", lambda: [str(tmp_path / "no-such-program")])
    else:
        _helpers_run(monkeypatch, program)
    chain(engine, 40)
    result = verify(engine)
    assert result.intact and result.events_verified == 40
    _edit(engine, 25)
    broken = verify(engine).broken
    assert broken and (broken.kind, broken.seq) == (BreakKind.ALTERED, 25)


def test_cancelling_ends_the_helpers(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, started: list[Any]
) -> None:
    """Cancelled while helpers work (here, ones that would never end): none is left running."""
    _helpers_run(monkeypatch, "import sys, time; print(1, flush=True); time.sleep(600)")
    ws = chain(engine, 40)
    write(engine, ws, [draft(i) for i in range(40, 60)])
    token = CancelToken()

    def progress(done: int, _total: int | None, _message: str) -> None:
        if done >= 10:  # this process's stretch is done; the helpers are being waited for
            token.cancel()

    with pytest.raises(Cancelled):
        verify(engine, progress=progress, cancel=token)
    assert len(started) == 3 and all(p.returncode is not None for p in started)
