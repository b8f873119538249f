"""D2: the event-writing service role appends events and can do nothing else; staff logins
manage what their group allows (the attacks themselves: test_security_boundary.py)."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError

from nvadmin.__main__ import main
from nvadmin.audit.chain import ChainWriter
from nvadmin.auth import accounts, db_roles
from nvadmin.auth.accounts import command_line_operator
from nvadmin.auth.signin import Authenticator
from nvadmin.db.engine import make_engine
from nvadmin.errors import AccessDenied, UserError
from nvadmin.identity import Role
from tests.factories import add_workspace, draft, write

pytestmark = pytest.mark.pg

PASSWORD = "viewer-sign-in-pass"


def login_engine(owner_url: str, login: str) -> Engine:
    return make_engine(make_url(owner_url).set(username=login, password="a-database-password"))


@pytest.fixture
def owner(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture
def viewer(pg_url: str, owner: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """A login made by the real command: ``nvadmin db roles --login ... --password-stdin``."""
    login = f"viewer_{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr("sys.stdin", io.StringIO("a-database-password\n"))
    assert main(["--database", pg_url, "db", "roles", "--login", login, "--password-stdin"]) == 0
    engine = login_engine(pg_url, login)
    yield engine
    engine.dispose()


def refused(engine: Engine, statement: str) -> None:
    with (
        pytest.raises(ProgrammingError, match=r"permission denied|must be owner"),
        engine.begin() as c,
    ):
        c.execute(text(statement))


def test_service_role_appends_but_reads_and_changes_nothing(owner: Engine, viewer: Engine) -> None:
    workspace = add_workspace(owner)
    write(owner, workspace, [draft(0), draft(1)])
    refused(viewer, "SELECT count(*) FROM activity_events")
    refused(viewer, "SELECT count(*) FROM staff")

    # the product's events: appended through the chain writer, also into a month whose
    # partition does not exist yet (created with the owner's rights by the partition function,
    # within its window: up to three months ahead)
    now = datetime.now(UTC)
    later = datetime(now.year + (now.month + 1) // 12, (now.month + 1) % 12 + 1, 1, 12, tzinfo=UTC)
    part = f"activity_events_{later:%Y_%m}"
    assert ChainWriter(viewer).append(workspace, [draft(occurred_at=later), draft(2)]) == [3, 4]
    with owner.connect() as connection:
        assert connection.execute(text(f"SELECT to_regclass('{part}') IS NOT NULL")).scalar()
    # ...and a workspace's first event creates its chain head
    other = add_workspace(owner, slug="lakeside", name="Lakeside")
    assert ChainWriter(viewer).append_one(other, draft(0)) == 1

    for statement in (
        "UPDATE activity_events SET actor_name = 'x'",
        "DELETE FROM activity_events",
        "TRUNCATE activity_events",
        f"TRUNCATE {part}",
        f"DELETE FROM {part}",
        "DELETE FROM chain_heads",
        f"UPDATE chain_heads SET workspace_id = {other} WHERE workspace_id = {workspace}",
        "INSERT INTO staff (email, display_name, role, password_hash, disabled, failed_attempts)"
        " VALUES ('x@y.z', 'x', 'admin', 'h', false, 0)",
        "UPDATE staff SET role = 'admin'",
        "UPDATE staff SET password_hash = 'h'",
        "DELETE FROM staff",
        "INSERT INTO nvadmin_meta (key, value) VALUES ('demo', '1')",
        "UPDATE workspaces SET name = 'x'",
        "DELETE FROM remember_tokens",
        "CREATE TABLE sneaky (id int)",
        "DROP TRIGGER activity_events_append_only ON activity_events",
    ):
        refused(viewer, statement)


def test_admin_login_manages_staff_and_support_cannot(pg_url: str, owner: Engine) -> None:
    accounts.add_staff(owner, command_line_operator(), "boss@n.example", PASSWORD, "admin")
    accounts.add_staff(owner, command_line_operator(), "ana@n.example", PASSWORD, "support")
    signed_in = Authenticator(owner).sign_in("boss@n.example", PASSWORD)
    support = Authenticator(owner).sign_in("ana@n.example", PASSWORD)
    assert signed_in.engine is not None and support.engine is not None
    admin, engine = signed_in.identity, signed_in.engine
    try:
        accounts.add_staff(engine, admin, "new@n.example", PASSWORD, "support")
        accounts.reset_password(engine, admin, "new@n.example", "another-long-pass")
        accounts.change_role(engine, admin, "new@n.example", "compliance")
        accounts.disable_staff(engine, admin, "new@n.example")
        listed = {a.email: a for a in accounts.list_staff(engine, admin)}
        assert listed["new@n.example"].status == "disabled"
        assert listed["new@n.example"].role is Role.COMPLIANCE
        with pytest.raises(AccessDenied):
            accounts.add_staff(support.engine, support.identity, "x@n.example", PASSWORD, "admin")
        # the server refuses it too, whatever the client claims to be
        with pytest.raises(UserError, match="permission denied"):
            accounts.add_staff(support.engine, admin, "x@n.example", PASSWORD, "admin")
        refused(engine, "UPDATE activity_events SET actor_name = 'x'")
        refused(engine, "DELETE FROM staff")
    finally:
        engine.dispose()
        support.engine.dispose()


def test_warning_when_connected_as_superuser_or_owner(
    pg_url: str, owner: Engine, viewer: Engine
) -> None:
    as_owner = db_roles.connection_privileges(owner)
    assert as_owner is not None and as_owner.superuser
    assert as_owner.warning and "superuser" in as_owner.warning
    as_viewer = db_roles.connection_privileges(viewer)
    assert as_viewer is not None and not as_viewer.superuser and not as_viewer.owns_tables
    assert as_viewer.warning is None
    # a non-superuser who owns the tables is warned too
    facts = db_roles.ConnectionPrivileges(user="app", superuser=False, owns_tables=True)
    assert facts.warning and "owner" in facts.warning


def test_roles_command_is_repeatable(pg_url: str, owner: Engine, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["--database", pg_url, "db", "roles", "--print"]) == 0
    assert main(["--database", pg_url, "db", "roles"]) == 0
    out = capsys.readouterr().out
    assert "GRANT INSERT ON" in out and "UPDATE, DELETE" not in out
    # each group's privileges, in words
    for role in (*db_roles.GROUPS.values(), db_roles.GATE, db_roles.VIEWER):
        assert f"\n{role}:\n" in out
    admin_part = out.split("nvadmin_admin:\n")[1].split("nvadmin_gate:")[0]
    support_part = out.split("nvadmin_support:\n")[1].split("nvadmin_compliance:")[0]
    assert "add, disable, enable" in admin_part and "add, disable, enable" not in support_part


def test_a_login_password_never_reaches_the_server_in_clear(owner: Engine, pg_url: str) -> None:
    """Only a SCRAM verifier computed on this side is sent (so a statement log shows no
    password), and it is the verifier of exactly that password."""
    import base64
    import hashlib
    import hmac

    from sqlalchemy import event

    secret = "Plain-text must not travel 7!"
    sent: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        sent.append(f"{statement} {parameters!r}")

    event.listen(owner, "before_cursor_execute", record)
    login = f"scram_{uuid.uuid4().hex[:8]}"
    try:
        db_roles.create_roles(owner, login, secret)
    finally:
        event.remove(owner, "before_cursor_execute", record)
    assert sent and not any(secret in s for s in sent)
    with owner.connect() as c:
        stored = c.execute(
            text("SELECT rolpassword FROM pg_authid WHERE rolname = :r"), {"r": login}
        ).scalar_one()
    scheme, rest = stored.split("$", 1)
    iterations_salt, keys = rest.split("$")
    iterations, salt = iterations_salt.split(":")
    stored_key, server_key = (base64.b64decode(k) for k in keys.split(":"))
    salted = hashlib.pbkdf2_hmac("sha256", secret.encode(), base64.b64decode(salt), int(iterations))
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    assert scheme == "SCRAM-SHA-256"
    assert hashlib.sha256(client_key).digest() == stored_key
    assert hmac.new(salted, b"Server Key", "sha256").digest() == server_key


def test_compliance_login_verifies_a_chain(owner: Engine) -> None:
    """Verification streams by COPY inside a savepoint: all within a staff login's rights."""
    from nvadmin.audit.verify import verify_workspace

    workspace = add_workspace(owner)
    write(owner, workspace, [draft(i) for i in range(30)])
    accounts.add_staff(owner, command_line_operator(), "casey@n.example", PASSWORD, "compliance")
    reviewer = Authenticator(owner).sign_in("casey@n.example", PASSWORD)
    assert reviewer.engine is not None
    result = verify_workspace(reviewer.engine, reviewer.identity, workspace)
    reviewer.engine.dispose()
    # the 30 events, and the view the reviewer recorded to open the workspace's log
    assert result.intact and result.events_verified == 31
    with owner.connect() as connection:
        last = connection.execute(
            text("SELECT action, actor_email, details FROM activity_events "
                 "WHERE workspace_id = :w ORDER BY seq DESC LIMIT 1"),
            {"w": workspace},
        ).one()  # fmt: skip
    assert last[:2] == ("activity_log.view", "casey@n.example")
    assert '"purpose":"verify"' in last.details
