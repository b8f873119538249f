"""S1-S3: PostgreSQL is the security boundary, tried as an attacker with psql would.

Found on an earlier version, every desktop held one shared login (``nvadmin_viewer``) and the
client decided who the person was; with it one could mint a remember-me token for an admin,
unlock anyone, read password hashes and TOTP secrets, forge events with any actor, and
flood the partition function. Each test below runs the attack's SQL as a staff login (or as
a session that has not passed the second factor) against the real server.
"""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from nvadmin.__main__ import main
from nvadmin.audit import server_events, verify
from nvadmin.audit.access_log import record_view
from nvadmin.auth import accounts, db_roles, totp
from nvadmin.auth.accounts import command_line_operator
from nvadmin.auth.server_signin import ServerAuthenticator
from nvadmin.auth.signin import SecondFactorRequired, SignInRefused
from nvadmin.db.engine import make_engine
from nvadmin.db.models import SYSTEM_WORKSPACE_SLUG
from nvadmin.errors import UserError
from nvadmin.export.service import ExportRequest, export_csv
from nvadmin.identity import Role, StaffIdentity
from nvadmin.query.filters import EventFilter
from tests.factories import add_workspace, draft, write

pytestmark = pytest.mark.pg

PASSWORD = "blue-harbour-lantern"


@dataclass
class Site:
    url: str
    owner: Engine
    workspace: int
    emails: dict[Role, str]
    totp_email: str
    totp_secret: str

    def login(self, email: str, password: str = PASSWORD) -> Engine:
        """A raw psql-like connection as a staff login: password right, nothing else done."""
        return make_engine(make_url(self.url).set(username=email, password=password))

    def sign_in(self, role: Role) -> Engine:
        return ServerAuthenticator(make_url(self.url)).sign_in(self.emails[role], PASSWORD).engine


@pytest.fixture
def site(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    owner = make_engine(pg_url)
    workspace = add_workspace(owner)
    write(owner, workspace, [draft(i) for i in range(5)])
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["--database", pg_url, "db", "roles"]) == 0  # again: safe to repeat
    tag = uuid.uuid4().hex[:6]
    emails = {role: f"{role.value}-{tag}@n.example" for role in Role}
    operator = command_line_operator()
    for role, email in emails.items():
        accounts.add_staff(owner, operator, email, PASSWORD, role)
    totp_email = f"second-{tag}@n.example"
    secret = accounts.add_staff(owner, operator, totp_email, PASSWORD, Role.ADMIN, with_totp=True)
    assert secret.totp_secret
    yield Site(pg_url, owner, workspace, emails, totp_email, secret.totp_secret)
    owner.dispose()


def refused(engine: Engine, statement: str, **params: object) -> str:
    with pytest.raises(DBAPIError) as caught, engine.begin() as connection:
        connection.execute(text(statement), params)
    return str(caught.value.orig)


def scalar(engine: Engine, statement: str, **params: object) -> object:
    with engine.begin() as connection:
        return connection.execute(text(statement), params).scalar()


def admin_id(site: Site) -> int:
    return int(
        scalar(site.owner, "SELECT id FROM staff WHERE email = :e", e=site.emails[Role.ADMIN])
    )  # type: ignore[arg-type]


# -- 1. no forged remember-me token, no 100-year token ---------------------------------------


@pytest.mark.parametrize("role", list(Role))
def test_no_group_can_mint_a_remember_token(site: Site, role: Role) -> None:
    engine = site.sign_in(role)
    message = refused(
        engine,
        "INSERT INTO remember_tokens (staff_id, token_hash, created_at, expires_at) "
        "VALUES (:id, sha256('forged'), now(), now() + interval '100 years')",
        id=admin_id(site),
    )
    assert "permission denied" in message


def test_remember_token_expiry_is_set_by_the_server_within_the_policy(site: Site) -> None:
    with site.owner.begin() as connection:
        connection.execute(
            text("INSERT INTO nvadmin_meta VALUES ('security.remember_hours', '5000')")
        )
    session = ServerAuthenticator(make_url(site.url)).sign_in(
        site.emails[Role.SUPPORT], PASSWORD, remember=True
    )
    assert session.remember_token
    lifetime = scalar(
        site.owner,
        "SELECT max(expires_at - created_at) FROM remember_tokens",
    )
    assert lifetime is not None and lifetime.total_seconds() == 12 * 3600  # type: ignore[attr-defined]
    # the token stands only for its own login: another account still needs its code
    other = site.login(site.totp_email)
    with other.begin() as connection:
        row = connection.execute(
            text("SELECT status FROM nvadmin_sign_in(NULL, NULL, 'sign_in', false, :t, NULL)"),
            {"t": session.remember_token},
        ).one()
    assert row.status == "code_required"
    assert scalar(other, "SELECT count(*) FROM activity_events") == 0


