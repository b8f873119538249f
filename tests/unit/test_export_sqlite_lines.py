"""SQLite exports format whole CSV lines in SQL; the bytes must be those the csv module and
the Python time formatting write for the same rows (the exporter's earlier path, kept for
stored times SQL cannot read), whatever the text, the columns, the zone's offset changes and
the profile."""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlalchemy import event as sqlalchemy_event

from nvadmin.db.engine import make_engine, sqlite_url
from nvadmin.export import plain, profiles, service
from nvadmin.export.columns import BY_KEY, COLUMNS, FORMULA_STARTS, Kind, ZoneClock, resolve
from nvadmin.export.profiles import DATA, EXCEL, Profile
from nvadmin.export.service import ExportRequest, export_csv
from nvadmin.identity import Role, StaffIdentity
from nvadmin.query.fields import AGENT_FAMILIES
from nvadmin.query.filters import EventFilter, Term
from nvadmin.query.localtime import offset_spans
from tests.factories import add_workspace, draft, write

CLEO = StaffIdentity(8, "cleo@nvadmin.example", "Cleo Compliance", Role.COMPLIANCE)
_slugs = itertools.count()

HOSTILE = [",", '"', '""', "\r", "\n", "\r\n", "\u2028", "😀", "שלום", "'", "\t", " ", "é"]
text_value = st.one_of(
    st.none(),
    st.just(""),
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        max_size=20,
    ),
    st.lists(st.sampled_from([*HOSTILE, "a", "1"]), max_size=6).map("".join),
    st.tuples(st.sampled_from(FORMULA_STARTS), st.sampled_from(["", "1+1", 'A,"b"', "\n"])).map(
        "".join
    ),
)
# Instants around offset changes: spring forward and fall back in Chicago and London, Lord
# Howe's half-hour change, and quiet zones (Kolkata's +05:30, Chatham's +12:45/+13:45).
ZONES = [
    "America/Chicago",
    "Europe/London",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "America/St_Johns",
    "UTC",
]
CHANGES = [
    datetime(2025, 3, 9, 8, tzinfo=UTC),
    datetime(2025, 11, 2, 7, tzinfo=UTC),
    datetime(2025, 3, 30, 1, tzinfo=UTC),
    datetime(2025, 10, 26, 1, tzinfo=UTC),
    datetime(2025, 4, 5, 15, tzinfo=UTC),
    datetime(2025, 10, 4, 15, 30, tzinfo=UTC),
    datetime(2025, 9, 27, 14, tzinfo=UTC),
]
instant = st.builds(
    lambda base, seconds, micro: base + timedelta(seconds=seconds, microseconds=micro),
    st.sampled_from(CHANGES),
    st.integers(-3 * 3600, 3 * 3600),
    st.sampled_from([0, 1, 10, 120_000, 500_000, 999_999, 123_456]),
)
event = st.tuples(instant, text_value, text_value, text_value, text_value)
column_keys = st.lists(st.sampled_from([c.key for c in COLUMNS]), min_size=1, unique=True)


@pytest.fixture(scope="module")
def sqlite_engine(sqlite_template: Path) -> Iterator[Engine]:
    folder = Path(tempfile.mkdtemp(prefix="nvadmin-lines-"))
    shutil.copyfile(sqlite_template, folder / "audit.sqlite3")
    engine = make_engine(sqlite_url(folder / "audit.sqlite3"))
    yield engine
    engine.dispose()
    shutil.rmtree(folder, ignore_errors=True)


def formatted_in_python(engine: Engine, request: ExportRequest) -> bytes:
    """The export's bytes as the csv module and the Python local-time formatter write them."""
    columns = resolve(request.columns)
    with service._read_transaction(engine) as db:
        body = b"".join(
            lines for lines, _ in service._python_formatted(db, request, columns, engine.dialect)
        )
    bom = service.BOM if request.profile.bom else b""
    return bom + service._header(columns, request.profile.line_end) + body


