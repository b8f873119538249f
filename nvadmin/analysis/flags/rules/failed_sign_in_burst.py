"""N failed sign-ins for one account within M minutes."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from nvadmin.analysis.flags.rule import FlagRule, Planting, Threshold
from nvadmin.analysis.flags.rules import failed_burst_then_success
from nvadmin.analysis.flags.rules._bursts import bursts

if TYPE_CHECKING:
    from nvadmin.analysis.flags.check import WorkspaceCheck
    from nvadmin.analysis.flags.report import Finding
    from nvadmin.analysis.flags.rule import DemoCases


class FailedSignInBurst(FlagRule):
    name = "failed_sign_in_burst"
    title = "Burst of failed sign-ins for one account"
    explanation = (
        "{failures} or more failed sign-ins for one account within {minutes} minutes "
        "(bursts followed by a success are listed separately)."
    )
    thresholds = (
        Threshold("failures", "Failed sign-ins", 5, 2, 1000),
        Threshold("minutes", "Within", 10, 1, 1440, "min"),
    )
    listed = 10
    planting = Planting(order=10, days=1, members=1)

    def find(self, check: WorkspaceCheck) -> list[Finding]:
        v = check.values(self)
        # A burst that then succeeds from the same address is that rule's finding, not this.
        taken = failed_burst_then_success.RULE.takeovers(check)
        out = []
        for account, first, last in bursts(
            check, "actor_email", v["failures"], v["minutes"], distinct=False
        ):
            if any(a == account and f <= last and first <= l_ for a, f, l_, _s, _ip in taken):
                continue
            shows = check.event_filter(
                first,
                last + timedelta(microseconds=1),
                ("category", "failed_sign_ins"),
                ("user", account),
            )
            minutes = (last - first).total_seconds() / 60
            detail = f"failed sign-ins within {minutes:.1f} min"
            out.append(check.finding(self, account, first, last, shows, detail))
        return out

    def plant(self, demo: DemoCases) -> None:
        """One account hammered: eight failures in four minutes, ending in a lock."""
        (day,), (victim,) = demo.take_days(1), demo.take_members(1)
        burst = demo.failed_sign_ins(victim.email, day, 10.2, 8, demo.address(185), 4)
        demo.add(self, victim.email, day, burst)


RULE = FailedSignInBurst()
