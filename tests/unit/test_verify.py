"""Integrity verification: every kind of tampering is detected and located, on both backends.

Each test first lifts the append-only guard the way an attacker with database access would
(PostgreSQL: replication role as the superuser, which skips the triggers; SQLite: dropping the
triggers), then changes the rows directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, text

from nvadmin.audit.chain import digest
from nvadmin.audit.checkpoints import KeyStore, SigningKey
from nvadmin.audit.verify import (
    BreakKind,
    canonical_time,
    chained_values,
    sign_checkpoint,
    verify_workspace,
)
from nvadmin.db.types import sqlite_timestamp
from nvadmin.errors import AccessDenied, UserError
from nvadmin.identity import Role, StaffIdentity
from nvadmin.workers.cancel import Cancelled, CancelToken
from tests.factories import T0, add_workspace, draft, write

REVIEWER = StaffIdentity(7, "casey@nvadmin.example", "Casey Reviewer", Role.COMPLIANCE)
SUPPORT = StaffIdentity(8, "sam@nvadmin.example", "Sam Support", Role.SUPPORT)
COLUMNS = (
    "workspace_id, seq, occurred_at, actor_type, actor_id, actor_email, actor_name, actor_role, "
    "action, category, outcome, failure_reason, resource_type, resource_id, patient_id, ip, "
    "user_agent, session_id, request_id, details"
)


@contextmanager
def attacker(engine: Engine) -> Iterator[Connection]:
    """A connection on which the append-only guard no longer applies."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SET LOCAL session_replication_role = replica"))
        else:
            connection.execute(text("DROP TRIGGER IF EXISTS activity_events_no_update"))
            connection.execute(text("DROP TRIGGER IF EXISTS activity_events_no_delete"))
        yield connection


def chain(engine: Engine, n: int = 10) -> int:
    ws = add_workspace(engine)
    write(
        engine,
        ws,
        [
            draft(i, patient_id=f"P-{i % 3}", session_id="s1", details={"fields": ["meds"], "i": i})
            for i in range(n)
        ],
    )
    return ws


def row(connection: Connection, ws: int, seq: int) -> dict:
    return dict(
        connection.execute(
            text(
                f"SELECT id, {COLUMNS}, prev_hash, hash FROM activity_events "
                "WHERE workspace_id = :ws AND seq = :seq"
            ),
            {"ws": ws, "seq": seq},
        )
        .mappings()
        .one()
    )


def insert_twin(connection: Connection, ws: int, seq: int) -> None:
    """Insert a never-chained copy of event ``seq`` next to it (same number, bogus hash)."""
    values = row(connection, ws, seq)
    values["hash"] = bytes(32)
    del values["id"]
    insert_row(connection, values)


def insert_row(connection: Connection, values: dict) -> None:
    names = ", ".join(":" + k.strip() for k in COLUMNS.split(","))
    connection.execute(
        text(
            f"INSERT INTO activity_events ({COLUMNS}, prev_hash, hash) "
            f"VALUES ({names}, :prev_hash, :hash)"
        ),
        values,
    )


def rehash(connection: Connection, values: dict, prev: bytes) -> bytes:
    ordered = [values[c.strip()] for c in COLUMNS.split(",")]
    return digest(prev, chained_values([*ordered, None, None, None]))


def rewrite_from(engine: Engine, ws: int, first: int, last: int) -> None:
    """Change event ``first`` and re-hash it and every later event: a self-consistent chain."""
    with attacker(engine) as c:
        prev = bytes(row(c, ws, first - 1)["hash"])
        for seq in range(first, last + 1):
            values = row(c, ws, seq)
            if seq == first:
                values["actor_name"] = "Mallory"
            new_hash = rehash(c, values, prev)
            c.execute(
                text(
                    "UPDATE activity_events SET actor_name = :n, prev_hash = :p, hash = :h "
                    "WHERE workspace_id = :w AND seq = :s"
                ),
                {"n": values["actor_name"], "p": prev, "h": new_hash, "w": ws, "s": seq},
            )
            prev = new_hash
        c.execute(
            text("UPDATE chain_heads SET last_hash = :h WHERE workspace_id = :w"),
            {"h": prev, "w": ws},
        )


