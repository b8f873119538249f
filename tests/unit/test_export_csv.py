"""CSV exports on both backends: complete, correct CSV, neutralised formulas, honest manifest."""

from __future__ import annotations

import csv
import json
import stat
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from nvadmin.db.engine import make_engine
from nvadmin.db.models import ActivityEvent
from nvadmin.errors import AccessDenied, UserError
from nvadmin.export import plain, service
from nvadmin.export.columns import COLUMNS, resolve
from nvadmin.export.manifest import file_sha256, load
from nvadmin.export.profiles import DATA, EXCEL, PROFILES, Profile
from nvadmin.export.service import ExportRequest, count_matching, export_csv
from nvadmin.identity import Role, StaffIdentity
from nvadmin.query.filters import EventFilter, Term
from nvadmin.query.localtime import day_range
from tests.factories import T0, add_workspace, draft, write

SUPPORT = StaffIdentity(7, "sam@nvadmin.example", "Sam Support", Role.SUPPORT)
COMPLIANCE = StaffIdentity(8, "cleo@nvadmin.example", "Cleo Compliance", Role.COMPLIANCE)
CHICAGO = "America/Chicago"


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def march(workspace_id: int) -> EventFilter:
    start, end = day_range(date(2025, 3, 1), date(2025, 3, 31), CHICAGO)
    return EventFilter(workspace_ids=(workspace_id,), start=start, end=end)


def request(path: Path, event_filter: EventFilter, **fields: object) -> ExportRequest:
    return ExportRequest(
        event_filter=event_filter,
        output=path,
        time_zone=fields.pop("time_zone", CHICAGO),  # type: ignore[arg-type]
        ticket=fields.pop("ticket", "SUP-1234"),  # type: ignore[arg-type]
        **fields,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.key)
def test_export_equals_an_independent_query(
    engine: Engine, tmp_path: Path, profile: Profile
) -> None:
    ws = add_workspace(engine)
    other = add_workspace(engine, slug="lakeside", name="Lakeside")
    write(
        engine,
        ws,
        [
            draft(
                i * 37.5,
                email=f"user{i % 3}@riverside.example",
                patient_id=f"P{i}",
                details={"field": "allergies", "n": i},
            )
            for i in range(60)
        ],
    )
    # Outside the range or the workspace: must not appear.
    write(
        engine, ws, [draft(occurred_at=datetime(2025, 4, 1, 5, 0, tzinfo=UTC))]
    )  # Apr 1 00:00 CDT
    write(
        engine, ws, [draft(occurred_at=datetime(2025, 3, 1, 5, 59, 59, tzinfo=UTC))]
    )  # Feb 28 CST
    write(engine, other, [draft(5)])
    event_filter = march(ws)
    out = tmp_path / "riverside.csv"

    result = export_csv(engine, SUPPORT, request(out, event_filter, profile=profile))

    rows = read_csv(out)
    with Session(engine) as session:
        expected = session.scalars(
            select(ActivityEvent)
            .where(ActivityEvent.workspace_id == ws)
            .where(ActivityEvent.occurred_at >= event_filter.start)
            .where(ActivityEvent.occurred_at < event_filter.end)
            .order_by(ActivityEvent.occurred_at, ActivityEvent.id)
        ).all()
    assert result.rows == len(rows) == len(expected) == 60
    chicago = ZoneInfo(CHICAGO)
    for row, event in zip(rows, expected, strict=True):
        assert int(row["seq"]) == event.seq
        assert row["actor_email"] == event.actor_email
        assert row["patient_id"] == event.patient_id
        assert row["details"] == event.details  # compact JSON, exactly as hashed
        assert json.loads(row["details"])["field"] == "allergies"
        at = event.occurred_at
        offset = at.astimezone(chicago).utcoffset()
        assert offset is not None
        hours = f"{int(offset.total_seconds()) // 3600:+03d}:00"  # -06:00 or -05:00
        local_wall = at.astimezone(chicago).replace(tzinfo=None)
        utc_wall = at.astimezone(UTC).replace(tzinfo=None)
        if profile is DATA:  # ISO 8601 instants, fixed width
            assert row["occurred_at_local"] == local_wall.isoformat("T", "microseconds") + hours
            assert datetime.fromisoformat(row["occurred_at_local"]) == at
            assert row["utc_offset"] == hours
            assert row["occurred_at_utc"] == utc_wall.isoformat("T", "microseconds") + "Z"
            assert datetime.fromisoformat(row["occurred_at_utc"]) == at
        else:  # date-times a spreadsheet reads, whole seconds, the offset apart
            assert row["occurred_at_local"] == f"{local_wall:%Y-%m-%d %H:%M:%S}"
            assert row["utc_offset"] == "UTC" + hours
            assert row["occurred_at_utc"] == f"{utc_wall:%Y-%m-%d %H:%M:%S}"
    assert list(rows[0]) == list(service.DEFAULT_COLUMNS)


