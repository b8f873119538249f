"""The field registry: every entry is wired end to end, and each field added to it works
everywhere at once (search bar, filter on both backends, table, detail pane, export)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, select

from nvadmin.audit.chain import STORED_FIELDS
from nvadmin.db.models import ActivityEvent as E
from nvadmin.export.columns import COLUMNS, DEFAULT_COLUMNS, FORMULA_STARTS
from nvadmin.query import fields
from nvadmin.query.filters import EventFilter, Term, where_clause
from nvadmin.query.paging import SORT_KEYS, EventRow
from nvadmin.query.search import ALL_QUALIFIERS, format_filter, parse
from tests.factories import add_workspace, draft, write

MONDAY_9 = datetime(2025, 3, 3, 9, 15, tzinfo=UTC)
TUESDAY_14 = datetime(2025, 3, 4, 14, 0, tzinfo=UTC)
CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


def _events() -> list:  # type: ignore[type-arg]
    """Events between them matching every registry example, none matching all of them."""
    return [
        draft(
            occurred_at=MONDAY_9,
            action="chart.view",
            actor_role="physician",
            outcome="failure",
            failure_reason="not_permitted",
            patient_id="P0300404",
            ip="10.0.0.9",
            user_agent=CHROME,
            session_id="sess_7f3a",
            request_id="req_0001",
        ),
        draft(
            occurred_at=MONDAY_9,
            action="api.request",
            actor_type="api_client",
            email=None,
            name="EHR Sync Bridge",
            outcome="failure",
            failure_reason="HTTP 500",
            resource_type="api_endpoint",
            resource_id="GET /v1/claims",
            user_agent="curl/8.5.0",
            details={"status": 500},
        ),
        draft(
            occurred_at=TUESDAY_14,
            action="auth.sign_in",
            email="bo.lee@riverside.example",
            name="Bo Lee",
            actor_role="nurse",
            ip="10.0.0.2",
            user_agent=FIREFOX,
            session_id="sess_0b1c",
        ),
    ]


def _ids(engine: Engine, event_filter: EventFilter) -> set[int]:
    with engine.connect() as connection:
        return set(connection.execute(select(E.id).where(where_clause(event_filter))).scalars())


SEARCHED = sorted(fields.SEARCHED)


@pytest.mark.parametrize("key", SEARCHED)
def test_every_qualifier_parses_and_formats_back(key: str) -> None:
    spec = fields.SEARCHED[key]
    assert spec.example, f"{key}: give the registry entry an example value"
    value = spec.parse(spec.example)
    for qualifier in spec.qualifiers:
        for negate in (False, True):
            sign = "-" if negate else ""
            search = parse(f'{sign}{qualifier}:"{spec.example}"', UTC)
            assert search.terms == (Term(key, value, negate),)
            text = format_filter(search.to_filter(), UTC)
            assert text.startswith(f"{sign}{spec.qualifiers[0]}:"), text
            assert parse(text, UTC).terms == search.terms  # what is written reads back
    assert all(q in ALL_QUALIFIERS for q in spec.qualifiers)


def test_every_filter_field_filters_on_the_backend(engine: Engine) -> None:
    ws = add_workspace(engine)
    write(engine, ws, _events())
    base = EventFilter(workspace_ids=(ws,))
    everything = _ids(engine, base)
    assert len(everything) == 3
    for key in SEARCHED:
        spec = fields.SEARCHED[key]
        value = spec.parse(spec.example)
        found = _ids(engine, base.with_terms(Term(key, value)))
        left = _ids(engine, base.with_terms(Term(key, value, negate=True)))
        assert found and found != everything, key
        assert left == everything - found, key  # excluding keeps the events with no value


def test_registry_positions_and_names_are_consistent() -> None:
    keys = [f.key for f in fields.FIELDS]
    assert len(keys) == len(set(keys))
    qualifiers = [q for spec in fields.SEARCHED.values() for q in spec.qualifiers]
    assert len(qualifiers) == len(set(qualifiers))
    assert not set(qualifiers) & {"after", "before", "on", "last"}
    # Table and export positions: 0..n-1 and 1..n, none twice (saved layouts, CSV contract).
    assert [f.table.position for f in fields.TABLE if f.table] == list(range(len(fields.TABLE)))
    positions = [f.export.position for f in fields.EXPORTED if f.export]
    assert positions == list(range(1, len(positions) + 1))
    for f in fields.TABLE:
        assert f.table is not None
        assert f.table.sort is None or f.table.sort in SORT_KEYS, f.key
    for key, spec in fields.SEARCHED.items():
        if spec.widget in (fields.Widget.LINE, fields.Widget.CHOICE):
            assert spec.placeholder, key  # the box's hint or accessible name
        if spec.widget is fields.Widget.CHOICE:
            assert spec.choices is not None and spec.any_label and spec.several_label, key
            for _label, value in spec.choices():
                assert spec.parse(value) == value, key  # the box sets what a term holds
    # The filter bar builds a purpose-made widget for these two fields only.
    assert [k for k, s in fields.SEARCHED.items() if s.widget is fields.Widget.MEMBERS] == ["user"]
    assert [k for k, s in fields.SEARCHED.items() if s.widget is fields.Widget.CATEGORIES] == [
        "category"
    ]
    # Every stored column an export reads exists.
    stored = {c.name for c in E.__table__.columns}
    assert {c.source for c in COLUMNS} <= stored
    # The browser's rows carry every stored field of the chain but the previous link.
    assert set(EventRow._fields) - {"sort_value"} == (set(STORED_FIELDS) | {"id"}) - {"prev_hash"}


def test_the_default_export_columns_never_change() -> None:
    """A customer's file keeps its columns: new fields are chosen in the export form."""
    # The UTC offset joined the default columns with the CSV profiles: spreadsheets read no
    # time that carries its offset, so the offset is a cell of its own beside the local time.
    assert ",".join(DEFAULT_COLUMNS) == (
        "occurred_at_local,utc_offset,occurred_at_utc,seq,actor_type,actor_email,actor_name,"
        "actor_role,action,category,outcome,failure_reason,resource_type,resource_id,"
        "patient_id,ip,user_agent,session_id,request_id,details"
    )
    keys = [c.key for c in COLUMNS]
    assert keys[: len(DEFAULT_COLUMNS) + 2] == [
        "occurred_at_local",
        "utc_offset",
        "occurred_at_utc",
        "event_id",
        *DEFAULT_COLUMNS[3:],
        "hash",
    ]