@pytest.fixture
def keys(tmp_path: Path) -> KeyStore:
    return KeyStore(tmp_path / "config")


def verify(engine: Engine, keys: KeyStore | None = None, **kwargs: object):
    trusted = keys.trusted_keys() if keys else {}
    return verify_workspace(engine, REVIEWER, "riverside", trusted_keys=trusted, **kwargs)  # type: ignore[arg-type]


def test_an_untouched_chain_is_intact(engine: Engine) -> None:
    chain(engine, 12)
    result = verify(engine)
    assert result.intact
    assert result.events_verified == 12
    assert "12 events verified, chain intact" in result.lines()


def test_only_compliance_and_admin_may_verify(engine: Engine) -> None:
    chain(engine, 2)
    with pytest.raises(AccessDenied):
        verify_workspace(engine, SUPPORT, "riverside")
    with pytest.raises(UserError, match="no workspace"):
        verify_workspace(engine, REVIEWER, "nowhere")


def test_edited_field_is_located(engine: Engine) -> None:
    ws = chain(engine)
    with attacker(engine) as c:
        c.execute(text("UPDATE activity_events SET actor_name = 'Mallory' WHERE seq = 5"))
    result = verify(engine)
    assert not result.intact and result.broken
    assert (result.broken.kind, result.broken.seq) == (BreakKind.ALTERED, 5)
    assert result.events_verified == 4
    with engine.connect() as c:
        assert result.broken.event_id == row(c, ws, 5)["id"]
        assert result.broken.expected_hash == bytes(row(c, ws, 5)["hash"])


def test_edit_with_recomputed_hash_is_located(engine: Engine) -> None:
    ws = chain(engine)
    with attacker(engine) as c:
        values = row(c, ws, 5)
        values["patient_id"] = "P-elsewhere"
        forged = rehash(c, values, bytes(values["prev_hash"]))
        c.execute(
            text("UPDATE activity_events SET patient_id = 'P-elsewhere', hash = :h WHERE seq = 5"),
            {"h": forged},
        )
    broken = verify(engine).broken
    assert broken and (broken.kind, broken.seq) == (BreakKind.ALTERED, 5)


def test_deleted_event_is_located(engine: Engine) -> None:
    chain(engine)
    with attacker(engine) as c:
        c.execute(text("DELETE FROM activity_events WHERE seq = 6"))
    broken = verify(engine).broken
    assert broken and (broken.kind, broken.seq) == (BreakKind.MISSING, 6)
    assert "event #6 is missing" in broken.explanation


def test_inserted_event_is_located(engine: Engine) -> None:
    ws = chain(engine)
    with attacker(engine) as c:
        # A careful forgery: correct link to event 3 and a correct hash for its content.
        values = row(c, ws, 4)
        values["actor_name"] = "Nobody"
        prev = bytes(values["prev_hash"])
        values["hash"] = rehash(c, values, prev)
        del values["id"]
        occurred = values["occurred_at"]
        if engine.dialect.name == "sqlite" and not isinstance(occurred, str):
            values["occurred_at"] = sqlite_timestamp(occurred)
        insert_row(c, values)
        inserted_id = c.execute(text("SELECT max(id) FROM activity_events")).scalar_one()
    broken = verify(engine).broken
    assert broken and (broken.kind, broken.seq) == (BreakKind.INSERTED, 4)
    assert broken.event_id == inserted_id


