"""A successful sign-in from an address the member never signed in from before, once the
member has a history."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from nvadmin.analysis.flags.rule import FlagRule, Planting, Threshold

if TYPE_CHECKING:
    from nvadmin.analysis.flags.check import WorkspaceCheck
    from nvadmin.analysis.flags.report import Finding
    from nvadmin.analysis.flags.rule import DemoCases


class NewIp(FlagRule):
    name = "new_ip"
    title = "Sign-in from a new address"
    explanation = (
        "A successful sign-in from an IP address the team member never signed in from "
        "before, once they have {history_days} days of history."
    )
    thresholds = (Threshold("history_days", "History needed", 7, 1, 365, "days"),)
    listed = 80
    planting = Planting(order=80, members=1)

    def find(self, check: WorkspaceCheck) -> list[Finding]:
        v = check.values(self)
        rows = check.rows(
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
            first, since = check.sql.parse(first_raw), check.sql.parse(since_raw)
            if first - since < timedelta(days=v["history_days"]):
                continue
            _day_start, day_end = check.day_bounds(check.local_day(first))
            shows = check.event_filter(first, day_end, ("user", who), ("ip", ip))
            detail = f"first sign-in from {ip} (member known for {(first - since).days} days)"
            out.append(check.finding(self, who, first, first, shows, detail))
        return out

    def plant(self, demo: DemoCases) -> None:
        """At 11:00, a sign-in from an address the member never used, and five chart views;
        on the day of the fourth planted day (another member's case)."""
        (roamer,) = demo.take_members(1)
        ip, day = demo.address(91), demo.planted_days[3]
        session = demo.session()
        events = [demo.sign_in(day, 11.0, roamer, ip, session, mfa=True)]
        events += [
            demo.chart_view(
                day, 11.05 + i * 0.02, demo.rng.choice(demo.patients), session, roamer, ip
            )
            for i in range(5)
        ]
        demo.add(self, roamer.email, day, events)


RULE = NewIp()