# -- 2. no unlocking, no re-arming TOTP replay ------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE staff SET failed_attempts = 0, locked_until = NULL",
        "UPDATE staff SET totp_last_step = NULL",
        "UPDATE staff SET role = 'admin'",
        "DELETE FROM staff_sessions",
        "INSERT INTO staff_session_backends VALUES (pg_backend_pid(), now(), session_user, 1)",
        "UPDATE chain_heads SET last_seq = 0",
        "INSERT INTO chain_checkpoints (workspace_id, seq, hash, signed_at, key_id, signature) "
        "VALUES (1, 1, '\\x00', now(), 'k', '\\x00')",
        "DELETE FROM activity_events",
        "UPDATE nvadmin_meta SET value = '1000'",
        "CREATE TABLE sneaky (id int)",
        # a planted overload the SECURITY DEFINER functions could pick up
        "CREATE FUNCTION nvadmin_json_text(value varchar) RETURNS text LANGUAGE sql "
        "AS 'SELECT 1::text'",
    ],
)
def test_no_group_writes_a_table(site: Site, role: Role, statement: str) -> None:
    assert "permission denied" in refused(site.sign_in(role), statement)


def test_only_admins_manage_staff_and_it_is_chained(site: Site) -> None:
    support = site.sign_in(Role.SUPPORT)
    assert "permission denied" in refused(
        support,
        "SELECT nvadmin_manage_staff('unlock', :e, NULL, NULL, NULL, NULL)",
        e=site.emails[Role.ADMIN],
    )
    admin = site.sign_in(Role.ADMIN)
    before = scalar(site.owner, "SELECT count(*) FROM activity_events")
    with admin.begin() as connection:
        connection.execute(
            text("SELECT nvadmin_manage_staff('unlock', :e, NULL, NULL, NULL, NULL)"),
            {"e": site.emails[Role.SUPPORT]},
        )
    event = (
        site.owner.connect()
        .execute(text("SELECT action, actor_email FROM activity_events ORDER BY id DESC LIMIT 1"))
        .one()
    )
    assert event == ("staff.account_unlocked", site.emails[Role.ADMIN])
    assert scalar(site.owner, "SELECT count(*) FROM activity_events") == before + 1  # type: ignore[operator]


def test_an_admin_demoted_meanwhile_is_told_so_by_the_staff_list(site: Site) -> None:
    """The server takes the role away at once; the Staff dialog's list, read again after the
    refusal, said "permission denied for view staff_directory" as an unexpected failure."""
    admin = site.sign_in(Role.ADMIN)
    identity = StaffIdentity(0, site.emails[Role.ADMIN], "admin", Role.ADMIN)
    assert site.emails[Role.SUPPORT] in {a.email for a in accounts.list_staff(admin, identity)}
    accounts.change_role(site.owner, command_line_operator(), site.emails[Role.ADMIN], "support")
    with pytest.raises(accounts.ChangedSinceSignIn, match="no longer an admin"):
        accounts.list_staff(admin, identity)


# -- 3. secrets unreadable --------------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize(
    "statement",
    [
        "SELECT password_hash FROM staff",
        "SELECT totp_secret FROM staff",
        "SELECT * FROM staff",
        "SELECT token_hash FROM remember_tokens",
        "SELECT key_hash FROM staff_sessions",
        "SELECT * FROM staff_sign_in_attempts",
    ],
)
def test_secrets_are_unreadable(site: Site, role: Role, statement: str) -> None:
    assert "permission denied" in refused(site.sign_in(role), statement)


def test_no_password_hash_stays_in_the_tables(site: Site) -> None:
    assert scalar(site.owner, "SELECT count(*) FROM staff WHERE password_hash <> ''") == 0


# -- the second factor gates every read -------------------------------------------------------


