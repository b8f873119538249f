"""Tampering a walk cannot see on its own, on both backends: a whole log deleted, the newest
events cut and the head rewound, a chain rewritten and re-hashed; caught by signed checkpoints
and by this computer's own record of the chains it verified (the witness)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, text

from nvadmin.__main__ import main
from nvadmin.audit.checkpoints import KeyStore
from nvadmin.audit.verify import BreakKind, sign_checkpoint, verify_workspace
from nvadmin.audit.witness import (
    ChainWitness,
    WitnessStore,
    compare_heads,
    database_key,
    sample_positions,
)
from nvadmin.db.types import sqlite_timestamp
from tests.factories import add_workspace, draft, write
from tests.unit.test_verify import REVIEWER, attacker, chain, rehash, rewrite_from, row

SLUG = "riverside"


@pytest.fixture
def keys(tmp_path: Path) -> KeyStore:
    return KeyStore(tmp_path / "config")


@pytest.fixture
def witness(engine: Engine, tmp_path: Path) -> ChainWitness:
    found = ChainWitness.for_database(tmp_path / "data", engine.url)
    assert found is not None
    return found


def check(engine: Engine, witness: ChainWitness | None = None, keys: KeyStore | None = None):
    trusted = keys.trusted_keys() if keys else {}
    return verify_workspace(engine, REVIEWER, SLUG, trusted_keys=trusted, witness=witness)


def delete_whole_log(engine: Engine, ws: int) -> None:
    with attacker(engine) as c:
        c.execute(text("DELETE FROM activity_events WHERE workspace_id = :w"), {"w": ws})
        c.execute(text("DELETE FROM chain_heads WHERE workspace_id = :w"), {"w": ws})


def truncate_and_rewind(engine: Engine, ws: int, keep: int) -> None:
    with attacker(engine) as c:
        c.execute(
            text("DELETE FROM activity_events WHERE workspace_id = :w AND seq > :k"),
            {"w": ws, "k": keep},
        )
        kept = row(c, ws, keep)
        c.execute(
            text("UPDATE chain_heads SET last_seq = :k, last_hash = :h WHERE workspace_id = :w"),
            {"k": keep, "h": kept["hash"], "w": ws},
        )


def append_forged(c: Connection, engine: Engine, ws: int, seq: int) -> bytes:
    """Append a well-formed, well-linked event ``seq`` that was never written by nvadmin."""
    values = row(c, ws, seq - 1)
    values.update(seq=seq, actor_name="Nobody", prev_hash=values["hash"])
    values["hash"] = rehash(c, values, bytes(values["prev_hash"]))
    del values["id"]
    if engine.dialect.name == "sqlite" and not isinstance(values["occurred_at"], str):
        values["occurred_at"] = sqlite_timestamp(values["occurred_at"])
    from tests.unit.test_verify import insert_row

    insert_row(c, values)
    return bytes(values["hash"])


# -- a whole log deleted -------------------------------------------------------------------


def test_a_new_workspace_is_not_reported_as_a_verified_chain(engine: Engine) -> None:
    add_workspace(engine)
    result = check(engine)
    assert result.intact and result.empty
    text_lines = "\n".join(result.lines())
    assert "chain intact" not in text_lines
    assert "no chain yet" in text_lines and "whole log would look the same" in text_lines


def test_whole_log_deletion_is_caught_by_this_computers_record(
    engine: Engine, witness: ChainWitness
) -> None:
    ws = chain(engine, 10)
    assert check(engine, witness).intact
    delete_whole_log(engine, ws)
    result = check(engine, witness)
    assert result.broken and (result.broken.kind, result.broken.seq) == (BreakKind.MISSING, 1)
    assert "every event was removed" in result.broken.explanation
    assert "this computer's record (verified on" in result.broken.explanation
    assert "10 events" in result.broken.explanation


def test_whole_log_deletion_is_caught_by_a_checkpoint_even_from_a_key_not_trusted_here(
    engine: Engine, tmp_path: Path
) -> None:
    ws = chain(engine, 10)
    signer = KeyStore(tmp_path / "signer")
    sign_checkpoint(engine, REVIEWER, SLUG, signer.create_signing_key())
    delete_whole_log(engine, ws)
    untrusted = check(engine)
    assert untrusted.broken and untrusted.broken.kind is BreakKind.MISSING
    assert "10 events" in untrusted.broken.explanation
    trusted = check(engine, keys=signer)
    assert trusted.broken and "every event was removed" in trusted.broken.explanation


@pytest.mark.parametrize("attack", ["delete everything", "truncate and rewind"])
def test_the_command_line_reports_what_this_computer_saw(
    db_url: str, engine: Engine, capsys: pytest.CaptureFixture[str], attack: str
) -> None:
    ws = chain(engine, 10)
    argv = ["--database", db_url, "verify", "--workspace", SLUG, "--quiet"]
    assert main(argv) == 0
    if attack == "delete everything":
        delete_whole_log(engine, ws)
    else:
        truncate_and_rewind(engine, ws, keep=8)
    capsys.readouterr()
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "chain broken at event #" in out and "this computer's record (verified on" in out
    assert "chain intact" not in out


# -- the newest events cut off and the head rewound ------------------------------------------


def test_a_checkpoint_signed_in_the_same_home_is_relied_on(
    db_url: str, engine: Engine, capsys: pytest.CaptureFixture[str], nvadmin_home: Path
) -> None:
    """Sign with `nvadmin checkpoint --create-key`, rewind, verify: the own key is trusted on
    both backends (no "not trusted here"), with or without this computer's record."""
    ws = chain(engine, 10)
    base = ["--database", db_url]
    assert main([*base, "checkpoint", "--create-key", "--workspace", SLUG, "--quiet"]) == 0
    truncate_and_rewind(engine, ws, keep=8)
    for record in (nvadmin_home / "data").glob("chain-witness*"):
        record.unlink()  # only the checkpoint may tell
    capsys.readouterr()
    assert main([*base, "verify", "--workspace", SLUG, "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "not trusted" not in out
    assert "a checkpoint signed" in out and "10 events, only 8 are left" in out


def test_rollback_without_a_checkpoint_is_caught_by_this_computers_record(
    engine: Engine, witness: ChainWitness
) -> None:
    ws = chain(engine, 10)
    assert check(engine, witness).intact
    truncate_and_rewind(engine, ws, keep=7)
    result = check(engine, witness)
    assert result.broken and (result.broken.kind, result.broken.seq) == (BreakKind.MISSING, 8)
    assert "10 events, only 7 are left" in result.broken.explanation
    # The record never moves back: the rollback is reported again next time.
    again = check(engine, witness)
    assert again.broken and again.broken.seq == 8


def test_a_fork_after_a_rollback_is_caught(engine: Engine, witness: ChainWitness) -> None:
    ws = chain(engine, 10)
    assert check(engine, witness).intact
    truncate_and_rewind(engine, ws, keep=8)
    with attacker(engine) as c:
        append_forged(c, engine, ws, 9)
        last = append_forged(c, engine, ws, 10)
        c.execute(
            text("UPDATE chain_heads SET last_seq = 10, last_hash = :h WHERE workspace_id = :w"),
            {"h": last, "w": ws},
        )
    result = check(engine, witness)
    assert result.broken and result.broken.kind is BreakKind.ALTERED
    # Every event of a short chain is remembered: the first forged one is named exactly.
    assert (result.broken.seq, result.broken.through) == (9, 9)
    assert "event #9 is not the event recorded there" in result.broken.explanation


# -- a chain rewritten and re-hashed ---------------------------------------------------------


def test_a_rehashed_chain_is_narrowed_to_the_stretch_between_checkpoints(
    engine: Engine, keys: KeyStore
) -> None:
    """Before: the break was put at the newest checkpoint (#30). Now: the stretch between the
    last checkpoint that still holds (#10) and the first that does not (#20)."""
    ws = chain(engine, 10)
    key = keys.create_signing_key()
    for more in (10, 20):
        sign_checkpoint(engine, REVIEWER, SLUG, key)
        write(engine, ws, [draft(more + i) for i in range(10)])
    sign_checkpoint(engine, REVIEWER, SLUG, key)  # checkpoints at #10, #20, #30
    rewrite_from(engine, ws, 15, 30)
    result = check(engine, keys=keys)
    broken = result.broken
    assert broken and broken.kind is BreakKind.ALTERED
    assert (broken.seq, broken.through) == (11, 20)
    assert "events #11 to #20" in broken.lines()[0]
    assert "the one event #10 matches" in broken.explanation
    assert result.events_verified == 10


def test_this_computers_record_narrows_a_rewrite_to_a_few_events(
    engine: Engine, witness: ChainWitness
) -> None:
    ws = chain(engine, 1000)
    assert check(engine, witness).intact
    rewrite_from(engine, ws, 700, 1000)
    broken = check(engine, witness).broken
    assert broken and broken.kind is BreakKind.ALTERED and broken.through is not None
    assert broken.seq <= 700 <= broken.through
    assert broken.through - broken.seq < 1000 // 200
    assert "this computer's record (verified on" in broken.explanation


# -- the record itself -------------------------------------------------------------------------


def test_the_record_is_private_and_an_edit_to_it_is_reported(
    engine: Engine, witness: ChainWitness
) -> None:
    ws = chain(engine, 10)
    assert check(engine, witness).intact
    store = witness.store
    assert oct(store.path.stat().st_mode & 0o777) == "0o600"
    assert oct(store.key_path.stat().st_mode & 0o777) == "0o600"
    # Someone without the key lowers the remembered head to hide a rollback.
    document = json.loads(store.path.read_text())
    entry = document["databases"][witness.database][str(ws)]
    entry["seq"], entry["points"] = 7, []
    store.path.write_text(json.dumps(document))
    truncate_and_rewind(engine, ws, keep=7)
    result = check(engine, witness)
    assert any(n.startswith("WARNING") and "altered" in n for n in result.notes)
    assert list(store.data_dir.glob("chain-witness.json.altered-*"))


def test_databases_are_told_apart_by_address_not_by_login(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = database_key("postgresql+psycopg://alice:pw@db.example:5433/audit")
    b = database_key("postgresql+psycopg://bob@db.example:5433/audit")
    assert a == b == "postgresql://db.example:5433/audit"
    assert database_key("postgresql://db.example/other") != a
    monkeypatch.chdir(tmp_path)
    assert database_key("sqlite:///x.sqlite3") == f"sqlite:{tmp_path.resolve() / 'x.sqlite3'}"
    assert database_key("sqlite://") is None


def test_sample_positions_are_bounded_and_end_at_the_head() -> None:
    assert sample_positions(1) == [1]
    assert sample_positions(10) == list(range(1, 11))
    many = sample_positions(35_352)
    assert len(many) <= 257 and many[-1] == 35_352 and many == sorted(set(many))


def test_sign_in_check_compares_the_heads_in_one_query(
    engine: Engine, witness: ChainWitness
) -> None:
    ws = chain(engine, 10)
    other = add_workspace(engine, slug="harbor", name="Harbor")
    write(engine, other, [draft(i) for i in range(5)])
    assert check(engine, witness).intact
    assert verify_workspace(engine, REVIEWER, "harbor", witness=witness).intact
    with engine.connect() as c:
        assert compare_heads(c, witness.remembered_chains()) == []
    truncate_and_rewind(engine, ws, keep=6)
    delete_whole_log(engine, other)
    with engine.connect() as c:
        warnings = compare_heads(c, witness.remembered_chains())
    assert len(warnings) == 2
    assert "harbor has no chain any more" in warnings[0]
    assert "riverside's chain was rolled back to 6 events" in warnings[1]


def test_the_record_is_kept_per_database(tmp_path: Path, engine: Engine) -> None:
    store = WitnessStore(tmp_path / "data")
    chain(engine, 3)
    first = ChainWitness(store, "sqlite:/somewhere/else.sqlite3")
    mine = ChainWitness.for_database(tmp_path / "data", engine.url)
    assert mine is not None
    assert check(engine, mine).intact
    assert first.remembered_chains() == {}
    (only,) = mine.remembered_chains().values()
    assert only.seq == 3


def test_a_deliberate_rebuild_is_forgotten_on_request(
    db_url: str, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = chain(engine, 10)
    argv = ["--database", db_url, "verify", "--workspace", SLUG, "--quiet"]
    assert main(argv) == 0
    truncate_and_rewind(engine, ws, keep=4)  # say, the database was rebuilt on purpose
    assert main(argv) == 1
    capsys.readouterr()
    assert main([*argv, "--forget-record"]) == 0
    assert "forgot this computer's record of 1 chains" in capsys.readouterr().out
    assert main(argv) == 0


def test_a_record_key_readable_by_others_is_not_relied_on(
    engine: Engine, witness: ChainWitness
) -> None:
    ws = chain(engine, 10)
    assert check(engine, witness).intact
    witness.store.key_path.chmod(0o644)
    truncate_and_rewind(engine, ws, keep=5)
    result = check(engine, witness)
    assert any("readable by other users" in note for note in result.notes)
    # Set aside with its key; a fresh record under a new private key follows.
    assert oct(witness.store.key_path.stat().st_mode & 0o777) == "0o600"
    assert list(witness.store.data_dir.glob("chain-witness.key.altered-*"))


def test_the_issues_whole_log_deletion_with_nothing_recorded_is_not_called_intact(
    engine: Engine,
) -> None:
    ws = chain(engine, 10)
    delete_whole_log(engine, ws)
    result = check(engine)
    assert result.empty and "0 events verified, chain intact" not in result.lines()
    assert any("whole log would look the same" in note for note in result.notes)


def test_the_record_outlives_deleted_checkpoints(
    engine: Engine, keys: KeyStore, witness: ChainWitness
) -> None:
    ws = chain(engine, 10)
    sign_checkpoint(engine, REVIEWER, SLUG, keys.create_signing_key(), witness=witness)
    truncate_and_rewind(engine, ws, keep=3)
    with engine.begin() as c:
        c.execute(text("DELETE FROM chain_checkpoints"))
    result = check(engine, witness, keys)
    assert result.broken and (result.broken.kind, result.broken.seq) == (BreakKind.MISSING, 4)
    assert "this computer's record" in result.broken.explanation


def test_an_own_signing_key_refused_for_its_mode_is_named_not_called_unknown(
    db_url: str, engine: Engine, capsys: pytest.CaptureFixture[str], nvadmin_home: Path
) -> None:
    ws = chain(engine, 10)
    base = ["--database", db_url]
    assert main([*base, "checkpoint", "--create-key", "--workspace", SLUG, "--quiet"]) == 0
    (nvadmin_home / "config" / "checkpoint-signing-key.pem").chmod(0o640)
    truncate_and_rewind(engine, ws, keep=8)
    capsys.readouterr()
    main([*base, "verify", "--workspace", SLUG, "--quiet"])
    out = capsys.readouterr().out
    assert "not trusted here" not in out
    assert "it is this computer's own signing key, but" in out and "chmod 600" in out


def test_a_deleted_chain_head_is_named_as_such(engine: Engine) -> None:
    ws = chain(engine, 10)
    with attacker(engine) as c:
        c.execute(text("DELETE FROM chain_heads WHERE workspace_id = :w"), {"w": ws})
    broken = check(engine).broken
    assert broken and broken.kind is BreakKind.MISSING
    assert "the chain head was deleted: 10 events are chained" in broken.explanation


def test_the_command_line_calls_a_workspace_without_a_chain_a_finding(
    db_url: str, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing recorded anywhere, the whole log and its head deleted: exit 1, not a pass."""
    ws = chain(engine, 10)
    delete_whole_log(engine, ws)
    assert main(["--database", db_url, "verify", "--workspace", SLUG, "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "no events recorded" in out and "chain intact" not in out