def test_event_appended_behind_the_heads_back_is_located(engine: Engine) -> None:
    ws = chain(engine, 5)
    with attacker(engine) as c:
        values = row(c, ws, 5)
        values.update(seq=6, actor_name="Nobody", prev_hash=values["hash"])
        values["hash"] = rehash(c, values, bytes(values["prev_hash"]))
        del values["id"]
        if engine.dialect.name == "sqlite" and not isinstance(values["occurred_at"], str):
            values["occurred_at"] = sqlite_timestamp(values["occurred_at"])
        insert_row(c, values)
    broken = verify(engine).broken
    assert broken and (broken.kind, broken.seq) == (BreakKind.INSERTED, 6)


def test_swapped_sequence_numbers_are_reordering(engine: Engine) -> None:
    chain(engine)
    with attacker(engine) as c:
        c.execute(text("UPDATE activity_events SET seq = -1 WHERE seq = 4"))
        c.execute(text("UPDATE activity_events SET seq = 4 WHERE seq = 7"))
        c.execute(text("UPDATE activity_events SET seq = 7 WHERE seq = -1"))
    broken = verify(engine).broken
    assert broken and (broken.kind, broken.seq) == (BreakKind.REORDERED, 4)


def test_swapped_adjacent_events_are_reordering(engine: Engine) -> None:
    chain(engine)
    with attacker(engine) as c:
        c.execute(text("UPDATE activity_events SET seq = -1 WHERE seq = 5"))
        c.execute(text("UPDATE activity_events SET seq = 5 WHERE seq = 6"))
        c.execute(text("UPDATE activity_events SET seq = 6 WHERE seq = -1"))
    broken = verify(engine).broken
    assert broken and (broken.kind, broken.seq) == (BreakKind.REORDERED, 5)


def test_swapped_contents_are_reordering(engine: Engine) -> None:
    ws = chain(engine)
    movable = [c.strip() for c in COLUMNS.split(",") if c.strip() not in ("workspace_id", "seq")]
    with attacker(engine) as c:
        a, b = row(c, ws, 3), row(c, ws, 8)
        for target, source in ((3, b), (8, a)):
            params = {k: source[k] for k in movable}
            if engine.dialect.name == "sqlite" and not isinstance(params["occurred_at"], str):
                params["occurred_at"] = sqlite_timestamp(params["occurred_at"])
            c.execute(
                text(
                    "UPDATE activity_events SET "
                    + ", ".join(f"{k} = :{k}" for k in movable)
                    + f" WHERE seq = {target}"
                ),
                params,
            )
    broken = verify(engine).broken
    assert broken and (broken.kind, broken.seq) == (BreakKind.REORDERED, 3)
    assert "event #8" in broken.explanation


def test_truncated_tail_is_caught_by_the_chain_head(engine: Engine) -> None:
    chain(engine)
    with attacker(engine) as c:
        c.execute(text("DELETE FROM activity_events WHERE seq >= 9"))
    result = verify(engine)
    assert result.broken and (result.broken.kind, result.broken.seq) == (BreakKind.MISSING, 9)
    assert result.events_verified == 8


def test_truncation_with_rewound_head_needs_a_checkpoint(engine: Engine, keys: KeyStore) -> None:
    ws = chain(engine)

    def truncate_and_rewind() -> None:
        with attacker(engine) as c:
            c.execute(text("DELETE FROM activity_events WHERE seq >= 9"))
            eight = row(c, ws, 8)
            c.execute(
                text("UPDATE chain_heads SET last_seq = 8, last_hash = :h WHERE workspace_id = :w"),
                {"h": eight["hash"], "w": ws},
            )

    key = keys.create_signing_key()
    # Without a checkpoint the shortened chain is indistinguishable from a shorter one.
    assert verify(engine, keys).intact
    _, checkpoint = sign_checkpoint(engine, REVIEWER, "riverside", key)
    assert checkpoint is not None and checkpoint.seq == 10
    truncate_and_rewind()
    no_trust = verify(engine)
    assert no_trust.intact  # an untrusted key's checkpoint is not relied on...
    assert any("not trusted" in note for note in no_trust.notes)  # ...and the report says so
    broken = verify(engine, keys).broken
    assert broken and (broken.kind, broken.seq) == (BreakKind.MISSING, 9)
    assert "10 events" in broken.explanation


