"""A member's chart views on one day far above their own daily mean over the 30 days before."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from nvadmin.analysis.flags.rule import FlagRule, Planting, Threshold
from nvadmin.analysis.flags.rules._baseline import daily_against_baseline, day_of, member_day

if TYPE_CHECKING:
    from nvadmin.analysis.flags.check import WorkspaceCheck
    from nvadmin.analysis.flags.report import Finding
    from nvadmin.analysis.flags.rule import DemoCases


class ChartViewSpike(FlagRule):
    name = "chart_view_spike"
    title = "Chart views far above the member's usual"
    explanation = (
        "A team member's chart views on one day are at least {multiplier}x their own daily "
        "mean over the previous 30 days, and at least {min_extra} more (needs "
        "{min_days} days of history)."
    )
    thresholds = (
        Threshold("multiplier", "Times the usual", 3, 1.5, 100, "x", 1),
        Threshold("min_extra", "At least more", 50, 1, 100000, "views"),
        Threshold("min_days", "History needed", 5, 1, 30, "days"),
    )
    listed = 50
    planting = Planting(order=50, days=1, members=1)

    def find(self, check: WorkspaceCheck) -> list[Finding]:
        v = check.values(self)
        out = []
        for who, d, n, _p, mean, _mean_p, days in daily_against_baseline(check):
            if mean is None or days < v["min_days"]:
                continue
            mean = float(mean)
            if n >= v["multiplier"] * mean and n - mean >= v["min_extra"]:
                shows, first, end = member_day(check, who, day_of(d))
                detail = f"{n} chart views; usual {mean:.0f} a day ({n / max(mean, 1e-9):.1f}x)"
                last = end - timedelta(microseconds=1)
                out.append(check.finding(self, who, first, last, shows, detail))
        return out

    def plant(self, demo: DemoCases) -> None:
        """240 chart views of the day's 40 first patients in five and a half hours."""
        (day,), (heavy,) = demo.take_days(1), demo.take_members(1)
        session = demo.session()
        spike = [
            demo.chart_view(
                day,
                10.0 + i * 5.5 / 240,
                demo.rng.choice(demo.patients[:40]),
                session,
                heavy,
                demo.office_ip,
            )
            for i in range(240)
        ]
        demo.add(self, heavy.email, day, spike)


RULE = ChartViewSpike()
