"""The workspace repository: every part of nvadmin reads workspaces here, in one shape.

:class:`WorkspaceInfo` is that shape (identity, name, time zone, working hours, creation);
the lookups below return it, found by slug or id with one clear error when there is no such
workspace (:class:`UnknownWorkspace`). They take an engine, or an open connection when the
caller reads in a snapshot of its own (verification, flags). Workspace *changes* stay with the
feature that makes them (working hours: the flags; creation: the demo seeder).

Also here: team members as the browser's autocompletion sees them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, Select, or_, select

from nvadmin.db.models import TeamMember, Workspace
from nvadmin.errors import UserError
from nvadmin.identity import Permission, StaffIdentity
from nvadmin.query.filters import escape_like

if TYPE_CHECKING:
    from typing import TypeAlias

    _Query: TypeAlias = Select[int, str, str, str, bool, int, int, datetime]

# An unknown slug is answered with the slugs there are, up to this many.
KNOWN_SLUGS_SHOWN = 10


class UnknownWorkspace(UserError):
    """No workspace with that slug or id in this database."""


@dataclass(frozen=True, slots=True)
class WorkspaceInfo:
    id: int
    slug: str
    name: str
    timezone: str  # IANA name: the zone of the workspace's days and working hours
    is_system: bool = False  # the staff workspace, holding nvadmin's own events
    # Working hours in the workspace's zone, [start, end) in whole hours (the after-hours flag).
    work_day_start: int = 7
    work_day_end: int = 19
    created_at: datetime | None = None

    def matches(self, text: str) -> bool:
        """Type-to-search in the picker: any part of the name or the slug, any case."""
        needle = text.strip().casefold()
        return not needle or needle in self.name.casefold() or needle in self.slug.casefold()

    @property
    def label(self) -> str:
        return f"{self.name} ({self.slug})"

    def hours_text(self) -> str:
        return f"{self.work_day_start:02d}:00-{self.work_day_end:02d}:00 {self.timezone}"


_COLUMNS = (
    Workspace.id,
    Workspace.slug,
    Workspace.name,
    Workspace.timezone,
    Workspace.is_system,
    Workspace.work_day_start,
    Workspace.work_day_end,
    Workspace.created_at,
)
# Clinics by name, the staff workspace last: the order every list shows.
_LISTED = (Workspace.is_system, Workspace.name, Workspace.id)


def _statement() -> _Query:
    return select(*_COLUMNS)


@contextmanager
def _connected(source: Engine | Connection) -> Iterator[Connection]:
    if isinstance(source, Connection):
        yield source
    else:
        with source.connect() as connection:
            yield connection


def _read(source: Engine | Connection, statement: _Query) -> list[WorkspaceInfo]:
    with _connected(source) as connection:
        return [
            WorkspaceInfo(
                id=int(row.id),
                slug=str(row.slug),
                name=str(row.name),
                timezone=str(row.timezone),
                is_system=bool(row.is_system),
                work_day_start=int(row.work_day_start),
                work_day_end=int(row.work_day_end),
                created_at=row.created_at,
            )
            for row in connection.execute(statement)
        ]


# -- lookups ----------------------------------------------------------------------------------


def all_workspaces(
    source: Engine | Connection, *, include_staff: bool = True
) -> list[WorkspaceInfo]:
    """Every workspace, clinics by name, the staff workspace last (or left out)."""
    statement = _statement().order_by(*_LISTED)
    if not include_staff:
        statement = statement.where(Workspace.is_system.is_(False))
    return _read(source, statement)


def by_slug(source: Engine | Connection, slug: str) -> WorkspaceInfo:
    """The workspace with this slug, or :class:`UnknownWorkspace` naming the slugs there are."""
    found = _read(source, _statement().where(Workspace.slug == slug))
    if found:
        return found[0]
    with _connected(source) as connection:
        known = list(
            connection.execute(
                select(Workspace.slug)
                .where(Workspace.is_system.is_(False))
                .order_by(Workspace.slug)
                .limit(KNOWN_SLUGS_SHOWN + 1)
            ).scalars()
        )
    if not known:
        raise UnknownWorkspace(f"no workspace {slug!r}: this database has no workspaces yet")
    shown = ", ".join(known[:KNOWN_SLUGS_SHOWN]) + (", …" if len(known) > KNOWN_SLUGS_SHOWN else "")
    raise UnknownWorkspace(f"no workspace {slug!r} in this database (workspaces: {shown})")


def by_id(source: Engine | Connection, workspace_id: int) -> WorkspaceInfo:
    return by_ids(source, (workspace_id,))[0]


def by_ids(source: Engine | Connection, workspace_ids: Iterable[int]) -> list[WorkspaceInfo]:
    """The named workspaces in the order given (each once); :class:`UnknownWorkspace` naming
    any that does not exist (a saved search or a filter may outlive a workspace)."""
    wanted = list(dict.fromkeys(workspace_ids))
    if not wanted:
        return []
    found = {w.id: w for w in _read(source, _statement().where(Workspace.id.in_(wanted)))}
    missing = [str(w) for w in wanted if w not in found]
    if missing:
        ids = ", ".join(missing)
        raise UnknownWorkspace(
            f"workspace {ids} does not exist in this database"
            if len(missing) == 1
            else f"workspaces {ids} do not exist in this database"
        )
    return [found[w] for w in wanted]


def find(source: Engine | Connection, slug_or_id: str | int) -> WorkspaceInfo:
    """By id when given a number, else by slug."""
    if isinstance(slug_or_id, int):
        return by_id(source, slug_or_id)
    return by_slug(source, slug_or_id)


def in_scope(source: Engine | Connection, workspace_ids: Iterable[int]) -> list[WorkspaceInfo]:
    """The workspaces a filter covers, by name: the ones it names that exist, or (naming none)
    every clinic but not the staff workspace."""
    wanted = tuple(dict.fromkeys(workspace_ids))
    statement = _statement().order_by(Workspace.name, Workspace.id)
    if wanted:
        statement = statement.where(Workspace.id.in_(wanted))
    else:
        statement = statement.where(Workspace.is_system.is_(False))
    return _read(source, statement)


# -- the browser's view: what the signed-in staff member may see -------------------------------


def list_workspaces(engine: Engine, identity: StaffIdentity) -> list[WorkspaceInfo]:
    """Every workspace the staff member may browse, clinics by name, the staff one last."""
    identity.require(Permission.BROWSE)
    return all_workspaces(engine)


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
    return by_ids(engine, workspace_ids)


# -- team members -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemberInfo:
    email: str
    display_name: str
    role: str

    @property
    def label(self) -> str:
        return f"{self.display_name} <{self.email}>"


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
