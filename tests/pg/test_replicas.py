"""Read replicas on real servers: a primary and its streaming hot standby (``pg_pair``).

What each test proves is read from the servers themselves: ``pg_is_in_recovery()`` and the
port of the connection that answered, which server holds a row, the standby's own replay
position, and (for the "standby" that would accept writes) its statement log.
"""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import make_url

from nvadmin.__main__ import main
from nvadmin.audit import access_log
from nvadmin.auth.accounts import add_staff, command_line_operator
from nvadmin.context import Context
from nvadmin.db import routing
from nvadmin.db.engine import make_engine
from nvadmin.errors import DatabaseUnavailable
from nvadmin.export.service import ExportRequest, export_csv
from nvadmin.identity import Role, StaffIdentity
from nvadmin.query.filters import EventFilter
from nvadmin.query.paging import EventPager
from tests import pgcluster
from tests.conftest import _pg_admin
from tests.factories import add_member, add_workspace, draft, write
from tests.replicas import (
    EMAIL,
    EVENTS,
    PASSWORD,
    answering,
    caught_up,
    count_events,
    port_of,
)

pytestmark = pytest.mark.pg


def test_harness_starts_a_streaming_hot_standby(replica_urls: tuple[str, str]) -> None:
    primary_url, standby_url = replica_urls
    primary, standby = make_engine(primary_url), make_engine(standby_url)
    try:
        assert answering(primary)[0] is False
        assert answering(standby)[0] is True
        with primary.begin() as connection:
            connection.execute(text("CREATE TABLE replicated (n int)"))
            connection.execute(text("INSERT INTO replicated VALUES (7)"))
        assert routing.wait_for_replay(standby, routing.current_lsn(primary), timeout=60)
        with standby.connect() as connection:
            assert connection.execute(text("SELECT n FROM replicated")).scalar() == 7
    finally:
        primary.dispose()
        standby.dispose()


def test_reads_hit_the_standby_and_the_view_event_the_primary_first(
    replica_session: tuple[Context, StaffIdentity], replica_clinic: tuple[str, str, int]
) -> None:
    primary_url, standby_url, workspace = replica_clinic
    context, identity = replica_session
    assert answering(context.write_engine) == (False, port_of(primary_url))
    assert answering(context.read_engine) == (True, port_of(standby_url))

    # At the moment the standby is first asked for events, the primary already holds the
    # committed view event (looked up on a connection of its own).
    seen_at_first_read: list[int] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "activity_events" in statement and not seen_at_first_read:
            seen_at_first_read.append(count_events(primary_url, "activity_log.view"))

    event.listen(context.read_engine, "before_cursor_execute", before)
    event_filter = EventFilter(workspace_ids=(workspace,), include_log_access=False)
    read = access_log.recorded_view(context.write_engine, context.read_engine, identity,
                                    event_filter)  # fmt: skip
    assert read is context.read_engine  # once it has replayed the view: it opens the log
    page = EventPager(read, identity, event_filter).first()
    assert len(page.rows) == EVENTS
    assert seen_at_first_read == [1]
    assert count_events(primary_url, "activity_log.view") == 1

    # The standby's own pg_stat_activity shows the staff login's read connection.
    admin = make_engine(standby_url)
    with admin.connect() as connection:
        logins = connection.execute(
            text("SELECT usename FROM pg_stat_activity WHERE datname = current_database()")
        ).scalars()
        assert EMAIL in set(logins)
    admin.dispose()


def test_standby_stopped_mid_browse_falls_back_to_the_primary_with_a_notice(
    replica_session: tuple[Context, StaffIdentity],
    replica_clinic: tuple[str, str, int],
    pg_pair: pgcluster.Pair,
) -> None:
    primary_url, standby_url, workspace = replica_clinic
    context, identity = replica_session
    notices: list[str] = []
    context.add_notice_listener(notices.append)
    event_filter = EventFilter(workspace_ids=(workspace,), include_log_access=False)
    read = access_log.recorded_view(context.write_engine, context.read_engine, identity,
                                    event_filter)  # fmt: skip
    pager = EventPager(read, identity, event_filter, page_size=10)
    first = pager.first()
    assert answering(context.read_engine)[0] is True
    pg_pair.standby.stop()
    # The next page: the pool's dead standby connections are replaced by the primary.
    following = pager.after(first.rows[-1].cursor)
    assert [r.id for r in following.rows] and following.rows[0].id != first.rows[0].id
    assert answering(context.read_engine) == (False, port_of(primary_url))
    gone = f"standby 127.0.0.1:{port_of(standby_url)} unreachable (connection refused)"
    assert notices and notices[-1].startswith(gone)
    assert notices[-1].endswith(f"reading from the primary 127.0.0.1:{port_of(primary_url)}")
    assert context.read_route is not None and context.read_route.notice == notices[-1]


