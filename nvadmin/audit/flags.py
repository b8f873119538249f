"""Security monitoring: rule-based flags over a workspace's activity.

Each rule is a plain, explainable statement with thresholds (defaults below, every one
changeable), evaluated by the database: counts, windows and baselines are ``GROUP BY``,
self-joins and window functions in SQL; Python only merges the few matching windows into
findings. Every finding carries the :class:`EventFilter` that shows its events, and its event
count is the count of exactly that filter, so "show these events" never disagrees with the
number on the flag.

Rules work per workspace, in the workspace's own time zone and working hours
(``workspaces.work_day_start`` / ``work_day_end``, local hours, changeable per workspace):

* ``failed_sign_in_burst`` — N failed sign-ins for one account within M minutes (a burst that
  then succeeds from the same address is reported by ``failed_burst_then_success`` instead);
* ``ip_failed_sign_in_burst`` — one address failing for N different accounts within M minutes;
* ``failed_burst_then_success`` — a failed burst followed by a successful sign-in from one of
  the burst's addresses within W minutes;
* ``after_hours`` — a team member's sign-ins or chart views outside working hours (one finding
  per member, local day and side of the working day: early or late);
* ``chart_view_spike`` — a member's chart views on one day at least K times their own daily
  mean over the 30 days before (days they viewed charts), and at least E more;
* ``many_distinct_patients`` — a member viewing the charts of at least P distinct patients in
  one day, and at least K times their own daily mean of distinct patients;
* ``api_spike`` — an API client's hour with an error rate of at least R (and at least Q
  requests), or at least V times its mean hourly volume over the 30 days before (hours are UTC
  hours; findings are runs of consecutive flagged hours);
* ``new_ip`` — a successful sign-in from an address the member never signed in from before,
  once the member has a history of at least D days.

Rules look at the whole of the filter's workspaces and time range: a baseline, a burst or a
"first time from this address" is only true of all the activity, never of a slice of it. The
browser's other search terms (team members, IP, patient, free text, ...) then choose which
findings are listed: those with at least one event the search matches. Searching for one
member shows that member's flags; the findings left out are counted (``FlagReport.hidden``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, func, select, text, update
from sqlalchemy.exc import SQLAlchemyError

from nvadmin.audit.insights import analytic, resolve_range
from nvadmin.audit.localtime import offset_spans, to_utc
from nvadmin.audit.paging import authorize, browse_connection
from nvadmin.audit.query import EventFilter, Term, where_clause
from nvadmin.audit.taxonomy import ACTIONS, Category
from nvadmin.auth import server_events
from nvadmin.auth.roles import Permission, StaffIdentity
from nvadmin.db.engine import translate
from nvadmin.db.models import ActivityEvent as E
from nvadmin.db.models import Workspace
from nvadmin.db.types import sqlite_timestamp
from nvadmin.errors import UserError
from nvadmin.workers.cancel import Cancelled, CancelToken, no_progress

log = logging.getLogger(__name__)

FLAGS_TIMEOUT_MS = 300_000


def _actions_in(category: Category) -> str:
    """``action IN (...)`` for a category: the same rows as ``category = ...`` (the category
    is derived from the action), but answered by the ``(action, occurred_at)`` index."""
    names = ", ".join(f"'{a}'" for a, (c, _label) in ACTIONS.items() if c is category)
    return f"action IN ({names})"


# Failed sign-ins are rare: the action index finds them without reading the workspace's other
# events. Chart views and API calls are a large share of all events: the workspace's own
# (workspace_id, occurred_at) index reads fewer rows for those, so they filter by category.
FAILED = _actions_in(Category.FAILED_SIGN_INS)
BASELINE_DAYS = 30
ProgressFn = Callable[[int, int | None, str], None]


@dataclass(frozen=True, slots=True)
class Threshold:
    key: str
    label: str
    default: float
    minimum: float
    maximum: float
    unit: str = ""
    decimals: int = 0


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    title: str
    explanation: str  # str.format()-ed with the threshold values
    thresholds: tuple[Threshold, ...]

    def values(
        self, overrides: Mapping[str, Mapping[str, float]] | None = None
    ) -> dict[str, float]:
        given = (overrides or {}).get(self.name, {})
        out = {}
        for t in self.thresholds:
            value = float(given.get(t.key, t.default))
            out[t.key] = min(t.maximum, max(t.minimum, value))
        return out

    def explain(self, values: Mapping[str, float | str]) -> str:
        shown = {k: _number(v) for k, v in values.items()}
        if "error_rate" in shown:
            shown["error_rate"] = f"{float(values['error_rate']) * 100:g}"
        return self.explanation.format(**shown)


def _number(value: float | str) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


RULES: dict[str, Rule] = {
    r.name: r
    for r in (
        Rule(
            "failed_sign_in_burst",
            "Burst of failed sign-ins for one account",
            "{failures} or more failed sign-ins for one account within {minutes} minutes "
            "(bursts followed by a success are listed separately).",
            (
                Threshold("failures", "Failed sign-ins", 5, 2, 1000),
                Threshold("minutes", "Within", 10, 1, 1440, "min"),
            ),
        ),
        Rule(
            "ip_failed_sign_in_burst",
            "One address failing for many accounts",
            "Failed sign-ins for {accounts} or more different accounts from one IP address "
            "within {minutes} minutes (password spraying).",
            (
                Threshold("accounts", "Different accounts", 5, 2, 1000),
                Threshold("minutes", "Within", 10, 1, 1440, "min"),
            ),
        ),
        Rule(
            "failed_burst_then_success",
            "Failed burst, then a successful sign-in",
            "{failures} or more failed sign-ins for one account within {minutes} minutes, then "
            "a successful sign-in from the same address within {success_minutes} minutes "
            "(possible account takeover).",
            (
                Threshold("failures", "Failed sign-ins", 5, 2, 1000),
                Threshold("minutes", "Within", 10, 1, 1440, "min"),
                Threshold("success_minutes", "Success within", 30, 1, 1440, "min"),
            ),
        ),
        Rule(
            "after_hours",
            "Access outside working hours",
            "Sign-ins or chart views by a team member outside the workspace's working hours "
            "({hours}, in its time zone).",
            (),
        ),
        Rule(
            "chart_view_spike",
            "Chart views far above the member's usual",
            "A team member's chart views on one day are at least {multiplier}x their own daily "
            "mean over the previous 30 days, and at least {min_extra} more (needs "
            "{min_days} days of history).",
            (
                Threshold("multiplier", "Times the usual", 3, 1.5, 100, "x", 1),
                Threshold("min_extra", "At least more", 50, 1, 100000, "views"),
                Threshold("min_days", "History needed", 5, 1, 30, "days"),
            ),
        ),
        Rule(
            "many_distinct_patients",
            "Unusually many distinct patients",
            "A team member viewed the charts of {patients} or more distinct patients in one "
            "day, at least {multiplier}x their own daily mean over the previous 30 days.",
            (
                Threshold("patients", "Distinct patients", 100, 5, 100000),
                Threshold("multiplier", "Times the usual", 3, 1, 100, "x", 1),
            ),
        ),
        Rule(
            "api_spike",
            "API error-rate or volume spike",
            "An API client's hour with at least {min_requests} requests of which "
            "{error_rate} % or more failed, or at least {volume_multiplier}x its mean hourly "
            "volume over the previous 30 days.",
            (
                Threshold("min_requests", "Requests in the hour", 50, 1, 1000000),
                Threshold("error_rate", "Error rate", 0.2, 0.01, 1, "", 2),
                Threshold("volume_multiplier", "Times the usual volume", 10, 2, 1000, "x", 1),
            ),
        ),
        Rule(
            "new_ip",
            "Sign-in from a new address",
            "A successful sign-in from an IP address the team member never signed in from "
            "before, once they have {history_days} days of history.",
            (Threshold("history_days", "History needed", 7, 1, 365, "days"),),
        ),
    )
}


@dataclass(frozen=True, slots=True)
class WorkspaceHours:
    id: int
    slug: str
    name: str
    timezone: str
    work_day_start: int
    work_day_end: int

    def hours_text(self) -> str:
        return f"{self.work_day_start:02d}:00-{self.work_day_end:02d}:00 {self.timezone}"


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    workspace_id: int
    workspace: str  # slug
    subject: str  # member e-mail, IP address or API client
    day: date  # local day in the workspace's zone
    first: datetime
    last: datetime
    events: int
    detail: str
    event_filter: EventFilter


@dataclass
class FlagResult:
    rule: Rule
    values: dict[str, float]
    explanation: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.findings)


@dataclass
class FlagReport:
    event_filter: EventFilter
    start: datetime
    end: datetime
    workspaces: list[WorkspaceHours]
    results: list[FlagResult]
    hidden: int = 0  # findings with no event matching the search's terms

    def findings(self) -> list[Finding]:
        return [f for r in self.results for f in r.findings]


# -- working hours ----------------------------------------------------------------------------


def workspaces_in_scope(connection: Connection, event_filter: EventFilter) -> list[WorkspaceHours]:
    statement = select(
        Workspace.id,
        Workspace.slug,
        Workspace.name,
        Workspace.timezone,
        Workspace.work_day_start,
        Workspace.work_day_end,
    ).order_by(Workspace.name, Workspace.id)
    if event_filter.workspace_ids:
        statement = statement.where(Workspace.id.in_(event_filter.workspace_ids))
    else:
        statement = statement.where(Workspace.is_system.is_(False))
    return [WorkspaceHours(*row) for row in connection.execute(statement)]


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
        done = connection.execute(
            update(Workspace)
            .where(Workspace.id == workspace_id)
            .values(work_day_start=start, work_day_end=end)
        )
        if done.rowcount != 1:
            raise UserError(f"workspace {workspace_id} does not exist in this database")


# -- SQL helpers ------------------------------------------------------------------------------


class _Sql:
    """The few places where PostgreSQL and SQLite spell things differently."""

    def __init__(self, dialect: str, zone: ZoneInfo, start: datetime, end: datetime) -> None:
        self.pg = dialect == "postgresql"
        self.zone = zone
        self.spans = offset_spans(zone, start, end)

    def ts(self, instant: datetime) -> Any:
        return instant if self.pg else sqlite_timestamp(instant)

    @staticmethod
    def parse(value: Any) -> datetime:
        if isinstance(value, datetime):
            return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)

    def local(self, column: str) -> str:
        """Wall-clock time in the workspace's zone (``:zone`` must be bound on PostgreSQL)."""
        if self.pg:
            return f"timezone(:zone, {column})"
        whens = " ".join(
            f"WHEN {column} < '{sqlite_timestamp(until)}' THEN '{minutes:+d} minutes'"
            for until, minutes in self.spans[:-1]
        )
        last = f"'{self.spans[-1][1]:+d} minutes'"
        modifier = f"CASE {whens} ELSE {last} END" if whens else last
        return f"datetime({column}, {modifier})"

    def local_hour(self, column: str) -> str:
        if self.pg:
            return f"CAST(extract(hour FROM {self.local(column)}) AS integer)"
        return f"CAST(strftime('%H', {self.local(column)}) AS integer)"

    def day_number(self, column: str) -> str:
        """Local day as days since 1970-01-01."""
        if self.pg:
            return f"(CAST({self.local(column)} AS date) - DATE '1970-01-01')"
        return f"CAST(julianday(date({self.local(column)})) - 2440587.5 AS integer)"

    def hour_number(self, column: str) -> str:
        """UTC hour as hours since the epoch."""
        if self.pg:
            return f"CAST(floor(extract(epoch FROM {column}) / 3600) AS bigint)"
        return f"(CAST(strftime('%s', {column}) AS integer) / 3600)"

    def within(self, later: str, earlier: str, seconds_param: str) -> str:
        """``earlier <= later < earlier + seconds``."""
        if self.pg:
            return (
                f"{later} >= {earlier} AND "
                f"{later} < {earlier} + make_interval(secs => :{seconds_param})"
            )
        return (
            f"{later} >= {earlier} AND "
            f"(julianday({later}) - julianday({earlier})) * 86400.0 < :{seconds_param}"
        )


