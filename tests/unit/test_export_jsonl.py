"""JSON Lines exports: one JSON object per event, keys = the export columns, times ISO 8601 with
an offset, ids as strings, values as stored (no formula neutralising), the same bytes on SQLite
and PostgreSQL, and the same evidence as a CSV (manifest, verify-export, re-run, package)."""

from __future__ import annotations

import itertools
import json
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select, text
from sqlalchemy.engine import make_url

from nvadmin.audit.chain import utc_text
from nvadmin.audit.checkpoints import SigningKey
from nvadmin.db.engine import make_engine, sqlite_url
from nvadmin.db.models import ActivityEvent
from nvadmin.errors import UserError
from nvadmin.export import manifest as manifests
from nvadmin.export.columns import COLUMNS, DEFAULT_COLUMNS, FORMULA_STARTS, resolve
from nvadmin.export.evidence import package_export, request_from_manifest
from nvadmin.export.formats import FileFormat
from nvadmin.export.profiles import DATA, iso_offset
from nvadmin.export.service import ExportRequest, export_csv
from nvadmin.export.verify import CHAIN_COLUMNS, verify_export
from nvadmin.identity import Role, StaffIdentity
from nvadmin.query.fields import agent_family
from nvadmin.query.filters import EventFilter
from tests.factories import add_workspace, draft, write

CLEO = StaffIdentity(8, "cleo@nvadmin.example", "Cleo Compliance", Role.COMPLIANCE)
_slugs = itertools.count()

HOSTILE = ["\\", '"', "\r\n", "\u2028", "\x7f", "\x01", "\x1f", "😀", "שלום", "'", "\t", "/"]
text_value = st.one_of(
    st.none(),
    st.just(""),
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        max_size=20,
    ),
    st.lists(st.sampled_from([*HOSTILE, "a", "1", ","]), max_size=6).map("".join),
    st.tuples(st.sampled_from(FORMULA_STARTS), st.sampled_from(["", "1+1", "\n"])).map("".join),
)
ZONES = ["America/Chicago", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]
ZONES_WITH_SECONDS = ["America/St_Johns", "Pacific/Chatham", "America/Chicago"]
CHANGES = [
    datetime(2025, 3, 9, 8, tzinfo=UTC),
    datetime(2025, 11, 2, 7, tzinfo=UTC),
    datetime(2025, 3, 30, 1, tzinfo=UTC),
    datetime(2025, 4, 5, 15, tzinfo=UTC),
]
instant = st.builds(
    lambda base, seconds, micro: base + timedelta(seconds=seconds, microseconds=micro),
    st.sampled_from(CHANGES),
    st.integers(-3 * 3600, 3 * 3600),
    st.sampled_from([0, 1, 120_000, 999_999]),
)
event = st.tuples(instant, text_value, text_value, text_value, text_value)
column_keys = st.lists(st.sampled_from([c.key for c in COLUMNS]), min_size=1, unique=True)
ALL_KEYS = tuple(c.key for c in COLUMNS)


def _sqlite(template: Path) -> Iterator[Engine]:
    folder = Path(tempfile.mkdtemp(prefix="nvadmin-jsonl-"))
    shutil.copyfile(template, folder / "audit.sqlite3")
    engine = make_engine(sqlite_url(folder / "audit.sqlite3"))
    yield engine
    engine.dispose()
    shutil.rmtree(folder, ignore_errors=True)


def _postgresql(server: str, template_name: str) -> Iterator[Engine]:
    name = f"nvadmin_j_{uuid.uuid4().hex[:10]}"
    admin = make_engine(make_url(server).set(database="postgres"))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"'))
    engine = make_engine(make_url(server).set(database=name))
    yield engine
    engine.dispose()
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="module")
def sqlite_engine(sqlite_template: Path) -> Iterator[Engine]:
    yield from _sqlite(sqlite_template)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def shared_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    if request.param == "sqlite":
        yield from _sqlite(request.getfixturevalue("sqlite_template"))
    else:
        yield from _postgresql(
            request.getfixturevalue("pg_server_url"), request.getfixturevalue("pg_template")
        )