def export_both_ways(
    engine: Engine,
    events: list[tuple[datetime, ...]],
    zone: str,
    keys: list[str],
    profile: Profile = DATA,
) -> tuple[bytes, bytes]:
    ws = add_workspace(engine, slug=f"lines-{next(_slugs)}")
    write(
        engine,
        ws,
        [
            draft(
                occurred_at=at,
                name=name or "",
                email=email,
                user_agent=agent,
                details=None if details is None else {"note": details},
                failure_reason=details,
            )
            for at, name, email, agent, details in events
        ],
    )
    times = [e[0] for e in events]
    folder = Path(tempfile.mkdtemp(prefix="nvadmin-lines-out-"))
    try:
        request = ExportRequest(
            event_filter=EventFilter(
                workspace_ids=(ws,),
                start=min(times) - timedelta(days=1),
                end=max(times) + timedelta(days=1),
            ),
            output=folder / "lines.csv",
            time_zone=zone,
            columns=tuple(keys),
            profile=profile,
        )
        export_csv(engine, CLEO, request)
        return (folder / "lines.csv").read_bytes(), formatted_in_python(engine, request)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def hourly_or_not() -> Iterator[list[bool]]:
    """Whether each SQLite CSV export in the block made its lines with the hours table."""
    made_hourly: list[bool] = []
    lines = service._sqlite_lines

    def spy(*args: Any) -> Any:
        found = lines(*args)
        made_hourly.append(found[2])
        return found

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(service, "_sqlite_lines", spy)
        yield made_hourly


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    events=st.lists(event, min_size=1, max_size=6),
    zone=st.sampled_from(ZONES),
    keys=column_keys,
    profile=st.sampled_from(profiles.PROFILES),
)
def test_lines_from_sql_equal_the_csv_module(
    sqlite_engine: Engine,
    events: list[tuple[datetime, ...]],
    zone: str,
    keys: list[str],
    profile: Profile,
) -> None:
    if profile is EXCEL:  # the hash columns need the data profile
        keys = [k for k in keys if BY_KEY[k].kind is not Kind.HEX] or ["seq"]
    in_sql, in_python = export_both_ways(sqlite_engine, events, zone, keys, profile)
    assert in_sql == in_python


@pytest.mark.parametrize(
    "keys",
    [["actor_name"], ["failure_reason"], ["occurred_at_local", "failure_reason"]],
)
def test_one_empty_cell_is_still_a_row(sqlite_engine: Engine, keys: list[str]) -> None:
    """The csv module writes a row of a single empty cell as ``""``, not as an empty line."""
    at = datetime(2025, 3, 9, 8, tzinfo=UTC)
    in_sql, in_python = export_both_ways(sqlite_engine, [(at, "", None, None, None)], "UTC", keys)
    assert in_sql == in_python
    if keys == ["actor_name"]:
        assert in_sql == b'actor_name\n""\n'


def test_every_dst_change_of_a_year_is_in_the_sql() -> None:
    zone = ZoneInfo("America/Chicago")
    clock = ZoneClock(zone, datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 12, 31, tzinfo=UTC))
    sql = clock.sql(BY_KEY["occurred_at_local"], "sqlite", "t", DATA)
    assert sql.count("WHEN t.occurred_at < ") == 4  # spring and autumn, two years
    assert "'2025-03-09 08:00:00.000000'" in sql and "'2025-11-02 07:00:00.000000'" in sql
    # Nested halves: an event is placed in two or three comparisons, not four.
    assert sql.startswith("CASE WHEN t.occurred_at < '2024-11-03 07:00:00.000000' THEN CASE")


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        (DATA, b"occurred_at_local,utc_offset\n1880-06-01T06:09:24.250000-05:50:36,-05:50:36\n"),
        (
            EXCEL,
            b"\xef\xbb\xbfoccurred_at_local,utc_offset\r\n1880-06-01 06:09:24,UTC-05:50:36\r\n",
        ),
    ],
)
def test_local_mean_time_keeps_its_offsets_seconds(
    sqlite_engine: Engine, profile: Profile, expected: bytes
) -> None:
    """Before 1883 Chicago kept local mean time, UTC-05:50:36: SQL shifts the stored second
    by whole seconds, with the same text as Python and PostgreSQL."""
    at = datetime(1880, 6, 1, 12, 0, 0, 250_000, tzinfo=UTC)
    in_sql, in_python = export_both_ways(
        sqlite_engine,
        [(at, "x", None, None, None)],
        "America/Chicago",
        ["occurred_at_local", "utc_offset"],
        profile,
    )
    assert in_sql == in_python == expected


