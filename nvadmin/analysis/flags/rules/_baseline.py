"""A team member's chart views per local day against their own 30 days before, shared by the
baseline rules."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nvadmin.analysis.flags.check import WorkspaceCheck
    from nvadmin.query.filters import EventFilter


def daily_against_baseline(check: WorkspaceCheck) -> list[Any]:
    """Per member and local day of the range: ``(email, day number, chart views, distinct
    patients, mean views, mean distinct patients, baseline days)``; the means over the 30 days
    before (days with any chart view). Only events inside the range count for a judged day, so
    a finding never rests on events its filter cannot show. Computed once for both rules."""
    return check.shared("daily_chart_views", lambda: _daily(check))


def _daily(check: WorkspaceCheck) -> list[Any]:
    day = check.sql.day_number("occurred_at")
    first_day = (check.start.astimezone(check.zone).date() - date(1970, 1, 1)).days
    return check.rows(
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
                         RANGE BETWEEN {check.baseline_days} PRECEDING AND 1 PRECEDING)
        )
        SELECT who, d, n, p, mean_n, mean_p, days FROM windowed
        WHERE judged = 1 AND d >= :first_day ORDER BY d, who
        """,
        first_day=first_day,
    )


def day_of(day_number: int) -> date:
    return date(1970, 1, 1) + timedelta(days=int(day_number))


def member_day(
    check: WorkspaceCheck, email: str, day: date
) -> tuple[EventFilter, datetime, datetime]:
    """The click-through of a member's day of chart views: the filter, its start and end."""
    start, end = check.day_bounds(day)
    shows = check.event_filter(
        start,
        end,
        ("category", "chart_views"),
        ("actor_type", "member"),
        ("user", email),
    )
    assert shows.start is not None and shows.end is not None
    return shows, shows.start, shows.end