def test_a_session_without_its_code_reads_nothing(site: Site) -> None:
    raw = site.login(site.totp_email)  # the password is right: psql gets this far
    for table in db_roles.READ_TABLES:
        assert scalar(raw, f"SELECT count(*) FROM {table}") == 0, table
    assert scalar(raw, "SELECT count(*) FROM staff") == 0
    with raw.begin() as connection:
        status = connection.execute(
            text("SELECT status FROM nvadmin_sign_in(NULL, NULL, 'sign_in', false, NULL, NULL)")
        ).scalar()
    assert status == "code_required"
    assert scalar(raw, "SELECT count(*) FROM activity_events") == 0
    # nor can it record anything
    assert "sign in first" in refused(
        raw,
        "SELECT nvadmin_record_access(:w, 'activity_log.view', '{}', NULL, NULL, NULL)",
        w=site.workspace,
    )
    code = totp.code_at(site.totp_secret, datetime.now(UTC).timestamp())
    with raw.begin() as connection:
        status = connection.execute(
            text("SELECT status FROM nvadmin_sign_in(NULL, :c, 'sign_in', false, NULL, NULL)"),
            {"c": code},
        ).scalar()
    assert status == "ok"
    assert scalar(raw, "SELECT count(*) FROM workspaces") > 0  # type: ignore[operator]
    record(raw, site.workspace)  # and a workspace's events once the access is on record
    assert scalar(raw, "SELECT count(*) FROM activity_events WHERE workspace_id = :w",
                  w=site.workspace) > 0  # type: ignore[operator]  # fmt: skip
    # the same code again, on another connection, is refused (no replay)
    again = site.login(site.totp_email)
    with again.begin() as connection:
        status = connection.execute(
            text("SELECT status FROM nvadmin_sign_in(NULL, :c, 'sign_in', false, NULL, NULL)"),
            {"c": code},
        ).scalar()
    assert status == "refused"
    assert scalar(again, "SELECT count(*) FROM activity_events") == 0


def test_sign_in_asks_for_the_code_then_accepts_it(site: Site) -> None:
    auth = ServerAuthenticator(make_url(site.url))
    with pytest.raises(SecondFactorRequired):
        auth.sign_in(site.totp_email, PASSWORD)
    code = totp.code_at(site.totp_secret, datetime.now(UTC).timestamp())
    session = auth.sign_in(site.totp_email, PASSWORD, code)
    assert session.identity.email == site.totp_email
    # every pooled connection joins the session: two at once both read rows
    with session.engine.connect() as first, session.engine.connect() as second:
        assert first.execute(text("SELECT count(*) FROM workspaces")).scalar()
        assert second.execute(text("SELECT count(*) FROM workspaces")).scalar()


def test_wrong_password_is_refused_by_the_server_and_counted(site: Site) -> None:
    auth = ServerAuthenticator(make_url(site.url))
    with pytest.raises(SignInRefused):
        auth.sign_in(site.emails[Role.SUPPORT], "not-the-password")
    reason = scalar(
        site.owner,
        "SELECT failure_reason FROM activity_events WHERE action = 'staff.sign_in_failed' "
        "ORDER BY id DESC LIMIT 1",
    )
    assert reason == "wrong_password"
    assert scalar(site.owner, "SELECT failed_attempts FROM staff WHERE email = :e",
                  e=site.emails[Role.SUPPORT]) == 1  # fmt: skip


# -- 4. no forged actor -----------------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
def test_events_carry_the_login_as_actor(site: Site, role: Role) -> None:
    engine = site.sign_in(role)
    forged = "INSERT INTO activity_events (workspace_id, seq, occurred_at, actor_type, actor_name, "
    forged += "action, category, outcome, prev_hash, hash) VALUES "
    forged += "(:w, 99, now(), 'member', 'Dr. Who', 'chart.view', 'chart_views', 'success', "
    forged += "'\\x00', '\\x00')"
    assert "permission denied" in refused(engine, forged, w=site.workspace)
    # the one way to write: the server names the actor, whatever the caller claims
    record_view(
        engine,
        accounts.StaffAccount(0, "physician@clinic.example", "Dr. Forged", Role.ADMIN, False, 0,
                              None, False, None, None).identity(),
        EventFilter(workspace_ids=(site.workspace,)),
    )  # fmt: skip
    actor = (
        site.owner.connect()
        .execute(
            text(
                "SELECT actor_email, actor_role, ip FROM activity_events "
                "WHERE action = 'activity_log.view' ORDER BY id DESC LIMIT 1"
            )
        )
        .one()
    )
    assert actor.actor_email == site.emails[role] and actor.actor_role == role.value
    assert actor.ip == "127.0.0.1"  # the address the server saw, not one the client claims
    for action in ("chart.view", "staff.sign_in", "staff.account_created"):
        assert "not recorded by staff" in refused(
            engine,
            "SELECT nvadmin_record_access(:w, :a, '{}', NULL, NULL, NULL)",
            w=site.workspace,
            a=action,
        )
    # and what the server sealed verifies, byte for byte, in Python
    report = verify.verify_workspace(site.owner, command_line_operator(), "riverside")
    assert report.intact, report