def day_of(day_number: int) -> date:
    return date(1970, 1, 1) + timedelta(days=int(day_number))


# -- running ----------------------------------------------------------------------------------


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
    """Run the flag rules over the filter's workspaces and range."""
    authorize(identity, event_filter)
    chosen = [RULES[name] for name in (rules or tuple(RULES))]
    try:
        with browse_connection(engine, FLAGS_TIMEOUT_MS, token) as connection:
            analytic(connection)
            start, end = resolve_range(connection, event_filter)
            base = EventFilter(workspace_ids=event_filter.workspace_ids, start=start, end=end)
            workspaces = workspaces_in_scope(connection, event_filter)
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
                checker = _Checker(
                    connection, workspace, zone, start, end, token, thresholds_of=results
                )
                for rule in chosen:
                    if token is not None:
                        token.check()
                    progress(done, steps, f"{rule.title} — {workspace.name}")
                    results[rule.name].findings.extend(getattr(checker, rule.name)())
                    done += 1
            search = event_filter
            scope = replace(base, terms=search.terms, text=search.text, zone=search.zone)
            hidden = 0
            if scope.terms or scope.text.strip():
                for result in results.values():
                    kept = [f for f in result.findings if _touches(connection, f, scope, token)]
                    hidden += len(result.findings) - len(kept)
                    result.findings = kept
            for result in results.values():
                values: dict[str, Any] = dict(result.values)
                if result.rule.name == "after_hours":
                    values["hours"] = (
                        workspaces[0].hours_text() if len(workspaces) == 1 else "each workspace's"
                    )
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


