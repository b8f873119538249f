"""A failed burst followed by a successful sign-in from one of the burst's addresses."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from nvadmin.analysis.flags.rule import FlagRule, Planting, Threshold
from nvadmin.analysis.flags.rules import after_hours, new_ip
from nvadmin.analysis.flags.rules._bursts import FAILED, bursts

if TYPE_CHECKING:
    from nvadmin.analysis.flags.check import WorkspaceCheck
    from nvadmin.analysis.flags.report import Finding
    from nvadmin.analysis.flags.rule import DemoCases

# (account, first failure, last failure, success, address)
Takeover = tuple[str, datetime, datetime, datetime, str]


class FailedBurstThenSuccess(FlagRule):
    name = "failed_burst_then_success"
    title = "Failed burst, then a successful sign-in"
    explanation = (
        "{failures} or more failed sign-ins for one account within {minutes} minutes, then "
        "a successful sign-in from the same address within {success_minutes} minutes "
        "(possible account takeover)."
    )
    thresholds = (
        Threshold("failures", "Failed sign-ins", 5, 2, 1000),
        Threshold("minutes", "Within", 10, 1, 1440, "min"),
        Threshold("success_minutes", "Success within", 30, 1, 1440, "min"),
    )
    listed = 30
    planting = Planting(order=20, days=1, members=1)

    def takeovers(self, check: WorkspaceCheck) -> list[Takeover]:
        """Account bursts followed by a success from one of their addresses (also read by
        the account burst rule, which leaves these to this one)."""
        return check.shared(self.name, lambda: self._takeovers(check))

    def _takeovers(self, check: WorkspaceCheck) -> list[Takeover]:
        v = check.values(self)
        out = []
        for account, first, last in bursts(
            check, "actor_email", v["failures"], v["minutes"], distinct=False
        ):
            success = check.rows(
                f"""
                SELECT s.occurred_at, s.ip FROM activity_events s
                WHERE s.workspace_id = :ws AND s.actor_email = :account
                  AND s.action IN ('auth.sign_in', 'staff.sign_in') AND s.outcome = 'success'
                  AND {check.sql.within("s.occurred_at", ":last", "after")}
                  AND s.occurred_at < :end
                  AND s.ip IN (
                    SELECT f.ip FROM activity_events f
                    WHERE f.workspace_id = :ws AND f.actor_email = :account
                      AND f.{FAILED}
                      AND f.occurred_at >= :first AND f.occurred_at <= :last)
                ORDER BY s.occurred_at LIMIT 1
                """,
                account=account,
                first=check.sql.ts(first),
                last=check.sql.ts(last),
                after=v["success_minutes"] * 60,
            )
            if success:
                out.append((account, first, last, check.sql.parse(success[0][0]), success[0][1]))
        return out

    def find(self, check: WorkspaceCheck) -> list[Finding]:
        out = []
        for account, first, last, success, ip in self.takeovers(check):
            shows = check.event_filter(
                first,
                success + timedelta(microseconds=1),
                ("category", "failed_sign_ins"),
                ("category", "sign_ins"),
                ("user", account),
                ("ip", ip),
            )
            wait = (success - last).total_seconds() / 60
            detail = f"signed in from {ip} {wait:.1f} min after the last failure"
            out.append(check.finding(self, account, first, success, shows, detail))
        return out

    def plant(self, demo: DemoCases) -> None:
        """Six failures in three minutes at 21:30, then a success from the same address and
        four chart views: also a sign-in from a new address, and outside working hours."""
        (day,), (target,) = demo.take_days(1), demo.take_members(1)
        ip = demo.address(45)
        burst = demo.failed_sign_ins(target.email, day, 21.5, 6, ip, 3)
        session = demo.session()
        success = [demo.sign_in(day, 21.56, target, ip, session, mfa=False)]
        views = [
            demo.chart_view(
                day, 21.6 + i * 0.01, demo.rng.choice(demo.patients), session, target, ip
            )
            for i in range(4)
        ]
        demo.add(self, target.email, day, burst + success + views)
        for also in (new_ip.RULE, after_hours.RULE):
            demo.also(also, target.email, day, len(success + views))


RULE = FailedBurstThenSuccess()