def test_hostile_text_sealed_by_the_server_verifies(site: Site) -> None:
    engine = site.sign_in(Role.SUPPORT)
    hostile = {"q": 'a"b\\c\n\r\t\b\f\x01\x1f\x7f\u2028 é 🩺 \u202e', "n": [1, None, True]}
    record_view(
        engine,
        accounts.StaffAccount(0, "x@y.z", "x", Role.SUPPORT, False, 0, None, False, None,
                              None).identity(),
        EventFilter(workspace_ids=(site.workspace,)),
        purpose=str(hostile),
    )  # fmt: skip
    report = verify.verify_workspace(site.owner, command_line_operator(), "riverside")
    assert report.intact, report


# -- 5. partition flood -----------------------------------------------------------------------


def test_partition_flood_is_bounded_and_verify_still_works(site: Site) -> None:
    engine = site.sign_in(Role.SUPPORT)
    before = scalar(site.owner, "SELECT count(*) FROM pg_inherits WHERE inhparent = "
                    "'activity_events'::regclass")  # fmt: skip
    assert "outside the partitions" in refused(
        engine,
        "SELECT nvadmin_ensure_event_partition(make_date(3000 + g / 12, g % 12 + 1, 1)) "
        "FROM generate_series(0, 999) g",
    )
    for hostile in ("4713-01-01 BC", "infinity", "-infinity"):
        message = refused(engine, "SELECT nvadmin_ensure_event_partition(CAST(:d AS date))",
                          d=hostile)  # fmt: skip
        assert "no partition for month" in message or "outside the partitions" in message
    # one call per month in the window, at most, can succeed
    with engine.begin() as connection:
        for months in range(-30, 10):
            try:
                with connection.begin_nested():
                    connection.execute(
                        text(
                            "SELECT nvadmin_ensure_event_partition("
                            "(date_trunc('month', now()) + make_interval(months => :m))::date)"
                        ),
                        {"m": months},
                    )
            except DBAPIError:
                pass
    after = scalar(site.owner, "SELECT count(*) FROM pg_inherits WHERE inhparent = "
                   "'activity_events'::regclass")  # fmt: skip
    assert after - before <= 2 * 12 + 3 + 1  # type: ignore[operator]
    report = verify.verify_workspace(site.owner, command_line_operator(), "riverside")
    assert report.intact


# -- migration: the shared login writes events, and reads none -------------------------------