class _Checker:
    """The rules for one workspace, on one connection."""

    def __init__(
        self,
        connection: Connection,
        workspace: WorkspaceHours,
        zone: ZoneInfo,
        start: datetime,
        end: datetime,
        token: CancelToken | None,
        thresholds_of: Mapping[str, FlagResult],
    ) -> None:
        self.c = connection
        self.ws = workspace
        self.zone = zone
        self.start, self.end = start, end
        self.baseline_start = start - timedelta(days=BASELINE_DAYS + 1)
        self.sql = _Sql(connection.dialect.name, zone, self.baseline_start, end)
        self.token = token
        self.results = thresholds_of
        self._daily: list[Any] | None = None

    # -- plumbing ---------------------------------------------------------------------------

    def v(self, rule: str) -> dict[str, float]:
        result = self.results.get(rule)
        return result.values if result else RULES[rule].values()

    def rows(self, sql: str, **params: Any) -> list[Any]:
        if self.token is not None:
            self.token.check()
        bound = {
            "ws": self.ws.id,
            "start": self.sql.ts(self.start),
            "end": self.sql.ts(self.end),
            "bstart": self.sql.ts(self.baseline_start),
            **params,
        }
        if self.sql.pg:
            bound["zone"] = self.zone.key
        return list(self.c.execute(text(sql), bound).all())

    def base_filter(self, first: datetime, end: datetime, *terms: Term) -> EventFilter:
        return EventFilter(
            workspace_ids=(self.ws.id,),
            start=max(first, self.start),
            end=min(end, self.end),
            terms=terms,
        )

    def count(self, event_filter: EventFilter) -> int:
        if self.token is not None:
            self.token.check()
        statement = select(func.count()).select_from(E).where(where_clause(event_filter))
        return int(self.c.execute(statement).scalar_one())

    def local_day(self, instant: datetime) -> date:
        return instant.astimezone(self.zone).date()

    def day_bounds(self, day: date) -> tuple[datetime, datetime]:
        midnight = datetime(day.year, day.month, day.day)
        return to_utc(midnight, self.zone), to_utc(midnight + timedelta(days=1), self.zone)

    def finding(
        self,
        rule: str,
        subject: str,
        first: datetime,
        last: datetime,
        event_filter: EventFilter,
        detail: str,
    ) -> Finding:
        return Finding(
            rule=rule,
            workspace_id=self.ws.id,
            workspace=self.ws.slug,
            subject=subject,
            day=self.local_day(first),
            first=first,
            last=last,
            events=self.count(event_filter),
            detail=detail,
            event_filter=event_filter,
        )

    # -- sign-in bursts ---------------------------------------------------------------------

    def _bursts(self, key: str, threshold: float, minutes: float, distinct: bool) -> list[Any]:
        """Failed sign-ins starting a window of ``minutes`` that holds ``threshold`` failures
        (or failures for that many accounts): ``(key, window start, last failure in it)``."""
        measure = "COUNT(DISTINCT f2.account)" if distinct else "COUNT(*)"
        sql = f"""
            WITH failed AS (
                SELECT {key} AS subject, actor_email AS account, occurred_at, id
                FROM activity_events
                WHERE workspace_id = :ws AND {FAILED}
                  AND occurred_at >= :start AND occurred_at < :end
                  AND {key} IS NOT NULL AND actor_email IS NOT NULL
            )
            SELECT f1.subject, f1.occurred_at, MAX(f2.occurred_at)
            FROM failed f1 JOIN failed f2
              ON f2.subject = f1.subject
             AND {self.sql.within("f2.occurred_at", "f1.occurred_at", "window")}
            GROUP BY f1.subject, f1.occurred_at, f1.id
            HAVING {measure} >= :threshold
            ORDER BY f1.subject, f1.occurred_at
        """
        return self.rows(sql, window=minutes * 60, threshold=int(threshold))

    def _episodes(self, anchors: list[Any]) -> list[tuple[str, datetime, datetime]]:
        """Overlapping windows merged: ``(subject, first failure, last failure)``."""
        episodes: list[tuple[str, datetime, datetime]] = []
        for subject, first_raw, last_raw in anchors:
            first, last = self.sql.parse(first_raw), self.sql.parse(last_raw)
            if episodes and episodes[-1][0] == subject and first <= episodes[-1][2]:
                s, f, l_ = episodes[-1]
                episodes[-1] = (s, f, max(l_, last))
            else:
                episodes.append((subject, first, last))
        return episodes

    def _then_success(self) -> list[tuple[str, datetime, datetime, datetime, str]]:
        """Account bursts followed by a success from one of their addresses:
        ``(account, first failure, last failure, success, address)``."""
        v = self.v("failed_burst_then_success")
        out = []
        for account, first, last in self._episodes(
            self._bursts("actor_email", v["failures"], v["minutes"], distinct=False)
        ):
            success = self.rows(
                f"""
                SELECT s.occurred_at, s.ip FROM activity_events s
                WHERE s.workspace_id = :ws AND s.actor_email = :account
                  AND s.action IN ('auth.sign_in', 'staff.sign_in') AND s.outcome = 'success'
                  AND {self.sql.within("s.occurred_at", ":last", "after")}
                  AND s.occurred_at < :end
                  AND s.ip IN (
                    SELECT f.ip FROM activity_events f
                    WHERE f.workspace_id = :ws AND f.actor_email = :account
                      AND f.{FAILED}
                      AND f.occurred_at >= :first AND f.occurred_at <= :last)
                ORDER BY s.occurred_at LIMIT 1
                """,
                account=account,
                first=self.sql.ts(first),
                last=self.sql.ts(last),
                after=v["success_minutes"] * 60,
            )
            if success:
                out.append((account, first, last, self.sql.parse(success[0][0]), success[0][1]))
        return out

    def failed_sign_in_burst(self) -> list[Finding]:
        v = self.v("failed_sign_in_burst")
        taken = self._then_success()
        out = []
        for account, first, last in self._episodes(
            self._bursts("actor_email", v["failures"], v["minutes"], distinct=False)
        ):
            if any(a == account and f <= last and first <= l_ for a, f, l_, _s, _ip in taken):
                continue
            f = self.base_filter(
                first,
                last + timedelta(microseconds=1),
                Term("category", "failed_sign_ins"),
                Term("user", account),
            )
            minutes = (last - first).total_seconds() / 60
            out.append(
                self.finding(
                    "failed_sign_in_burst",
                    account,
                    first,
                    last,
                    f,
                    f"failed sign-ins within {minutes:.1f} min",
                )
            )
        return out

    def ip_failed_sign_in_burst(self) -> list[Finding]:
        v = self.v("ip_failed_sign_in_burst")
        out = []
        for ip, first, last in self._episodes(
            self._bursts("ip", v["accounts"], v["minutes"], distinct=True)
        ):
            failures, successes = self.rows(
                f"""
                SELECT SUM(CASE WHEN {FAILED} THEN 1 ELSE 0 END),
                       SUM(CASE WHEN {FAILED} THEN 0 ELSE 1 END)
                FROM activity_events
                WHERE workspace_id = :ws AND ip = :ip
                  AND ({FAILED} OR action IN ('auth.sign_in', 'staff.sign_in'))
                  AND occurred_at >= :first AND occurred_at <= :until
                """,
                ip=ip,
                first=self.sql.ts(first),
                until=self.sql.ts(last + timedelta(minutes=v["minutes"])),
            )[0]
            if (successes or 0) >= (failures or 0):
                # A clinic's shared office address: a few people mistyping among many who
                # sign in fine, each right after their typo. Spraying does not succeed.
                continue
            f = self.base_filter(
                first,
                last + timedelta(microseconds=1),
                Term("category", "failed_sign_ins"),
                Term("ip", ip),
            )
            accounts = self.rows(
                f"""
                SELECT COUNT(DISTINCT actor_email) FROM activity_events
                WHERE workspace_id = :ws AND {FAILED} AND ip = :ip
                  AND occurred_at >= :first AND occurred_at <= :last
                """,
                ip=ip,
                first=self.sql.ts(first),
                last=self.sql.ts(last),
            )[0][0]
            minutes = (last - first).total_seconds() / 60
            out.append(
                self.finding(
                    "ip_failed_sign_in_burst",
                    ip,
                    first,
                    last,
                    f,
                    f"{accounts} accounts tried within {minutes:.1f} min",
                )
            )
        return out

    def failed_burst_then_success(self) -> list[Finding]:
        out = []
        for account, first, last, success, ip in self._then_success():
            f = self.base_filter(
                first,
                success + timedelta(microseconds=1),
                Term("category", "failed_sign_ins"),
                Term("category", "sign_ins"),
                Term("user", account),
                Term("ip", ip),
            )
            wait = (success - last).total_seconds() / 60
            out.append(
                self.finding(
                    "failed_burst_then_success",
                    account,
                    first,
                    success,
                    f,
                    f"signed in from {ip} {wait:.1f} min after the last failure",
                )
            )
        return out

    # -- working hours ----------------------------------------------------------------------

    def after_hours(self) -> list[Finding]:
        ws = self.ws
        hour = self.sql.local_hour("occurred_at")
        if ws.work_day_start < ws.work_day_end:
            outside = f"({hour} < :open OR {hour} >= :close)"
            side = f"CASE WHEN {hour} < :open THEN 'early' ELSE 'late' END"
        else:  # a working day across midnight, e.g. 22-6
            outside = f"({hour} < :open AND {hour} >= :close)"
            side = "'outside'"
        day = self.sql.day_number("occurred_at")
        rows = self.rows(
            f"""
            SELECT actor_email, {day} AS d, {side} AS side,
                   MIN(occurred_at), MAX(occurred_at), COUNT(*)
            FROM activity_events
            WHERE workspace_id = :ws AND occurred_at >= :start AND occurred_at < :end
              AND actor_type = 'member' AND actor_email IS NOT NULL
              AND (action = 'auth.sign_in' OR category = 'chart_views')
              AND {outside}
            GROUP BY actor_email, {day}, {side}
            ORDER BY MIN(occurred_at)
            """,
            open=ws.work_day_start,
            close=ws.work_day_end,
        )
        out = []
        for email, _d, part, first_raw, last_raw, n in rows:
            first, last = self.sql.parse(first_raw), self.sql.parse(last_raw)
            f = self.base_filter(
                first,
                last + timedelta(microseconds=1),
                Term("action", "auth.sign_in"),
                Term("action", "chart.view"),
                Term("action", "chart.print"),
                Term("user", email),
            )
            local = f"{first.astimezone(self.zone):%H:%M}-{last.astimezone(self.zone):%H:%M}"
            out.append(
                self.finding(
                    "after_hours",
                    email,
                    first,
                    last,
                    f,
                    f"{n} sign-ins and chart views {local} local ({part}; working hours "
                    f"{ws.work_day_start:02d}-{ws.work_day_end:02d})",
                )
            )
        return out

    # -- baselines --------------------------------------------------------------------------

    def _daily_against_baseline(self) -> list[Any]:
        """Per member and local day of the range: ``(email, day number, chart views,
        distinct patients, mean views, mean distinct patients, baseline days)``; the means
        over the 30 days before (days with any chart view). Only events inside the range
        count for a judged day, so a finding never rests on events its filter cannot show.
        Computed once for both baseline rules."""
        if self._daily is not None:
            return self._daily
        day = self.sql.day_number("occurred_at")
        first_day = (self.start.astimezone(self.zone).date() - date(1970, 1, 1)).days
        self._daily = self.rows(
            f"""
            WITH daily AS (
                SELECT actor_email AS who, {day} AS d,
                       CASE WHEN occurred_at >= :start THEN 1 ELSE 0 END AS judged,
                       COUNT(*) AS n, COUNT(DISTINCT patient_id) AS p
                FROM activity_events
                WHERE workspace_id = :ws AND category = 'chart_views'
                  AND actor_type = 'member' AND actor_email IS NOT NULL
                  AND occurred_at >= :bstart AND occurred_at < :end
                GROUP BY actor_email, {day}, CASE WHEN occurred_at >= :start THEN 1 ELSE 0 END
            ), windowed AS (
                SELECT who, d, judged, n, p,
                       AVG(n) OVER w AS mean_n,
                       AVG(p) OVER w AS mean_p,
                       COUNT(*) OVER w AS days
                FROM daily
                WINDOW w AS (PARTITION BY who ORDER BY d
                             RANGE BETWEEN {BASELINE_DAYS} PRECEDING AND 1 PRECEDING)
            )
            SELECT who, d, n, p, mean_n, mean_p, days FROM windowed
            WHERE judged = 1 AND d >= :first_day ORDER BY d, who
            """,
            first_day=first_day,
        )
        return self._daily

    def _member_day_filter(self, email: str, day: date) -> tuple[EventFilter, datetime, datetime]:
        start, end = self.day_bounds(day)
        f = self.base_filter(
            start,
            end,
            Term("category", "chart_views"),
            Term("actor_type", "member"),
            Term("user", email),
        )
        assert f.start is not None and f.end is not None
        return f, f.start, f.end

    def chart_view_spike(self) -> list[Finding]:
        v = self.v("chart_view_spike")
        out = []
        for who, d, n, _p, mean, _mean_p, days in self._daily_against_baseline():
            if mean is None or days < v["min_days"]:
                continue
            mean = float(mean)
            if n >= v["multiplier"] * mean and n - mean >= v["min_extra"]:
                f, first, end = self._member_day_filter(who, day_of(d))
                out.append(
                    self.finding(
                        "chart_view_spike",
                        who,
                        first,
                        end - timedelta(microseconds=1),
                        f,
                        f"{n} chart views; usual {mean:.0f} a day ({n / max(mean, 1e-9):.1f}x)",
                    )
                )
        return out

    def many_distinct_patients(self) -> list[Finding]:
        v = self.v("many_distinct_patients")
        out = []
        for who, d, _n, n, _mean_n, mean, _days in self._daily_against_baseline():
            if n < v["patients"]:
                continue
            if mean is not None and n < v["multiplier"] * float(mean):
                continue
            f, first, end = self._member_day_filter(who, day_of(d))
            usual = f"usual {float(mean):.0f}" if mean is not None else "no history"
            out.append(
                self.finding(
                    "many_distinct_patients",
                    who,
                    first,
                    end - timedelta(microseconds=1),
                    f,
                    f"{n} distinct patients ({usual} a day)",
                )
            )
        return out

    # -- API --------------------------------------------------------------------------------

    def api_spike(self) -> list[Finding]:
        v = self.v("api_spike")
        hour = self.sql.hour_number("occurred_at")
        frame = BASELINE_DAYS * 24
        first_hour = int(self.start.timestamp() // 3600)
        rows = self.rows(
            f"""
            WITH hourly AS (
                SELECT actor_name AS client, {hour} AS h, COUNT(*) AS n,
                       SUM(CASE WHEN outcome = 'failure' THEN 1 ELSE 0 END) AS errors
                FROM activity_events
                WHERE workspace_id = :ws AND category = 'api_usage'
                  AND actor_type = 'api_client'
                  AND occurred_at >= :bstart AND occurred_at < :end
                GROUP BY actor_name, {hour}
            ), judged AS (
                SELECT client, h, n, errors,
                       SUM(n) OVER (PARTITION BY client ORDER BY h
                                    RANGE BETWEEN {frame} PRECEDING AND 1 PRECEDING) AS before,
                       MIN(h) OVER (PARTITION BY client) AS since
                FROM hourly
            )
            SELECT client, h, n, errors, before, since FROM judged
            WHERE h >= :first_hour AND n >= :min_requests
            ORDER BY client, h
            """,
            first_hour=first_hour,
            min_requests=int(v["min_requests"]),
        )
        flagged: list[tuple[str, int, int, int, str]] = []
        for client, h, n, errors, before, since in rows:
            reasons = []
            if errors / n >= v["error_rate"]:
                reasons.append(f"{errors / n:.0%} errors")
            history = min(frame, h - since)
            if history >= 7 * 24 and before:
                mean = float(before) / history
                if n >= v["volume_multiplier"] * mean:
                    reasons.append(f"{n / mean:.1f}x the usual volume")
            if reasons:
                flagged.append((client, int(h), int(n), int(errors), ", ".join(reasons)))
        out = []
        run: list[tuple[str, int, int, int, str]] = []
        for item in [*flagged, None]:
            if item is not None and run and run[-1][0] == item[0] and run[-1][1] + 1 == item[1]:
                run.append(item)
                continue
            if run:
                client = run[0][0]
                first = datetime.fromtimestamp(run[0][1] * 3600, UTC)
                end = datetime.fromtimestamp((run[-1][1] + 1) * 3600, UTC)
                f = self.base_filter(
                    first,
                    end,
                    Term("category", "api_usage"),
                    Term("actor_type", "api_client"),
                    Term("name", client),
                )
                total = sum(r[2] for r in run)
                errors = sum(r[3] for r in run)
                out.append(
                    self.finding(
                        "api_spike",
                        client,
                        first,
                        end - timedelta(microseconds=1),
                        f,
                        f"{total} requests in {len(run)} h, {errors} failed ({run[0][4]})",
                    )
                )
            run = [item] if item is not None else []
        return out

    # -- addresses --------------------------------------------------------------------------

    def new_ip(self) -> list[Finding]:
        v = self.v("new_ip")
        rows = self.rows(
            """
            WITH seen AS (
                SELECT actor_email AS who, ip, MIN(occurred_at) AS first_seen
                FROM activity_events
                WHERE workspace_id = :ws AND action IN ('auth.sign_in', 'staff.sign_in')
                  AND outcome = 'success' AND ip IS NOT NULL AND actor_email IS NOT NULL
                  AND occurred_at < :end
                GROUP BY actor_email, ip
            ), member AS (
                SELECT who, MIN(first_seen) AS since FROM seen GROUP BY who
            )
            SELECT s.who, s.ip, s.first_seen, m.since
            FROM seen s JOIN member m ON m.who = s.who
            WHERE s.first_seen >= :start
            ORDER BY s.first_seen
            """
        )
        out = []
        for who, ip, first_raw, since_raw in rows:
            first, since = self.sql.parse(first_raw), self.sql.parse(since_raw)
            if first - since < timedelta(days=v["history_days"]):
                continue
            _day_start, day_end = self.day_bounds(self.local_day(first))
            f = self.base_filter(first, day_end, Term("user", who), Term("ip", ip))
            known = (first - since).days
            out.append(
                self.finding(
                    "new_ip",
                    who,
                    first,
                    first,
                    f,
                    f"first sign-in from {ip} (member known for {known} days)",
                )
            )
        return out


# -- export -----------------------------------------------------------------------------------

CSV_COLUMNS = (
    "flag",
    "flag_title",
    "workspace",
    "subject",
    "local_day",
    "time_zone",
    "first_utc",
    "last_utc",
    "events",
    "detail",
    "thresholds",
    "explanation",
    "events_filter",
)


def to_csv(report: FlagReport, scope: str) -> bytes:
    """The findings as CSV (UTF-8 with BOM for spreadsheets, CRLF). The scope (filter, range
    and time zone) and each rule's thresholds are repeated on every row, so a row read alone
    still says what it covers; a rule with no findings gets one row saying so. Cells that a
    spreadsheet would run as formulas are neutralised."""
    import csv
    import io
    import json

    from nvadmin.export.columns import neutralise

    zones = {w.id: w.timezone for w in report.workspaces}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*CSV_COLUMNS, "scope"])
    for result in report.results:
        thresholds = json.dumps(result.values, sort_keys=True)
        if not result.findings:
            # A rule that found nothing is stated too: "checked, nothing found" is evidence.
            empty = [result.rule.name, result.rule.title, "", "", "", "", "", "", "0"]
            empty += ["no findings", thresholds, result.explanation, "", scope]
            writer.writerow([neutralise(cell) for cell in empty])
        for f in result.findings:
            row = [
                f.rule,
                result.rule.title,
                f.workspace,
                f.subject,
                f.day.isoformat(),
                zones.get(f.workspace_id, "UTC"),
                f.first.astimezone(UTC).isoformat(),
                f.last.astimezone(UTC).isoformat(),
                str(f.events),
                f.detail,
                thresholds,
                result.explanation,
                json.dumps(f.event_filter.to_dict(), sort_keys=True),
                scope,
            ]
            writer.writerow([neutralise(cell) for cell in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")