@pytest.fixture(scope="module")
def pg_engine(pg_server_url: str, pg_template: str) -> Iterator[Engine]:
    yield from _postgresql(pg_server_url, pg_template)


def add_events(engine: Engine, events: list[tuple[Any, ...]]) -> int:
    ws = add_workspace(engine, slug=f"jsonl-{next(_slugs)}")
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
                patient_id=agent,
            )
            for at, name, email, agent, details in events
        ],
    )
    return ws


def export_jsonl(
    engine: Engine, ws: int, zone: str, keys: tuple[str, ...], folder: Path, name: str = "x"
) -> tuple[Path, dict[str, Any]]:
    request = ExportRequest(
        event_filter=EventFilter(
            workspace_ids=(ws,),
            start=datetime(1800, 1, 1, tzinfo=UTC),
            end=datetime(2026, 1, 1, tzinfo=UTC),  # before the exports logged now
        ),
        output=folder / f"{name}.jsonl",
        time_zone=zone,
        columns=keys,
        file_format=FileFormat.JSONL,
        overwrite=True,
    )
    result = export_csv(engine, CLEO, request, signing_key=KEY)
    return result.path, result.manifest


KEY = SigningKey(Ed25519PrivateKey.generate())


def reference(engine: Engine, ws: int, zone: str, keys: tuple[str, ...]) -> bytes:
    """The file as the format's rules say, from the stored events, without nvadmin's SQL."""
    tz = ZoneInfo(zone)
    with engine.connect() as connection:
        events = connection.execute(
            select(ActivityEvent)
            .where(ActivityEvent.workspace_id == ws)
            .order_by(ActivityEvent.occurred_at, ActivityEvent.id)
        ).all()
    lines = []
    for e in events:
        record: dict[str, Any] = {}
        for column in resolve(keys):
            value = getattr(e, column.source)
            if column.key == "user_agent_family":
                value = agent_family(value)
            elif column.key == "occurred_at_local":
                value = DATA.local(value, tz)
            elif column.key == "utc_offset":
                value = DATA.offset(value.astimezone(tz).utcoffset() or timedelta(0))
            elif column.key == "occurred_at_utc":
                value = utc_text(value)
            elif isinstance(value, bytes):
                value = value.hex()
            elif column.key in ("event_id", "actor_id") and value is not None:
                value = str(value)
            record[column.key] = value
        lines.append(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
    return "".join(lines).encode("utf-8")


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    events=st.lists(event, min_size=1, max_size=5),
    zone=st.sampled_from(ZONES),
    keys=column_keys,
)
def test_sqlite_lines_are_the_formats_rules(
    sqlite_engine: Engine, events: list[tuple[Any, ...]], zone: str, keys: list[str]
) -> None:
    ws = add_events(sqlite_engine, events)
    folder = Path(tempfile.mkdtemp(prefix="nvadmin-jsonl-out-"))
    try:
        expected = reference(sqlite_engine, ws, zone, tuple(keys))
        path, _ = export_jsonl(sqlite_engine, ws, zone, tuple(keys), folder)
        assert path.read_bytes() == expected
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.pg
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    events=st.lists(event, min_size=1, max_size=5),
    zone=st.sampled_from(ZONES),
    keys=column_keys,
)
def test_both_backends_write_the_same_bytes(
    sqlite_engine: Engine,
    pg_engine: Engine,
    events: list[tuple[Any, ...]],
    zone: str,
    keys: list[str],
) -> None:
    folder = Path(tempfile.mkdtemp(prefix="nvadmin-jsonl-out-"))
    try:
        files = []
        for engine in (sqlite_engine, pg_engine):
            ws = add_events(engine, events)
            files.append(reference(engine, ws, zone, tuple(keys)))
            path, _ = export_jsonl(engine, ws, zone, tuple(keys), folder, engine.dialect.name)
            files.append(path.read_bytes())
        # The rules' bytes, then SQLite's, then the rules' on PostgreSQL, then PostgreSQL's.
        assert files[0] == files[1]
        assert files[2] == files[3]
        # Event ids and hashes (which cover the workspace id) differ between two databases;
        # everything else is the same data, so the same bytes.
        if not {"event_id", "hash", "prev_hash"} & set(keys):
            assert files[1] == files[3]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("zone", ["America/Chicago", "Europe/London"])