def test_the_old_shared_login_only_writes_events(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    login = f"writer_{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr("sys.stdin", io.StringIO("a-service-password\n"))
    assert main(["--database", site.url, "db", "roles", "--login", login, "--password-stdin"]) == 0
    writer = make_engine(make_url(site.url).set(username=login, password="a-service-password"))
    try:
        write(writer, site.workspace, [draft(10)])  # the clinic product appends
        assert "permission denied" in refused(writer, "SELECT count(*) FROM activity_events")
        assert "permission denied" in refused(writer, "SELECT email FROM staff")
        assert "permission denied" in refused(writer, "UPDATE staff SET locked_until = NULL")
    finally:
        writer.dispose()
        with site.owner.begin() as connection:
            connection.exec_driver_sql(f'DROP ROLE "{login}"')


def test_staff_logins_sign_in_and_the_token_hash_is_not_the_token(site: Site) -> None:
    session = ServerAuthenticator(make_url(site.url)).sign_in(
        site.emails[Role.COMPLIANCE], PASSWORD, remember=True
    )
    assert session.identity.role is Role.COMPLIANCE
    token = session.remember_token
    assert token
    stored = scalar(site.owner, "SELECT token_hash FROM remember_tokens")
    assert bytes(stored) == hashlib.sha256(token.encode()).digest()  # type: ignore[arg-type]
    staff_workspace = scalar(site.owner, "SELECT id FROM workspaces WHERE slug = :s",
                             s=SYSTEM_WORKSPACE_SLUG)  # fmt: skip
    assert scalar(
        site.owner,
        "SELECT count(*) FROM activity_events WHERE workspace_id = :w AND action = 'staff.sign_in'",
        w=staff_workspace,
    )


# -- hostile values to every function a group may call --------------------------------------

HOSTILE_CALLS = [
    (Role.SUPPORT, "SELECT * FROM nvadmin_sign_in(NULL, NULL, NULL, true, NULL, NULL)",
     "unknown purpose"),
    (Role.SUPPORT, "SELECT nvadmin_record_access(:w, 'staff.sign_out', '{}', NULL, NULL, NULL)",
     "not recorded by staff"),
    (Role.SUPPORT, "SELECT nvadmin_record_access(:w, NULL, '{}', NULL, NULL, NULL)",
     "not recorded by staff"),
    (Role.SUPPORT, "SELECT nvadmin_record_access(:w, 'activity_log.view', 'not json', NULL, "
     "NULL, NULL)", "must be JSON"),
    (Role.SUPPORT, "SELECT nvadmin_record_access(:w, 'activity_log.view', repeat('x', 70000), "
     "NULL, NULL, NULL)", "too large"),
    (Role.SUPPORT, "SELECT nvadmin_record_access(NULL, 'activity_log.view', '{}', NULL, NULL, "
     "NULL)", "no workspace"),
    (Role.SUPPORT, "SELECT nvadmin_record_access(2147483000, 'activity_log.view', '{}', NULL, "
     "NULL, NULL)", "no workspace 2147483000"),
    (Role.SUPPORT, "SELECT nvadmin_sign_in_attempt(NULL, NULL)", "not an e-mail address"),
    (Role.SUPPORT, "SELECT nvadmin_sign_in_attempt(repeat('a', 400) || '@x.y', NULL)",
     "not an e-mail address"),
    (Role.SUPPORT, "SELECT nvadmin_set_working_hours(:w, 0, 24)", "permission denied"),
    (Role.COMPLIANCE, "SELECT nvadmin_set_working_hours(:w, NULL, 24)", "working hours"),
    (Role.COMPLIANCE, "SELECT nvadmin_set_working_hours(:w, 25, 24)", "working hours"),
    (Role.ADMIN, "SELECT nvadmin_manage_staff('add', NULL, NULL, 'support', "
     ":v, NULL)", "not an e-mail address"),
    (Role.ADMIN, "SELECT nvadmin_manage_staff('add', 'x''; DROP TABLE staff; --@a.b', NULL, "
     "'support', :v, NULL)", "not an e-mail address"),
    (Role.ADMIN, "SELECT nvadmin_manage_staff('add', 'new@n.example', NULL, 'support', "
     ":v || ''' SUPERUSER ''', NULL)", "SCRAM-SHA-256 verifier"),
    (Role.ADMIN, "SELECT nvadmin_manage_staff('add', 'new@n.example', NULL, 'superuser', "
     ":v, NULL)", "unknown role"),
    (Role.ADMIN, "SELECT nvadmin_manage_staff('reset_password', :support, NULL, NULL, NULL, "
     "NULL)", "a new password is needed"),
    (Role.ADMIN, "SELECT nvadmin_manage_staff(NULL, :support, NULL, NULL, NULL, NULL)",
     "unknown staff operation"),
]  # fmt: skip


@pytest.mark.parametrize(("role", "statement", "said"), HOSTILE_CALLS)
def test_hostile_values_are_refused_by_name(
    site: Site, role: Role, statement: str, said: str
) -> None:
    """What an insider tried with psql: each call is refused with a reason, nothing written."""
    before = scalar(site.owner, "SELECT count(*) FROM activity_events")
    engine = site.sign_in(role)
    verifier = "SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy"  # well formed, never used
    message = refused(
        engine, statement, w=site.workspace, support=site.emails[Role.SUPPORT], v=verifier
    )
    assert said in message
    after = scalar(site.owner, "SELECT count(*) FROM activity_events")
    assert after == before + 1  # only this sign-in's own event


# -- 6. reading the log is recorded; code guesses count through a rollback (0009) ---------
# Found with psql as a staff login: a signed-in session read every workspace's events with no
# log entry, and a TOTP account's codes could be tried in a loop of rolled-back sign-ins.

ALL_EVENTS = "SELECT count(*) FROM activity_events"
IN_WORKSPACE = "SELECT count(*) FROM activity_events WHERE workspace_id = :w"


def record(engine: Engine, workspace: int, resource_id: str | None = None) -> None:
    with engine.begin() as connection:
        connection.execute(
            text("SELECT nvadmin_record_access(:w, 'activity_log.view', '{}', "
                 "'activity_log', :r, 'psql')"),
            {"w": workspace, "r": resource_id or str(workspace)},
        )  # fmt: skip


def copy_rows(engine: Engine, query: str) -> int:
    """``\\copy (query) to ...`` as psql does it: the rows COPY streams."""
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cursor, cursor.copy(f"COPY ({query}) TO STDOUT") as copy:
            return sum(bytes(chunk).count(b"\n") for chunk in copy)
    finally:
        raw.close()


@pytest.mark.parametrize("role", list(Role))
def test_a_session_reads_a_workspace_only_after_recording_the_access(
    site: Site, role: Role
) -> None:
    engine = site.sign_in(role)
    views = "SELECT count(*) FROM activity_events WHERE action = 'activity_log.view'"
    before = scalar(site.owner, views)
    # a closed log is not there for the session: no rows, and no error that would answer a
    # question about it (tests/pg/test_insider_tricks.py)
    assert scalar(engine, ALL_EVENTS) == 0
    assert copy_rows(engine, "SELECT * FROM activity_events") == 0
    assert scalar(engine, IN_WORKSPACE, w=site.workspace) == 0
    assert scalar(site.owner, views) == before  # nothing was read, nothing to record

    record(engine, site.workspace)
    # that workspace's rows, and only on the record: the view names the login as its actor
    assert copy_rows(engine, f"SELECT * FROM activity_events WHERE workspace_id = "
                     f"{site.workspace}") == 6  # fmt: skip
    actor = scalar(site.owner, "SELECT actor_email FROM activity_events WHERE workspace_id = :w "
                   "ORDER BY seq DESC LIMIT 1", w=site.workspace)  # fmt: skip
    assert actor == site.emails[role]
    # every other workspace (the staff workspace's sign-ins) is still closed
    assert scalar(engine, ALL_EVENTS) == 6


def test_only_an_admin_opens_every_workspace_at_once(site: Site) -> None:
    staff_workspace = int(scalar(site.owner, "SELECT id FROM workspaces WHERE slug = :s",
                                 s=SYSTEM_WORKSPACE_SLUG))  # type: ignore[arg-type]  # fmt: skip
    support = site.sign_in(Role.SUPPORT)
    message = refused(
        support,
        "SELECT nvadmin_record_access(:w, 'activity_log.view', '{}', 'activity_log', 'all', NULL)",
        w=staff_workspace,
    )
    assert "only an admin reads every workspace" in message
    assert scalar(support, ALL_EVENTS) == 0
    admin = site.sign_in(Role.ADMIN)
    record(admin, staff_workspace, "all")
    total = scalar(site.owner, "SELECT count(*) FROM activity_events")
    assert scalar(admin, "SELECT count(*) FROM activity_events") == total


def test_an_export_of_a_workspace_never_opened_fails_instead_of_coming_out_short(
    site: Site, tmp_path: Path
) -> None:
    """The policy leaves a closed log out without a word; an export whose view was somehow
    not recorded (here: the client wrongly believes the workspace open) must not deliver a
    file with the workspace's events missing."""
    engine = site.sign_in(Role.SUPPORT)
    server_events.opened(engine).add(site.workspace)  # believed open, never recorded
    folder = tmp_path / "exports"
    folder.mkdir()
    request = ExportRequest(
        EventFilter(workspace_ids=(site.workspace,)), folder / "out.csv", "UTC", ticket="T-1"
    )
    identity = StaffIdentity(0, site.emails[Role.SUPPORT], "support", Role.SUPPORT)
    with pytest.raises(UserError, match="nothing was exported"):
        export_csv(engine, identity, request)
    assert list(folder.iterdir()) == []


def test_the_workspace_stays_open_only_to_the_session_that_recorded_it(site: Site) -> None:
    first = site.sign_in(Role.SUPPORT)
    record(first, site.workspace)
    assert scalar(first, "SELECT count(*) FROM activity_events WHERE workspace_id = :w",
                  w=site.workspace) == 6  # fmt: skip
    second = site.sign_in(Role.SUPPORT)  # the same login, another sign-in
    assert scalar(second, IN_WORKSPACE, w=site.workspace) == 0
    with first.begin() as connection:
        connection.execute(text("SELECT nvadmin_sign_out('explicit', NULL, NULL)"))
    assert scalar(first, "SELECT count(*) FROM activity_events WHERE workspace_id = :w",
                  w=site.workspace) == 0  # fmt: skip


def _wrong_code(secret: str) -> str:
    """A code no step around now accepts."""
    now = datetime.now(UTC).timestamp()
    near = {totp.code_at(secret, now + 30 * step) for step in (-2, -1, 0, 1, 2)}
    return next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in near)