def test_the_session_qualifier_finds_one_sessions_events(engine: Engine) -> None:
    """``session:`` is the event's recorded session id (``activity_events.session_id``)."""
    ws = add_workspace(engine)
    write(engine, ws, _events())
    found = _ids(engine, parse("session:sess_7f3a", UTC).to_filter((ws,)))
    with engine.connect() as connection:
        sessions = connection.execute(select(E.session_id).where(E.id.in_(found))).scalars()
        assert list(sessions) == ["sess_7f3a"]
    assert len(_ids(engine, parse("-session:sess_7f3a", UTC).to_filter((ws,)))) == 2


def test_labels_never_start_a_spreadsheet_formula() -> None:
    for f in fields.FIELDS:
        for text in (f.label, f.table.title if f.table else "", f.export.label if f.export else ""):
            assert not text.startswith(FORMULA_STARTS), f.key


def test_a_search_saved_before_the_registry_still_reads_the_same() -> None:
    saved = (
        'user:A@X.example email:b@x.example name:"Ana Ruiz" role:physician action:chart.view '
        "cat:api outcome:FAILURE patient:P1 ip:10.0.0.1 type:api_endpoint "
        'resource:"GET /v1" session:s1 request:r1 actor:member status:NONE weekday:Tues hour:09 '
        "-category:log -ip:10.0.0.2"
    )
    search = parse(saved, UTC)
    assert search.terms == (
        Term("user", "a@x.example"),
        Term("user", "b@x.example"),
        Term("name", "Ana Ruiz"),
        Term("role", "physician"),
        Term("action", "chart.view"),
        Term("category", "api_usage"),
        Term("outcome", "failure"),
        Term("patient", "P1"),
        Term("ip", "10.0.0.1"),
        Term("resource_type", "api_endpoint"),
        Term("resource", "GET /v1"),
        Term("session", "s1"),
        Term("request", "r1"),
        Term("actor_type", "member"),
        Term("status", "none"),
        Term("weekday", "tue"),
        Term("hour", "9"),
        Term("ip", "10.0.0.2", negate=True),
    )
    assert search.include_log_access is False
    assert format_filter(search.to_filter(), UTC) == (
        'user:a@x.example user:b@x.example name:"Ana Ruiz" role:physician action:chart.view '
        "category:api outcome:failure patient:P1 ip:10.0.0.1 type:api_endpoint "
        'resource:"GET /v1" session:s1 request:r1 actor:member status:none weekday:tue hour:9 '
        "-ip:10.0.0.2 -category:log"
    )