def test_filters_by_team_member_and_category(engine: Engine, tmp_path: Path) -> None:
    ws = add_workspace(engine)
    write(
        engine,
        ws,
        [
            draft(1, email="ana@riverside.example"),
            draft(2, email="ben@riverside.example"),
            draft(3, email="ana@riverside.example", action="auth.sign_in_failed"),
            draft(4, email="cy@riverside.example"),
        ],
    )
    event_filter = march(ws).with_terms(
        Term("user", "ana@riverside.example"),
        Term("user", "ben@riverside.example"),
        Term("category", "chart_views"),
    )
    assert count_matching(engine, SUPPORT, event_filter) == 2
    out = tmp_path / "f.csv"
    export_csv(engine, SUPPORT, request(out, event_filter))
    assert [r["actor_email"] for r in read_csv(out)] == [
        "ana@riverside.example",
        "ben@riverside.example",
    ]


def test_formula_cells_are_neutralised(engine: Engine, tmp_path: Path) -> None:
    ws = add_workspace(engine)
    nasty = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR", "\nLF"]
    write(
        engine, ws, [draft(i, name=n, resource_id=n, patient_id="=1") for i, n in enumerate(nasty)]
    )
    write(engine, ws, [draft(30, name="Ana = fine", resource_id="a-1")])
    out = tmp_path / "f.csv"
    export_csv(engine, SUPPORT, request(out, march(ws)))
    rows = read_csv(out)
    for row, original in zip(rows, nasty, strict=False):
        assert row["actor_name"] == "'" + original
        assert row["resource_id"] == "'" + original
        assert row["patient_id"] == "'=1"
    assert rows[-1]["actor_name"] == "Ana = fine"  # only a leading formula character counts
    assert rows[-1]["resource_id"] == "a-1"
    for row in rows:
        for value in row.values():
            assert not value or value[0] not in "=+-@\t\r\n"


def test_quoting_and_non_ascii_round_trip(engine: Engine, tmp_path: Path) -> None:
    ws = add_workspace(engine)
    names = [
        'Doe, "JJ" Jr.',
        "line one\nline two",
        "carriage\rreturn",
        "crlf\r\ninside",
        "sep\u2028arator",
        "Zoë Ångström 😀",
        "ماريا الحسن",  # right-to-left
        "",
    ]
    write(engine, ws, [draft(i, name=n, user_agent=n or None) for i, n in enumerate(names)])
    out = tmp_path / "f.csv"
    export_csv(engine, SUPPORT, request(out, march(ws), profile=EXCEL))
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel reads UTF-8 only with the BOM
    assert raw.count(b"\xef\xbb\xbf") == 1
    rows = read_csv(out)
    assert [r["actor_name"] for r in rows] == names


def test_manifest_matches_the_file(engine: Engine, tmp_path: Path) -> None:
    ws = add_workspace(engine)
    write(engine, ws, [draft(i) for i in range(25)])
    event_filter = march(ws).with_terms(Term("user", "ana@riverside.example"))
    folder = tmp_path / "exports"
    folder.mkdir()
    out = folder / "export.csv"
    result = export_csv(
        engine, SUPPORT, request(out, event_filter, time_zone="Europe/Paris", range_zone=CHICAGO)
    )
    manifest_path = folder / "export.csv.manifest.json"
    assert result.manifest_path == manifest_path
    manifest = load(manifest_path)
    assert manifest["sha256"] == file_sha256(out) == result.sha256
    assert manifest["bytes"] == out.stat().st_size
    assert manifest["rows"] == 25 == len(read_csv(out))
    assert manifest["ticket"] == "SUP-1234"
    assert manifest["exported_by"] == SUPPORT.email
    assert manifest["workspaces"][0]["slug"] == "riverside"
    assert manifest["time_zone"] == "Europe/Paris"
    assert manifest["range_time_zone"] == CHICAGO
    assert manifest["start"] == "2025-03-01T00:00:00-06:00"
    assert manifest["end"] == "2025-03-31T23:59:59-05:00"  # inclusive, after the DST change
    assert manifest["filter"] == event_filter.to_dict()
    assert manifest["app_version"]
    assert datetime.fromisoformat(manifest["created_at"]).tzinfo is not None
    for path in (out, manifest_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in folder.iterdir()) == ["export.csv", "export.csv.manifest.json"]