def test_local_mean_time_keeps_its_offsets_seconds(sqlite_engine: Engine, zone: str) -> None:
    """Before standard time a zone's offset has seconds (``-05:50:36``): written with them,
    as ISO 8601 and Python's ``fromisoformat`` read them, the data profile's form."""
    at = datetime(1880, 6, 1, 12, 0, 5, 250, tzinfo=UTC)
    ws = add_events(sqlite_engine, [(at, "A", None, None, None)])
    folder = Path(tempfile.mkdtemp(prefix="nvadmin-jsonl-out-"))
    try:
        keys = ("occurred_at_local", "utc_offset", "occurred_at_utc", "seq")
        expected = reference(sqlite_engine, ws, zone, keys)
        path, _ = export_jsonl(sqlite_engine, ws, zone, keys, folder)
        assert path.read_bytes() == expected
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_values_types_and_no_neutralising(shared_engine: Engine, tmp_path: Path) -> None:
    at = datetime(2025, 7, 4, 14, 5, 6, 70, tzinfo=UTC)
    ws = add_events(shared_engine, [(at, "=HYPERLINK(1)", "+x@y", "-1", "@SUM(1)")])
    path, manifest = export_jsonl(shared_engine, ws, "America/Chicago", ALL_KEYS, tmp_path)
    data = path.read_bytes()
    assert data.endswith(b"\n") and b"\r" not in data and not data.startswith(b"\xef\xbb\xbf")
    (line,) = data.decode("utf-8").splitlines()
    record = json.loads(line)
    assert list(record) == list(ALL_KEYS)
    assert record["occurred_at_local"] == "2025-07-04T09:05:06.000070-05:00"
    assert record["occurred_at_utc"] == "2025-07-04T14:05:06.000070Z"
    assert datetime.fromisoformat(record["occurred_at_local"]) == at
    assert isinstance(record["seq"], int) and record["seq"] == 1
    assert isinstance(record["event_id"], str) and record["event_id"].isdigit()
    # Values as stored: a JSON reader never evaluates a formula.
    assert record["actor_name"] == "=HYPERLINK(1)"
    assert record["actor_email"] == "+x@y"
    assert record["failure_reason"] == "@SUM(1)"
    assert json.loads(record["details"]) == {"note": "@SUM(1)"}
    assert record["ip"] is None
    assert manifest["file_format"] == "jsonl"
    assert "csv" not in manifest
    assert manifest["jsonl"]["formula_neutralising"].startswith("none")
    assert manifests.load(manifests.manifest_path_for(path))["rows"] == 1


def test_no_rows_is_an_empty_file(shared_engine: Engine, tmp_path: Path) -> None:
    ws = add_workspace(shared_engine, slug=f"jsonl-{next(_slugs)}")
    path, manifest = export_jsonl(shared_engine, ws, "UTC", DEFAULT_COLUMNS, tmp_path)
    assert path.read_bytes() == b"" and manifest["rows"] == 0


def test_repeated_columns_are_refused(sqlite_engine: Engine, tmp_path: Path) -> None:
    base = ExportRequest(
        event_filter=EventFilter(workspace_ids=(1,)),
        output=tmp_path / "x.jsonl",
        time_zone="UTC",
        file_format=FileFormat.JSONL,
    )
    with pytest.raises(UserError, match="once"):
        export_csv(
            sqlite_engine, CLEO, ExportRequest(**{**_fields(base), "columns": ("seq", "seq")})
        )
    assert list(tmp_path.iterdir()) == []


