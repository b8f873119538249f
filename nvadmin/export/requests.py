"""Export requests: a clinic's ticket ("workspace X, from D1 to D2") from e-mail to delivery.

A request is received (``new``), its requester checked, and it moves on only by the legal
transitions in :data:`TRANSITIONS`::

    new ──verify / override──▶ verified ──export──▶ exported ──deliver──▶ delivered
     └────────────┴──────────────reject (with a reason)──────────┘──▶ rejected

**The requester rule.** A request is exportable only when, at the time it was received, the
requester was an active team member of that workspace with an admin role; the check runs when
the request is received and its outcome is stored on the request. Otherwise it stays ``new``
until a staff admin overrides the check with a reason, or someone rejects it.

**Every change is evidence.** Each transition appends an ``activity_log.export_request.*``
event to the workspace's chain in the same transaction as the row changes. On PostgreSQL the
rows change only inside the SECURITY DEFINER functions of migration 0005 (the actor taken
from the login, transitions enforced there too); staff logins cannot write the table.

What is delivered is a disclosure: :func:`disclosures` lists them for the accounting of
disclosures HIPAA §164.528 asks a clinic to produce (date, recipient, description, purpose).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from nvadmin.analysis.reports import Report, ReportRow, ReportSection
from nvadmin.audit import access_log, server_events
from nvadmin.audit.chain import append_in
from nvadmin.db.engine import translate
from nvadmin.db.models import ActivityEvent, Meta, TeamMember, Workspace
from nvadmin.db.models import ExportRequest as Row
from nvadmin.db.request_rules import (
    ADMIN_ROLES,
    MAX_RECEIPT_AGE,
    OPEN,
    RECEIVED_ACTION,
    TRANSITIONS,
    Operation,
    Status,
    Verification,
    verification_note,
)
from nvadmin.db.taxonomy import CATEGORY_ALIASES
from nvadmin.db.types import canonical_json
from nvadmin.errors import AccessDenied, UserError
from nvadmin.export import manifest as manifests
from nvadmin.identity import Permission, Role, StaffIdentity
from nvadmin.query.filters import EventFilter, Term
from nvadmin.query.localtime import day_range, zone_info
from nvadmin.workers.cancel import CancelToken

Progress = Callable[[int, "int | None", str], None]

DUE_SETTING = "requests.due_business_days"
DEFAULT_DUE_BUSINESS_DAYS = 2
MAX_DUE_BUSINESS_DAYS = 30
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2999, 12, 31)


class IllegalTransition(UserError):
    pass


# -- due dates -------------------------------------------------------------------------------


def due_by(received_at: datetime, zone: str, business_days: int) -> datetime:
    """``business_days`` weekdays after receipt, at the same local time (Saturdays and Sundays
    are skipped: received Friday 10:00 with 2 days is due Tuesday 10:00)."""
    if received_at.tzinfo is None:
        raise ValueError("received_at must be timezone-aware")
    tz = zone_info(zone)
    local = received_at.astimezone(tz)
    day = local.date()
    left = business_days
    while left > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            left -= 1
    due = datetime.combine(day, local.time().replace(tzinfo=None), tzinfo=tz)
    return due.astimezone(UTC)


def due_business_days(engine: Engine) -> int:
    """This database's setting (``requests.due_business_days`` in nvadmin_meta), else 2."""
    with engine.connect() as connection:
        value = connection.execute(select(Meta.value).where(Meta.key == DUE_SETTING)).scalar()
    try:
        days = int(value) if value is not None else DEFAULT_DUE_BUSINESS_DAYS
    except ValueError:
        return DEFAULT_DUE_BUSINESS_DAYS
    return days if 0 <= days <= MAX_DUE_BUSINESS_DAYS else DEFAULT_DUE_BUSINESS_DAYS


def set_due_business_days(engine: Engine, days: int) -> None:
    if not 0 <= days <= MAX_DUE_BUSINESS_DAYS:
        raise UserError(f"due days must be between 0 and {MAX_DUE_BUSINESS_DAYS}")
    with engine.begin() as connection:
        connection.execute(delete(Meta).where(Meta.key == DUE_SETTING))
        connection.execute(insert(Meta).values(key=DUE_SETTING, value=str(days)))


