"""The audit database schema as typed SQLAlchemy models.

The event table is append-only (enforced by triggers, see the initial migration) and on
PostgreSQL range-partitioned by month on ``occurred_at``; its primary key there is
``(id, occurred_at, workspace_id)``: PostgreSQL requires the partition key in every unique
index, and a database sharded by workspace (docs/scaling.md) the distribution column
``workspace_id``. Every table whose rows belong to a workspace has, on PostgreSQL, a primary
key ``(id, workspace_id)`` and unique keys that start with ``workspace_id`` (migration 0006);
the models declare ``id`` alone as the identity, which it still is (one sequence per table),
and SQLite keeps ``id`` as its rowid. tests/unit/test_distribution_keys.py keeps the rule and
names the tables that belong to no workspace.

The actor's e-mail, name and role are copied onto each event: an audit record must keep
saying who someone was *at the time*, whatever happens to their account later.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Sequence,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from nvadmin.db.types import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT on PostgreSQL; INTEGER on SQLite so the id is the rowid and auto-assigned.
BigId = BigInteger().with_variant(Integer(), "sqlite")
EVENT_ID_SEQUENCE = Sequence("activity_events_id_seq", optional=True)

SYSTEM_WORKSPACE_SLUG = "nvadmin-staff"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Workspace(Base):
    """One clinic. The staff workspace (``is_system``) holds nvadmin's own staff events."""

    __tablename__ = "workspaces"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    # Working hours in the workspace's own zone, used by after-hours flags.
    work_day_start: Mapped[int] = mapped_column(Integer, default=7)
    work_day_end: Mapped[int] = mapped_column(Integer, default=19)
    is_system: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())


class TeamMember(Base):
    __tablename__ = "team_members"
    __table_args__ = (UniqueConstraint("workspace_id", "email"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"), index=True)
    email: Mapped[str] = mapped_column(String(320), index=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(40))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())


class ApiClient(Base):
    __tablename__ = "api_clients"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    client_key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())


class ActivityEvent(Base):
    __tablename__ = "activity_events"
    __table_args__ = (
        Index("ix_activity_events_workspace_time", "workspace_id", "occurred_at", "id"),
        Index("ix_activity_events_time", "occurred_at", "id"),
        Index("ix_activity_events_actor_time", "actor_email", "occurred_at", "id"),
        Index("ix_activity_events_patient_time", "patient_id", "occurred_at"),
        Index("ix_activity_events_action_time", "action", "occurred_at"),
        Index("ix_activity_events_workspace_seq", "workspace_id", "seq"),
        # One category in time order (migration 0002); also the category sort.
        Index(
            "ix_activity_events_workspace_category_time",
            "workspace_id",
            "category",
            "occurred_at",
            "id",
        ),
        # Every other sort the browser offers (migration 0004; see paging.order_columns).
        *(
            Index(name, "workspace_id", text(value), "occurred_at", "id")
            for name, value in (
                ("ix_activity_events_workspace_member_order", "actor_name"),
                ("ix_activity_events_workspace_role_order", "coalesce(actor_role, '')"),
                ("ix_activity_events_workspace_action_order", "action"),
                ("ix_activity_events_workspace_outcome_order", "outcome"),
                ("ix_activity_events_workspace_patient_order", "coalesce(patient_id, '')"),
                ("ix_activity_events_workspace_resource_order", "coalesce(resource_id, '')"),
                ("ix_activity_events_workspace_ip_order", "coalesce(ip, '')"),
            )
        ),
    )

    id: Mapped[int] = mapped_column(BigId, EVENT_ID_SEQUENCE, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor_email: Mapped[str | None] = mapped_column(String(320))
    actor_name: Mapped[str] = mapped_column(String(200))
    actor_role: Mapped[str | None] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(16))
    failure_reason: Mapped[str | None] = mapped_column(String(200))
    resource_type: Mapped[str | None] = mapped_column(String(40))
    resource_id: Mapped[str | None] = mapped_column(String(100))
    patient_id: Mapped[str | None] = mapped_column(String(40))
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(Text)
    session_id: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    # Canonical compact JSON text, exactly as hashed and exported (see audit.chain).
    details: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class ChainHead(Base):
    """The newest link of a workspace's chain; writers lock this row to append."""

    __tablename__ = "chain_heads"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class ChainCheckpoint(Base):
    """A signed statement "workspace W's chain had N events ending in hash H"."""

    __tablename__ = "chain_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"), index=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))


class Staff(Base):
    """An nvadmin user: support, compliance or admin staff."""

    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(200))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RememberToken(Base):
    """A "remember me" token; only its SHA-256 is stored, the token itself sits in the keyring."""

    __tablename__ = "remember_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Meta(Base):
    """Facts about this database, e.g. ``demo = 1`` for the generated demo database."""

    __tablename__ = "nvadmin_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class ExportRequest(Base):
    """A clinic's request for its Activity Log ("workspace X, from D1 to D2"), from receipt to
    delivery. What is delivered is a disclosure (HIPAA §164.528): date, recipient, description
    and purpose are kept here for the accounting of disclosures. Rows change only through
    :mod:`nvadmin.export.requests` (on PostgreSQL through ``nvadmin_export_request``), each
    change chained as an event in the workspace's log."""

    __tablename__ = "export_requests"
    __table_args__ = (
        UniqueConstraint("workspace_id", "ticket"),
        Index("ix_export_requests_status_due", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    ticket: Mapped[str] = mapped_column(String(100))
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)  # included
    zone: Mapped[str] = mapped_column(String(64))  # the zone the days are in
    # Optional narrowing as canonical JSON: {"user": [...], "category": [...]}.
    filters: Mapped[str | None] = mapped_column(Text)
    requester_email: Mapped[str] = mapped_column(String(320))
    requester_name: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(Text)
    recipient: Mapped[str] = mapped_column(String(300))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))
    # The requester check made at receipt: its outcome code and the words shown to staff.
    verification: Mapped[str] = mapped_column(String(32))
    verification_note: Mapped[str] = mapped_column(Text)
    override_reason: Mapped[str | None] = mapped_column(Text)
    override_by: Mapped[str | None] = mapped_column(String(320))
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    assigned_to: Mapped[str | None] = mapped_column(String(320))
    received_by: Mapped[str] = mapped_column(String(320))
    # Evidence of the export: the files, their SHA-256 and the row count.
    export_path: Mapped[str | None] = mapped_column(Text)
    export_sha256: Mapped[str | None] = mapped_column(String(64))
    manifest_path: Mapped[str | None] = mapped_column(Text)
    manifest_sha256: Mapped[str | None] = mapped_column(String(64))
    export_rows: Mapped[int | None] = mapped_column(BigInteger)
    description: Mapped[str | None] = mapped_column(Text)
    exported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Evidence of the delivery, when it was sent as an encrypted package: the file and its hash.
    package_path: Mapped[str | None] = mapped_column(Text)
    package_sha256: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
