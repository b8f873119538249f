"""Events a signed-in PostgreSQL staff login writes: the server names the actor and seals them.

Kept apart from sign-in so the audit layer can use it without importing the authenticator.
"""

from __future__ import annotations

import getpass
import json
import socket
import weakref
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, text

from nvadmin import __version__

# Engines connected as a signed-in staff login: their writes go through the server functions.
_STAFF_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()
# The workspaces each such engine's session has opened by a recorded view or export (None:
# every workspace): the server lets a session read only those (migration 0009).
_OPENED: weakref.WeakKeyDictionary[Engine, set[int | None]] = weakref.WeakKeyDictionary()


def user_agent() -> str:
    return f"nvadmin/{__version__} ({socket.gethostname()}; {getpass.getuser()})"


def mark_staff_login(engine: Engine) -> None:
    _STAFF_ENGINES.add(engine)


def record_access(
    engine: Engine,
    workspace_id: int,
    action: str,
    details: str,
    resource_type: str | None,
    resource_id: str | None,
) -> None:
    """Append a view/export/lock event as the signed-in login (the server names the actor);
    a view or an export opens the workspace's log (or, for ``resource_id`` "all", every
    workspace's) to the session."""
    with engine.begin() as connection:
        connection.execute(
            text("SELECT nvadmin_record_access(:w, :a, :d, :rt, :ri, :ua)"),
            {
                "w": workspace_id,
                "a": action,
                "d": details,
                "rt": resource_type,
                "ri": resource_id,
                "ua": user_agent(),
            },
        )
    if action != "staff.session_locked":
        opened(engine).add(None if resource_id == "all" else workspace_id)


def opened(engine: Engine) -> set[int | None]:
    """The workspaces ``engine``'s session has opened so far (None: all of them)."""
    return _OPENED.setdefault(engine, set())


def sign_out_or_record(engine: Engine, workspace_id: int, action: str, details: str) -> None:
    """A staff-workspace event of the session itself: signing out ends the session too."""
    if action == "staff.sign_out":
        reason = json.loads(details).get("reason", "explicit")
        sign_out(engine, str(reason), None)
    else:
        record_access(engine, workspace_id, action, details, None, None)


def sign_out(engine: Engine, reason: str, remember_token: str | None) -> None:
    with engine.begin() as connection:
        connection.execute(
            text("SELECT nvadmin_sign_out(:r, :t, :a)"),
            {"r": reason, "t": remember_token, "a": user_agent()},
        )


def all_opened(cursor: Any, workspace_ids: Sequence[int]) -> bool:
    """Whether the session on ``cursor`` (a driver cursor, inside the read's own snapshot) has
    opened the logs of ``workspace_ids`` (of every workspace, when empty). The events' policy
    leaves any other workspace's rows out without a word, so a read whose access was never
    recorded would come out short: an export asks first."""
    cursor.execute(
        "SELECT nvadmin_opened_every_workspace() OR (cardinality(%(ids)s::integer[]) > 0 "
        "AND %(ids)s::integer[] <@ nvadmin_opened_workspaces())",
        {"ids": list(workspace_ids)},
    )
    return bool(cursor.fetchone()[0])


def is_staff_login(engine: Engine) -> bool:
    """True when the engine connects as a staff login (its events go through the server)."""
    return engine in _STAFF_ENGINES


def set_working_hours(engine: Engine, workspace_id: int, start: int, end: int) -> None:
    with engine.begin() as connection:
        connection.execute(
            text("SELECT nvadmin_set_working_hours(:w, :s, :e)"),
            {"w": workspace_id, "s": start, "e": end},
        )