def _sign_in_status(connection: Any, code: str) -> str:
    return str(
        connection.execute(
            text("SELECT status FROM nvadmin_sign_in(NULL, :c, 'sign_in', false, NULL, 'psql')"),
            {"c": code},
        ).scalar()
    )


def test_code_guesses_rolled_back_still_count_toward_the_lock(site: Site) -> None:
    raw = site.login(site.totp_email)  # the password is right; the code is being guessed
    wrong = _wrong_code(site.totp_secret)
    with raw.connect() as connection:
        for _ in range(8):  # more than max_failed_sign_ins, each undone
            transaction = connection.begin()
            assert _sign_in_status(connection, wrong) == "refused"
            transaction.rollback()
        # the right code now: refused unchecked, the guesses counted though none was kept
        code = totp.code_at(site.totp_secret, datetime.now(UTC).timestamp())
        transaction = connection.begin()
        assert _sign_in_status(connection, code) == "refused"
        transaction.rollback()
    assert scalar(raw, "SELECT count(*) FROM workspaces") == 0
    assert scalar(site.owner, "SELECT count(*) FROM staff_sessions s JOIN staff t ON "
                  "t.id = s.staff_id WHERE t.email = :e", e=site.totp_email) == 0  # fmt: skip
    # an admin's unlock gives the account its codes back
    with site.owner.begin() as connection:
        connection.execute(
            text("SELECT nvadmin_manage_staff('unlock', :e, NULL, NULL, NULL, NULL)"),
            {"e": site.totp_email},
        )
    with raw.begin() as connection:
        assert _sign_in_status(connection, code) == "ok"


