"""The hash of an event does not depend on session settings or on how details were built."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, select

from nvadmin.audit.chain import GENESIS_HASH, ChainWriter, EventDraft, seal
from nvadmin.db.engine import parse_url
from nvadmin.db.models import ActivityEvent
from tests.factories import add_workspace

pytestmark = pytest.mark.pg

# psycopg reads timestamps only in ISO output style; DMY/MDY change how input is read.
ODD_SESSIONS = [
    "-c TimeZone=Pacific/Chatham -c DateStyle=ISO,DMY -c IntervalStyle=sql_standard",
    "-c TimeZone=America/St_Johns -c DateStyle=ISO,MDY -c lc_messages=C -c extra_float_digits=-3",
]


def _draft(details: dict[str, object]) -> EventDraft:
    return EventDraft(
        occurred_at=datetime(2025, 3, 9, 7, 30, 0, 123456, tzinfo=UTC),  # a DST change day
        action="patient_record.update", actor_type="member", actor_id=7,
        actor_email="zoë.nguyễn@clinic.example", actor_name="Zoë Nguyễn", actor_role="physician",
        patient_id="P001", resource_type="patient_record", resource_id="P001",
        details=details,
    )  # fmt: skip


@pytest.mark.parametrize("options", ODD_SESSIONS)
def test_events_written_under_odd_session_settings_hash_as_computed_offline(
    pg_url: str, options: str
) -> None:
    engine = create_engine(parse_url(pg_url), connect_args={"options": options})
    ws = add_workspace(engine)
    before = {"after": ["latex", "penicillin"], "before": ["latex"], "note": "née — ✓ 😀"}
    # Same content, keys inserted in another order.
    reordered = {"note": "née — ✓ 😀", "before": ["latex"], "after": ["latex", "penicillin"]}
    ChainWriter(engine).append(ws, [_draft({"changes": {"allergies": before}})])
    expected = list(seal(ws, 0, GENESIS_HASH, [_draft({"changes": {"allergies": reordered}})]))
    with engine.connect() as connection:
        stored = connection.execute(
            select(ActivityEvent.hash, ActivityEvent.occurred_at).where(
                ActivityEvent.workspace_id == ws
            )
        ).one()
    assert stored.hash == expected[0][-1]
    assert stored.occurred_at == datetime(2025, 3, 9, 7, 30, 0, 123456, tzinfo=UTC)
    engine.dispose()
