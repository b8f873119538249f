"""The event filter: one query object shared by the browser, exports, reports and case files.

A filter is plain data (safe to hand to a worker thread, to save as a search, to write into an
export manifest). :func:`conditions` turns it into SQL with bound parameters only; field names
come from an allow-list, never from user text.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_

from nvadmin.audit.taxonomy import Category
from nvadmin.db.models import ActivityEvent as E

# Filterable fields: the name used in terms and the search bar -> column.
FIELDS: dict[str, Any] = {
    "user": E.actor_email,
    "name": E.actor_name,
    "role": E.actor_role,
    "actor_type": E.actor_type,
    "action": E.action,
    "category": E.category,
    "outcome": E.outcome,
    "patient": E.patient_id,
    "ip": E.ip,
    "resource_type": E.resource_type,
    "resource": E.resource_id,
    "session": E.session_id,
    "request": E.request_id,
}


@dataclass(frozen=True, slots=True)
class Term:
    """``field = value`` (``!=`` when negated).

    Same-field terms are OR-ed (several users at once); negated terms are AND-ed.
    """

    field: str
    value: str
    negate: bool = False

    def __post_init__(self) -> None:
        if self.field not in FIELDS:
            raise ValueError(f"unknown filter field {self.field!r}")


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events to show or export. Times are aware instants: ``start`` inclusive,
    ``end`` exclusive. An empty ``workspace_ids`` means every workspace (admins only)."""

    workspace_ids: tuple[int, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    terms: tuple[Term, ...] = ()
    text: str = ""
    include_log_access: bool = True

    def __post_init__(self) -> None:
        for instant in (self.start, self.end):
            if instant is not None and instant.tzinfo is None:
                raise ValueError("filter times must be timezone-aware")
        if self.start and self.end and self.start >= self.end:
            raise ValueError("the start of the range must be before its end")

    def with_terms(self, *terms: Term) -> EventFilter:
        return replace(self, terms=(*self.terms, *terms))

    def values(self, field_name: str, *, negate: bool = False) -> list[str]:
        return [t.value for t in self.terms if t.field == field_name and t.negate == negate]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, for saved searches, manifests and the log's view events."""
        data = asdict(self)
        data["workspace_ids"] = list(self.workspace_ids)
        data["start"] = self.start.isoformat() if self.start else None
        data["end"] = self.end.isoformat() if self.end else None
        data["terms"] = [asdict(t) for t in self.terms]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EventFilter:
        return cls(
            workspace_ids=tuple(int(w) for w in data.get("workspace_ids", ())),
            start=datetime.fromisoformat(data["start"]) if data.get("start") else None,
            end=datetime.fromisoformat(data["end"]) if data.get("end") else None,
            terms=tuple(Term(**t) for t in data.get("terms", ())),
            text=data.get("text", ""),
            include_log_access=bool(data.get("include_log_access", True)),
        )


def escape_like(value: str) -> str:
    """Escape LIKE wildcards so user text matches literally (with ``escape='\\\\'``)."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def conditions(event_filter: EventFilter) -> list[ColumnElement[bool]]:
    """SQL conditions for a filter, with every value bound."""
    f = event_filter
    where: list[ColumnElement[bool]] = []
    if f.workspace_ids:
        where.append(E.workspace_id.in_(f.workspace_ids))
    if f.start is not None:
        where.append(E.occurred_at >= f.start)
    if f.end is not None:
        where.append(E.occurred_at < f.end)
    for name in _fields_in(f.terms):
        column = FIELDS[name]
        wanted = f.values(name)
        if wanted:
            where.append(column.in_(wanted))
        for value in f.values(name, negate=True):
            # NULL-safe: excluding a value keeps the rows that have no value at all.
            where.append(or_(column.is_(None), column != value))
    if not f.include_log_access:
        where.append(E.category != Category.LOG_ACCESS.value)
    if f.text.strip():
        pattern = f"%{escape_like(f.text.strip())}%"
        where.append(
            or_(
                E.details.ilike(pattern, escape="\\"),
                E.actor_name.ilike(pattern, escape="\\"),
                E.actor_email.ilike(pattern, escape="\\"),
                E.resource_id.ilike(pattern, escape="\\"),
            )
        )
    return where


def where_clause(event_filter: EventFilter) -> ColumnElement[bool]:
    parts = conditions(event_filter)
    return and_(*parts) if parts else and_(True)


def _fields_in(terms: Iterable[Term]) -> list[str]:
    seen: dict[str, None] = {}
    for term in terms:
        seen.setdefault(term.field)
    return list(seen)
