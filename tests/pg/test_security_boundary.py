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
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from nvadmin.__main__ import main
from nvadmin.audit import verify
from nvadmin.audit.access_log import record_view
from nvadmin.auth import accounts, db_roles, totp
from nvadmin.auth.accounts import command_line_operator
from nvadmin.auth.server_signin import ServerAuthenticator
from nvadmin.auth.signin import SecondFactorRequired, SignInRefused
from nvadmin.db.engine import make_engine
from nvadmin.db.models import SYSTEM_WORKSPACE_SLUG
from nvadmin.identity import Role
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
    assert scalar(raw, "SELECT count(*) FROM activity_events") > 0  # type: ignore[operator]
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
