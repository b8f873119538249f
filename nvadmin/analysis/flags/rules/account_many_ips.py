"""Sign-ins for one account from many IP addresses within an hour.

The events carry an IP address but no country, so "signed in from two countries within an
hour" cannot be told from the data; several addresses in a short time is the part of it that
can. A person moves between two addresses (office, home) over a day, not between three within
an hour; an account tried or used from several addresses that fast is a password that is
shared or known to others, or guessing spread over rotating addresses, a few tries each, which
stays under both burst rules (per account and per address).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from nvadmin.analysis.flags.rule import FlagRule, Planting, Threshold
from nvadmin.analysis.flags.rules import new_ip
from nvadmin.analysis.flags.rules._bursts import merge_windows

if TYPE_CHECKING:
    from nvadmin.analysis.flags.check import WorkspaceCheck
    from nvadmin.analysis.flags.report import Finding
    from nvadmin.analysis.flags.rule import DemoCases

SIGN_INS = ("auth.sign_in", "auth.sign_in_failed", "staff.sign_in", "staff.sign_in_failed")
_IN_SIGN_INS = "action IN (" + ", ".join(f"'{a}'" for a in SIGN_INS) + ")"


class AccountManyIps(FlagRule):
    name = "account_many_ips"
    title = "One account from many addresses"
    explanation = (
        "Sign-ins or failed sign-ins for one account from {addresses} or more different IP "
        "addresses within {minutes} minutes (a shared or stolen password, or guessing spread "
        "over many addresses)."
    )
    thresholds = (
        Threshold("addresses", "Different addresses", 3, 2, 100),
        Threshold("minutes", "Within", 60, 1, 1440, "min"),
    )
    listed = 90
    planting = Planting(order=90, days=1)

    def find(self, check: WorkspaceCheck) -> list[Finding]:
        v = check.values(self)
        windows = check.rows(
            f"""
            WITH attempts AS (
                SELECT actor_email AS account, ip, occurred_at, id
                FROM activity_events
                WHERE workspace_id = :ws AND {_IN_SIGN_INS}
                  AND occurred_at >= :start AND occurred_at < :end
                  AND actor_email IS NOT NULL AND ip IS NOT NULL
            )
            SELECT a1.account, a1.occurred_at, MAX(a2.occurred_at)
            FROM attempts a1 JOIN attempts a2
              ON a2.account = a1.account
             AND {check.sql.within("a2.occurred_at", "a1.occurred_at", "window")}
            GROUP BY a1.account, a1.occurred_at, a1.id
            HAVING COUNT(DISTINCT a2.ip) >= :addresses
            ORDER BY a1.account, a1.occurred_at
            """,
            window=v["minutes"] * 60,
            addresses=int(v["addresses"]),
        )
        out = []
        for account, first, last in merge_windows(check, windows):
            addresses, failed, total = check.rows(
                f"""
                SELECT COUNT(DISTINCT ip),
                       SUM(CASE WHEN outcome = 'failure' THEN 1 ELSE 0 END), COUNT(*)
                FROM activity_events
                WHERE workspace_id = :ws AND {_IN_SIGN_INS} AND actor_email = :account
                  AND ip IS NOT NULL AND occurred_at >= :first AND occurred_at <= :last
                """,
                account=account,
                first=check.sql.ts(first),
                last=check.sql.ts(last),
            )[0]
            shows = check.event_filter(
                first,
                last + timedelta(microseconds=1),
                *(("action", action) for action in SIGN_INS),
                ("user", account),
            )
            minutes = (last - first).total_seconds() / 60
            detail = (
                f"{addresses} addresses within {minutes:.0f} min "
                f"({failed} failed, {total - failed} signed in)"
            )
            out.append(check.finding(self, account, first, last, shows, detail))
        return out

    def plant(self, demo: DemoCases) -> None:
        """Early in the afternoon, a member's password tried from three addresses, 12 minutes
        apart, then used from a fourth: also a sign-in from a new address."""
        (day,) = demo.take_days(1)
        member = demo.rng.choice(demo.members)
        failures = [
            attempt
            for i, first_octet in enumerate((5, 37, 141))
            for attempt in demo.failed_sign_ins(
                member.email, day, 13.0 + i * 0.2, 1, demo.address(first_octet), 0
            )
        ]
        success = demo.sign_in(day, 13.6, member, demo.address(82), demo.session(), mfa=False)
        demo.add(self, member.email, day, [*failures, success])
        demo.also(new_ip.RULE, member.email, day, 1)


RULE = AccountManyIps()
