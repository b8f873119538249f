"""nvadmin's own entries in the Activity Log: staff viewing, exporting, signing in.

"Viewing the log itself generates entries": when staff browse, report on or export a
workspace's activity, the workspace's own log says so, through the same chain writer as every
other event. Staff sign-ins, and views across all workspaces at once, go to the staff
workspace (``nvadmin-staff``), whose chain belongs to nvadmin itself.
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from nvadmin import __version__
from nvadmin.audit import server_events
from nvadmin.audit.chain import ChainWriter, EventDraft
from nvadmin.db import routing
from nvadmin.db.engine import describe
from nvadmin.db.models import SYSTEM_WORKSPACE_SLUG
from nvadmin.db.taxonomy import LOG_VIEW, ActorType
from nvadmin.db.types import canonical_json
from nvadmin.errors import DatabaseUnavailable
from nvadmin.identity import StaffIdentity
from nvadmin.query.filters import EventFilter
from nvadmin.query.workspaces import by_slug


@cache
def _host() -> tuple[str, str | None]:
    """This machine's name and primary address, recorded as where staff acted from."""
    name = socket.gethostname()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # TEST-NET address: no packet is sent
            address: str | None = probe.getsockname()[0]
    except OSError:
        address = None
    return name, address


def staff_workspace_id(engine: Engine) -> int:
    return by_slug(engine, SYSTEM_WORKSPACE_SLUG).id


def staff_draft(
    identity: StaffIdentity | None,
    action: str,
    details: Mapping[str, Any],
    *,
    email: str | None = None,
    outcome: str = "success",
    failure_reason: str | None = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
) -> EventDraft:
    """An event done by nvadmin staff (``identity`` None for an unknown e-mail at sign-in)."""
    host, address = _host()
    return EventDraft(
        occurred_at=datetime.now(UTC),
        action=action,
        actor_type=ActorType.STAFF,
        actor_id=identity.id if identity else None,
        actor_email=identity.email if identity else email,
        actor_name=identity.display_name if identity else (email or "unknown"),
        actor_role=str(identity.role) if identity else None,
        outcome=outcome,
        failure_reason=failure_reason,
        resource_type=resource_type,
        resource_id=resource_id,
        ip=address,
        user_agent=f"nvadmin/{__version__} ({host}; {getpass.getuser()})",
        details=dict(details),
    )


def record(
    engine: Engine,
    identity: StaffIdentity,
    action: str,
    event_filter: EventFilter,
    details: Mapping[str, Any],
) -> None:
    """Write one ``action`` event to each workspace the filter covers (or to the staff
    workspace when it covers all of them)."""
    payload = {"filter": event_filter.to_dict(), **details}
    targets = list(event_filter.workspace_ids) or [staff_workspace_id(engine)]
    if server_events.is_staff_login(engine):
        # PostgreSQL names the actor from the login and seals the event itself.
        for workspace_id in targets:
            server_events.record_access(
                engine,
                workspace_id,
                action,
                canonical_json(payload),
                "activity_log",
                str(workspace_id) if event_filter.workspace_ids else "all",
            )
        return
    writer = ChainWriter(engine)
    for workspace_id in targets:
        writer.append_one(
            workspace_id,
            staff_draft(
                identity,
                action,
                payload,
                resource_type="activity_log",
                resource_id=str(workspace_id) if event_filter.workspace_ids else "all",
            ),
        )


def record_view(
    engine: Engine, identity: StaffIdentity, event_filter: EventFilter, purpose: str = "browse"
) -> None:
    """``activity_log.view``: once per query (not per scroll or keystroke), committed on the
    primary before any row is read (from it or from a standby). When it cannot be written,
    nothing may be shown: the error says so."""
    try:
        record(engine, identity, LOG_VIEW, event_filter, {"purpose": purpose})
    except SQLAlchemyError as error:
        raise DatabaseUnavailable(
            f"the view could not be recorded in the Activity Log ({describe(error)}), "
            "so nothing is shown"
        ) from error


def recorded_view(
    write: Engine,
    read: Engine,
    identity: StaffIdentity,
    event_filter: EventFilter,
    purpose: str = "browse",
) -> Engine:
    """Record the view (:func:`record_view`) and return the engine to read its rows with:
    ``read`` once its server has replayed the record, else the primary. On PostgreSQL the
    server shows a session a workspace's events only once it has recorded an access to that
    workspace (migration 0009), and a standby knows of it once it has replayed it."""
    record_view(write, identity, event_filter, purpose)
    return routing.including_own_writes(read, write)


def opened_for(
    write: Engine, read: Engine, identity: StaffIdentity, event_filter: EventFilter, purpose: str
) -> Engine:
    """The engine to read ``event_filter``'s events with for work other than browsing (an
    export, a count, verification, a case file, a report). A PostgreSQL staff session that
    has not yet opened one of its workspaces records a view first, naming ``purpose``
    (:func:`recorded_view`); once opened, a workspace stays open for the session. SQLite,
    and the tables' owner on the command line, read as they are."""
    if not server_events.is_staff_login(write):
        return read
    opened = server_events.opened(write)
    if None in opened or set(event_filter.workspace_ids or {None}) <= opened:
        return read
    return recorded_view(write, read, identity, event_filter, purpose)


def record_export(
    engine: Engine, identity: StaffIdentity, event_filter: EventFilter, facts: Mapping[str, Any]
) -> None:
    """``activity_log.export`` with the manifest's facts (rows, sha256, ticket, file name)."""
    record(engine, identity, "activity_log.export", event_filter, facts)


def record_staff_event(engine: Engine, draft: EventDraft) -> None:
    """Staff sign-in events and the like, chained in the staff workspace."""
    if server_events.is_staff_login(engine):
        details = canonical_json(dict(draft.details or {}))
        server_events.sign_out_or_record(engine, staff_workspace_id(engine), draft.action, details)
        return
    ChainWriter(engine).append_one(staff_workspace_id(engine), draft)
