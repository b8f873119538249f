"""Export requests on PostgreSQL, tried as an attacker with psql and a staff password would.

Staff logins may read requests in a signed-in session, but every change goes through
``nvadmin_receive_export_request`` / ``nvadmin_move_export_request``, which name the actor
from the login, enforce the transitions and the admin-only override, and seal the event.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from nvadmin.audit import verify
from nvadmin.auth.accounts import command_line_operator
from nvadmin.export import requests
from nvadmin.export.requests import Operation, RequestDraft, Status
from nvadmin.identity import Role, StaffIdentity
from tests.factories import add_member
from tests.pg.test_security_boundary import Site, refused, scalar, site

__all__ = ["site"]  # the fixture, shared with the other boundary tests

pytestmark = pytest.mark.pg


def add(site: Site, requester: str = "olga@riverside.example", ticket: str = "SUP-7") -> int:
    return requests.add_request(
        site.owner,
        command_line_operator(),
        RequestDraft(
            workspace="riverside",
            first_day=date(2025, 3, 1),
            last_day=date(2025, 3, 31),
            requester_email=requester,
            ticket=ticket,
        ),
    )


def identity(site: Site, role: Role) -> StaffIdentity:
    return StaffIdentity(0, site.emails[role], site.emails[role], role)


@pytest.fixture
def request_id(site: Site) -> int:
    add_member(site.owner, site.workspace, "olga@riverside.example", "Olga Owens", "admin")
    with site.owner.begin() as connection:
        connection.execute(text("UPDATE team_members SET created_at = '2024-01-01'"))
    return add(site)


MOVE = "SELECT nvadmin_move_export_request(:i, :o, :r, :e, NULL)"


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE export_requests SET status = 'delivered', delivered_at = now() WHERE id = :i",
        "UPDATE export_requests SET verification = 'admin' WHERE id = :i",
        "DELETE FROM export_requests WHERE id = :i",
        "INSERT INTO export_requests SELECT * FROM export_requests WHERE id = :i",
        # a forged "delivered" event straight into the log, or through the sealing function
        "INSERT INTO activity_events (workspace_id, seq, occurred_at, actor_type, actor_name, "
        "action, category, outcome, prev_hash, hash) SELECT workspace_id, 999, now(), 'staff', "
        "'x', 'activity_log.export_request.delivered', 'activity_log_access', 'success', "
        "'\\x00', '\\x00' FROM export_requests WHERE id = :i",
        "SELECT nvadmin_seal(1, 'activity_log.export_request.delivered', 'success', NULL, NULL, "
        "'x@y.z', 'x', 'admin', 'export_request', CAST(:i AS text), NULL, NULL, '{}')",
        "SELECT nvadmin_export_request_event(r, NULL::staff, "
        "'activity_log.export_request.delivered', '{}', NULL) FROM export_requests r "
        "WHERE r.id = :i",
    ],
)
def test_staff_cannot_write_requests_or_forge_their_events(
    site: Site, request_id: int, role: Role, statement: str
) -> None:
    engine = site.sign_in(role)
    assert scalar(engine, "SELECT status FROM export_requests WHERE id = :i", i=request_id) == (
        "verified"
    )  # staff read the queue in a signed-in session
    assert "permission denied" in refused(engine, statement, i=request_id)
    assert scalar(site.owner, "SELECT status FROM export_requests WHERE id = :i", i=request_id) == (
        "verified"
    )


def test_a_login_without_a_session_reads_nothing_and_changes_nothing(
    site: Site, request_id: int
) -> None:
    raw = site.login(site.emails[Role.ADMIN])  # password right, never signed in
    assert scalar(raw, "SELECT count(*) FROM export_requests") == 0
    assert "sign in first" in refused(raw, MOVE, i=request_id, o="rejected", r="x", e=None)


def test_the_server_enforces_transitions_and_the_admin_override(
    site: Site, request_id: int
) -> None:
    support = site.sign_in(Role.SUPPORT)
    assert "cannot be delivered" in refused(
        support, MOVE, i=request_id, o="delivered", r=None, e=None
    )
    assert "not a request operation" in refused(
        support, MOVE, i=request_id, o="verified", r=None, e=None
    )
    forged = json.dumps(
        {
            "export_path": "/tmp/x.csv",
            "export_sha256": "a" * 64,
            "manifest_path": "/tmp/x.csv.manifest.json",
            "manifest_sha256": "b" * 64,
            "rows": 5,
            "description": "nothing was exported",
        }
    )
    assert "no recorded export of ticket SUP-7" in refused(
        support, MOVE, i=request_id, o="exported", r=None, e=forged
    )
    # a request whose requester is not a clinic admin waits for an admin's override
    waiting = add(site, requester="stranger@elsewhere.example", ticket="SUP-8")
    assert "only a staff admin" in refused(
        support, MOVE, i=waiting, o="overridden", r="trust me", e=None
    )
    assert "reason is needed" in refused(
        site.sign_in(Role.ADMIN), MOVE, i=waiting, o="overridden", r=" ", e=None
    )
    admin = site.sign_in(Role.ADMIN)
    view = requests.move(
        admin, identity(site, Role.ADMIN), waiting, Operation.OVERRIDE, "owner confirmed"
    )
    assert view.status is Status.VERIFIED
    assert view.override_by == site.emails[Role.ADMIN]
    with site.owner.connect() as connection:
        event = connection.execute(
            text(
                "SELECT actor_email, actor_role, details FROM activity_events "
                "WHERE action = 'activity_log.export_request.overridden'"
            )
        ).one()
    # the actor is the login, whatever the client claims
    assert (event.actor_email, event.actor_role) == (site.emails[Role.ADMIN], "admin")
    assert json.loads(event.details)["reason"] == "owner confirmed"
    report = verify.verify_workspace(site.owner, command_line_operator(), "riverside")
    assert report.intact, report.lines()


def test_support_receives_fulfils_and_delivers_as_its_own_login(
    site: Site, request_id: int, tmp_path: Path
) -> None:
    support = site.sign_in(Role.SUPPORT)
    who = identity(site, Role.SUPPORT)
    view = requests.fulfil(support, who, request_id, tmp_path)
    assert view.status is Status.EXPORTED
    view = requests.move(support, who, request_id, Operation.DELIVER)
    assert view.status is Status.DELIVERED
    assert view.delivered_at is not None and view.delivered_at <= datetime.now(UTC)
    with site.owner.connect() as connection:
        actors = connection.execute(
            text(
                "SELECT action, actor_email FROM activity_events WHERE action LIKE "
                "'activity_log.export%' ORDER BY seq"
            )
        ).all()
    assert [a for a, _ in actors] == [
        "activity_log.export_request.received",
        "activity_log.export_request.verified",
        "activity_log.export",
        "activity_log.export_request.exported",
        "activity_log.export_request.delivered",
    ]
    assert {e for _, e in actors[2:]} == {site.emails[Role.SUPPORT]}
    report = verify.verify_workspace(site.owner, command_line_operator(), "riverside")
    assert report.intact, report.lines()


def test_hostile_arguments_are_refused_by_name(site: Site) -> None:
    support = site.sign_in(Role.SUPPORT)
    receive = (
        "SELECT nvadmin_receive_export_request(:w, :t, :f, :l, :z, :filters, :e, NULL, '', '', "
        ":received, :due, NULL, NULL)"
    )
    good = {
        "w": site.workspace,
        "t": "T-1",
        "f": date(2025, 3, 1),
        "l": date(2025, 3, 2),
        "z": "America/Chicago",
        "filters": None,
        "e": "olga@riverside.example",
        "received": datetime.now(UTC),
        "due": datetime.now(UTC),
    }
    for change, message in (
        ({"t": "a\nb"}, "ticket id is needed"),
        ({"f": date(2025, 4, 1)}, "impossible range"),
        ({"z": "Mars/Olympus"}, "unknown time zone"),
        ({"filters": '{"sql": "1=1"}'}, "filters must be"),
        ({"filters": "not json"}, "filters must be"),
        ({"e": "nobody"}, "not an e-mail address"),
        ({"received": datetime(2001, 1, 1, tzinfo=UTC)}, "receipt time"),
        ({"due": datetime(2001, 1, 1, tzinfo=UTC)}, "due time"),
        ({"w": 999999}, "no workspace"),
    ):
        assert message in refused(support, receive, **{**good, **change}), change
    assert scalar(site.owner, "SELECT count(*) FROM export_requests") == 0


def test_db_roles_lists_why_staff_may_use_requests() -> None:
    from nvadmin.auth import db_roles

    listed = db_roles.privileges_by_role()
    for group in db_roles.GROUPS.values():
        assert any("Requests queue" in why for why in listed[group])
        assert any("export requests" in why for why in listed[group])
    assert not any("export_requests" in why for why in listed[db_roles.GATE])


def test_the_server_refuses_a_package_hash_that_is_not_one(
    site: Site, request_id: int, tmp_path: Path
) -> None:
    support = site.sign_in(Role.SUPPORT)
    who = identity(site, Role.SUPPORT)
    requests.fulfil(support, who, request_id, tmp_path)
    good = {"package_path": str(tmp_path / "p.zip"), "package_sha256": "a" * 64}
    for change in (
        {"package_sha256": "A" * 64},
        {"package_sha256": "a" * 63},
        {"package_sha256": "a" * 64 + "\n"},
        {"package_sha256": "'; DROP TABLE export_requests; --"},
        {"package_sha256": None},
        {"package_path": ""},
        {"status": "rejected"},
    ):
        forged = json.dumps({**good, **change})
        assert "64 hexadecimal characters" in refused(
            support, MOVE, i=request_id, o="delivered", r=None, e=forged
        ), change
    assert "64 hexadecimal characters" in refused(
        support, MOVE, i=request_id, o="delivered", r=None, e="not json"
    )
    assert scalar(site.owner, "SELECT status FROM export_requests") == "exported"
    view = requests.move(
        support, who, request_id, Operation.DELIVER, delivery=requests.Delivery(**good)
    )
    assert (view.status, view.package_sha256) == (Status.DELIVERED, "a" * 64)
    with site.owner.connect() as connection:
        details = connection.execute(
            text(
                "SELECT details FROM activity_events "
                "WHERE action = 'activity_log.export_request.delivered'"
            )
        ).scalar_one()
    assert json.loads(details)["package_sha256"] == "a" * 64
    report = verify.verify_workspace(site.owner, command_line_operator(), "riverside")
    assert report.intact, report.lines()
