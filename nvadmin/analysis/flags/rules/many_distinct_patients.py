"""A member viewing the charts of unusually many distinct patients in one day."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from nvadmin.analysis.flags.rule import FlagRule, Planting, Threshold
from nvadmin.analysis.flags.rules import chart_view_spike
from nvadmin.analysis.flags.rules._baseline import daily_against_baseline, day_of, member_day

if TYPE_CHECKING:
    from nvadmin.analysis.flags.check import WorkspaceCheck
    from nvadmin.analysis.flags.report import Finding
    from nvadmin.analysis.flags.rule import DemoCases


class ManyDistinctPatients(FlagRule):
    name = "many_distinct_patients"
    title = "Unusually many distinct patients"
    explanation = (
        "A team member viewed the charts of {patients} or more distinct patients in one "
        "day, at least {multiplier}x their own daily mean over the previous 30 days."
    )
    thresholds = (
        Threshold("patients", "Distinct patients", 100, 5, 100000),
        Threshold("multiplier", "Times the usual", 3, 1, 100, "x", 1),
    )
    listed = 60
    planting = Planting(order=60, days=1, members=1)

    def find(self, check: WorkspaceCheck) -> list[Finding]:
        v = check.values(self)
        out = []
        for who, d, _n, n, _mean_n, mean, _days in daily_against_baseline(check):
            if n < v["patients"]:
                continue
            if mean is not None and n < v["multiplier"] * float(mean):
                continue
            shows, first, end = member_day(check, who, day_of(d))
            usual = f"usual {float(mean):.0f}" if mean is not None else "no history"
            detail = f"{n} distinct patients ({usual} a day)"
            last = end - timedelta(microseconds=1)
            out.append(check.finding(self, who, first, last, shows, detail))
        return out

    def plant(self, demo: DemoCases) -> None:
        """180 different patients' charts in four hours: a chart-view spike too."""
        (day,), (curious,) = demo.take_days(1), demo.take_members(1)
        session = demo.session()
        patients = demo.rng.sample(demo.patients, min(len(demo.patients), 180))
        wide = [
            demo.chart_view(
                day, 12.5 + i * 4.0 / len(patients), p, session, curious, demo.office_ip
            )
            for i, p in enumerate(patients)
        ]
        demo.add(self, curious.email, day, wide)
        demo.also(chart_view_spike.RULE, curious.email, day, len(wide))


RULE = ManyDistinctPatients()