def test_rewritten_chain_contradicts_the_checkpoint(engine: Engine, keys: KeyStore) -> None:
    ws = chain(engine)
    key: SigningKey = keys.create_signing_key()
    sign_checkpoint(engine, REVIEWER, "riverside", key)
    rewrite_from(engine, ws, 5, 10)
    broken = verify(engine, keys).broken
    # One checkpoint at #10 cannot say which event was rewritten: the whole stretch it
    # covers is named as untrusted, and who recorded the hash it is judged by.
    assert broken and broken.kind is BreakKind.ALTERED
    assert (broken.seq, broken.through) == (1, 10)
    assert "events #1 to #10" in broken.lines()[0]
    assert "is from a checkpoint signed" in broken.explanation


def test_forged_checkpoint_is_reported(engine: Engine, keys: KeyStore) -> None:
    chain(engine, 4)
    key = keys.create_signing_key()
    sign_checkpoint(engine, REVIEWER, "riverside", key)
    with engine.begin() as c:
        c.execute(text("UPDATE chain_checkpoints SET seq = 3"))
    broken = verify(engine, keys).broken
    assert broken and broken.kind is BreakKind.ALTERED
    assert "checkpoint" in broken.explanation


def test_a_broken_chain_is_never_signed(engine: Engine, keys: KeyStore) -> None:
    chain(engine, 4)
    with attacker(engine) as c:
        c.execute(text("UPDATE activity_events SET ip = '6.6.6.6' WHERE seq = 2"))
    result, checkpoint = sign_checkpoint(engine, REVIEWER, "riverside", keys.create_signing_key())
    assert checkpoint is None and not result.intact


def test_time_range_verifies_only_that_part(engine: Engine) -> None:
    chain(engine, 10)  # events at T0 + 0..9 minutes
    with attacker(engine) as c:
        c.execute(text("UPDATE activity_events SET actor_name = 'Mallory' WHERE seq = 9"))
    early = verify(engine, start=T0 + timedelta(minutes=2), end=T0 + timedelta(minutes=6))
    assert early.intact and early.events_verified == 4
    assert (early.first_seq, early.last_seq) == (3, 6)
    late = verify(engine, start=T0 + timedelta(minutes=6))
    assert late.broken and late.broken.seq == 9


