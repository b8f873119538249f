"""An API client's hour with a high error rate, or far above its usual volume (hours are UTC
hours, an hour cut by the range's start counting its requests in the range; findings are runs
of consecutive flagged hours)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from nvadmin.analysis.flags.rule import FlagRule, Planting, Threshold

if TYPE_CHECKING:
    from nvadmin.analysis.flags.check import WorkspaceCheck
    from nvadmin.analysis.flags.report import Finding
    from nvadmin.analysis.flags.rule import DemoCases

# (client, hour number, requests, errors, reasons)
Hour = tuple[str, int, int, int, str]


class ApiSpike(FlagRule):
    name = "api_spike"
    title = "API error-rate or volume spike"
    explanation = (
        "An API client's hour with at least {min_requests} requests of which "
        "{error_rate} % or more failed, or at least {volume_multiplier}x its mean hourly "
        "volume over the previous 30 days."
    )
    thresholds = (
        Threshold("min_requests", "Requests in the hour", 50, 1, 1000000),
        Threshold("error_rate", "Error rate", 0.2, 0.01, 1, "", 2, percent=True),
        Threshold("volume_multiplier", "Times the usual volume", 10, 2, 1000, "x", 1),
    )
    listed = 70
    planting = Planting(order=70)

    def find(self, check: WorkspaceCheck) -> list[Finding]:
        flagged = self._flagged_hours(check)
        out = []
        run: list[Hour] = []
        for item in [*flagged, None]:
            if item is not None and run and run[-1][0] == item[0] and run[-1][1] + 1 == item[1]:
                run.append(item)
                continue
            if run:
                out.append(self._finding(check, run))
            run = [item] if item is not None else []
        return out

    def _flagged_hours(self, check: WorkspaceCheck) -> list[Hour]:
        v = check.values(self)
        hour = check.sql.hour_number("occurred_at")
        frame = check.baseline_days * 24
        # An hour the range starts inside is judged on its requests in the range only (the
        # ones its filter shows); those before the start are part of no judged hour.
        judged = "CASE WHEN occurred_at >= :start THEN 1 ELSE 0 END"
        first_hour = int(check.start.timestamp() // 3600)
        rows = check.rows(
            f"""
            WITH hourly AS (
                SELECT actor_name AS client, {hour} AS h, {judged} AS judged, COUNT(*) AS n,
                       SUM(CASE WHEN outcome = 'failure' THEN 1 ELSE 0 END) AS errors
                FROM activity_events
                WHERE workspace_id = :ws AND category = 'api_usage'
                  AND actor_type = 'api_client'
                  AND occurred_at >= :bstart AND occurred_at < :end
                GROUP BY actor_name, {hour}, {judged}
            ), judged AS (
                SELECT client, h, judged, n, errors,
                       SUM(n) OVER (PARTITION BY client ORDER BY h
                                    RANGE BETWEEN {frame} PRECEDING AND 1 PRECEDING) AS before,
                       MIN(h) OVER (PARTITION BY client) AS since
                FROM hourly
            )
            SELECT client, h, n, errors, before, since FROM judged
            WHERE judged = 1 AND h >= :first_hour AND n >= :min_requests
            ORDER BY client, h
            """,
            first_hour=first_hour,
            min_requests=int(v["min_requests"]),
        )
        flagged: list[Hour] = []
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
        return flagged

    def _finding(self, check: WorkspaceCheck, run: list[Hour]) -> Finding:
        client = run[0][0]
        first = max(datetime.fromtimestamp(run[0][1] * 3600, UTC), check.start)
        end = datetime.fromtimestamp((run[-1][1] + 1) * 3600, UTC)
        shows = check.event_filter(
            first,
            end,
            ("category", "api_usage"),
            ("actor_type", "api_client"),
            ("name", client),
        )
        total = sum(r[2] for r in run)
        errors = sum(r[3] for r in run)
        detail = f"{total} requests in {len(run)} h, {errors} failed ({run[0][4]})"
        return check.finding(self, client, first, end - timedelta(microseconds=1), shows, detail)

    def plant(self, demo: DemoCases) -> None:
        """400 calls by one client between 14:00 and 15:00, 45 % of them failing, on the day
        of the first planted case (a client's case needs no day of its own)."""
        client, day = demo.clients[0], demo.planted_days[0]
        calls = demo.api_calls(day, 400, client, (14.0, 15.0), 0.45)
        demo.add(self, client.name, day, calls)


RULE = ApiSpike()
