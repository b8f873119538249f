"""An export request's life, as the database enforces it: its statuses, the operations that
move it and from where, the requester check's outcomes and their notes.

Declared here, below every package that reads or writes requests, because migration 0005 lays
the same rules out in the server functions that are the only way to change a request.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

EVENT_PREFIX = "activity_log.export_request."
# Receipt may be back-dated to the e-mail's arrival, within reason.
MAX_RECEIPT_AGE = timedelta(days=366)
# Team-member roles that may ask for their workspace's log: the clinic product's practice
# admin (see nvadmin/demo/vocabulary.py ROLES), and "admin" as some workspaces name it.
ADMIN_ROLES = frozenset({"practice_admin", "admin"})


class Status(StrEnum):
    NEW = "new"
    VERIFIED = "verified"
    EXPORTED = "exported"
    DELIVERED = "delivered"
    REJECTED = "rejected"


class Operation(StrEnum):
    VERIFY = "verified"
    OVERRIDE = "overridden"
    EXPORT = "exported"
    DELIVER = "delivered"
    REJECT = "rejected"
    ASSIGN = "assigned"

    @property
    def action(self) -> str:
        return EVENT_PREFIX + self.value


RECEIVED_ACTION = EVENT_PREFIX + "received"
OPEN = (Status.NEW, Status.VERIFIED, Status.EXPORTED)

# operation -> (statuses it may start from, status it leaves; None keeps the status)
TRANSITIONS: dict[Operation, tuple[tuple[Status, ...], Status | None]] = {
    Operation.VERIFY: ((Status.NEW,), Status.VERIFIED),
    Operation.OVERRIDE: ((Status.NEW,), Status.VERIFIED),
    Operation.EXPORT: ((Status.VERIFIED,), Status.EXPORTED),
    Operation.DELIVER: ((Status.EXPORTED,), Status.DELIVERED),
    Operation.REJECT: (OPEN, Status.REJECTED),
    Operation.ASSIGN: (OPEN, None),
}


class Verification(StrEnum):
    """The requester check's outcome, as stored on the request."""

    ADMIN = "admin"
    NOT_MEMBER = "not_member"
    INACTIVE = "inactive"
    NOT_ADMIN = "not_admin"
    JOINED_LATER = "joined_later"

    @property
    def passed(self) -> bool:
        return self is Verification.ADMIN


def verification_note(outcome: Verification, role: str | None = None) -> str:
    return {
        Verification.ADMIN: f"requester is an active team member with the {role} role",
        Verification.NOT_MEMBER: "requester is not a team member of this workspace",
        Verification.INACTIVE: "requester's team membership is not active",
        Verification.NOT_ADMIN: f"requester's role is {role}, not an admin role",
        Verification.JOINED_LATER: "requester joined the workspace after the request",
    }[outcome]
