"""The ways verification reaches a verdict, each made to meet a tampered event.

* the fast pass: SQLite lays each event out and nvadmin hashes it; PostgreSQL recomputes
  each hash itself and nvadmin checks the links;
* the independent walk (``independent=True``): nvadmin lays out and hashes every event from
  the stored values, the database computes nothing.
"""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import Engine, text

from nvadmin.audit import verify as verify_module
from nvadmin.audit.verify import BreakKind, _fast_sql
from nvadmin.db.engine import make_engine
from tests.unit.test_verify import NASTY, attacker, chain, nasty_workspace, row, verify


def _forbid_fast_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the independent walk asked the database for a layout or hash")

    monkeypatch.setattr(verify_module, "_fast_sql", refuse)


@pytest.mark.parametrize("independent", [False, True], ids=["fast", "independent"])
@pytest.mark.parametrize("tamper", ["none", "edit", "rehashed"])
def test_each_path_catches_a_tampered_event(
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    independent: bool,
    tamper: str,
) -> None:
    """An edited event, and one edited with its own hash recomputed (the next event still
    links to the original), are named by both paths alike."""
    ws = chain(engine, 30)
    with attacker(engine) as c:
        if tamper == "edit":
            c.execute(text("UPDATE activity_events SET patient_id = 'P-X' WHERE seq = 12"))
        elif tamper == "rehashed":
            from tests.unit.test_verify import rehash

            values = row(c, ws, 12)
            values["patient_id"] = "P-X"
            c.execute(
                text("UPDATE activity_events SET patient_id = 'P-X', hash = :h WHERE seq = 12"),
                {"h": rehash(c, values, values["prev_hash"])},
            )
    if independent:
        _forbid_fast_pass(monkeypatch)
    with caplog.at_level("INFO", logger="nvadmin.audit.verify"):
        result = verify(engine, independent=independent)
    if tamper == "none":
        assert result.intact and result.events_verified == 30
    else:
        assert result.broken and (result.broken.kind, result.broken.seq) == (
            BreakKind.ALTERED,
            12,
        )
        # A recomputed hash makes event #12 check out alone; event #13's link gives it away.
        assert result.events_verified == (12 if tamper == "rehashed" else 11)
        with engine.connect() as c:
            assert result.broken.event_id == row(c, ws, 12)["id"]
    independent_note = "every event laid out and hashed by nvadmin itself from the stored values"
    assert (independent_note in result.lines()) is independent
    if not independent and tamper != "none":
        # The fast pass itself stopped just before the event (not a late comparison).
        careful = [r.getMessage() for r in caplog.records if "row by row" in r.getMessage()]
        doubted = 12 if tamper == "rehashed" else 11
        assert careful == [f"verification of workspace {ws} checks #{doubted} on row by row"]


def test_a_link_with_a_byte_appended_is_a_break(engine: Engine) -> None:
    """The fast pass compares whole links: a stored link that starts with the previous hash
    but carries one byte more is not taken for it (on SQLite the link and the event are laid
    out as one string of bytes, so its length is checked on its own)."""
    ws = chain(engine, 10)
    with attacker(engine) as c:
        stored = row(c, ws, 7)["prev_hash"]
        c.execute(
            text("UPDATE activity_events SET prev_hash = :p WHERE seq = 7"),
            {"p": bytes(stored) + b"["},
        )
    result = verify(engine)
    assert result.broken and (result.broken.kind, result.broken.seq) == (BreakKind.ALTERED, 7)
    assert result.events_verified == 6


