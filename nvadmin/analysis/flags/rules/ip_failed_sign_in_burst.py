"""One address failing for N different accounts within M minutes (password spraying)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from nvadmin.analysis.flags.rule import FlagRule, Planting, Threshold
from nvadmin.analysis.flags.rules._bursts import FAILED, bursts

if TYPE_CHECKING:
    from nvadmin.analysis.flags.check import WorkspaceCheck
    from nvadmin.analysis.flags.report import Finding
    from nvadmin.analysis.flags.rule import DemoCases


class IpFailedSignInBurst(FlagRule):
    name = "ip_failed_sign_in_burst"
    title = "One address failing for many accounts"
    explanation = (
        "Failed sign-ins for {accounts} or more different accounts from one IP address "
        "within {minutes} minutes (password spraying)."
    )
    thresholds = (
        Threshold("accounts", "Different accounts", 5, 2, 1000),
        Threshold("minutes", "Within", 10, 1, 1440, "min"),
    )
    listed = 20
    planting = Planting(order=30, days=1)

    def find(self, check: WorkspaceCheck) -> list[Finding]:
        v = check.values(self)
        out = []
        for ip, first, last in bursts(check, "ip", v["accounts"], v["minutes"], distinct=True):
            failures, successes = check.rows(
                f"""
                SELECT SUM(CASE WHEN {FAILED} THEN 1 ELSE 0 END),
                       SUM(CASE WHEN {FAILED} THEN 0 ELSE 1 END)
                FROM activity_events
                WHERE workspace_id = :ws AND ip = :ip
                  AND ({FAILED} OR action IN ('auth.sign_in', 'staff.sign_in'))
                  AND occurred_at >= :first AND occurred_at <= :until
                """,
                ip=ip,
                first=check.sql.ts(first),
                until=check.sql.ts(last + timedelta(minutes=v["minutes"])),
            )[0]
            if (successes or 0) >= (failures or 0):
                # A clinic's shared office address: a few people mistyping among many who
                # sign in fine, each right after their typo. Spraying does not succeed.
                continue
            shows = check.event_filter(
                first,
                last + timedelta(microseconds=1),
                ("category", "failed_sign_ins"),
                ("ip", ip),
            )
            accounts = check.rows(
                f"""
                SELECT COUNT(DISTINCT actor_email) FROM activity_events
                WHERE workspace_id = :ws AND {FAILED} AND ip = :ip
                  AND occurred_at >= :first AND occurred_at <= :last
                """,
                ip=ip,
                first=check.sql.ts(first),
                last=check.sql.ts(last),
            )[0][0]
            minutes = (last - first).total_seconds() / 60
            detail = f"{accounts} accounts tried within {minutes:.1f} min"
            out.append(check.finding(self, ip, first, last, shows, detail))
        return out

    def plant(self, demo: DemoCases) -> None:
        """At 03:06, one address tries six members' accounts and four that do not exist."""
        (day,) = demo.take_days(1)
        ip = demo.address(193)
        members = demo.rng.sample(demo.members, min(6, len(demo.members)))
        accounts = [m.email for m in members] + demo.unknown_accounts(4)
        spray = []
        for i, account in enumerate(accounts):
            spray += demo.failed_sign_ins(account, day, 3.1 + i * 0.008, 1, ip, 0.3)
        demo.add(self, ip, day, spray)


RULE = IpFailedSignInBurst()