def test_a_server_side_brute_force_loop_finds_no_code(site: Site) -> None:
    """The loop found with psql: each guess in a block whose failure is undone."""
    raw = site.login(site.totp_email)
    with raw.begin() as connection:
        connection.execute(
            text(
                """
                DO $$ DECLARE st text; c int := 0; BEGIN
                  WHILE c < 3000 LOOP
                    BEGIN
                      SELECT status INTO st FROM nvadmin_sign_in(
                          NULL, lpad(c::text, 6, '0'), 'sign_in', false, NULL, 'psql');
                      IF st = 'ok' THEN RAISE EXCEPTION 'found %', c USING ERRCODE = 'P0002';
                      END IF;
                      RAISE EXCEPTION 'undo' USING ERRCODE = 'P0001';
                    EXCEPTION WHEN SQLSTATE 'P0001' THEN NULL;
                    END;
                    c := c + 1;
                  END LOOP;
                END $$
                """
            )
        )
    checks = scalar(
        site.owner,
        "SELECT last_value FROM nvadmin_code_checks_"
        + str(scalar(site.owner, "SELECT id FROM staff WHERE email = :e", e=site.totp_email)),
    )
    assert checks == 3000  # every guess was counted, and past the fifth none was checked


def test_event_details_must_be_a_json_object(site: Site) -> None:
    engine = site.sign_in(Role.SUPPORT)
    for details in ("[1]", '"text"', "42", "null"):
        message = refused(
            engine,
            "SELECT nvadmin_record_access(:w, 'activity_log.export', :d, NULL, NULL, NULL)",
            w=site.workspace,
            d=details,
        )
        assert "must be a JSON object" in message, details


def test_a_second_factor_turned_on_ends_sessions_and_remember_tokens(site: Site) -> None:
    email = site.emails[Role.SUPPORT]
    session = ServerAuthenticator(make_url(site.url)).sign_in(email, PASSWORD, remember=True)
    assert session.remember_token
    with site.owner.begin() as connection:
        connection.execute(
            text("SELECT nvadmin_manage_staff('set_totp', :e, NULL, NULL, NULL, :s)"),
            {"e": email, "s": totp.new_secret()},
        )
    assert scalar(session.engine, "SELECT nvadmin_session_verified()") is False
    with site.login(email).begin() as connection:
        status = connection.execute(
            text("SELECT status FROM nvadmin_sign_in(NULL, NULL, 'sign_in', false, :t, NULL)"),
            {"t": session.remember_token},
        ).scalar()
    assert status == "code_required"  # the token no longer stands in for the new factor


