"""PostgreSQL partitioning: monthly partitions made by nvadmin, and date queries that prune."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text

from nvadmin.audit.chain import append_in
from nvadmin.db import partitions
from nvadmin.db.engine import make_engine
from nvadmin.db.models import ActivityEvent
from nvadmin.query.filters import EventFilter, where_clause
from tests.factories import add_workspace, draft, write

pytestmark = pytest.mark.pg


def test_writer_creates_the_months_it_needs_and_one_month_queries_prune(pg_url: str) -> None:
    engine = make_engine(pg_url)
    ws = add_workspace(engine)
    months = [datetime(2025, m, 15, 12, tzinfo=UTC) for m in (1, 2, 3, 4)]
    write(engine, ws, [draft(occurred_at=t) for t in months])
    assert partitions.existing(engine) == [f"activity_events_2025_0{m}" for m in (1, 2, 3, 4)]

    march = EventFilter(
        workspace_ids=(ws,),
        start=datetime(2025, 3, 1, tzinfo=UTC),
        end=datetime(2025, 4, 1, tzinfo=UTC),
    )
    query = select(ActivityEvent.id).where(where_clause(march))
    compiled = query.compile(engine, compile_kwargs={"literal_binds": True})
    with engine.connect() as connection:
        plan = "\n".join(r[0] for r in connection.execute(text(f"EXPLAIN {compiled}")))
        rows = connection.execute(query).all()
    assert "activity_events_2025_03" in plan
    for other in ("2025_01", "2025_02", "2025_04"):
        assert f"activity_events_{other}" not in plan
    assert len(rows) == 1
    engine.dispose()


def test_partitions_ahead_are_idempotent(pg_url: str) -> None:
    engine = make_engine(pg_url)
    now = datetime(2030, 11, 20, tzinfo=UTC)
    first = partitions.ensure_ahead(engine, now, 3)
    again = partitions.ensure_ahead(engine, now, 3)
    assert first == again
    names = partitions.existing(engine)
    for expected in ("2030_11", "2030_12", "2031_01", "2031_02"):
        assert f"activity_events_{expected}" in names
    engine.dispose()


def test_an_event_sealed_with_the_change_it_records_makes_its_month(pg_url: str) -> None:
    """The working-hours change and the export-request steps seal their event inside their own
    transaction: the first such event of a month has no partition to go to yet."""
    engine = make_engine(pg_url)
    ws = add_workspace(engine)
    at = datetime(2032, 7, 1, 0, 0, 1, tzinfo=UTC)
    with engine.begin() as connection:
        assert append_in(connection, ws, [draft(occurred_at=at)]) == [1]
    assert "activity_events_2032_07" in partitions.existing(engine)
    with engine.connect() as connection:
        stored = connection.execute(
            select(ActivityEvent.occurred_at).where(ActivityEvent.workspace_id == ws)
        ).all()
    assert [r[0] for r in stored] == [at]
    engine.dispose()
