"""Workspaces and team members as the browser's pickers and autocompletion see them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, or_, select

from nvadmin.audit.query import escape_like
from nvadmin.auth.roles import Permission, StaffIdentity
from nvadmin.db.models import TeamMember, Workspace
from nvadmin.errors import UserError


@dataclass(frozen=True, slots=True)
class WorkspaceInfo:
    id: int
    slug: str
    name: str
    timezone: str
    is_system: bool = False

    def matches(self, text: str) -> bool:
        """Type-to-search in the picker: any part of the name or the slug, any case."""
        needle = text.strip().casefold()
        return not needle or needle in self.name.casefold() or needle in self.slug.casefold()

    @property
    def label(self) -> str:
        return f"{self.name} ({self.slug})"


@dataclass(frozen=True, slots=True)
class MemberInfo:
    email: str
    display_name: str
    role: str

    @property
    def label(self) -> str:
        return f"{self.display_name} <{self.email}>"


def list_workspaces(engine: Engine, identity: StaffIdentity) -> list[WorkspaceInfo]:
    """Every workspace the staff member may browse, clinics by name, the staff one last."""
    identity.require(Permission.BROWSE)
    statement = select(
        Workspace.id, Workspace.slug, Workspace.name, Workspace.timezone, Workspace.is_system
    ).order_by(Workspace.is_system, Workspace.name, Workspace.id)
    with engine.connect() as connection:
        return [WorkspaceInfo(*row) for row in connection.execute(statement)]


def search_workspaces(workspaces: list[WorkspaceInfo], text: str) -> list[WorkspaceInfo]:
    return [w for w in workspaces if w.matches(text)]


def get_workspaces(
    engine: Engine, identity: StaffIdentity, workspace_ids: tuple[int, ...]
) -> list[WorkspaceInfo]:
    """The named workspaces; a clear error if one of them no longer exists (saved searches)."""
    identity.require(Permission.BROWSE)
    if not workspace_ids:
        identity.require(Permission.ALL_WORKSPACES)
        return []
    statement = select(
        Workspace.id, Workspace.slug, Workspace.name, Workspace.timezone, Workspace.is_system
    ).where(Workspace.id.in_(workspace_ids))
    with engine.connect() as connection:
        found = {row[0]: WorkspaceInfo(*row) for row in connection.execute(statement)}
    missing = [w for w in workspace_ids if w not in found]
    if missing:
        raise UserError(
            "workspace " + ", ".join(str(m) for m in missing) + " does not exist in this database"
        )
    return [found[w] for w in workspace_ids]


def member_suggestions(
    engine: Engine, workspace_ids: tuple[int, ...], text: str = "", limit: int = 50
) -> list[MemberInfo]:
    """Team members whose e-mail or name contains ``text``, for the team member filter."""
    statement = select(TeamMember.email, TeamMember.display_name, TeamMember.role)
    if workspace_ids:
        statement = statement.where(TeamMember.workspace_id.in_(workspace_ids))
    if text.strip():
        pattern = f"%{escape_like(text.strip())}%"
        statement = statement.where(
            or_(
                TeamMember.email.ilike(pattern, escape="\\"),
                TeamMember.display_name.ilike(pattern, escape="\\"),
            )
        )
    statement = statement.distinct().order_by(TeamMember.email).limit(limit)
    with engine.connect() as connection:
        return [MemberInfo(*row) for row in connection.execute(statement)]