# -- what a request is -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestDraft:
    """A request as support types it in (or a helpdesk batch row gives it)."""

    workspace: str  # slug
    first_day: date
    last_day: date
    requester_email: str
    ticket: str
    purpose: str = ""
    recipient: str = ""
    requester_name: str = ""
    zone: str | None = None  # default: the workspace's
    users: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    received_at: datetime | None = None  # default: now
    assign_to: str | None = None
    # A patient-scoped request (``patient:`` in the search language): only their events.
    patients: tuple[str, ...] = ()

    def checked(self) -> RequestDraft:
        """The draft cleaned, or :class:`UserError` naming what is wrong."""
        ticket = self.ticket.strip()
        if not ticket or len(ticket) > 100 or _CONTROL.search(ticket):
            raise UserError("a ticket id is needed (at most 100 characters, one line)")
        if self.first_day > self.last_day:
            raise UserError(f"impossible range: {self.first_day} is after {self.last_day}")
        for day in (self.first_day, self.last_day):
            if not FIRST_DAY <= day <= LAST_DAY:
                raise UserError(f"{day} is outside the days nvadmin covers")
        email = self.requester_email.strip().lower()
        if not _EMAIL.match(email) or len(email) > 320:
            raise UserError(f"not an e-mail address: {self.requester_email.strip()!r}")
        if len(self.purpose) > 2000 or len(self.recipient) > 300:
            raise UserError("purpose (2000) or recipient (300 characters) too long")
        if len(self.requester_name) > 200:
            raise UserError("requester name too long (at most 200 characters)")
        if self.zone is not None:
            zone_info(self.zone)
        categories = []
        for name in self.categories:
            category = CATEGORY_ALIASES.get(name.strip().lower())
            if category is None:
                raise UserError(f"unknown category {name!r}")
            categories.append(category.value)
        received = self.received_at
        if received is not None and received.tzinfo is None:
            raise UserError("the receipt time needs a zone offset")
        # A filter given only blank values would silently become no filter: every event.
        for name, given in (("team member", self.users), ("patient", self.patients)):
            if given and not any(value.strip() for value in given):
                raise UserError(f"a blank {name} filter: give a value, or leave the filter out")
        return RequestDraft(
            workspace=self.workspace.strip(),
            first_day=self.first_day,
            last_day=self.last_day,
            requester_email=email,
            ticket=ticket,
            purpose=self.purpose.strip(),
            recipient=self.recipient.strip(),
            requester_name=self.requester_name.strip(),
            zone=self.zone,
            users=tuple(u.strip().lower() for u in self.users if u.strip()),
            categories=tuple(dict.fromkeys(categories)),
            received_at=received,
            assign_to=self.assign_to.strip().lower() if self.assign_to else None,
            patients=_checked_patients(self.patients),
        )

    def filters_json(self) -> str | None:
        filters: dict[str, list[str]] = {}
        if self.users:
            filters["user"] = list(self.users)
        if self.categories:
            filters["category"] = list(self.categories)
        if self.patients:
            filters["patient"] = list(self.patients)
        return canonical_json(filters) if filters else None


PATIENT_ID_LENGTH = 40  # the event table's patient_id
# The filters a request may hold, as search qualifiers, in the order its export applies them.
FILTER_KEYS = ("user", "category", "patient")


def _checked_patients(patients: tuple[str, ...]) -> tuple[str, ...]:
    checked = tuple(dict.fromkeys(p.strip() for p in patients if p.strip()))
    for patient in checked:
        if len(patient) > PATIENT_ID_LENGTH or _CONTROL.search(patient):
            raise UserError(
                f"not a patient id: {patient[:PATIENT_ID_LENGTH]!r} (one line, at most "
                f"{PATIENT_ID_LENGTH} characters)"
            )
    return checked


@dataclass(frozen=True, slots=True)
class RequestView:
    """One request as the queue, the command line and the report show it."""

    id: int
    workspace_id: int
    workspace_slug: str
    workspace_name: str
    ticket: str
    first_day: date
    last_day: date
    zone: str
    filters: Mapping[str, list[str]]
    requester_email: str
    requester_name: str
    purpose: str
    recipient: str
    received_at: datetime
    due_at: datetime
    status: Status
    verification: Verification
    verification_note: str
    override_reason: str | None
    override_by: str | None
    rejection_reason: str | None
    assigned_to: str | None
    export_path: str | None
    export_sha256: str | None
    manifest_path: str | None
    manifest_sha256: str | None
    export_rows: int | None
    description: str | None
    exported_at: datetime | None
    delivered_at: datetime | None
    package_path: str | None
    package_sha256: str | None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    def overdue(self, now: datetime | None = None) -> bool:
        return self.is_open and self.due_at < (now or datetime.now(UTC))

    def event_filter(self) -> EventFilter:
        return _event_filter(
            self.workspace_id, self.first_day, self.last_day, self.zone, self.filters
        )

    def file_name(self, suffix: str = ".csv") -> str:
        safe = re.sub(r"[^A-Za-z0-9._-]+", "-", self.ticket).strip("-") or str(self.id)
        return f"{self.workspace_slug}_{self.first_day}_{self.last_day}_{safe}{suffix}"


@dataclass(frozen=True, slots=True)
class Evidence:
    """What an export left behind, attached to the request when it moves to ``exported``."""

    export_path: str
    export_sha256: str
    manifest_path: str
    manifest_sha256: str
    rows: int
    description: str

    def to_json(self) -> str:
        return canonical_json(
            {
                "export_path": self.export_path,
                "export_sha256": self.export_sha256,
                "manifest_path": self.manifest_path,
                "manifest_sha256": self.manifest_sha256,
                "rows": self.rows,
                "description": self.description,
            }
        )


@dataclass(frozen=True, slots=True)
class Delivery:
    """The encrypted package a request was delivered as (see
    :func:`nvadmin.export.evidence.package_export`), recorded when it moves to ``delivered``."""

    package_path: str
    package_sha256: str

    def checked(self) -> Delivery:
        if not _SHA256.match(self.package_sha256) or not self.package_path:
            raise UserError(
                "a delivery package needs its file and its SHA-256 (64 hexadecimal characters)"
            )
        if len(self.package_path) > 4000:
            raise UserError("the package's path is too long (at most 4000 characters)")
        return self

    def to_json(self) -> str:
        return canonical_json(
            {"package_path": self.package_path, "package_sha256": self.package_sha256}
        )


# -- reading ---------------------------------------------------------------------------------


