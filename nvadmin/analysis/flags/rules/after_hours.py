"""A team member's sign-ins or chart views outside the workspace's working hours: one finding
per member, local day and side of the working day (early or late)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from nvadmin.analysis.flags.rule import FlagRule, Planting

if TYPE_CHECKING:
    from nvadmin.analysis.flags.check import WorkspaceCheck
    from nvadmin.analysis.flags.report import Finding
    from nvadmin.analysis.flags.rule import DemoCases


class AfterHours(FlagRule):
    name = "after_hours"
    title = "Access outside working hours"
    explanation = (
        "Sign-ins or chart views by a team member outside the workspace's working hours "
        "({hours}, in its time zone)."
    )
    listed = 40
    planting = Planting(order=40, days=3, members=1)
    uses_working_hours = True

    def find(self, check: WorkspaceCheck) -> list[Finding]:
        ws = check.ws
        hour = check.sql.local_hour("occurred_at")
        if ws.work_day_start < ws.work_day_end:
            outside = f"({hour} < :open OR {hour} >= :close)"
            side = f"CASE WHEN {hour} < :open THEN 'early' ELSE 'late' END"
        else:  # a working day across midnight, e.g. 22-6
            outside = f"({hour} < :open AND {hour} >= :close)"
            side = "'outside'"
        day = check.sql.day_number("occurred_at")
        rows = check.rows(
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
            first, last = check.sql.parse(first_raw), check.sql.parse(last_raw)
            shows = check.event_filter(
                first,
                last + timedelta(microseconds=1),
                ("action", "auth.sign_in"),
                ("action", "chart.view"),
                ("action", "chart.print"),
                ("user", email),
            )
            local = f"{first.astimezone(check.zone):%H:%M}-{last.astimezone(check.zone):%H:%M}"
            detail = (
                f"{n} sign-ins and chart views {local} local ({part}; working hours "
                f"{ws.work_day_start:02d}-{ws.work_day_end:02d})"
            )
            out.append(check.finding(self, email, first, last, shows, detail))
        return out

    def plant(self, demo: DemoCases) -> None:
        """One member at work from home between 01:00 and 03:00 on three nights."""
        nights, (owl,) = demo.take_days(3), demo.take_members(1)
        for night in nights:
            session = demo.session()
            start = demo.rng.uniform(1.0, 2.5)
            events = [demo.sign_in(night, start, owl, owl.home_ip, session, mfa=True)]
            events += [
                demo.chart_view(
                    night,
                    start + 0.02 + i * 0.015,
                    demo.rng.choice(demo.patients),
                    session,
                    owl,
                    owl.home_ip,
                )
                for i in range(demo.rng.randint(12, 20))
            ]
            demo.add(self, owl.email, night, events)


RULE = AfterHours()
