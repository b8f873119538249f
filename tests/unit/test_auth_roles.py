"""Issue point 4: roles are enforced by the services themselves, whoever calls them."""

from __future__ import annotations

import importlib

import pytest
from sqlalchemy import Engine

from nvadmin.auth import accounts
from nvadmin.auth.accounts import command_line_operator
from nvadmin.errors import AccessDenied
from nvadmin.identity import Permission, Role, StaffIdentity

SUPPORT = StaffIdentity(11, "s@n.example", "Sam", Role.SUPPORT)
COMPLIANCE = StaffIdentity(12, "c@n.example", "Casey", Role.COMPLIANCE)
ADMIN = StaffIdentity(13, "a@n.example", "Alex", Role.ADMIN)

EXPECTED = {
    Role.SUPPORT: {Permission.BROWSE, Permission.EXPORT},
    Role.COMPLIANCE: {
        Permission.BROWSE,
        Permission.EXPORT,
        Permission.VERIFY,
        Permission.REPORTS,
        Permission.CASE_FILES,
    },
    Role.ADMIN: set(Permission),
}


@pytest.mark.parametrize("identity", [SUPPORT, COMPLIANCE, ADMIN])
def test_permission_matrix(identity: StaffIdentity) -> None:
    for permission in Permission:
        if permission in EXPECTED[identity.role]:
            identity.require(permission)
        else:
            with pytest.raises(AccessDenied):
                identity.require(permission)


@pytest.mark.parametrize("identity", [SUPPORT, COMPLIANCE])
def test_only_admins_manage_staff(engine: Engine, identity: StaffIdentity) -> None:
    accounts.add_staff(
        engine, command_line_operator(), "x@n.example", "long-enough-pass", "support"
    )
    calls = [
        lambda: accounts.list_staff(engine, identity),
        lambda: accounts.add_staff(engine, identity, "y@n.example", "long-enough-pass", "admin"),
        lambda: accounts.disable_staff(engine, identity, "x@n.example"),
        lambda: accounts.enable_staff(engine, identity, "x@n.example"),
        lambda: accounts.unlock_staff(engine, identity, "x@n.example"),
        lambda: accounts.reset_password(engine, identity, "x@n.example", "another-long-pass"),
        lambda: accounts.change_role(engine, identity, "x@n.example", "admin"),
        lambda: accounts.set_totp(engine, identity, "x@n.example", True),
    ]
    for call in calls:
        with pytest.raises(AccessDenied):
            call()
    # nothing changed: still one support account, not disabled
    (only,) = accounts.list_staff(engine, ADMIN)
    assert only.email == "x@n.example" and only.role is Role.SUPPORT and not only.disabled


def test_admin_manages_staff(engine: Engine) -> None:
    accounts.add_staff(engine, ADMIN, "y@n.example", "long-enough-pass", "support")
    assert accounts.disable_staff(engine, ADMIN, "y@n.example").disabled


def _service(module: str, name: str):  # type: ignore[no-untyped-def]
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        pytest.skip(f"{module}.{name} is not available in this build")


def test_services_enforce_roles(engine: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Calls the browse, export, verify and report services directly with each role."""
    from nvadmin.query.filters import EventFilter
    from tests.factories import add_workspace, draft, write

    workspace = add_workspace(engine)
    write(engine, workspace, [draft(0, patient_id="P-1"), draft(1)])
    one = EventFilter(workspace_ids=(workspace,))
    everything = EventFilter()

    list_workspaces = _service("nvadmin.query.workspaces", "list_workspaces")
    browse = _service("nvadmin.query.paging", "authorize")
    count_matching = _service("nvadmin.export.service", "count_matching")
    export_authorize = _service("nvadmin.export.service", "authorize")
    export_request = _service("nvadmin.export.service", "ExportRequest")
    verify_workspace = _service("nvadmin.audit.verify", "verify_workspace")
    patient_report = _service("nvadmin.analysis.reports", "patient_access_report")

    def allowed(call) -> bool:  # type: ignore[no-untyped-def]
        try:
            call()
        except AccessDenied:
            return False
        return True

    def report(identity: StaffIdentity):  # type: ignore[no-untyped-def]
        return lambda: patient_report(
            engine, identity, workspace_id=workspace, patient_id="P-1", start=None, end=None
        )

    matrix = {}
    for who in (SUPPORT, COMPLIANCE, ADMIN):
        request = export_request(one, tmp_path / "out.csv", "UTC", ticket="T-1")
        matrix[who.role] = {
            "list workspaces": allowed(lambda w=who: list_workspaces(engine, w)),
            "browse one": allowed(lambda w=who: browse(w, one)),
            "browse all": allowed(lambda w=who: browse(w, everything)),
            "export one": allowed(lambda w=who: count_matching(engine, w, one)),
            "export all": allowed(lambda w=who: count_matching(engine, w, everything)),
            "export request": allowed(lambda w=who, r=request: export_authorize(w, r)),
            "verify": allowed(lambda w=who: verify_workspace(engine, w, workspace)),
            "patient report": allowed(report(who)),
        }
    assert matrix[Role.SUPPORT] == {
        "list workspaces": True,
        "browse one": True,
        "browse all": False,
        "export one": True,
        "export all": False,
        "export request": True,
        "verify": False,
        "patient report": False,
    }
    assert matrix[Role.COMPLIANCE] == {
        **matrix[Role.SUPPORT],
        "verify": True,
        "patient report": True,
    }
    assert all(matrix[Role.ADMIN].values())

    # Support must name the ticket the export answers.
    from nvadmin.errors import UserError

    no_ticket = export_request(one, tmp_path / "out.csv", "UTC")
    with pytest.raises(UserError, match="ticket"):
        export_authorize(SUPPORT, no_ticket)