def _view(row: Any) -> RequestView:
    return RequestView(
        id=row.id,
        workspace_id=row.workspace_id,
        workspace_slug=row.slug,
        workspace_name=row.name,
        ticket=row.ticket,
        first_day=row.first_day,
        last_day=row.last_day,
        zone=row.zone,
        filters=json.loads(row.filters) if row.filters else {},
        requester_email=row.requester_email,
        requester_name=row.requester_name,
        purpose=row.purpose,
        recipient=row.recipient,
        received_at=row.received_at,
        due_at=row.due_at,
        status=Status(row.status),
        verification=Verification(row.verification),
        verification_note=row.verification_note,
        override_reason=row.override_reason,
        override_by=row.override_by,
        rejection_reason=row.rejection_reason,
        assigned_to=row.assigned_to,
        export_path=row.export_path,
        export_sha256=row.export_sha256,
        manifest_path=row.manifest_path,
        manifest_sha256=row.manifest_sha256,
        export_rows=row.export_rows,
        description=row.description,
        exported_at=row.exported_at,
        delivered_at=row.delivered_at,
        package_path=row.package_path,
        package_sha256=row.package_sha256,
    )


def _select() -> Any:
    return select(Row, Workspace.slug, Workspace.name).join(
        Workspace, Workspace.id == Row.workspace_id
    )


def list_requests(
    engine: Engine,
    *,
    statuses: Iterable[Status] | None = None,
    overdue: bool = False,
    assignee: str | None = None,
    workspace_id: int | None = None,
    now: datetime | None = None,
) -> list[RequestView]:
    """Requests, overdue first, then by due time (the queue's order)."""
    statement = _select()
    wanted = tuple(statuses or ())
    if wanted:
        statement = statement.where(Row.status.in_([s.value for s in wanted]))
    if assignee is not None:
        statement = statement.where(
            Row.assigned_to.is_(None) if assignee == "" else Row.assigned_to == assignee.lower()
        )
    if workspace_id is not None:
        statement = statement.where(Row.workspace_id == workspace_id)
    moment = now or datetime.now(UTC)
    if overdue:
        statement = statement.where(Row.status.in_([s.value for s in OPEN]), Row.due_at < moment)
    statement = statement.order_by(Row.due_at, Row.id)
    try:
        with engine.connect() as connection:
            views = [_view(r) for r in connection.execute(statement)]
    except Exception as error:
        raise translate(error) from error
    # Open and late first, then open, then closed; each by due time.
    return sorted(views, key=lambda v: (not v.overdue(moment), not v.is_open, v.due_at, v.id))


def get_request(engine: Engine, request_id: int) -> RequestView:
    try:
        with engine.connect() as connection:
            row = connection.execute(_select().where(Row.id == request_id)).first()
    except Exception as error:
        raise translate(error) from error
    if row is None:
        raise UserError(f"no export request {request_id}")
    return _view(row)


def find_request(engine: Engine, reference: str) -> RequestView:
    """A request by its number, or by its ticket id when that is unique."""
    text_ = reference.strip()
    if text_.isdigit():
        with engine.connect() as connection:
            exists = connection.execute(select(Row.id).where(Row.id == int(text_))).first()
        if exists is not None:
            return get_request(engine, int(text_))
    with engine.connect() as connection:
        ids = list(connection.execute(select(Row.id).where(Row.ticket == text_)).scalars())
    if len(ids) == 1:
        return get_request(engine, ids[0])
    if len(ids) > 1:
        raise UserError(f"ticket {text_!r} exists in several workspaces: give the request number")
    raise UserError(f"no export request {text_!r} (give its number or ticket id)")


def workspace_id(engine: Engine, slug: str) -> int:
    with engine.connect() as connection:
        return int(_workspace(connection, slug).id)