def _fields(request: ExportRequest) -> dict[str, Any]:
    return {name: getattr(request, name) for name in request.__dataclass_fields__}


def test_evidence_verify_rerun_and_package(shared_engine: Engine, tmp_path: Path) -> None:
    at = datetime(2025, 7, 4, 14, tzinfo=UTC)
    events = [(at + timedelta(minutes=i), f"=n{i}", None, "", None) for i in range(5)]
    ws = add_events(shared_engine, events)
    keys = tuple(dict.fromkeys((*CHAIN_COLUMNS, "occurred_at_local")))
    path, manifest = export_jsonl(shared_engine, ws, "UTC", keys, tmp_path)
    trusted = {KEY.key_id: KEY.public_key}
    verdict = verify_export(path, None, trusted)
    assert verdict.ok, verdict.line()
    assert "5 row hashes match" in verdict.line()

    # The re-run of its manifest writes the same bytes.
    again = request_from_manifest(manifest, tmp_path / "again.jsonl")
    assert again.file_format is FileFormat.JSONL
    assert export_csv(shared_engine, CLEO, again).sha256 == manifest["sha256"]

    # Packaged: the README names the format.
    package = package_export(path, tmp_path / "p.zip", trusted)
    assert package.path.is_file()

    # One changed value is found and located.
    lines = path.read_bytes().splitlines(keepends=True)
    record = json.loads(lines[2])
    record["actor_name"] = "=n9"
    lines[2] = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
    path.write_bytes(b"".join(lines))
    verdict = verify_export(path, None, trusted)
    assert not verdict.ok and "line 3" in verdict.line(), verdict.line()

    # A dropped line, with the SHA-256 and row count no longer the manifest's.
    path.write_bytes(b"".join(lines[:2] + lines[3:]))
    assert "4 rows, the manifest 5" in verify_export(path, None, trusted).line()

    # Not JSON.
    path.write_bytes(b"".join(lines[:1]) + b"{not json\n")
    verdict = verify_export(path, None, trusted)
    assert not verdict.ok and "line 2" in verdict.line() and "JSON" in verdict.line()


def test_rows_counted_without_the_chain_columns(sqlite_engine: Engine, tmp_path: Path) -> None:
    at = datetime(2025, 7, 4, 14, tzinfo=UTC)
    ws = add_events(
        sqlite_engine, [(at + timedelta(minutes=i), "A", None, None, None) for i in range(3)]
    )
    path, _ = export_jsonl(sqlite_engine, ws, "UTC", DEFAULT_COLUMNS, tmp_path)
    trusted = {KEY.key_id: KEY.public_key}
    line = verify_export(path, None, trusted).line()
    assert line.startswith("OK") and "3 rows as the manifest says" in line, line
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:2]))
    line = verify_export(path, None, trusted).line()
    assert line.startswith("FAILED") and "2 rows, the manifest 3" in line, line


def test_local_time_offsets_are_fixed_width() -> None:
    assert iso_offset(timedelta(hours=-3, minutes=-30)) == "-03:30"
    assert iso_offset(timedelta(0)) == "+00:00"
    assert iso_offset(timedelta(hours=5, minutes=45)) == "+05:45"


def test_an_unknown_format_in_the_manifest_is_named(sqlite_engine: Engine, tmp_path: Path) -> None:
    at = datetime(2025, 7, 4, 14, tzinfo=UTC)
    ws = add_events(sqlite_engine, [(at, "A", None, None, None)])
    path, manifest = export_jsonl(sqlite_engine, ws, "UTC", DEFAULT_COLUMNS, tmp_path)
    manifest_path = manifests.manifest_path_for(path)
    manifest_path.write_bytes(manifests.render({**manifest, "file_format": "xml"}))
    line = verify_export(path, None, {KEY.key_id: KEY.public_key}).line()
    assert line.startswith("FAILED") and "unknown file format 'xml'" in line, line
    assert "file_format" in line  # and the signature says which field changed
