"""Insights benchmark: time to compute and draw the insights view for a 30-day range on
PostgreSQL, and to evaluate the flags, against one full scan of the same events.

Run either against a throwaway cluster it seeds itself::

    uv run python -m benchmarks.insights --events 2000000 --workspaces 10

or against a database already seeded with ``nvadmin --database URL seed --workspaces 10
--events N`` (seeding 10M events takes a while; do it once)::

    uv run python -m benchmarks.insights --url postgresql+psycopg://...

Measured, for the busiest workspace and for all workspaces at once (the admin's view):

* reference: ``SELECT count(*)`` of the range's events (one pass over them);
* charts: :func:`nvadmin.analysis.insights.compute` (five ``GROUP BY`` queries);
* draw: building the five charts from the result and painting them once (offscreen);
* flags: :func:`nvadmin.analysis.flags.evaluation.evaluate` (every rule, 30-day baselines included);
* cancel: seconds from cancelling a running all-workspaces computation until the job stops,
  and whether the server query is gone from ``pg_stat_activity``.

Results are appended to benchmarks/RESULTS.md under "Insights".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from sqlalchemy import Engine, func, select, text

from nvadmin.analysis.flags.evaluation import evaluate
from nvadmin.analysis.insights import compute
from nvadmin.db.engine import make_engine
from nvadmin.db.models import ActivityEvent, Workspace
from nvadmin.identity import Role, StaffIdentity
from nvadmin.query.filters import EventFilter, where_clause
from nvadmin.workers.cancel import Cancelled, CancelToken

ROOT = Path(__file__).resolve().parent.parent
ADMIN = StaffIdentity(1, "bench@nvadmin.example", "Bench Admin", Role.ADMIN)
T = TypeVar("T")


def timed(fn: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[float, T]:
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - started, result


def last_days(engine: Engine, days: int) -> tuple[datetime, datetime]:
    with engine.connect() as connection:
        newest = connection.execute(select(func.max(ActivityEvent.occurred_at))).scalar_one()
    end = datetime.combine(newest.date() + timedelta(days=1), datetime.min.time(), UTC)
    return end - timedelta(days=days), end


def draw_seconds(insights: Any) -> float:
    from PySide6.QtWidgets import QApplication

    from nvadmin.ui.insights_charts import (
        ActivityChart,
        ApiChart,
        HeatMap,
        MemberChart,
        SignInChart,
    )

    app = QApplication.instance() or QApplication([])
    widgets = [ActivityChart(), SignInChart(), MemberChart(), ApiChart(), HeatMap()]
    for w in widgets:
        w.resize(900, 420)
    started = time.perf_counter()
    for w in widgets:
        w.show_insights(insights)  # type: ignore[attr-defined]
        w.grab()  # paints it once
    app.processEvents()
    return time.perf_counter() - started


def cancel_latency(engine: Engine, event_filter: EventFilter) -> tuple[float, bool]:
    token = CancelToken()
    outcome: dict[str, float] = {}

    def work() -> None:
        try:
            compute(engine, ADMIN, event_filter, "UTC", token=token)
        except Cancelled:
            outcome["stopped"] = time.perf_counter()

    thread = threading.Thread(target=work)
    thread.start()
    time.sleep(0.5)
    cancelled_at = time.perf_counter()
    token.cancel()
    thread.join(30)
    stopped = outcome.get("stopped", float("nan")) - cancelled_at
    time.sleep(0.5)
    with engine.connect() as connection:
        running = connection.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                "AND datname = current_database() AND query ILIKE 'SELECT%activity_events%' "
                "AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    return stopped, running == 0


def planted_check(engine: Engine, report: Any) -> str:
    """At scale too, the flags must find the demo's planted cases in the range and no more."""
    with engine.connect() as connection:
        raw = connection.execute(
            text("SELECT value FROM nvadmin_meta WHERE key = 'demo_planted'")
        ).scalar()
    if raw is None:
        return "No planted cases recorded in this database."
    # Planted days are local dates; the range's first and last UTC dates are local days only
    # partly inside the range (a case there may fall outside it), so both sides skip them.
    first, last = report.start.date().isoformat(), report.end.date().isoformat()

    def inside(day: str) -> bool:
        return first < day < last and day != (report.end.date() - timedelta(days=1)).isoformat()

    planted = {
        (p["flag"], p["workspace"], p["subject"], p["day"])
        for p in json.loads(raw)
        if inside(p["day"])
    }
    found = {
        (f.rule, f.workspace, f.subject, f.day.isoformat())
        for f in report.findings()
        if inside(f.day.isoformat())
    }
    missing, extra = sorted(planted - found), sorted(found - planted)
    verdict = "exactly the planted cases" if not (missing or extra) else "DIFFERENT from planted"
    text_ = (
        f"Flags over all workspaces, days strictly inside the range: {len(found)} cases found, "
        f"{len(planted)} planted: {verdict}"
    )
    if missing or extra:
        text_ += f" (missing {missing[:5]}, extra {extra[:5]})"
    return text_ + "."