def test_changing_working_hours_is_recorded_in_the_workspace_log(site: Site) -> None:
    compliance = site.sign_in(Role.COMPLIANCE)
    with compliance.begin() as connection:
        connection.execute(
            text("SELECT nvadmin_set_working_hours(:w, 0, 24)"), {"w": site.workspace}
        )
    event = (
        site.owner.connect()
        .execute(
            text("SELECT action, actor_email, details FROM activity_events WHERE workspace_id = :w "
                 "ORDER BY seq DESC LIMIT 1"),
            {"w": site.workspace},
        )
        .one()
    )  # fmt: skip
    assert event.action == "activity_log.working_hours_changed"
    assert event.actor_email == site.emails[Role.COMPLIANCE]
    assert json.loads(event.details) == {
        "work_day_start": 0, "work_day_end": 24, "was_work_day_start": 7, "was_work_day_end": 19
    }  # fmt: skip
    assert verify.verify_workspace(site.owner, command_line_operator(), "riverside").intact


def test_an_owner_that_is_not_a_superuser_lets_staff_sign_in(
    pg_server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tables' owner with CREATEROLE only, as the README sets it up: the sign-in functions
    read the connection's start time, which PostgreSQL shows that owner only once
    ``db roles`` has given it pg_read_all_stats; before, nobody could sign in."""
    tag = uuid.uuid4().hex[:8]
    owner_login, database = f"owner_{tag}", f"nvadmin_o_{tag}"
    server = make_url(pg_server_url)
    admin = make_engine(server.set(database="postgres"))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql(f"CREATE ROLE {owner_login} LOGIN CREATEROLE PASSWORD 'pw'")
        connection.exec_driver_sql(f"CREATE DATABASE {database} OWNER {owner_login}")
    with make_engine(server.set(database=database)).begin() as connection:
        connection.exec_driver_sql("CREATE EXTENSION pgcrypto")  # as a superuser installs it
    url = server.set(database=database, username=owner_login, password="pw")
    owned = url.render_as_string(hide_password=False)
    email = f"staff-{tag}@n.example"
    try:
        monkeypatch.setattr("sys.stdin", io.StringIO(""))
        assert main(["--database", owned, "db", "upgrade"]) == 0
        assert main(["--database", owned, "db", "roles"]) == 0
        owner = make_engine(url)
        accounts.add_staff(owner, command_line_operator(), email, PASSWORD, Role.SUPPORT)
        owner.dispose()
        session = ServerAuthenticator(url.set(username=None, password=None)).sign_in(
            email, PASSWORD
        )
        with session.engine.connect() as first, session.engine.connect() as second:
            assert first.execute(text("SELECT nvadmin_session_verified()")).scalar()
            assert second.execute(text("SELECT nvadmin_session_verified()")).scalar()
        # and it may end a session that sits on the staff log (pg_signal_backend), so that
        # sign-ins go on (tests/pg/test_held_logs.py)
        owner = make_engine(url)
        with owner.begin() as connection:
            connection.exec_driver_sql(
                "INSERT INTO nvadmin_meta VALUES ('security.writer_hold_seconds', '1')"
            )
            staff_workspace = connection.exec_driver_sql(
                "SELECT nvadmin_staff_workspace()"
            ).scalar()
        sitter = session.engine.connect()
        pid = sitter.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        sitter.execute(
            text("SELECT nvadmin_record_access(:w, 'staff.session_locked', '{}', NULL, NULL, "
                 "'psql')"),
            {"w": staff_workspace},
        )  # fmt: skip
        ServerAuthenticator(url.set(username=None, password=None)).sign_in(email, PASSWORD)
        assert not scalar(owner, "SELECT count(*) FROM pg_stat_activity WHERE pid = :p", p=pid)
        sitter.invalidate()
        owner.dispose()
        session.engine.dispose()
    finally:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
            connection.exec_driver_sql(f'DROP ROLE IF EXISTS "{email}"')
            connection.exec_driver_sql(f"DROP ROLE IF EXISTS {owner_login}")
        admin.dispose()