def test_an_offset_change_on_the_last_day_of_a_range_is_seen() -> None:
    """A change less than a day before the end of the range (here London's, at 01:00 UTC on
    the range's last morning) used to be missed, so its events were shifted by the old offset."""
    zone = ZoneInfo("Europe/London")
    spans = offset_spans(
        zone, datetime(2025, 3, 20, tzinfo=UTC), datetime(2025, 3, 30, 12, tzinfo=UTC)
    )
    assert spans == [
        (datetime(2025, 3, 30, 1, tzinfo=UTC), 0),
        (datetime(2025, 3, 30, 12, tzinfo=UTC), 60),
    ]


def test_browser_user_agents_and_json_details(sqlite_engine: Engine) -> None:
    """Cells that usually need quotes (a browser's user agent, JSON details) next to ones that
    rarely do (a name with a comma)."""
    agent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"
    at = datetime(2025, 3, 9, 8, tzinfo=UTC)
    events = [(at, "Ruiz, Ana", None, agent, 'say "hi"'), (at, "Ana", "a@x", agent, None)]
    keys = [c.key for c in COLUMNS]
    in_sql, in_python = export_both_ways(sqlite_engine, events, "America/Chicago", keys)
    assert in_sql == in_python
    assert b'"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"' in in_sql


def test_labels_hold_no_character_that_needs_quotes() -> None:
    """Label cells are left out of the probe (see sqlite_csv._NEVER_QUOTED): every name they
    can hold must be written without quotes."""
    for family in AGENT_FAMILIES:
        assert not any(c in family for c in ',"\r\n'), family