def test_primary_stopped_nothing_is_shown_and_the_message_says_why(
    replica_session: tuple[Context, StaffIdentity],
    replica_clinic: tuple[str, str, int],
    pg_pair: pgcluster.Pair,
    tmp_path: Path,
) -> None:
    _primary_url, _standby_url, workspace = replica_clinic
    context, identity = replica_session
    event_filter = EventFilter(workspace_ids=(workspace,))
    pg_pair.primary.stop()
    with pytest.raises(DatabaseUnavailable) as refused:
        access_log.record_view(context.write_engine, identity, event_filter)
    assert "could not be recorded" in str(refused.value)
    assert "nothing is shown" in str(refused.value)
    # An export reads the standby but cannot record itself: no file under its name.
    out = tmp_path / "export.csv"
    request = ExportRequest(event_filter=event_filter, output=out, time_zone="UTC")
    with pytest.raises(DatabaseUnavailable):
        export_csv(context.read_engine, identity, request, write_engine=context.write_engine)
    assert not out.exists() and not request.manifest_path.exists()


@pytest.mark.parametrize("named_by", ["--read-database", "profile --replica"])
def test_an_export_on_the_standby_is_complete_and_its_manifest_names_the_standby(
    named_by: str,
    replica_clinic: tuple[str, str, int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    primary_url, standby_url, _workspace = replica_clinic
    out = tmp_path / "standby.csv"
    if named_by == "profile --replica":
        assert main(["profile", "add", "prod", primary_url, "--replica", standby_url]) == 0
        database = ["--profile", "prod"]
    else:
        database = ["--database", primary_url, "--read-database", standby_url]
    assert main(["checkpoint", "--create-key"]) == 0  # this computer signs the manifest
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    code = main([
        *database, "export",
        "--workspace", "riverside", "--from", "2025-03-01", "--to", "2025-03-02",
        "--output", str(out), "--staff", EMAIL, "--password-stdin",
    ])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    with out.open(encoding="utf-8", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == EVENTS
    manifest = json.loads(Path(f"{out}.manifest.json").read_text())
    read_from = manifest["read_from"]
    assert read_from["server"] == f"127.0.0.1:{port_of(standby_url)}"
    assert read_from["in_recovery"] is True
    assert re.fullmatch(r"[0-9A-F]+/[0-9A-F]+", read_from["replay_lsn"])
    assert manifest["rows"] == EVENTS
    # The export event is on the primary (and replays to the standby from there).
    assert count_events(primary_url, "activity_log.export") == 1
    assert f"read from standby 127.0.0.1:{port_of(standby_url)}" in capsys.readouterr().out
    # The signed manifest, read_from included, checks out offline.
    assert main(["verify-export", str(out)]) == 0, capsys.readouterr()


def test_a_request_fulfilled_on_the_command_line_reads_its_rows_on_the_standby(
    replica_clinic: tuple[str, str, int],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An export request is an export: its rows come from the standby, while the request, its
    evidence and the export's log event are written on the primary."""
    primary_url, standby_url, workspace = replica_clinic
    owner = make_engine(primary_url)
    add_member(owner, workspace, "olga@riverside.example", "Olga Owens", "practice_admin")
    with owner.begin() as connection:  # a member since before the request: a verified one
        connection.execute(text("UPDATE team_members SET created_at = '2024-01-01 00:00Z'"))
    owner.dispose()
    database = ["--database", primary_url, "--read-database", standby_url]
    code = main([
        *database, "requests", "add", "--workspace", "riverside", "--from", "2025-03-01",
        "--to", "2025-03-02", "--requester", "olga@riverside.example", "--ticket", "SUP-7",
    ])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    caught_up(primary_url, standby_url)
    code = main([*database, "requests", "fulfil", "SUP-7", "--output", str(tmp_path)])
    assert code == 0, capsys.readouterr().err
    manifest = json.loads(next(tmp_path.glob("*.manifest.json")).read_text())
    assert manifest["rows"] == EVENTS
    assert manifest["read_from"]["server"] == f"127.0.0.1:{port_of(standby_url)}"
    assert manifest["read_from"]["in_recovery"] is True
    assert count_events(primary_url, "activity_log.export") == 1
    assert count_events(primary_url, "activity_log.export_request.exported") == 1


def test_a_paused_standby_shows_its_lag(
    replica_session: tuple[Context, StaffIdentity],
    replica_clinic: tuple[str, str, int],
    pg_pair: pgcluster.Pair,
) -> None:
    primary_url, standby_url, workspace = replica_clinic
    admin = make_engine(make_url(standby_url).set(database="postgres"))
    with admin.connect() as connection:
        connection.execute(text("SELECT pg_wal_replay_pause()"))
    admin.dispose()
    owner = make_engine(primary_url)
    write(owner, workspace, [draft() for _ in range(50)])
    owner.dispose()
    position = replica_session[0].read_position()
    assert position is not None
    assert position.in_recovery and position.paused
    assert position.behind_bytes is not None and position.behind_bytes > 0
    assert f"127.0.0.1:{port_of(standby_url)}" in position.lag_text
    assert "behind" in position.lag_text and "replay paused" in position.lag_text
    assert position.replay_lsn and position.replay_lsn in position.lag_text


def test_a_writable_standby_receives_no_write(
    pg_pair: pgcluster.Pair,
    pg_pair_template: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The "standby" is an ordinary database that would take any write; its statement log
    shows every statement nvadmin sent it: reads only."""
    server = make_url(pg_pair.primary.url)
    primary_name, copy_name = (
        f"nvadmin_w_{uuid.uuid4().hex[:8]}",
        f"nvadmin_c_{uuid.uuid4().hex[:8]}",
    )
    _pg_admin(
        pg_pair.primary.url, f'CREATE DATABASE "{primary_name}" TEMPLATE "{pg_pair_template}"'
    )
    primary_url = server.set(database=primary_name).render_as_string(hide_password=False)
    copy_url = server.set(database=copy_name).render_as_string(hide_password=False)
    owner = make_engine(primary_url)
    add_staff(owner, command_line_operator(), EMAIL, PASSWORD, Role.COMPLIANCE)
    workspace = add_workspace(owner)
    write(owner, workspace, [draft() for _ in range(EVENTS)])
    owner.dispose()
    _pg_admin(pg_pair.primary.url, f'CREATE DATABASE "{copy_name}" TEMPLATE "{primary_name}"')
    _pg_admin(pg_pair.primary.url, f"ALTER DATABASE \"{copy_name}\" SET log_statement = 'all'")
    before = fingerprint(copy_url)
    log_start = pg_pair.primary.log.stat().st_size
    try:
        # The operator's commands: flags (records its view on the primary), verify, checkpoint.
        for command in (
            ["flags", "--workspace", "riverside"],
            ["verify", "--workspace", "riverside"],
        ):
            code = main(["--database", primary_url, "--read-database", copy_url, *command])
            assert code in (0, 1), capsys.readouterr().err
        capsys.readouterr()
        statements = logged_statements(pg_pair.primary.log, log_start)
        assert any("activity_events" in s for s in statements), "the copy was not read"
        writes = [s for s in statements if WRITE.search(s)]
        assert writes == []
        assert fingerprint(copy_url) == before
        assert count_events(primary_url, "activity_log.view") >= 1
    finally:
        for name in (copy_name, primary_name):
            _pg_admin(pg_pair.primary.url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        _pg_admin(pg_pair.primary.url, f'DROP ROLE IF EXISTS "{EMAIL}"')


WRITE = re.compile(
    r"\b(INSERT|UPDATE|DELETE|MERGE|TRUNCATE|CREATE|ALTER|DROP|GRANT|VACUUM)\b"
    r"|\bFROM\s+STDIN\b"
    r"|\bnvadmin_(record|seal|sign|resume|join|set|append|receive|move|ensure)",
    re.IGNORECASE,
)


def logged_statements(log: Path, start: int) -> list[str]:
    with log.open("rb") as handle:
        handle.seek(start)
        content = handle.read().decode(errors="replace")
    return re.findall(r"(?:statement|execute [^:]*): (.*)", content)


def fingerprint(url: str) -> dict[str, tuple[int, str]]:
    """Every table's row count and a hash of its rows."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            tables = (
                connection.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                )
                .scalars()
                .all()
            )
            found = {}
            for table in tables:
                rows = "coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '')"
                found[table] = tuple(
                    connection.execute(text(f'SELECT count(*), {rows} FROM "{table}" t')).one()
                )
            return found
    finally:
        engine.dispose()


def test_insights_flags_reports_case_files_and_verification_read_the_standby(
    replica_session: tuple[Context, StaffIdentity],
    replica_clinic: tuple[str, str, int],
    tmp_path: Path,
) -> None:
    """Each read-side operation runs whole on the standby (its connections are read-only, so
    any write would fail), and what it records lands on the primary."""
    from nvadmin.analysis.flags.evaluation import evaluate
    from nvadmin.analysis.insights import compute
    from nvadmin.analysis.reports import user_activity_report
    from nvadmin.audit.verify import verify_workspace
    from nvadmin.casefile.builder import create_case_file

    primary_url, standby_url, workspace = replica_clinic
    context, identity = replica_session
    read, write_engine = context.read_engine, context.write_engine
    # Without log access events: the report's own view event may or may not be replayed yet.
    event_filter = EventFilter(workspace_ids=(workspace,), include_log_access=False)
    # Browsing opens the workspace's log to the session (a view recorded on the primary).
    assert access_log.recorded_view(write_engine, read, identity, event_filter) is read
    assert compute(read, identity, event_filter, "UTC").event_filter.workspace_ids
    assert evaluate(read, identity, event_filter).results
    report = user_activity_report(
        read, identity, workspace_id=workspace, user_email="ana@riverside.example",
        start=None, end=None, write_engine=write_engine,
    )  # fmt: skip
    assert report.row_count == EVENTS
    assert verify_workspace(read, identity, workspace, write_engine=write_engine).intact
    summary = create_case_file(
        read, identity, event_filter, tmp_path / "case", "correct horse battery staple",
        source="test", write_engine=write_engine,
    )  # fmt: skip
    assert summary.events == EVENTS
    assert context.read_route is not None and context.read_route.notice is None
    assert answering(read) == (True, port_of(standby_url))
    assert count_events(primary_url, "activity_log.view") == 2  # the browse's, the report's
    assert count_events(primary_url, "activity_log.export") == 1  # the case file's


def test_own_view_event_is_read_once_replayed_else_from_the_primary(
    replica_session: tuple[Context, StaffIdentity],
    replica_clinic: tuple[str, str, int],
) -> None:
    """Read-your-writes for "Show log access": the page that must include the view event
    just recorded reads the standby once it has replayed it, else (replay paused here) the
    primary after the short wait."""
    primary_url, standby_url, workspace = replica_clinic
    context, identity = replica_session
    read, write_engine = context.read_engine, context.write_engine
    shown = EventFilter(workspace_ids=(workspace,))  # log access included
    access_log.record_view(write_engine, identity, shown)
    source = routing.including_own_writes(read, write_engine, timeout=30)
    assert source is read
    page = EventPager(source, identity, shown).first()
    assert page.rows[0].action == "activity_log.view"

    admin = make_engine(make_url(standby_url).set(database="postgres"))
    with admin.connect() as connection:
        connection.execute(text("SELECT pg_wal_replay_pause()"))
    admin.dispose()
    access_log.record_view(write_engine, identity, shown)
    source = routing.including_own_writes(read, write_engine, timeout=0.2)
    assert source is write_engine
    page = EventPager(source, identity, shown).first()
    views = [row for row in page.rows if row.action == "activity_log.view"]
    assert len(views) == 2 == count_events(primary_url, "activity_log.view")


def test_a_standby_unreachable_at_start_is_skipped_for_the_next_one(
    replica_clinic: tuple[str, str, int],
) -> None:
    """Standbys are tried in order: one nobody answers at is skipped for the next standby
    (then the primary), with a notice naming it."""
    primary_url, standby_url, _workspace = replica_clinic
    nobody = make_url(standby_url).set(port=pgcluster._free_port())
    context = Context.create(
        primary_url, read_databases=(nobody.render_as_string(hide_password=False), standby_url)
    )
    notices: list[str] = []
    context.add_notice_listener(notices.append)
    try:
        assert answering(context.read_engine) == (True, port_of(standby_url))
        assert notices == [
            f"standby 127.0.0.1:{nobody.port} unreachable (connection refused): "
            f"reading from standby 127.0.0.1:{port_of(standby_url)}"
        ]
    finally:
        context.dispose()


def test_command_line_says_on_stderr_when_reads_fall_back_to_the_primary(
    replica_clinic: tuple[str, str, int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    primary_url, standby_url, _workspace = replica_clinic
    nobody = make_url(standby_url).set(port=pgcluster._free_port())
    out = tmp_path / "fallback.csv"
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    code = main([
        "--database", primary_url, "--read-database", nobody.render_as_string(),
        "export", "--workspace", "riverside", "--from", "2025-03-01", "--to", "2025-03-02",
        "--output", str(out), "--staff", EMAIL, "--password-stdin",
    ])  # fmt: skip
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert (
        f"nvadmin: standby 127.0.0.1:{nobody.port} unreachable (connection refused): "
        f"reading from the primary 127.0.0.1:{port_of(primary_url)}"
    ) in printed.err
    manifest = json.loads(Path(f"{out}.manifest.json").read_text())
    assert manifest["read_from"]["server"] == f"127.0.0.1:{port_of(primary_url)}"
    assert manifest["read_from"]["in_recovery"] is False
    assert manifest["rows"] == EVENTS