def test_export_is_written_to_the_workspace_log(engine: Engine, tmp_path: Path) -> None:
    ws = add_workspace(engine)
    write(engine, ws, [draft(i) for i in range(3)])
    out = tmp_path / "e.csv"
    result = export_csv(engine, SUPPORT, request(out, march(ws)))
    with Session(engine) as session:
        event = session.execute(
            select(ActivityEvent).where(ActivityEvent.action == "activity_log.export")
        ).scalar_one()
    assert event.workspace_id == ws
    assert event.actor_email == SUPPORT.email
    facts = json.loads(event.details or "{}")
    assert facts["rows"] == 3
    assert facts["sha256"] == result.sha256
    assert facts["ticket"] == "SUP-1234"
    assert facts["file"] == "e.csv"
    assert facts["start"] == "2025-03-01T00:00:00-06:00"


@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, 23])
def test_every_row_at_batch_boundaries(
    engine: Engine, tmp_path: Path, size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "CHECK_EVERY", 8)
    monkeypatch.setattr(service, "SQLITE_BATCH", 8)
    ws = add_workspace(engine)
    write(engine, ws, [draft(i, resource_id=f"r{i}") for i in range(size)])
    out = tmp_path / "e.csv"
    seen: list[tuple[int, int | None]] = []
    result = export_csv(
        engine, SUPPORT, request(out, march(ws)), progress=lambda d, t, m="": seen.append((d, t))
    )
    rows = read_csv(out)
    assert result.rows == size
    assert [r["resource_id"] for r in rows] == [f"r{i}" for i in range(size)]
    assert out.read_text(encoding="utf-8-sig").startswith(
        "occurred_at_local,utc_offset,occurred_at_utc,seq,"
    )
    assert seen[-1] == (size, size)


def test_all_columns_including_hash(engine: Engine, tmp_path: Path) -> None:
    ws = add_workspace(engine)
    write(engine, ws, [draft(1)])
    out = tmp_path / "e.csv"
    every = tuple(c.key for c in COLUMNS)
    with pytest.raises(UserError, match="need the data profile"):
        export_csv(engine, SUPPORT, request(out, march(ws), columns=every, profile=EXCEL))
    assert not out.exists()
    export_csv(engine, SUPPORT, request(out, march(ws), columns=every, profile=DATA))
    (row,) = read_csv(out)
    with Session(engine) as session:
        event = session.execute(
            select(ActivityEvent).where(ActivityEvent.action == "chart.view")
        ).scalar_one()
    assert row["hash"] == event.hash.hex()
    assert int(row["event_id"]) == event.id


def test_support_needs_a_ticket_and_one_workspace(engine: Engine, tmp_path: Path) -> None:
    ws = add_workspace(engine)
    with pytest.raises(UserError, match="ticket"):
        export_csv(engine, SUPPORT, request(tmp_path / "a.csv", march(ws), ticket="  "))
    everywhere = EventFilter(start=T0, end=T0 + timedelta(days=1))
    with pytest.raises(AccessDenied):
        export_csv(engine, COMPLIANCE, request(tmp_path / "b.csv", everywhere))
    # Compliance may export without a ticket.
    export_csv(engine, COMPLIANCE, request(tmp_path / "c.csv", march(ws), ticket=""))
    assert not (tmp_path / "a.csv").exists()
    assert (tmp_path / "c.csv").exists()


def test_refuses_to_replace_unless_asked(engine: Engine, tmp_path: Path) -> None:
    ws = add_workspace(engine)
    write(engine, ws, [draft(1)])
    out = tmp_path / "e.csv"
    out.write_text("older export")
    with pytest.raises(UserError, match="already exists"):
        export_csv(engine, SUPPORT, request(out, march(ws)))
    assert out.read_text() == "older export"
    export_csv(engine, SUPPORT, request(out, march(ws), overwrite=True))
    assert len(read_csv(out)) == 1


@pytest.mark.parametrize(
    ("zone", "problem"),
    [("Mars/Olympus", "unknown time zone"), ("", "unknown time zone")],
)
def test_bad_zone_is_a_plain_message(
    engine: Engine, tmp_path: Path, zone: str, problem: str
) -> None:
    ws = add_workspace(engine)
    with pytest.raises(UserError, match=problem):
        export_csv(engine, SUPPORT, request(tmp_path / "e.csv", march(ws), time_zone=zone))


