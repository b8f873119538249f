"""What the activity browser shows, kept apart from its widgets (no Qt import here).

The window's widgets (workspace picker, filter bar, table header) display this state and report
what the staff member changes; every decision about it — which workspaces a search covers, the
zone times are read in, whether a view is logged, what a preset or a saved search means, when
the workspace column comes and goes — is made here, so it is tested without a screen.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nvadmin.db.taxonomy import Category
from nvadmin.errors import UserError
from nvadmin.identity import Permission, StaffIdentity
from nvadmin.query.filters import EventFilter, Term
from nvadmin.query.paging import Sort, authorize
from nvadmin.query.search import Search, SearchError, format_search, parse
from nvadmin.query.workspaces import WorkspaceInfo

log = logging.getLogger(__name__)

UTC_ZONE = ZoneInfo("UTC")


@dataclass(frozen=True, slots=True)
class SavedSearch:
    """A search kept by name: the search-bar text (so "last 24 hours" stays relative), the
    workspace by id (None: all workspaces) and the sort."""

    name: str
    text: str
    workspace_id: int | None
    sort_key: str = "time"
    descending: bool = True


class SavedSearchBook(Protocol):
    """Where saved searches are kept (the staff member's UI settings)."""

    def all(self) -> list[SavedSearch]: ...

    def save(self, search: SavedSearch) -> None: ...

    def delete(self, name: str) -> None: ...


class Refused(UserError):
    """What the staff member asked for cannot be shown; the message says why."""


@dataclass(frozen=True, slots=True)
class Preset:
    """A ready-made search of the Presets menu."""

    label: str
    search: Search


FAILED_SIGN_INS = Preset(
    "Failed sign-ins, last 24 h",
    Search(terms=(Term("category", Category.FAILED_SIGN_INS.value),), last="24h"),
)
LOG_ACCESS = Preset(
    "Activity log access", Search(terms=(Term("category", Category.LOG_ACCESS.value),))
)


def user_search(email: str | None, name: str) -> Search:
    """Everything one team member did (by e-mail, or by name when there is none)."""
    return Search(terms=(Term("user", email) if email else Term("name", name),))


def patient_search(patient: str) -> Search:
    """Who accessed one patient."""
    return Search(terms=(Term("patient", patient),))


def with_value(search: Search, field: str, value: str, *, negate: bool = False) -> Search:
    """``search`` narrowed to (or, negated, excluding) one cell's value."""
    term = Term(field, value, negate)
    if field == "category" and value == Category.LOG_ACCESS.value and negate:
        return replace(search, include_log_access=False)
    if term in search.terms:
        return search
    if not negate:
        # "Filter by" narrows this field to the value (OR-ing would widen it).
        search = replace(
            search, terms=tuple(t for t in search.terms if t.field != field or t.negate)
        )
    return search.with_terms(term)


def landing_note(
    asked: datetime,
    landed: datetime | None,
    oldest: bool,
    event_filter: EventFilter | None,
    zone: tzinfo,
) -> str | None:
    """What Go to time says when it could not land at or just after ``asked``: ``landed`` is
    the time of the event it selected (None: the view has none), ``oldest`` whether that is
    the view's oldest event. None when it landed where asked, which the table shows itself.

    Outside the view it goes to the nearest event (the newest or the oldest) rather than
    staying put: that is where a reader who asked for a later or earlier time looks next,
    and the note says why the time selected is not the one typed, naming the filter's end
    or start when that is what leaves the moment out. The filter itself is never widened
    behind the reader's back."""
    if landed is None:
        return "No events match these filters: there is nothing to go to."
    moment = _moment_text(asked, zone)
    start, end = (event_filter.start, event_filter.end) if event_filter else (None, None)
    if landed < asked:  # nothing at or after it: the newest event
        reason = ""
        if end is not None and asked >= end:
            reason = f" (the filter ends {_range_end_text(end, zone)})"
        return f"{moment} is after the newest event in this view{reason}; showing the newest."
    if oldest and landed > asked:
        reason = ""
        if start is not None and asked < start:
            reason = f" (the filter starts {_range_start_text(start, zone)})"
        return f"{moment} is before the oldest event in this view{reason}; showing the oldest."
    return None


def _moment_text(instant: datetime, zone: tzinfo) -> str:
    """A moment as the table shows times, without the seconds when there are none (so a
    typed 2026-11-05 10:06 reads back as typed)."""
    local = instant.astimezone(zone)
    if local.microsecond:
        return local.strftime("%Y-%m-%d %H:%M:%S.%f")
    return local.strftime("%Y-%m-%d %H:%M:%S" if local.second else "%Y-%m-%d %H:%M")


def _range_start_text(start: datetime, zone: tzinfo) -> str:
    """A range's first day, or its first moment when it starts within a day."""
    local = start.astimezone(zone)
    return local.date().isoformat() if local.time() == time(0) else _moment_text(start, zone)


def _range_end_text(end: datetime, zone: tzinfo) -> str:
    """A range's last day (its exclusive midnight is the day before, as the filter bar's
    "To" shows it), or its end moment when it ends within a day."""
    local = end.astimezone(zone)
    if local.time() == time(0):
        return (local.date() - timedelta(days=1)).isoformat()
    return _moment_text(end, zone)


@dataclass(frozen=True, slots=True)
class ViewRequest:
    """One query for the table: its filter and whether opening it is logged."""

    event_filter: EventFilter
    log_view: bool


class BrowserState:
    """The browser's workspace choice, sort, time display and the searches it ran."""

    def __init__(self, identity: StaffIdentity, *, read_only: bool = False) -> None:
        self.identity = identity
        self.read_only = read_only  # a case file: nothing is logged, there is no log
        self.workspaces: tuple[WorkspaceInfo, ...] = ()
        self.loaded = False  # the workspaces were listed
        self.chosen = False  # a workspace (or all of them) was chosen
        self.workspace: WorkspaceInfo | None = None  # None: all workspaces
        # A filter over several workspaces (from a report or insights) keeps them all while
        # its first workspace stays the one chosen.
        self.extra_workspaces: tuple[int, ...] = ()
        self.pending_filter: EventFilter | None = None  # asked for before the list came
        self.sort = Sort()
        self.times_in_utc = False
        self.locked = False
        self._last_logged: tuple[tuple[int, ...], Search] | None = None
        self._workspace_column_for_several = False

    # -- workspaces -----------------------------------------------------------------------------

    @property
    def may_browse_all(self) -> bool:
        """ "All workspaces" is offered: to admins, but not in a case file of one workspace,
        where it is that workspace (and the case file's own indexes serve that workspace's
        orders only: docs/compliance.md)."""
        return self.identity.can(Permission.ALL_WORKSPACES) and self.only_workspace() is None

    def only_workspace(self) -> WorkspaceInfo | None:
        """The workspace of a case file that holds one, else None."""
        if self.read_only and len(self.workspaces) == 1:
            return self.workspaces[0]
        return None

    def set_workspaces(self, workspaces: list[WorkspaceInfo]) -> None:
        self.workspaces = tuple(workspaces)
        self.loaded = True

    def workspace_by_id(self, workspace_id: int) -> WorkspaceInfo | None:
        return next((w for w in self.workspaces if w.id == workspace_id), None)

    def workspace_names(self) -> dict[int, str]:
        return {w.id: w.name for w in self.workspaces}

    def choose(self, workspace: WorkspaceInfo | None, *, keep: tuple[int, ...] = ()) -> None:
        """Browse ``workspace`` (None: all of them); ``keep``: the workspaces of a filter
        over several."""
        if workspace is None and not self.may_browse_all:
            raise Refused("Only admins may browse all workspaces at once.")
        self.workspace = workspace
        self.chosen = True
        self.extra_workspaces = keep

    def first_choice(self, remembered: str | None) -> tuple[bool, WorkspaceInfo | None]:
        """The workspace to open on: the one remembered from last time ("" for all), else the
        first clinic, else all workspaces for an admin. ``(False, None)``: none may be
        browsed."""
        if self.only_workspace() is not None:
            return True, self.only_workspace()
        allow_all = self.may_browse_all
        if remembered == "" and allow_all:
            return True, None
        if remembered:
            try:
                choice = self.workspace_by_id(int(remembered))
            except ValueError:
                choice = None
            if choice is not None:
                return True, choice
        clinics = [w for w in self.workspaces if not w.is_system]
        if clinics:
            return True, clinics[0]
        return allow_all, None

    def workspace_ids(self) -> tuple[int, ...]:
        """The workspaces a search covers; () for all of them."""
        extra, current = self.extra_workspaces, self.workspace
        if len(extra) > 1 and current is not None and current.id in extra:
            return extra
        return () if current is None else (current.id,)

    def several_workspaces(self) -> bool:
        return self.workspace is None or len(self.workspace_ids()) > 1

    def target_of(self, event_filter: EventFilter) -> WorkspaceInfo | None:
        """The workspace to choose to show ``event_filter``; :class:`Refused` says why not."""
        if not event_filter.workspace_ids:
            if self.only_workspace() is not None:
                return self.only_workspace()
            if not self.may_browse_all:
                raise Refused("Only admins may browse all workspaces at once.")
            return None
        workspace = self.workspace_by_id(event_filter.workspace_ids[0])
        if workspace is None:
            raise Refused(
                f"Workspace {event_filter.workspace_ids[0]} does not exist in this database."
            )
        return workspace

    # -- time ---------------------------------------------------------------------------------

    def display_zone(self) -> ZoneInfo:
        """The zone times are shown and typed in: the workspace's, or UTC."""
        workspace = self.workspace
        if self.times_in_utc or workspace is None:
            return UTC_ZONE
        try:
            return ZoneInfo(workspace.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("unknown time zone %r for workspace %s", workspace.timezone, workspace.id)
            return UTC_ZONE

    # -- columns ------------------------------------------------------------------------------

    def workspace_column(self, hidden: bool) -> bool | None:
        """Whether the workspace column should now be hidden (None: leave it as it is).

        Several workspaces: show which one each event is from; back to one workspace, the
        column goes again unless the staff member had shown it themselves."""
        several = self.several_workspaces()
        if several and hidden:
            self._workspace_column_for_several = True
            return False
        if not several and self._workspace_column_for_several:
            self._workspace_column_for_several = False
            return True
        return None

    # -- running searches -----------------------------------------------------------------------

    def may_run(self) -> bool:
        return self.loaded and self.chosen and not self.locked

    def request(self, search: Search, *, log_view: bool | None = None) -> ViewRequest:
        """The query for ``search`` over the chosen workspaces. The view is logged once per
        new search (``log_view`` overrides that), never for a case file. Raises
        :class:`~nvadmin.errors.AccessDenied` or ``ValueError`` for a search that may not or
        cannot run."""
        ids = self.workspace_ids()
        event_filter = search.to_filter(ids)
        authorize(self.identity, event_filter)
        key = (ids, search)
        if log_view is None:
            log_view = key != self._last_logged
        self._last_logged = key
        return ViewRequest(event_filter, log_view and not self.read_only)

    # -- saved searches -------------------------------------------------------------------------

    def saved(self, name: str, search: Search) -> SavedSearch:
        """``search`` kept under ``name`` with the workspace and sort now shown."""
        return SavedSearch(
            name=name,
            text=format_search(search, self.display_zone()),
            workspace_id=None if self.workspace is None else self.workspace.id,
            sort_key=self.sort.key,
            descending=self.sort.descending,
        )

    def open_saved(self, saved: SavedSearch) -> Search:
        """Choose the saved search's workspace and sort; its search, read in that workspace's
        zone. :class:`Refused` (nothing changed) when it cannot be opened."""
        if saved.workspace_id is None:
            workspace = self.only_workspace()
            if workspace is None and not self.may_browse_all:
                raise Refused(
                    f"The saved search “{saved.name}” covers all workspaces, which only admins "
                    "may browse."
                )
        else:
            workspace = self.workspace_by_id(saved.workspace_id)
            if workspace is None:
                raise Refused(
                    f"The saved search “{saved.name}” is for workspace {saved.workspace_id}, "
                    "which does not exist in this database."
                )
        self.choose(workspace)
        try:
            search = parse(saved.text, self.display_zone())
        except SearchError as error:
            raise Refused(f"The saved search “{saved.name}” cannot be read: {error}") from None
        try:
            self.sort = Sort(saved.sort_key, saved.descending)
        except ValueError:
            self.sort = Sort()
        return search
