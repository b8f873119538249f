from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError

from nvadmin.audit.chain import CHAINED_FIELDS, GENESIS_HASH, ChainWriter, digest, utc_text
from nvadmin.db.models import ActivityEvent
from tests.factories import T0, add_workspace, draft, write


def _rows(engine: Engine, workspace_id: int) -> list[ActivityEvent]:
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        return list(
            session.scalars(
                select(ActivityEvent)
                .where(ActivityEvent.workspace_id == workspace_id)
                .order_by(ActivityEvent.seq)
            )
        )


def _recompute(event: ActivityEvent, prev: bytes) -> bytes:
    values = [getattr(event, name) for name in CHAINED_FIELDS]
    values[CHAINED_FIELDS.index("occurred_at")] = utc_text(event.occurred_at)
    return digest(prev, values)


def test_events_chain_with_gapless_sequence_and_verifiable_hashes(engine: Engine) -> None:
    ws = add_workspace(engine)
    write(engine, ws, [draft(i, details={"fields": ["allergies"], "b": "é"}) for i in range(5)])
    write(engine, ws, [draft(10, action="auth.sign_in_failed", outcome="failure")])
    rows = _rows(engine, ws)
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5, 6]
    prev = GENESIS_HASH
    for row in rows:
        assert row.prev_hash == prev
        assert row.hash == _recompute(row, prev)
        prev = row.hash
    assert rows[0].details == '{"b":"é","fields":["allergies"]}'
    assert rows[-1].category == "failed_sign_ins"
    assert rows[0].occurred_at == T0


def test_workspaces_have_independent_chains(engine: Engine) -> None:
    a, b = add_workspace(engine, "a", "A"), add_workspace(engine, "b", "B")
    write(engine, a, [draft(1), draft(2)])
    write(engine, b, [draft(1)])
    assert [r.seq for r in _rows(engine, a)] == [1, 2]
    assert [r.seq for r in _rows(engine, b)] == [1]
    assert _rows(engine, b)[0].prev_hash == GENESIS_HASH


def test_hash_does_not_depend_on_the_zone_the_time_was_given_in(engine: Engine) -> None:
    a, b = add_workspace(engine, "a", "A"), add_workspace(engine, "b", "B")
    plus_five = timezone(timedelta(hours=5))
    write(engine, a, [draft(occurred_at=T0)])
    write(engine, b, [draft(occurred_at=T0.astimezone(plus_five))])
    first_a, first_b = _rows(engine, a)[0], _rows(engine, b)[0]
    assert first_a.occurred_at == first_b.occurred_at
    # Same event apart from the workspace id: recomputing with a's id gives a's hash.
    assert _recompute(first_b, GENESIS_HASH) == first_b.hash


def test_naive_times_are_refused(engine: Engine) -> None:
    ws = add_workspace(engine)
    with pytest.raises(ValueError, match="timezone-aware"):
        write(engine, ws, [draft(occurred_at=datetime(2025, 1, 1))])


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE activity_events SET actor_name = 'someone else'",
        "DELETE FROM activity_events WHERE seq = 1",
        "DELETE FROM activity_events",
    ],
)
def test_database_refuses_to_change_events(engine: Engine, statement: str) -> None:
    ws = add_workspace(engine)
    write(engine, ws, [draft(1), draft(2)])
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(text(statement))
    assert len(_rows(engine, ws)) == 2


@pytest.mark.pg
def test_postgres_refuses_truncate_on_table_and_on_a_new_partition(pg_url: str) -> None:
    from nvadmin.db.engine import make_engine

    engine = make_engine(pg_url)
    ws = add_workspace(engine)
    write(engine, ws, [draft(occurred_at=datetime(2031, 7, 4, tzinfo=UTC))])  # new partition
    for target in ("activity_events", "activity_events_2031_07"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {target}"))
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(text(f"UPDATE {target} SET ip = '1.2.3.4'"))
    assert len(_rows(engine, ws)) == 1
    engine.dispose()


@pytest.mark.pg
def test_concurrent_writers_never_fork_the_chain(pg_url: str) -> None:
    from nvadmin.db.engine import make_engine

    engine = make_engine(pg_url)
    ws = add_workspace(engine)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        chain = ChainWriter(engine)
        try:
            for i in range(25):
                chain.append(ws, [draft(n * 100 + i), draft(n * 100 + i + 0.5)])
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    rows = _rows(engine, ws)
    assert [r.seq for r in rows] == list(range(1, 401))
    prev = GENESIS_HASH
    for row in rows:
        assert row.prev_hash == prev and row.hash == _recompute(row, prev)
        prev = row.hash
    engine.dispose()
