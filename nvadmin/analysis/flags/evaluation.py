"""Running the flag rules over a filter's workspaces and range.

Rules work per workspace, in the workspace's own time zone and working hours
(``workspaces.work_day_start`` / ``work_day_end``, local hours, changeable per workspace).

Rules look at the whole of the filter's workspaces and time range: a baseline, a burst or a
"first time from this address" is only true of all the activity, never of a slice of it. The
browser's other search terms (team members, IP, patient, free text, ...) then choose which
findings are listed: those with at least one event the search matches. Searching for one
member shows that member's flags; the findings left out are counted (``FlagReport.hidden``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.exc import SQLAlchemyError

from nvadmin.analysis.flags.catalog import RULES
from nvadmin.analysis.flags.check import WorkspaceCheck
from nvadmin.analysis.flags.report import Finding, FlagReport, FlagResult
from nvadmin.analysis.insights import analytic, resolve_range
from nvadmin.audit import access_log, server_events
from nvadmin.audit.chain import append_in
from nvadmin.db.engine import translate
from nvadmin.db.models import ActivityEvent as E
from nvadmin.db.models import Workspace
from nvadmin.db.taxonomy import WORKING_HOURS_CHANGED
from nvadmin.errors import UserError
from nvadmin.identity import Permission, StaffIdentity
from nvadmin.query.filters import EventFilter, where_clause
from nvadmin.query.paging import authorize, browse_connection
from nvadmin.query.workspaces import in_scope
from nvadmin.workers.cancel import Cancelled, CancelToken, no_progress

log = logging.getLogger(__name__)

FLAGS_TIMEOUT_MS = 300_000
ProgressFn = Callable[[int, int | None, str], None]


def evaluate(
    engine: Engine,
    identity: StaffIdentity,
    event_filter: EventFilter,
    thresholds: Mapping[str, Mapping[str, float]] | None = None,
    *,
    rules: tuple[str, ...] | None = None,
    token: CancelToken | None = None,
    progress: ProgressFn = no_progress,
) -> FlagReport:
    """Run the flag rules (by name; default: all) over the filter's workspaces and range."""
    authorize(identity, event_filter)
    chosen = [RULES[name] for name in (rules or tuple(RULES))]
    try:
        with browse_connection(engine, FLAGS_TIMEOUT_MS, token) as connection:
            analytic(connection)
            start, end = resolve_range(connection, event_filter)
            base = EventFilter(workspace_ids=event_filter.workspace_ids, start=start, end=end)
            workspaces = in_scope(connection, event_filter.workspace_ids)
            results = {r.name: FlagResult(r, r.values(thresholds), "") for r in chosen}
            steps = max(1, len(workspaces) * len(chosen))
            done = 0
            for workspace in workspaces:
                try:
                    zone = ZoneInfo(workspace.timezone)
                except (KeyError, ValueError):
                    log.warning(
                        "workspace %s has unknown zone %r", workspace.slug, workspace.timezone
                    )
                    zone = ZoneInfo("UTC")
                check = WorkspaceCheck(connection, workspace, zone, start, end, token, thresholds)
                for rule in chosen:
                    if token is not None:
                        token.check()
                    progress(done, steps, f"{rule.title} — {workspace.name}")
                    results[rule.name].findings.extend(rule.find(check))
                    done += 1
            search = event_filter
            scope = replace(base, terms=search.terms, text=search.text, zone=search.zone)
            hidden = 0
            if scope.terms or scope.text.strip():
                for result in results.values():
                    kept = [f for f in result.findings if _touches(connection, f, scope, token)]
                    hidden += len(result.findings) - len(kept)
                    result.findings = kept
            hours = workspaces[0].hours_text() if len(workspaces) == 1 else "each workspace's"
            for result in results.values():
                values: dict[str, float | str] = dict(result.values)
                if result.rule.uses_working_hours:
                    values["hours"] = hours
                result.explanation = result.rule.explain(values)
                result.findings.sort(key=lambda f: (f.first, f.workspace, f.subject))
            progress(steps, steps, "Done")
    except SQLAlchemyError as error:
        if token is not None and token.cancelled:
            raise Cancelled() from error
        raise translate(error) from error
    return FlagReport(scope, start, end, workspaces, list(results.values()), hidden)


def _touches(
    connection: Connection, finding: Finding, scope: EventFilter, token: CancelToken | None
) -> bool:
    """Whether one of the finding's events matches the search."""
    if token is not None:
        token.check()
    statement = select(E.id).where(where_clause(finding.event_filter), where_clause(scope)).limit(1)
    return connection.execute(statement).first() is not None


# -- working hours ----------------------------------------------------------------------------


def set_working_hours(
    engine: Engine, identity: StaffIdentity, workspace_id: int, start: int, end: int
) -> None:
    """Change a workspace's working hours (local hours, ``end`` exclusive)."""
    identity.require(Permission.REPORTS)
    if not (0 <= start <= 23 and 1 <= end <= 24 and start != end):
        raise UserError("working hours must be two different hours between 0 and 24")
    if server_events.is_staff_login(engine):  # PostgreSQL: the server checks and writes
        server_events.set_working_hours(engine, workspace_id, start, end)
        return
    with engine.begin() as connection:
        before = connection.execute(
            select(Workspace.work_day_start, Workspace.work_day_end).where(
                Workspace.id == workspace_id, Workspace.is_system.is_(False)
            )
        ).first()
        if before is None:
            raise UserError(f"workspace {workspace_id} does not exist in this database")
        connection.execute(
            update(Workspace)
            .where(Workspace.id == workspace_id)
            .values(work_day_start=start, work_day_end=end)
        )
        # As the server does (migration 0009): the change is in the workspace's own log.
        details = {"work_day_start": start, "work_day_end": end,
                   "was_work_day_start": before[0], "was_work_day_end": before[1]}  # fmt: skip
        draft = access_log.staff_draft(
            identity, WORKING_HOURS_CHANGED, details,
            resource_type="workspace", resource_id=str(workspace_id),
        )  # fmt: skip
        append_in(connection, workspace_id, [draft])
