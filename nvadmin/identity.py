"""Staff roles and what each may do. Checked in the service layer, not only in the UI."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from nvadmin.errors import AccessDenied


class Role(StrEnum):
    SUPPORT = "support"
    COMPLIANCE = "compliance"
    ADMIN = "admin"


class Permission(StrEnum):
    BROWSE = "browse"
    EXPORT = "export"
    VERIFY = "verify"
    REPORTS = "reports"
    CASE_FILES = "case_files"
    ALL_WORKSPACES = "all_workspaces"
    MANAGE_STAFF = "manage_staff"


_SUPPORT = frozenset({Permission.BROWSE, Permission.EXPORT})
_COMPLIANCE = _SUPPORT | {Permission.VERIFY, Permission.REPORTS, Permission.CASE_FILES}
_ADMIN = _COMPLIANCE | {Permission.ALL_WORKSPACES, Permission.MANAGE_STAFF}

PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.SUPPORT: _SUPPORT,
    Role.COMPLIANCE: frozenset(_COMPLIANCE),
    Role.ADMIN: frozenset(_ADMIN),
}


@dataclass(frozen=True, slots=True)
class StaffIdentity:
    """Who is signed in. Every service call that reads or writes PHI takes one."""

    id: int
    email: str
    display_name: str
    role: Role

    def can(self, permission: Permission) -> bool:
        return permission in PERMISSIONS[self.role]

    def require(self, permission: Permission) -> None:
        if not self.can(permission):
            action = permission.replace("_", " ")
            raise AccessDenied(f"{self.display_name} ({self.role}) is not allowed to {action}")