def test_missing_folder_is_a_plain_message(engine: Engine, tmp_path: Path) -> None:
    ws = add_workspace(engine)
    with pytest.raises(UserError, match="does not exist"):
        export_csv(engine, SUPPORT, request(tmp_path / "nope" / "e.csv", march(ws)))


def test_day_range_covers_whole_days_in_the_zone() -> None:
    start, end = day_range(date(2025, 3, 9), date(2025, 3, 9), CHICAGO)  # DST starts that day
    assert start == datetime(2025, 3, 9, 6, 0, tzinfo=UTC)
    assert end == datetime(2025, 3, 10, 5, 0, tzinfo=UTC)  # a 23-hour day
    with pytest.raises(UserError):
        day_range(date(2025, 3, 9), date(2025, 3, 8), CHICAGO)


@pytest.mark.pg
@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.key)
@pytest.mark.parametrize("zone", ["Asia/Kolkata", CHICAGO])
def test_both_backends_write_the_same_bytes(
    sqlite_db_url: str, pg_url: str, tmp_path: Path, profile: Profile, zone: str
) -> None:
    """PostgreSQL's COPY and SQLite's SQL-made lines: the same file, byte for byte, in either
    profile (BOM, line ends, times around a DST change, quoting, empty texts)."""
    names = ["a", "=b", 'c,"d"', "é\nf", "g\rh", "", "i\r\nj", "Ruiz, Ana"]
    drafts = [draft(i * 61.123457, name=n, details={"k": n}) for i, n in enumerate(names)]
    drafts.append(draft(occurred_at=datetime(2025, 3, 9, 8, 0, 0, tzinfo=UTC)))  # whole second
    drafts.append(draft(occurred_at=datetime(2025, 3, 9, 7, 59, 59, 999_999, tzinfo=UTC)))
    drafts.append(draft(occurred_at=datetime(2025, 3, 9, 8, 0, 0, 1, tzinfo=UTC), details=None))
    skipped = {"event_id"} | ({"hash", "prev_hash"} if not profile.microseconds else set())
    columns = tuple(c.key for c in COLUMNS if c.key not in skipped)
    files = []
    for url in (sqlite_db_url, pg_url):
        engine = make_engine(url)
        try:
            ws = add_workspace(engine, timezone=zone)
            write(engine, ws, drafts)
            out = tmp_path / f"{engine.dialect.name}.csv"
            request_ = request(out, march(ws), time_zone=zone, columns=columns, profile=profile)
            export_csv(engine, SUPPORT, request_)
            files.append(out.read_bytes())
        finally:
            engine.dispose()
    assert files[0] == files[1]
    data = files[0]
    assert data.startswith(b"\xef\xbb\xbf") == profile.bom
    header = (",".join(columns) + profile.line_end).encode()
    assert data.removeprefix(b"\xef\xbb\xbf").startswith(header)
    assert data.endswith(profile.line_end.encode())
    assert data.endswith(b"\r\n") == (profile is EXCEL)
    rows = read_csv(tmp_path / "sqlite.csv")
    assert len(rows) == len(drafts)
    assert [r["actor_name"] for r in rows[: len(names)]] == [
        "a", "'=b", 'c,"d"', "é\nf", "g\rh", "", "i\r\nj", "Ruiz, Ana"
    ]  # fmt: skip
    if zone == "Asia/Kolkata" and profile is DATA:
        assert rows[0]["occurred_at_local"] == "2025-03-03T14:30:00.000000+05:30"
        assert rows[1]["occurred_at_utc"] == "2025-03-03T10:01:07.407420Z"  # fixed width
    if zone == CHICAGO:
        spring = [
            r for r in rows if r["occurred_at_utc"].startswith(("2025-03-09T0", "2025-03-09 0"))
        ]
        expected = (
            [
                ("2025-03-09T01:59:59.999999-06:00", "-06:00"),
                ("2025-03-09T03:00:00.000000-05:00", "-05:00"),
                ("2025-03-09T03:00:00.000001-05:00", "-05:00"),
            ]
            if profile is DATA
            else [
                ("2025-03-09 01:59:59", "UTC-06:00"),
                ("2025-03-09 03:00:00", "UTC-05:00"),
                ("2025-03-09 03:00:00", "UTC-05:00"),
            ]
        )
        assert [(r["occurred_at_local"], r["utc_offset"]) for r in spring] == expected