def bench(url: str, days: int) -> list[str]:
    engine = make_engine(url)
    start, end = last_days(engine, days)
    with engine.connect() as connection:
        total = connection.execute(select(func.count()).select_from(ActivityEvent)).scalar_one()
        busiest, zone = connection.execute(
            select(Workspace.id, Workspace.timezone)
            .join(ActivityEvent, ActivityEvent.workspace_id == Workspace.id)
            .where(ActivityEvent.occurred_at >= start, ActivityEvent.occurred_at < end)
            .group_by(Workspace.id, Workspace.timezone)
            .order_by(func.count().desc())
            .limit(1)
        ).one()
    lines = [
        f"Database: {total:,} events, range {start:%Y-%m-%d} to {end:%Y-%m-%d} ({days} days).",
        "",
        "| scope | events in range | count(*) reference | charts (SQL) | draw | charts total "
        "| ratio to reference | flags |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, f, tz in (
        ("busiest workspace", EventFilter(workspace_ids=(busiest,), start=start, end=end), zone),
        ("all workspaces", EventFilter(start=start, end=end), "UTC"),
    ):
        with engine.connect() as connection:
            statement = select(func.count()).select_from(ActivityEvent).where(where_clause(f))
            connection.execute(statement).scalar_one()  # warm the cache alike for both
            ref, n = timed(lambda s=statement, c=connection: c.execute(s).scalar_one())
        sql, insights = timed(compute, engine, ADMIN, f, tz)
        draw = draw_seconds(insights)
        flag_seconds, report = timed(evaluate, engine, ADMIN, f)
        lines.append(
            f"| {label} | {n:,} | {ref:.2f} s | {sql:.2f} s | {draw:.2f} s | {sql + draw:.2f} s "
            f"| {(sql + draw) / ref:.1f}x | {flag_seconds:.2f} s ({len(report.findings())} "
            "findings) |"
        )
        print(lines[-1], flush=True)
    lines += ["", planted_check(engine, report)]
    stopped, gone = cancel_latency(engine, EventFilter(start=start, end=end))
    lines += [
        "",
        f"Cancel (all workspaces, after 0.5 s): stopped {stopped:.2f} s after the request; "
        f"server query gone from pg_stat_activity: {'yes' if gone else 'NO'}.",
    ]
    engine.dispose()
    return lines


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", help="an already seeded PostgreSQL database")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--workspaces", type=int, default=10)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    if args.url:
        command = f"uv run python -m benchmarks.insights --url URL --days {args.days}"
        lines = bench(args.url, args.days)
    else:
        from nvadmin.db import migrate
        from nvadmin.demo.seed import SeedPlan, seed
        from tests.pgcluster import cluster

        command = (
            f"uv run python -m benchmarks.insights --events {args.events} "
            f"--workspaces {args.workspaces} --days {args.days}"
        )
        with cluster() as url:
            engine = make_engine(url)
            migrate.upgrade(engine)
            seconds, _ = timed(
                seed,
                engine,
                SeedPlan(workspaces=args.workspaces, events=args.events, end=date.today()),
            )
            engine.dispose()
            print(f"seeded {args.events:,} events in {seconds:.0f} s", flush=True)
            lines = bench(url, args.days)
    header = (
        f"\n### {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — {platform.node()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}\n\n"
        f"Command: `{command}`\n\n"
    )
    text_ = header + "\n".join(lines) + "\n"
    print(text_)
    if not args.no_record:
        results = ROOT / "benchmarks" / "RESULTS.md"
        existing = results.read_text() if results.exists() else "# Benchmark results\n"
        if "\n## Insights\n" not in existing:
            results.write_text(existing.rstrip("\n") + "\n\n## Insights\n" + text_)
        else:
            head, tail = existing.split("\n## Insights\n", 1)
            results.write_text(head + "\n## Insights\n" + text_ + tail)
    return 0


if __name__ == "__main__":
    sys.exit(main())