def test_cells_that_never_need_quotes_cause_no_second_read(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    """Browser user agents hold commas; the user-agent family made from them, the times and
    the sequence number never need quotes, so no row is read a second time, and details and
    user agents are quoted inside the line itself."""
    agent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131"
    at = datetime(2025, 3, 9, 8, tzinfo=UTC)
    ws = add_workspace(sqlite_engine, slug=f"lines-{next(_slugs)}")
    write(
        sqlite_engine,
        ws,
        [
            draft(occurred_at=at + timedelta(seconds=i), user_agent=agent, details={"n": i})
            for i in range(3)
        ],
    )
    statements: list[str] = []
    engine = make_engine(str(sqlite_engine.url))
    sqlalchemy_event.listen(
        engine,
        "connect",
        lambda connection, _record: connection.set_trace_callback(statements.append),
    )
    request = ExportRequest(
        event_filter=EventFilter(
            workspace_ids=(ws,), start=at - timedelta(days=1), end=at + timedelta(days=1)
        ),
        output=tmp_path / "agents.csv",
        time_zone="America/Chicago",
        columns=(
            "occurred_at_local",
            "utc_offset",
            "seq",
            "user_agent_family",
            "user_agent",
            "details",
        ),
    )
    try:
        export_csv(engine, CLEO, request)
        written = (tmp_path / "agents.csv").read_bytes()
        assert written == formatted_in_python(engine, request)
    finally:
        engine.dispose()
    assert [s for s in statements if "WHERE id = " in s] == []
    assert b'"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)' in written
    assert b',"{""n"":0}"\r\n' in written


def test_backslashes_tabs_and_blobs(sqlite_engine: Engine) -> None:
    """A user agent with a backslash or a tab (which JSON escapes, but CSV does not quote) is
    written as it is; a text column holding a blob that starts with a formula character (only
    a direct write could store one) is still neutralised, as the Python path does."""
    at = datetime(2025, 3, 9, 8, tzinfo=UTC)
    events = [(at, "Ana", None, "Tool\\1.0\tx", None), (at, "=1+1", None, "a,b", None)]
    ws = add_workspace(sqlite_engine, slug=f"lines-{next(_slugs)}")
    write(
        sqlite_engine,
        ws,
        [draft(occurred_at=e[0], name=e[1], user_agent=e[3]) for e in events],
    )
    with sqlite_engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO activity_events (workspace_id, seq, occurred_at, actor_type, actor_name,"
            " action, category, outcome, prev_hash, hash) SELECT workspace_id, seq + 100,"
            " occurred_at, actor_type, CAST('=2+2' AS BLOB), action, category, outcome,"
            " prev_hash, hash FROM activity_events WHERE workspace_id = ? LIMIT 1",
            (ws,),
        )
    folder = Path(tempfile.mkdtemp(prefix="nvadmin-lines-out-"))
    try:
        request = ExportRequest(
            event_filter=EventFilter(
                workspace_ids=(ws,), start=at - timedelta(days=1), end=at + timedelta(days=1)
            ),
            output=folder / "lines.csv",
            time_zone="UTC",
            columns=("actor_name", "user_agent"),
        )
        export_csv(sqlite_engine, CLEO, request)
        written = (folder / "lines.csv").read_bytes()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert written.removeprefix(service.BOM).split(b"\r\n") == [
        b"actor_name,user_agent",
        b"Ana,Tool\\1.0\tx",
        b'\'=1+1,"a,b"',
        b"'=2+2,",
        b"",
    ]


@pytest.mark.parametrize("profile", profiles.PROFILES, ids=lambda p: p.key)
@pytest.mark.parametrize(
    ("zone", "hourly"),
    [("America/Chicago", True), ("Europe/London", True), ("Asia/Kolkata", False)],
)
def test_local_times_from_the_hours_table(
    sqlite_engine: Engine, tmp_path: Path, profile: Profile, zone: str, hourly: bool
) -> None:
    """Local times made from each event's UTC hour (its local date and hour from a table of
    the range's hours) are the Python path's, across a day of offset changes and the ends of
    the range; a zone whose offset is not whole hours is formatted per row instead."""
    base = datetime(2025, 3, 9, 0, 0, 0, 250_000, tzinfo=UTC)
    times = [base + timedelta(minutes=17 * i, seconds=i, microseconds=i) for i in range(90)]
    times += [datetime(2025, 3, 30, 0, 59, 59, 999_999, tzinfo=UTC)]  # London's change
    times += [datetime(2025, 3, 30, 1, tzinfo=UTC), datetime(2025, 3, 30, 1, 0, 0, 1, tzinfo=UTC)]
    events = [(at, "Ana", None, None, None) for at in times]
    with hourly_or_not() as made_hourly:
        in_sql, in_python = export_both_ways(
            sqlite_engine, events, zone, ["occurred_at_local", "utc_offset", "seq"], profile
        )
    assert in_sql == in_python
    assert made_hourly == [hourly]
    with sqlite_engine.connect() as connection:
        temporary = connection.exec_driver_sql("SELECT name FROM sqlite_temp_master").all()
    assert temporary == []


def test_a_filter_the_hours_cannot_serve_is_formatted_per_row(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    """Two workspaces: each hour's events would come from two index ranges and need a sort,
    so the lines are made without the hours table, in the same order and bytes."""
    at = datetime(2025, 3, 9, 6, tzinfo=UTC)
    first = add_workspace(sqlite_engine, slug=f"lines-{next(_slugs)}")
    second = add_workspace(sqlite_engine, slug=f"lines-{next(_slugs)}")
    for ws, minutes in ((first, 0), (second, 1), (first, 2), (second, 120)):
        write(sqlite_engine, ws, [draft(occurred_at=at + timedelta(minutes=minutes))])
    request = ExportRequest(
        event_filter=EventFilter(
            workspace_ids=(first, second),
            start=at - timedelta(days=1),
            end=at + timedelta(days=1),
        ),
        output=tmp_path / "two.csv",
        time_zone="America/Chicago",
        columns=("occurred_at_local", "utc_offset", "seq", "actor_name"),
    )
    with hourly_or_not() as made_hourly:
        export_csv(sqlite_engine, CLEO, request)
    assert made_hourly == [False]
    written = (tmp_path / "two.csv").read_bytes()
    assert written == formatted_in_python(sqlite_engine, request)
    assert written.count(b"\r\n") == 5


def test_a_weekday_filter_keeps_its_range(sqlite_engine: Engine, tmp_path: Path) -> None:
    """A weekday or hour term is worked out for the filter's range, which the hours table
    would replace: such an export is formatted per row, with the same rows and bytes."""
    at = datetime(2025, 3, 9, 6, tzinfo=UTC)  # a Sunday night in Chicago, 00:00 or later
    ws = add_workspace(sqlite_engine, slug=f"lines-{next(_slugs)}")
    write(sqlite_engine, ws, [draft(occurred_at=at + timedelta(hours=h)) for h in range(30)])
    request = ExportRequest(
        event_filter=EventFilter(
            workspace_ids=(ws,), start=at - timedelta(days=1), end=at + timedelta(days=2)
        ).with_terms(Term("weekday", "sun")),
        output=tmp_path / "sundays.csv",
        time_zone="America/Chicago",
        range_zone="America/Chicago",
        columns=("occurred_at_local", "utc_offset", "seq"),
    )
    with hourly_or_not() as made_hourly:
        export_csv(sqlite_engine, CLEO, request)
    written = (tmp_path / "sundays.csv").read_bytes()
    assert made_hourly == [False]
    assert written == formatted_in_python(sqlite_engine, request)
    days = {line[:10] for line in written.split(b"\r\n")[1:] if line}
    assert days == {b"2025-03-09"}


@pytest.mark.parametrize("profile", profiles.PROFILES, ids=lambda p: p.key)
def test_hours_of_years_before_1000(sqlite_engine: Engine, profile: Profile) -> None:
    """The hours table writes four-digit years as the Python path does (``%Y`` would not)."""
    at = datetime(999, 6, 1, 12, 30, 5, 123_456, tzinfo=UTC)
    events = [(at + timedelta(minutes=40 * i), "Ana", None, None, None) for i in range(3)]
    with hourly_or_not() as made_hourly:
        in_sql, in_python = export_both_ways(
            sqlite_engine,
            events,
            "UTC",
            ["occurred_at_local", "utc_offset", "occurred_at_utc"],
            profile,
        )
    assert made_hourly == [True]
    assert in_sql == in_python
    assert b"0999-06-01" in in_sql


def test_more_columns_quoted_in_sql_than_line_variants(sqlite_engine: Engine) -> None:
    """Details chosen twice next to the user agent: three cells tested in SQL, the third
    quoted in a printf of its own rather than by another variant of the whole line."""
    at = datetime(2025, 3, 9, 8, tzinfo=UTC)
    events = [
        (at, "Ana", None, "Mozilla/5.0 (KHTML, like Gecko)", 'say "hi"'),
        (at, "Ana", None, "curl/8", None),
        (at, "=Ana", None, "=cmd", "a\nb"),
    ]
    in_sql, in_python = export_both_ways(
        sqlite_engine,
        events,
        "UTC",
        ["details", "user_agent", "actor_name", "details"],
        profiles.EXCEL,
    )
    assert in_sql == in_python
    assert b'"{""note"":""say \\""hi\\""""}"' in in_sql


def test_a_connection_that_may_make_no_table_formats_per_row(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    """A read-only connection (``query_only``) cannot make the hours table: the export is
    formatted per row instead, the same bytes, rather than failing."""
    at = datetime(2025, 3, 9, 6, tzinfo=UTC)
    ws = add_workspace(sqlite_engine, slug=f"lines-{next(_slugs)}")
    write(sqlite_engine, ws, [draft(occurred_at=at + timedelta(minutes=37 * i)) for i in range(9)])
    read_only = make_engine(str(sqlite_engine.url))
    sqlalchemy_event.listen(
        read_only, "connect", lambda dbapi, _record: dbapi.execute("PRAGMA query_only = ON")
    )
    request = ExportRequest(
        event_filter=EventFilter(
            workspace_ids=(ws,), start=at - timedelta(days=1), end=at + timedelta(days=1)
        ),
        output=tmp_path / "read-only.csv",
        time_zone="America/Chicago",
        columns=("occurred_at_local", "utc_offset", "seq"),
    )
    try:
        with hourly_or_not() as made_hourly:
            export_csv(read_only, CLEO, request, write_engine=sqlite_engine)
    finally:
        read_only.dispose()
    assert made_hourly == [False]
    assert (tmp_path / "read-only.csv").read_bytes() == formatted_in_python(sqlite_engine, request)


HOSTILE_ROLE = "Nurse, nights"
HOSTILE_ACTION = '=HYPERLINK("http://x")'


def _plain_workspace(engine: Engine) -> tuple[int, datetime]:
    """A workspace of three members' events, all nurses doing the same thing."""
    at = datetime(2025, 3, 9, 6, tzinfo=UTC)
    ws = add_workspace(engine, slug=f"plain-{next(_slugs)}")
    names = ["Ana Ruiz", "Bo Chen", "Cy Diaz"]
    write(
        engine,
        ws,
        [
            draft(occurred_at=at + timedelta(minutes=i), name=names[i % 3], actor_role="nurse")
            for i in range(9)
        ],
    )
    return ws, at


def _copy_first_event(engine: Engine, ws: int, seq: int, at: str, role: str, action: str) -> None:
    """A direct write (the API refuses these values) of the first event again."""
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO activity_events (workspace_id, seq, occurred_at, actor_type,"
            " actor_name, actor_role, action, category, outcome, prev_hash, hash) SELECT"
            " workspace_id, ?, ?, actor_type, actor_name, ?, ?, category, outcome, prev_hash,"
            " hash FROM activity_events WHERE workspace_id = ? AND seq = 1",
            (seq, at, role, action, ws),
        )


def _plain(db: Any, columns: Any, ws: int, rows: int) -> set[str]:
    return set(plain.plain_columns(db, "sqlite", columns, "activity_events", (ws,), rows))


def test_columns_of_plain_values_are_written_as_stored(
    tmp_path: Path, sqlite_template: Path
) -> None:
    """Actions, roles, members hold a few values each: read once from their indexes, those
    that are all plain text are written as stored (no test per row). One value that is not,
    anywhere in the workspace, puts its column back to the tests per row: a role with a
    comma inside the range, an action that is a formula outside it. A column with more
    values than are worth reading is not read; one no index leads with (actor type)
    neither."""
    shutil.copyfile(sqlite_template, tmp_path / "audit.sqlite3")
    engine = make_engine(sqlite_url(tmp_path / "audit.sqlite3"))
    try:
        ws, at = _plain_workspace(engine)
        columns = resolve(("action", "actor_role", "actor_name", "actor_type", "details"))
        with service._read_transaction(engine) as db:
            assert _plain(db, columns, ws, 10) == {"action", "actor_role", "actor_name"}
            # Three names, at most two values read: the names are tested row by row.
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(plain, "_FEWEST_VALUES", 2)
                assert _plain(db, columns, ws, 10) == {"action", "actor_role"}
        _copy_first_event(engine, ws, 101, "2025-03-09 06:30:00.000000", HOSTILE_ROLE, "x")
        _copy_first_event(engine, ws, 102, "2025-03-16 06:00:00.000000", "nurse", HOSTILE_ACTION)
        with service._read_transaction(engine) as db:
            assert _plain(db, columns, ws, 12) == {"actor_name"}
        request = ExportRequest(
            event_filter=EventFilter(
                workspace_ids=(ws,), start=at - timedelta(days=1), end=at + timedelta(days=1)
            ),
            output=tmp_path / "plain.csv",
            time_zone="America/Chicago",
            columns=("occurred_at_local", "action", "actor_role", "actor_name", "actor_type"),
        )
        export_csv(engine, CLEO, request)
        written = (tmp_path / "plain.csv").read_bytes()
        assert written == formatted_in_python(engine, request)
        assert b',"Nurse, nights",' in written
        assert b"HYPERLINK" not in written
    finally:
        engine.dispose()