def test_the_export_engine_needs_no_widgets() -> None:
    import subprocess
    import sys

    code = (
        "import sys, nvadmin.export.service, nvadmin.commands.export; "
        "print('PySide6.QtWidgets' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


@given(
    st.lists(
        st.lists(st.text(alphabet='ab,"\r\n', max_size=6), min_size=1, max_size=4),
        min_size=1,
        max_size=8,
    )
)
def test_crlf_row_ends_leave_line_breaks_inside_cells(rows: list[list[str]]) -> None:
    """PostgreSQL's COPY ends rows with LF; the excel profile's CRLF replaces only those ends,
    whatever line breaks and quotes the quoted cells hold."""

    def line(cells: list[str], end: str) -> bytes:
        quoted = [
            '"' + c.replace('"', '""') + '"' if any(x in c for x in ',"\r\n') else c for c in cells
        ]
        return (",".join(quoted) + end).encode()

    lf = b"".join(line(r, "\n") for r in rows)
    crlf = b"".join(line(r, "\r\n") for r in rows)
    assert service._crlf_rows(lf, len(rows)) == crlf


@pytest.mark.pg
def test_columns_of_plain_values_are_written_as_stored_on_both_backends(
    sqlite_db_url: str, pg_url: str, tmp_path: Path
) -> None:
    """Names, roles, actions and IP addresses that are all plain text in the workspace are
    read once from their indexes and written as stored, with no test per cell, on both
    backends: the same bytes either way, an empty name and a missing IP address written as
    nothing (PostgreSQL's COPY would write the empty name as ""). A name that starts a
    formula puts the names back to the tests per cell, and is neutralised."""
    names = ["Ana Ruiz", "", "Bo Chen", "Ana Ruiz"]
    columns = ("occurred_at_utc", "actor_name", "actor_role", "action", "ip")
    read = resolve(columns[1:])
    files: dict[str, list[bytes]] = {}
    for url in (sqlite_db_url, pg_url):
        engine = make_engine(url)
        dialect = engine.dialect.name
        try:
            ws = add_workspace(engine)
            drafts = [
                draft(i * 7.5, name=n, actor_role="nurse", ip=None if i % 2 else "10.1.2.3")
                for i, n in enumerate(names)
            ]
            write(engine, ws, drafts)
            files[dialect] = []
            for hostile in (False, True):
                if hostile:
                    write(engine, ws, [draft(40, name="=Ana", actor_role="nurse")])
                with engine.connect() as connection, connection.begin():
                    found = plain.plain_columns(
                        connection.connection.driver_connection,
                        dialect,
                        read,
                        "activity_events",
                        (ws,),
                        len(drafts),
                    )
                expected = {"actor_role": False, "action": False, "ip": True}
                assert found == expected if hostile else {**expected, "actor_name": True}
                out = tmp_path / f"{dialect}-{hostile}.csv"
                export_csv(engine, SUPPORT, request(out, march(ws), columns=columns))
                files[dialect].append(out.read_bytes())
        finally:
            engine.dispose()
    assert files["sqlite"] == files["postgresql"]
    before, after = files["sqlite"]
    assert b",,nurse,chart.view,\r\n" in before
    assert b'""' not in before
    assert b",'=Ana,nurse,chart.view,\r\n" in after


def test_a_column_of_values_with_commas_is_written_as_stored_where_copy_quotes_it(
    sqlite_db_url: str, pg_url: str, tmp_path: Path
) -> None:
    """Names holding a comma or a quote but starting no formula: PostgreSQL's COPY quotes
    such cells itself, so there the names are written as stored with no test per cell;
    SQLite's export, which makes its lines itself, tests and quotes them cell by cell. The
    bytes are the same either way."""
    names = ["Ruiz, Ana", 'Bo "Bobby" Chen', "Ruiz, Ana"]
    columns = ("occurred_at_utc", "actor_name", "action")
    files: dict[str, bytes] = {}
    for url in (sqlite_db_url, pg_url):
        engine = make_engine(url)
        dialect = engine.dialect.name
        try:
            ws = add_workspace(engine)
            write(engine, ws, [draft(i * 7.5, name=n) for i, n in enumerate(names)])
            with engine.connect() as connection, connection.begin():
                found = plain.plain_columns(
                    connection.connection.driver_connection,
                    dialect,
                    resolve(columns[1:]),
                    "activity_events",
                    (ws,),
                    len(names),
                )
            assert ("actor_name" in found) is (dialect == "postgresql"), found
            out = tmp_path / f"{dialect}.csv"
            export_csv(engine, SUPPORT, request(out, march(ws), columns=columns))
            files[dialect] = out.read_bytes()
        finally:
            engine.dispose()
    assert files["sqlite"] == files["postgresql"]
    assert b',"Ruiz, Ana",' in files["sqlite"]
    assert b',"Bo ""Bobby"" Chen",' in files["sqlite"]