def due_in_words(view: RequestView, now: datetime | None = None) -> str:
    """The countdown the queue shows: "due in 1 d 4 h", "overdue by 3 h", or the outcome."""
    if not view.is_open:
        when = view.delivered_at or view.exported_at
        return f"{view.status.value}" + (f" {when:%Y-%m-%d}" if when else "")
    left = view.due_at - (now or datetime.now(UTC))
    late = left.total_seconds() < 0
    minutes = int(abs(left.total_seconds()) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        span = f"{days} d {hours} h"
    elif hours:
        span = f"{hours} h {mins} min"
    else:
        span = f"{mins} min"
    return f"overdue by {span}" if late else f"due in {span}"


def view_lines(view: RequestView) -> list[tuple[str, str]]:
    """A request in words, label by label (``requests show``, the queue's detail pane)."""
    filters = "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(view.filters.items()))
    check = view.verification_note + (" ✔" if view.verification.passed else " ✘")
    lines = [
        ("Request", f"{view.id} · ticket {view.ticket}"),
        ("Workspace", f"{view.workspace_name} ({view.workspace_slug})"),
        ("Range", f"{view.first_day} to {view.last_day} ({view.zone})"),
        ("Filters", filters or "none: every event in the range"),
        ("Requester", f"{view.requester_name} <{view.requester_email}>"),
        ("Requester check", check),
        ("Purpose", view.purpose or "(not given)"),
        ("Recipient", view.recipient or "(not given)"),
        ("Received", f"{view.received_at.astimezone(zone_info(view.zone)):%Y-%m-%d %H:%M %Z}"),
        ("Due", f"{view.due_at.astimezone(zone_info(view.zone)):%Y-%m-%d %H:%M %Z} "
                f"({due_in_words(view)})"),
        ("Status", view.status.value),
        ("Assigned to", view.assigned_to or "nobody"),
    ]  # fmt: skip
    if view.override_reason:
        lines.append(("Override", f"{view.override_reason} (by {view.override_by})"))
    if view.rejection_reason:
        lines.append(("Rejected", view.rejection_reason))
    if view.export_path:
        lines += [
            ("Export", f"{view.export_path} ({view.export_rows:,} rows)"),
            ("Export SHA-256", view.export_sha256 or ""),
            ("Manifest", view.manifest_path or ""),
            ("Manifest SHA-256", view.manifest_sha256 or ""),
        ]
    if view.delivered_at:
        lines.append(
            ("Delivered", f"{view.delivered_at.astimezone(zone_info(view.zone)):%Y-%m-%d %H:%M %Z}")
        )
    if view.package_path:
        lines += [
            ("Package", view.package_path),
            ("Package SHA-256", view.package_sha256 or ""),
        ]
    return lines


def view_facts(view: RequestView) -> dict[str, Any]:
    """A request as JSON-ready facts (``requests list --json``)."""
    facts: dict[str, Any] = {}
    for name in RequestView.__slots__:  # type: ignore[attr-defined]
        value = getattr(view, name)
        if isinstance(value, datetime | date):
            value = value.isoformat()
        facts[name] = value
    facts["overdue"] = view.overdue()
    return facts


# -- the requester rule ----------------------------------------------------------------------


def check_requester(
    connection: Connection, workspace_id: int, email: str, received_at: datetime
) -> tuple[Verification, str, str | None]:
    """(outcome, words, the member's name) for the requester at the time of the request."""
    member = connection.execute(
        select(
            TeamMember.display_name, TeamMember.role, TeamMember.active, TeamMember.created_at
        ).where(TeamMember.workspace_id == workspace_id, func.lower(TeamMember.email) == email)
    ).first()
    if member is None:
        outcome, role = Verification.NOT_MEMBER, None
    elif not member.active:
        outcome, role = Verification.INACTIVE, member.role
    elif member.role not in ADMIN_ROLES:
        outcome, role = Verification.NOT_ADMIN, member.role
    elif member.created_at > received_at:
        outcome, role = Verification.JOINED_LATER, member.role
    else:
        outcome, role = Verification.ADMIN, member.role
    return outcome, verification_note(outcome, role), member.display_name if member else None


# -- changing --------------------------------------------------------------------------------


def _on_server(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def _require_staff(identity: StaffIdentity) -> None:
    identity.require(Permission.EXPORT)


def _workspace(connection: Connection, slug: str) -> Any:
    row = connection.execute(
        select(Workspace.id, Workspace.timezone, Workspace.is_system).where(Workspace.slug == slug)
    ).first()
    if row is None or row.is_system:
        raise UserError(f"no workspace with the slug {slug!r}")
    return row


def add_requests(
    engine: Engine, identity: StaffIdentity, drafts: Sequence[RequestDraft]
) -> list[int]:
    """Receive requests, all or none (one transaction); each is checked first and the first
    problem is raised naming its position when there are several."""
    _require_staff(identity)
    cleaned = []
    for index, d in enumerate(drafts, 1):
        try:
            cleaned.append(d.checked())
        except UserError as error:
            raise UserError(_row_message(index, len(drafts), str(error))) from None
    days = due_business_days(engine)
    ids = []
    try:
        with engine.begin() as connection:
            for index, d in enumerate(cleaned, 1):
                try:
                    ids.append(_add(engine, connection, identity, d, days))
                except Exception as error:
                    problem = error if isinstance(error, UserError) else _translated(error)
                    if not isinstance(problem, UserError):
                        raise problem from error
                    raise UserError(_row_message(index, len(cleaned), str(problem))) from error
    except UserError:
        raise
    except Exception as error:
        raise _translated(error) from error
    return ids


def add_request(engine: Engine, identity: StaffIdentity, draft: RequestDraft) -> int:
    return add_requests(engine, identity, [draft])[0]


def _row_message(index: int, total: int, message: str) -> str:
    return f"row {index}: {message}" if total > 1 else message


def _add(
    engine: Engine, connection: Connection, identity: StaffIdentity, d: RequestDraft, days: int
) -> int:
    workspace = _workspace(connection, d.workspace)
    zone = d.zone or workspace.timezone
    received = (d.received_at or datetime.now(UTC)).astimezone(UTC)
    now = datetime.now(UTC)
    if received > now + timedelta(minutes=5) or received < now - MAX_RECEIPT_AGE:
        raise UserError("the receipt time must be within the past year, not in the future")
    due = due_by(received, zone, days)
    if _on_server(engine):
        return int(
            connection.execute(
                text(
                    "SELECT nvadmin_receive_export_request(:w, :t, :f, :l, :z, :filters, :e, "
                    ":n, :p, :r, :received, :due, :assign, :ua)"
                ),
                {
                    "w": workspace.id,
                    "t": d.ticket,
                    "f": d.first_day,
                    "l": d.last_day,
                    "z": zone,
                    "filters": d.filters_json(),
                    "e": d.requester_email,
                    "n": d.requester_name or None,
                    "p": d.purpose,
                    "r": d.recipient,
                    "received": received,
                    "due": due,
                    "assign": d.assign_to,
                    "ua": server_events.user_agent(),
                },
            ).scalar_one()
        )
    exists = connection.execute(
        select(Row.id).where(Row.workspace_id == workspace.id, Row.ticket == d.ticket)
    ).first()
    if exists is not None:
        raise UserError(f"ticket {d.ticket} already has request {exists.id} in {d.workspace}")
    if d.assign_to is not None:
        _check_assignee(connection, d.assign_to)
    outcome, note, member_name = check_requester(
        connection, workspace.id, d.requester_email, received
    )
    request_id = connection.execute(
        insert(Row)
        .values(
            workspace_id=workspace.id,
            ticket=d.ticket,
            first_day=d.first_day,
            last_day=d.last_day,
            zone=zone,
            filters=d.filters_json(),
            requester_email=d.requester_email,
            requester_name=d.requester_name or member_name or d.requester_email,
            purpose=d.purpose,
            recipient=d.recipient,
            received_at=received,
            due_at=due,
            status=Status.NEW.value,
            verification=outcome.value,
            verification_note=note,
            assigned_to=d.assign_to,
            received_by=identity.email,
            updated_at=now,
        )
        .returning(Row.id)
    ).scalar_one()
    facts = {
        "request_id": request_id,
        "ticket": d.ticket,
        "status": Status.NEW.value,
        "from": str(d.first_day),
        "to": str(d.last_day),
        "zone": zone,
        "requester": d.requester_email,
        "purpose": d.purpose,
        "recipient": d.recipient,
        "due_at": due.isoformat(),
        "verification": outcome.value,
    }
    _chain(connection, workspace.id, identity, RECEIVED_ACTION, request_id, facts)
    if outcome.passed:
        _apply(connection, identity, request_id, Operation.VERIFY, note, None)
    return int(request_id)


def _check_assignee(connection: Connection, email: str) -> None:
    from nvadmin.db.models import Staff

    found = connection.execute(
        select(Staff.id).where(Staff.email == email, Staff.disabled.is_(False))
    ).first()
    if found is None:
        raise UserError(f"no active staff account {email!r} to assign to")


def _chain(
    connection: Connection,
    workspace_id: int,
    identity: StaffIdentity,
    action: str,
    request_id: int,
    details: Mapping[str, Any],
) -> None:
    """Seal the event into the workspace's chain inside this transaction (SQLite path)."""
    draft = access_log.staff_draft(
        identity,
        action,
        details,
        resource_type="export_request",
        resource_id=str(request_id),
    )
    append_in(connection, workspace_id, [draft])


def move(
    engine: Engine,
    identity: StaffIdentity,
    request_id: int,
    operation: Operation,
    reason: str | None = None,
    evidence: Evidence | None = None,
    delivery: Delivery | None = None,
) -> RequestView:
    """Apply one legal transition (with its chained event); refused otherwise, saying why.
    ``delivery`` (only with :attr:`Operation.DELIVER`) records the package that was sent."""
    _require_staff(identity)
    if operation is Operation.VERIFY:
        raise UserError("a request is verified by its requester check, or overridden by an admin")
    if operation is Operation.OVERRIDE and identity.role is not Role.ADMIN:
        raise AccessDenied("only a staff admin may override the requester check")
    reason = (reason or "").strip() or None
    if operation in (Operation.OVERRIDE, Operation.REJECT) and not reason:
        raise UserError(f"a reason is needed to {_verb(operation)} a request")
    if reason is not None and len(reason) > 2000:
        raise UserError("the reason is too long (at most 2000 characters)")
    if operation is Operation.EXPORT and evidence is None:
        raise UserError("an export needs its evidence (file and manifest hashes)")
    if delivery is not None:
        if operation is not Operation.DELIVER:
            raise UserError("a package is recorded only when the request is delivered")
        delivery = delivery.checked()
    proof = evidence or delivery
    try:
        with engine.begin() as connection:
            if _on_server(engine):
                connection.execute(
                    text("SELECT nvadmin_move_export_request(:i, :o, :r, :e, :ua)"),
                    {
                        "i": request_id,
                        "o": operation.value,
                        "r": reason,
                        "e": proof.to_json() if proof else None,
                        "ua": server_events.user_agent(),
                    },
                )
            else:
                _apply(connection, identity, request_id, operation, reason, evidence, delivery)
    except UserError:
        raise
    except Exception as error:
        raise _translated(error) from error
    return get_request(engine, request_id)


def _verb(operation: Operation) -> str:
    return {
        Operation.VERIFY: "verify",
        Operation.OVERRIDE: "override",
        Operation.EXPORT: "export",
        Operation.DELIVER: "deliver",
        Operation.REJECT: "reject",
        Operation.ASSIGN: "assign",
    }[operation]


def _apply(
    connection: Connection,
    identity: StaffIdentity,
    request_id: int,
    operation: Operation,
    reason: str | None,
    evidence: Evidence | None,
    delivery: Delivery | None = None,
) -> None:
    current = connection.execute(
        select(Row.workspace_id, Row.status, Row.ticket).where(Row.id == request_id)
    ).first()
    if current is None:
        raise UserError(f"no export request {request_id}")
    sources, target = TRANSITIONS[operation]
    status = Status(current.status)
    if status not in sources:
        raise IllegalTransition(
            f"request {request_id} is {status.value}: it cannot be {operation.value} "
            f"(only from {' or '.join(s.value for s in sources)})"
        )
    now = datetime.now(UTC)
    values: dict[str, Any] = {"updated_at": now}
    details: dict[str, Any] = {
        "request_id": request_id,
        "ticket": current.ticket,
        "previous_status": status.value,
        "status": (target or status).value,
    }
    if target is not None:
        values["status"] = target.value
    if operation is Operation.OVERRIDE:
        values.update(override_reason=reason, override_by=identity.email)
        details["reason"] = reason
    elif operation is Operation.VERIFY:
        details["check"] = reason
    elif operation is Operation.REJECT:
        values["rejection_reason"] = reason
        details["reason"] = reason
    elif operation is Operation.ASSIGN:
        if reason is not None:
            reason = reason.lower()
            _check_assignee(connection, reason)
        values["assigned_to"] = reason
        details["assigned_to"] = reason
    elif operation is Operation.EXPORT:
        assert evidence is not None
        _check_evidence(evidence)
        _check_recorded(connection, request_id, evidence)
        values.update(
            export_path=evidence.export_path,
            export_sha256=evidence.export_sha256,
            manifest_path=evidence.manifest_path,
            manifest_sha256=evidence.manifest_sha256,
            export_rows=evidence.rows,
            description=evidence.description,
            exported_at=now,
        )
        details.update(json.loads(evidence.to_json()))
    elif operation is Operation.DELIVER:
        values["delivered_at"] = now
        if delivery is not None:
            values.update(
                package_path=delivery.package_path, package_sha256=delivery.package_sha256
            )
            details.update(json.loads(delivery.to_json()))
    changed = connection.execute(
        update(Row).where(Row.id == request_id, Row.status == status.value).values(**values)
    )
    if changed.rowcount != 1:  # pragma: no cover - the write lock makes this unreachable
        raise IllegalTransition(f"request {request_id} changed meanwhile; try again")
    _chain(connection, current.workspace_id, identity, operation.action, request_id, details)


_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _check_evidence(evidence: Evidence) -> None:
    if not (_SHA256.match(evidence.export_sha256) and _SHA256.match(evidence.manifest_sha256)):
        raise UserError("evidence needs the file, its manifest, their SHA-256 and the row count")
    if evidence.rows < 0 or not evidence.export_path or not evidence.manifest_path:
        raise UserError("evidence needs the file, its manifest, their SHA-256 and the row count")


def _check_recorded(connection: Connection, request_id: int, evidence: Evidence) -> None:
    """The evidence must be an export this ticket really made: recorded in the log."""
    request = connection.execute(
        select(Row.workspace_id, Row.ticket, Row.received_at).where(Row.id == request_id)
    ).one()
    recorded = connection.execute(
        select(ActivityEvent.details).where(
            ActivityEvent.workspace_id == request.workspace_id,
            ActivityEvent.category == "activity_log_access",
            ActivityEvent.occurred_at >= request.received_at,
            ActivityEvent.action == "activity_log.export",
        )
    ).scalars()
    for details in recorded:
        facts = json.loads(details or "{}")
        if (
            facts.get("sha256") == evidence.export_sha256
            and facts.get("ticket") == request.ticket
            and facts.get("rows") == evidence.rows
        ):
            return
    raise UserError(f"no recorded export of ticket {request.ticket} has that SHA-256 and row count")


def _translated(error: Exception) -> Exception:
    """A server function's refusal (``nvadmin: ...``) as the user reads it."""
    message = str(getattr(error, "orig", error) or "")
    first = message.splitlines()[0] if message else ""
    if first.startswith("nvadmin: "):
        text_ = first.removeprefix("nvadmin: ")
        if "cannot be" in text_:
            return IllegalTransition(text_)
        if "only a staff admin" in text_ or "sign in first" in text_:
            return AccessDenied(text_)
        return UserError(text_)
    if isinstance(error, IntegrityError):
        return UserError("that ticket already has a request in this workspace")
    return translate(error)


# -- fulfilling ------------------------------------------------------------------------------


def export_request_for(view: RequestView, output: Path, file_format: str = "csv") -> Any:
    """The export service's request for this ticket, writing ``output``."""
    from nvadmin.export.formats import FileFormat
    from nvadmin.export.service import ExportRequest

    if view.status is not Status.VERIFIED:
        raise IllegalTransition(
            f"request {view.id} is {view.status.value}: only a verified request is exported"
            + (" (an admin may override the requester check)" if view.status is Status.NEW else "")
        )
    return ExportRequest(
        event_filter=view.event_filter(),
        output=output,
        time_zone=view.zone,
        range_zone=view.zone,
        ticket=view.ticket,
        file_format=FileFormat(file_format),
    )


def evidence_of(view: RequestView, result: Any) -> Evidence:
    """The export service's result as the request's evidence."""
    filters = ""
    if view.filters:
        parts = [f"{k}: {', '.join(v)}" for k, v in sorted(view.filters.items())]
        filters = "; " + "; ".join(parts)
    from nvadmin.export.formats import FileFormat

    kind = FileFormat.of_manifest(result.manifest.get("file_format")).label
    description = (
        f"Activity Log of {view.workspace_name} ({view.workspace_slug}), "
        f"{view.first_day} to {view.last_day} ({view.zone}){filters}: "
        f"{result.rows:,} events, {kind} {result.path.name}, SHA-256 {result.sha256}"
    )
    return Evidence(
        export_path=str(result.path),
        export_sha256=result.sha256,
        manifest_path=str(result.manifest_path),
        manifest_sha256=manifests.file_sha256(result.manifest_path),
        rows=result.rows,
        description=description,
    )


def fulfil(
    engine: Engine,
    identity: StaffIdentity,
    request_id: int,
    folder: Path,
    *,
    progress: Progress | None = None,
    token: CancelToken | None = None,
    file_format: str = "csv",
    read_engine: Engine | None = None,
) -> RequestView:
    """Export the request into ``folder`` (default columns, the request's zone, CSV or JSON
    Lines), attach the evidence, move it to exported (``read_engine``: see :func:`fulfil_with`)."""
    from nvadmin.export.formats import FileFormat

    view = get_request(engine, request_id)
    if not folder.is_dir():
        raise UserError(f"folder {folder} does not exist")
    suffix = FileFormat(file_format).suffix
    request = export_request_for(view, folder.absolute() / view.file_name(suffix), file_format)
    return fulfil_with(
        engine, identity, request_id, request, progress=progress, token=token,
        read_engine=read_engine,
    )  # fmt: skip


def fulfil_with(
    engine: Engine,
    identity: StaffIdentity,
    request_id: int,
    request: Any,
    *,
    progress: Progress | None = None,
    token: CancelToken | None = None,
    read_engine: Engine | None = None,
) -> RequestView:
    """Run ``request`` (an export service request, e.g. from the export form, where columns,
    zone and file may be chosen) for the export request, attach the evidence, move it to
    exported. What is exported must be what was asked: same events, same ticket.

    ``read_engine`` (a hot standby; default ``engine``) reads the rows; the request, its
    evidence and the export's log event are written through ``engine``, the primary."""
    from nvadmin.export.service import export_csv

    view = get_request(engine, request_id)
    export_request_for(view, request.output)  # refuses anything but a verified request
    if request.ticket.strip() != view.ticket or request.event_filter != view.event_filter():
        raise UserError(
            f"the export does not match request {view.id} (workspace, days, filters and ticket "
            "must be the request's)"
        )
    kwargs: dict[str, Any] = {}
    if progress is not None:
        kwargs["progress"] = progress
    if token is not None:
        kwargs["token"] = token
    result = export_csv(read_engine or engine, identity, request, write_engine=engine, **kwargs)
    return move(engine, identity, request_id, Operation.EXPORT, evidence=evidence_of(view, result))


def package_path_for(view: RequestView) -> Path:
    """Where a request's delivery package goes: beside its export, ``NAME.zip``."""
    if not view.export_path:
        raise IllegalTransition(f"request {view.id} is {view.status.value}: nothing to package")
    return Path(view.export_path).with_suffix(".zip")


def deliver_package(
    engine: Engine,
    identity: StaffIdentity,
    request_id: int,
    keys: Mapping[str, Any],
    output: Path | None = None,
) -> tuple[RequestView, Any]:
    """Package an exported request's CSV, manifest, public key and README into an encrypted
    ZIP (default: beside the export), then move the request to delivered with the package's
    SHA-256. Returns the request and the :class:`~nvadmin.export.evidence.Package`, whose
    passphrase is shown once and stored nowhere."""
    from nvadmin.export.evidence import package_export

    view = get_request(engine, request_id)
    if view.status is not Status.EXPORTED or not view.export_path or not view.manifest_path:
        raise IllegalTransition(
            f"request {view.id} is {view.status.value}: only an exported request is packaged"
        )
    target = output or package_path_for(view)
    package = package_export(
        Path(view.export_path), target, keys, manifest_path=Path(view.manifest_path)
    )
    delivery = Delivery(str(package.path), package.sha256)
    try:
        view = move(engine, identity, request_id, Operation.DELIVER, delivery=delivery)
    except BaseException:
        package.path.unlink(missing_ok=True)  # not recorded: not to be sent
        raise
    return view, package


# -- disclosures -----------------------------------------------------------------------------


DISCLOSURES = "Accounting of disclosures"
DISCLOSURE_COLUMNS = (
    "Disclosed",
    "Recipient",
    "Purpose",
    "Description",
    "Requested by",
    "Ticket",
    "Events",
    "Package SHA-256",
)


@dataclass(frozen=True, slots=True)
class Disclosure:
    delivered_at: datetime
    recipient: str
    purpose: str
    description: str
    requester: str
    ticket: str
    rows: int
    event_id: int  # the chained "delivered" event
    package_sha256: str = ""  # the encrypted package sent, when it was sent as one

    def cells(self, zone: str) -> tuple[str, ...]:
        local = self.delivered_at.astimezone(zone_info(zone))
        return (
            local.isoformat(sep=" ", timespec="seconds"),
            self.recipient,
            self.purpose,
            self.description,
            self.requester,
            self.ticket,
            str(self.rows),
            self.package_sha256,
        )


@dataclass(frozen=True, slots=True)
class DisclosureReport:
    workspace_slug: str
    workspace_name: str
    zone: str
    period: str
    entries: list[Disclosure] = field(default_factory=list)
    patient: str | None = None  # one patient's accounting: "Events" counts theirs


PATIENT_SCOPED = "Patient-scoped export"
CONTAINING = "Export containing this patient's events"


def disclosures(
    engine: Engine,
    identity: StaffIdentity,
    workspace_slug: str,
    first: date | None = None,
    last: date | None = None,
    patient: str | None = None,
) -> DisclosureReport:
    """Every delivered export of the workspace (oldest first), optionally delivered between
    two local days: the accounting of disclosures.

    With ``patient``, one patient's accounting (HIPAA §164.528 accounts for each disclosure
    of an individual's information): every delivered export that held at least one of that
    patient's events, whether the request named the patient (``patient:``) or not (a whole
    workspace's log, a team member's events, a category) — what the file held, not what the
    request said. What the file held is read from the log as it was when the export ran:
    the events matching the request's filter and this patient, sealed before the export's
    ``activity_log.export`` event (the export's snapshot was taken before it was recorded).
    Each entry then counts the patient's events in it."""
    _require_staff(identity)
    if patient is not None:
        (patient,) = _checked_patients((patient,)) or ("",)
        if not patient:
            raise UserError("give the patient id")
    try:
        return _disclosures(engine, identity, workspace_slug, first, last, patient)
    except UserError:
        raise
    except Exception as error:
        raise translate(error) from error


def _disclosures(
    engine: Engine,
    identity: StaffIdentity,
    workspace_slug: str,
    first: date | None,
    last: date | None,
    patient: str | None,
) -> DisclosureReport:
    with engine.connect() as connection:
        workspace = connection.execute(
            select(Workspace.id, Workspace.name, Workspace.timezone, Workspace.is_system).where(
                Workspace.slug == workspace_slug
            )
        ).first()
        if workspace is None or workspace.is_system:
            raise UserError(f"no workspace with the slug {workspace_slug!r}")
        # The export events read below are the workspace's log, and for one patient which
        # of their events each export held: an accounting is a view of the log, recorded
        # (naming the patient) like any report's, from the app or the command line. READ
        # COMMITTED: this connection's next statements see the view recorded on another one.
        terms = (Term("patient", patient),) if patient is not None else ()
        access_log.record_view(
            engine, identity, EventFilter(workspace_ids=(workspace.id,), terms=terms), "disclosures"
        )
        statement = select(Row).where(
            Row.workspace_id == workspace.id, Row.status == Status.DELIVERED.value
        )
        if first is not None or last is not None:
            start, end = day_range(first or FIRST_DAY, last or LAST_DAY, workspace.timezone)
            statement = statement.where(Row.delivered_at >= start, Row.delivered_at < end)
        rows = connection.execute(statement.order_by(Row.delivered_at, Row.id)).all()
        delivered_events = dict(
            connection.execute(
                select(ActivityEvent.resource_id, ActivityEvent.id).where(
                    ActivityEvent.workspace_id == workspace.id,
                    ActivityEvent.action == Operation.DELIVER.action,
                )
            ).all()
        )
        held: dict[int, int] = {}
        if patient is not None:
            held = _patient_events_held(connection, workspace.id, rows, patient)
    entries = []
    for r in rows:
        if r.delivered_at is None or (patient is not None and not held.get(r.id)):
            continue
        description = r.description or ""
        if patient is not None:
            scoped = patient in (json.loads(r.filters) if r.filters else {}).get("patient", [])
            description = f"{PATIENT_SCOPED if scoped else CONTAINING}. {description}"
        entries.append(
            Disclosure(
                delivered_at=r.delivered_at,
                recipient=r.recipient or r.requester_email,
                purpose=r.purpose,
                description=description,
                requester=f"{r.requester_name} <{r.requester_email}>",
                ticket=r.ticket,
                rows=held[r.id] if patient is not None else (r.export_rows or 0),
                event_id=int(delivered_events.get(str(r.id), 0)),
                package_sha256=r.package_sha256 or "",
            )
        )
    period = f"delivered {first or 'from the first request'} to {last or 'today'}"
    return DisclosureReport(
        workspace_slug, workspace.name, workspace.timezone, period, entries, patient
    )


def _patient_events_held(
    connection: Connection, workspace_id: int, rows: Sequence[Any], patient: str
) -> dict[int, int]:
    """``{request id: how many of the patient's events its delivered file held}``."""
    from nvadmin.query.filters import where_clause

    recorded: dict[tuple[str, str], int] = {}  # (ticket, sha256) -> the export event's seq
    for seq, details in connection.execute(
        select(ActivityEvent.seq, ActivityEvent.details).where(
            ActivityEvent.workspace_id == workspace_id,
            ActivityEvent.category == "activity_log_access",
            ActivityEvent.action == "activity_log.export",
        )
    ):
        facts = json.loads(details or "{}")
        key = (str(facts.get("ticket")), str(facts.get("sha256")))
        recorded[key] = min(recorded.get(key, seq), seq)
    held: dict[int, int] = {}
    for r in rows:
        bound = recorded.get((r.ticket, str(r.export_sha256)))
        if r.delivered_at is None or bound is None:
            continue
        view = _event_filter(
            r.workspace_id,
            r.first_day,
            r.last_day,
            r.zone,
            json.loads(r.filters) if r.filters else {},
        )
        held[r.id] = int(
            connection.execute(
                select(func.count())
                .select_from(ActivityEvent)
                .where(
                    where_clause(view),
                    ActivityEvent.patient_id == patient,
                    ActivityEvent.seq < bound,
                )
            ).scalar_one()
        )
    return held


def _event_filter(
    workspace_id: int, first: date, last: date, zone: str, filters: Mapping[str, list[str]]
) -> EventFilter:
    """The events a request's export reads: its workspace, its days in its zone, its filters."""
    start, end = day_range(first, last, zone)
    terms = [Term(name, value) for name in FILTER_KEYS for value in filters.get(name, [])]
    return EventFilter(workspace_ids=(workspace_id,), start=start, end=end, terms=tuple(terms))


def disclosure_report(report: DisclosureReport, identity: StaffIdentity) -> Report:
    """The accounting as one of the app's reports: shown, printed, saved as PDF or CSV by the
    same machinery as the patient-access and user-activity reports."""
    now = datetime.now(UTC).astimezone(zone_info(report.zone))
    patient: list[tuple[str, str]] = []
    subject = f"{report.workspace_name} ({report.workspace_slug})"
    if report.patient is not None:
        subject = f"patient {report.patient}, {subject}"
        patient = [
            ("Patient", report.patient),
            (
                "Which exports",
                "every delivered export that held this patient's events (requests naming the "
                "patient and wider exports alike); Events: this patient's events in each",
            ),
        ]
    return Report(
        kind=DISCLOSURES,
        subject=subject,
        header=[
            ("Workspace", f"{report.workspace_name} ({report.workspace_slug})"),
            *patient,
            ("Covers", report.period),
            ("Time zone", report.zone),
            ("Disclosures", f"{len(report.entries):,}"),
            ("Produced by", f"{identity.display_name} <{identity.email}> ({identity.role})"),
            ("Produced at", now.isoformat(sep=" ", timespec="seconds")),
            (
                "Source",
                "delivered export requests (HIPAA §164.528: date, recipient, description, purpose)",
            ),
        ],
        columns=DISCLOSURE_COLUMNS,
        sections=[
            ReportSection(
                title="Delivered exports",
                rows=[
                    ReportRow(entry.cells(report.zone), event_id=entry.event_id)
                    for entry in report.entries
                ],
            )
        ],
        row_count=len(report.entries),
        counted="disclosures",
    )