def test_the_fast_pass_confirms_hostile_values_as_sealed(engine: Engine) -> None:
    """Quotes, backslashes, control characters, non-ASCII text and NULLs: the fast query
    confirms (PostgreSQL: the server's hash matches; SQLite: nvadmin's hash of the laid-out
    bytes matches) every event Python's encoding would give the same text for, and no other.
    PostgreSQL leaves control characters unescaped, so those events alone go to the careful
    pass; all verify."""
    ws = nasty_workspace(engine)
    postgres = engine.dialect.name == "postgresql"
    sql, _ = _fast_sql(engine.dialect.name, "activity_events", ":x")
    sql = sql.replace(":x", ":ws", 1).replace(":x", ":first", 1).replace(":x", ":last", 1)
    with engine.connect() as c:
        rows = c.execute(text(sql), {"ws": ws, "first": 1, "last": len(NASTY)}).all()
        stored = [bytes(row(c, ws, seq)["hash"]) for seq in range(1, len(NASTY) + 1)]
    if postgres:
        confirmed = [
            r[2] is not None and bytes(r[2]) == h for r, h in zip(rows, stored, strict=True)
        ]
        assert confirmed == ["controls" not in value for value in NASTY]
    else:
        assert [hashlib.sha256(r[2]).digest() for r in rows] == stored
    result = verify(engine)
    assert result.intact and result.events_verified == len(NASTY)
    assert verify(engine, independent=True).intact


@pytest.mark.pg
def test_a_function_planted_on_the_search_path_cannot_vouch_for_a_tampered_event(
    pg_url: str,
) -> None:
    """CVE-2018-1058's trick: ``public.replace(varchar, text, text)`` matches the columns
    better than the built-in ``replace(text, text, text)``, so an unqualified call in the
    fast pass's SQL would run it. Planted by someone with write access, it could lay a
    tampered event out as the original and make the server's hash match. The fast pass names
    every function and operator with its schema: the planted one is never called."""
    engine = make_engine(pg_url)
    ws = chain(engine, 10)
    with attacker(engine) as c:
        original = row(c, ws, 4)["patient_id"]
        c.execute(text("UPDATE activity_events SET patient_id = 'P-X' WHERE seq = 4"))
        c.execute(
            text(
                "CREATE FUNCTION public.replace(v varchar, a text, b text) RETURNS text "
                "LANGUAGE sql AS $$ SELECT pg_catalog.replace("
                f"CASE WHEN v = 'P-X' THEN '{original}' ELSE v END, a, b) $$"
            )
        )
    with engine.connect() as c:  # the planted function is what an unqualified call runs
        laid_out = c.execute(
            text("SELECT replace(patient_id, 'a', 'a') FROM activity_events WHERE seq = 4")
        ).scalar_one()
        assert laid_out == original
    result = verify(engine)
    engine.dispose()
    assert result.broken and (result.broken.kind, result.broken.seq) == (BreakKind.ALTERED, 4)
    assert result.events_verified == 3


@pytest.mark.parametrize("column", ["prev_hash", "hash", "head"])
@pytest.mark.parametrize("independent", [False, True], ids=["fast", "independent"])
def test_a_hash_stored_as_text_is_a_break_not_a_crash(
    sqlite_db_url: str, column: str, independent: bool
) -> None:
    """SQLite keeps whatever type it is given: a link or hash smuggled in as text (the same
    characters, hex) is an altered event, named, not an error of the walk."""
    # SQLite only: PostgreSQL's bytea column takes bytes only.
    engine = make_engine(sqlite_db_url)
    ws = chain(engine, 20)
    if column == "head":  # the chain head's record of the newest hash
        with attacker(engine) as c:
            c.execute(text("UPDATE chain_heads SET last_hash = hex(last_hash)"))
        result = verify(engine, independent=independent)
        assert result.broken is not None, result.lines()
        return
    with attacker(engine) as c:
        c.execute(text(f"UPDATE activity_events SET {column} = hex({column}) WHERE seq = 9"))
    result = verify(engine, independent=independent)
    assert result.broken is not None and result.broken.seq in (8, 9)
    assert result.events_verified == result.broken.seq - 1
    with engine.connect() as c:
        assert (
            c.execute(
                text(
                    f"SELECT typeof({column}) FROM activity_events "
                    "WHERE workspace_id = :w AND seq = 9"
                ),
                {"w": ws},
            ).scalar_one()
            == "text"
        )
