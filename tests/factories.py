"""Small builders for test data, written through the real chain writer."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from nvadmin.audit.chain import ChainWriter, EventDraft
from nvadmin.auth import accounts
from nvadmin.auth.signin import Authenticator
from nvadmin.context import Context
from nvadmin.db.models import TeamMember, Workspace
from nvadmin.identity import StaffIdentity

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def add_workspace(
    engine: Engine,
    slug: str = "riverside",
    name: str = "Riverside Family Clinic",
    timezone: str = "America/Chicago",
) -> int:
    with Session(engine) as session, session.begin():
        workspace = Workspace(
            slug=slug,
            name=name,
            timezone=timezone,
            work_day_start=7,
            work_day_end=19,
            is_system=False,
        )
        session.add(workspace)
        session.flush()
        return workspace.id


def add_member(engine: Engine, workspace_id: int, email: str, name: str, role: str) -> int:
    with Session(engine) as session, session.begin():
        member = TeamMember(
            workspace_id=workspace_id, email=email, display_name=name, role=role, active=True
        )
        session.add(member)
        session.flush()
        return member.id


def draft(
    minutes: float = 0,
    action: str = "chart.view",
    email: str = "ana@riverside.example",
    name: str = "Ana Ruiz",
    **fields: object,
) -> EventDraft:
    return EventDraft(
        occurred_at=fields.pop("occurred_at", T0 + timedelta(minutes=minutes)),  # type: ignore[arg-type]
        action=action,
        actor_type=fields.pop("actor_type", "member"),  # type: ignore[arg-type]
        actor_name=name,
        actor_email=email,
        **fields,  # type: ignore[arg-type]
    )


def write(engine: Engine, workspace_id: int, drafts: Sequence[EventDraft]) -> list[int]:
    return ChainWriter(engine).append(workspace_id, drafts)


STAFF_PASSWORD = "signed-in-as-own-login"


def sign_in_as(
    context: Context, identity: StaffIdentity, password: str = STAFF_PASSWORD
) -> StaffIdentity:
    """On PostgreSQL, become ``identity``'s role through a staff login of its own, as a real
    desktop does (the context then reads and writes as that login); on SQLite, nothing."""
    if context.engine.dialect.name != "postgresql" or context.session_key is not None:
        return identity
    owner = context.engine
    existing = {a.email for a in accounts.list_staff(owner, accounts.command_line_operator())}
    if identity.email not in existing:
        accounts.add_staff(
            owner,
            accounts.command_line_operator(),
            identity.email,
            password,
            identity.role,
            identity.display_name,
        )
    result = Authenticator(owner).sign_in(identity.email, password)
    context.signed_in(result.engine, result.session_key)
    return result.identity