def test_progress_and_cancel(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from nvadmin.audit import fastpass
    from nvadmin.audit import verify as module

    monkeypatch.setattr(module, "_BATCH", 3)  # PostgreSQL's batches
    monkeypatch.setattr(fastpass, "BATCH", 3)  # SQLite's
    chain(engine, 10)
    seen: list[tuple[int, int | None]] = []
    verify(engine, progress=lambda done, total, _m: seen.append((done, total)))
    assert seen[-1] == (10, 10) and (3, 10) in seen
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        verify(engine, cancel=token)


def test_sqlite_text_and_parsed_times_canonicalise_alike() -> None:
    from nvadmin.audit.chain import utc_text

    instant = T0 + timedelta(microseconds=123)
    assert canonical_time(sqlite_timestamp(instant)) == utc_text(instant)
    assert canonical_time("2025-03-03 09:00:00") == utc_text(T0)
    assert canonical_time(instant) == utc_text(instant)


@pytest.mark.parametrize("tamper", ["none", "edit", "swap", "insert"])
def test_breaks_are_found_across_fetch_batches(
    sqlite_db_url: str, monkeypatch: pytest.MonkeyPatch, tamper: str
) -> None:
    """Rows arrive in batches; a break, and the rows needed to classify it, may fall on
    either side of a batch boundary."""
    from nvadmin.audit import fastpass
    from nvadmin.audit import verify as module
    from nvadmin.db.engine import make_engine

    monkeypatch.setattr(module, "_BATCH", 4)  # the careful pass's
    monkeypatch.setattr(fastpass, "BATCH", 4)  # the fast pass's
    engine = make_engine(sqlite_db_url)
    ws = chain(engine, 40)
    with attacker(engine) as c:
        if tamper == "edit":
            c.execute(text("UPDATE activity_events SET actor_name = 'Mallory' WHERE seq = 17"))
        elif tamper == "swap":
            c.execute(text("UPDATE activity_events SET seq = -1 WHERE seq = 18"))
            c.execute(text("UPDATE activity_events SET seq = 18 WHERE seq = 31"))
            c.execute(text("UPDATE activity_events SET seq = 31 WHERE seq = -1"))
        elif tamper == "insert":
            insert_twin(c, ws, 22)
    result = verify(engine)
    engine.dispose()
    expected = {
        "none": None,
        "edit": (BreakKind.ALTERED, 17),
        "swap": (BreakKind.REORDERED, 18),
        "insert": (BreakKind.INSERTED, 22),
    }[tamper]
    found = (result.broken.kind, result.broken.seq) if result.broken else None
    assert found == expected
    # Up to the break; with an inserted twin, the genuine event #22 itself verified.
    verified = {"none": 40, "edit": 16, "swap": 17, "insert": 22}[tamper]
    assert result.events_verified == verified


NASTY = (
    'quote " backslash \\ slash /',
    "controls \x01\x08\x0c\n\r\t\x1f and delete \x7f",
    "Zoë Ångström, 日本語, 🩺, line\u2028separator",
    "",
)


def nasty_workspace(engine: Engine) -> int:
    """A workspace of one event per :data:`NASTY` text, in every text field that can hold it
    (a whole-second time for the second, NULLs in between)."""
    ws = add_workspace(engine)
    drafts = [
        draft(
            i,
            name=value or "Ana",
            actor_id=None if i % 2 else 41,
            user_agent=value,
            resource_id=None,
            patient_id=None if i % 2 else value,
            occurred_at=T0 + timedelta(minutes=i, microseconds=0 if i == 1 else 7 * i),
            details={"note": value, "n": i, "nested": {"k": [value, None, True]}},
        )
        for i, value in enumerate(NASTY)
    ]
    write(engine, ws, drafts)
    return ws


def test_database_renders_each_event_exactly_as_it_was_sealed(engine: Engine) -> None:
    """The fast pass hashes the database's layout of each event: byte for byte the encoding
    the chain writer hashed, for any text a field can hold (PostgreSQL leaves control
    characters unescaped, so those events go to the careful pass, and still verify)."""
    from nvadmin.audit.chain import canonical_bytes
    from nvadmin.audit.verify import canonical_sql

    ws = nasty_workspace(engine)
    with engine.connect() as c:
        rendered = c.execute(
            text(
                f"SELECT {canonical_sql(engine.dialect.name)} FROM activity_events "
                "WHERE workspace_id = :ws ORDER BY seq"
            ),
            {"ws": ws},
        ).scalars()
        fields = [name.strip() for name in COLUMNS.split(",")]
        sealed = [
            canonical_bytes(chained_values([row(c, ws, seq)[f] for f in fields]))
            for seq in range(1, len(NASTY) + 1)
        ]
    same = [r.encode() == s for r, s in zip(rendered, sealed, strict=True)]
    if engine.dialect.name == "postgresql":
        assert same == ["controls" not in value for value in NASTY]
    else:
        assert all(same)
    result = verify_workspace(engine, REVIEWER, ws)
    assert result.intact and result.events_verified == len(NASTY)


def test_a_rendering_the_fast_pass_cannot_confirm_is_checked_row_by_row(
    sqlite_db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The same instant stored in another text form renders differently in SQL: the careful
    pass, which parses it, confirms the event instead of calling it altered, and the fast
    pass goes on after it."""
    from nvadmin.db.engine import make_engine

    engine = make_engine(sqlite_db_url)
    ws = chain(engine, 40)
    with attacker(engine) as c:
        for seq in (5, 30):
            stored = row(c, ws, seq)["occurred_at"]
            c.execute(
                text("UPDATE activity_events SET occurred_at = :t WHERE seq = :seq"),
                {"t": stored.replace(" ", "T") + "+00:00", "seq": seq},
            )
    with caplog.at_level("INFO", logger="nvadmin.audit.verify"):
        result = verify(engine)
    engine.dispose()
    assert result.intact and result.events_verified == 40
    careful = [r.getMessage() for r in caplog.records if "row by row" in r.getMessage()]
    assert [m.split("#")[1].split()[0] for m in careful] == ["4", "29"]


def test_a_break_early_in_a_long_chain_stops_the_stream_and_is_located(engine: Engine) -> None:
    """The fast pass stops at the first doubt while the database is still sending (on
    PostgreSQL: the COPY is cancelled mid-stream); the careful pass then reads on in the
    same snapshot and locates the break."""
    ws = add_workspace(engine)
    write(engine, ws, [draft(i / 60, patient_id=f"P-{i % 97}") for i in range(30_000)])
    with attacker(engine) as c:
        c.execute(text("UPDATE activity_events SET patient_id = 'P-X' WHERE seq = 3"))
    result = verify(engine)
    assert result.broken and (result.broken.kind, result.broken.seq) == (BreakKind.ALTERED, 3)
    assert result.events_verified == 2
    # The connection went back to the pool usable: the next verification runs normally.
    with attacker(engine) as c:
        c.execute(text("UPDATE activity_events SET patient_id = 'P-2' WHERE seq = 3"))
    again = verify(engine)
    assert again.intact and again.events_verified == 30_000


@pytest.mark.parametrize("tamper", ["edit", "delete", "insert"])
def test_a_break_after_the_careful_pass_handed_back_is_located(
    sqlite_db_url: str, tamper: str
) -> None:
    from nvadmin.db.engine import make_engine

    engine = make_engine(sqlite_db_url)
    ws = chain(engine, 40)
    with attacker(engine) as c:
        stored = row(c, ws, 5)["occurred_at"]
        c.execute(
            text("UPDATE activity_events SET occurred_at = :t WHERE seq = 5"),
            {"t": stored.replace(" ", "T") + "+00:00"},
        )
        if tamper == "edit":
            c.execute(text("UPDATE activity_events SET actor_name = 'Mallory' WHERE seq = 20"))
        elif tamper == "delete":
            c.execute(text("DELETE FROM activity_events WHERE seq = 20"))
        else:
            insert_twin(c, ws, 20)
    result = verify(engine)
    engine.dispose()
    kind = {"edit": BreakKind.ALTERED, "delete": BreakKind.MISSING, "insert": BreakKind.INSERTED}
    assert result.broken and (result.broken.kind, result.broken.seq) == (kind[tamper], 20)
    assert result.events_verified == (20 if tamper == "insert" else 19)


def test_a_byte_string_smuggled_into_a_sqlite_text_column_is_an_alteration(
    sqlite_db_url: str,
) -> None:
    """SQLite stores whatever it is given: a byte string where text belongs cannot even be
    laid out as JSON. Verification names the event as altered instead of failing."""
    from nvadmin.db.engine import make_engine

    engine = make_engine(sqlite_db_url)
    chain(engine, 10)
    with attacker(engine) as c:
        c.execute(text("UPDATE activity_events SET actor_name = X'4d616c6c6f7279' WHERE seq = 5"))
    result = verify(engine)
    engine.dispose()
    assert result.broken and (result.broken.kind, result.broken.seq) == (BreakKind.ALTERED, 5)
    assert result.events_verified == 4
    assert not any(line.strip() == "found hash" for line in result.lines())
