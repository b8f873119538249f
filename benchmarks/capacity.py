"""The figures docs/scaling.md rests on: events per clinic per day, bytes per event, append rates.

Run:  uv run python -m benchmarks.capacity [--workspaces 25] [--events 1000000] [--days 96]
      uv run python -m benchmarks.capacity --database URL     (an already seeded PostgreSQL)

Without ``--database`` it starts a throwaway cluster (tests/pgcluster.py), seeds it with the
demo generator (the demo's density is 417 events per clinic per calendar day: 1,000,000 / 25 /
96) and times the seed. Then, on the seeded database:

* events per clinic per calendar day (mean, median, range, weekday and weekend averages, the
  busiest clinic-day), team members per clinic, the API clients' share;
* bytes per event after ``VACUUM ANALYZE``: heap + TOAST and every index of the event table,
  summed over the monthly partitions;
* appends through the chain writer, one event per transaction and 100 per transaction, on four
  workspaces (the throwaway cluster runs with ``fsync`` off: on a real disk each commit also
  waits for the WAL flush).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine, text

from nvadmin.audit.chain import ChainWriter, EventDraft
from nvadmin.db import migrate
from nvadmin.db.engine import make_engine
from nvadmin.demo.seed import SeedPlan, seed
from tests.pgcluster import cluster

END = date(2026, 11, 1)

PER_DAY = """
WITH d AS (
    SELECT w.slug, (e.occurred_at AT TIME ZONE w.timezone)::date AS day, count(*) AS n
    FROM activity_events e JOIN workspaces w ON w.id = e.workspace_id
    WHERE NOT w.is_system GROUP BY 1, 2)
SELECT slug, sum(n) AS total,
       avg(n) FILTER (WHERE extract(isodow FROM day) < 6) AS weekday,
       avg(n) FILTER (WHERE extract(isodow FROM day) >= 6) AS weekend,
       max(n) AS busiest
FROM d GROUP BY slug
"""

# The event table and its indexes, each summed over the monthly partitions.
PARTS = """
SELECT 'heap + TOAST', sum(pg_table_size(i.inhrelid))
FROM pg_inherits i WHERE i.inhparent = 'activity_events'::regclass
UNION ALL
SELECT coalesce(parent.relname, index.relname), sum(pg_relation_size(index.oid))
FROM pg_index x
JOIN pg_class index ON index.oid = x.indexrelid
JOIN pg_inherits part ON part.inhrelid = x.indrelid AND part.inhparent = 'activity_events'::regclass
LEFT JOIN pg_inherits up ON up.inhrelid = index.oid
LEFT JOIN pg_class parent ON parent.oid = up.inhparent
GROUP BY 1 ORDER BY 2 DESC
"""


def demo_mix(engine: Engine, days: int) -> None:
    with engine.connect() as c:
        rows = c.execute(text(PER_DAY)).all()
        members = c.execute(text("SELECT count(*) FROM team_members")).scalar_one()
        api = c.execute(
            text("SELECT avg((actor_type = 'api_client')::int) FROM activity_events")
        ).scalar_one()
    per_day = sorted(float(r.total) / days for r in rows)
    print(
        f"{len(rows)} clinics, per calendar day: mean {statistics.mean(per_day):,.0f}, "
        f"median {statistics.median(per_day):,.0f}, range {per_day[0]:,.0f}-{per_day[-1]:,.0f}; "
        f"weekdays {statistics.mean(float(r.weekday) for r in rows):,.0f}, "
        f"weekends {statistics.mean(float(r.weekend or 0) for r in rows):,.0f}, "
        f"busiest clinic-day {max(r.busiest for r in rows):,}; "
        f"{members / max(1, len(rows)):.1f} team members per clinic; "
        f"{float(api) * 100:.1f} % of events from API clients"
    )


def bytes_per_event(engine: Engine) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text("VACUUM ANALYZE activity_events"))
        events = c.execute(text("SELECT count(*) FROM activity_events")).scalar_one()
        parts = c.execute(text(PARTS)).all()
    total = sum(int(size) for _, size in parts)
    for name, size in parts:
        print(f"  {name:45s} {int(size):>15,} B {int(size) / events:>8,.0f} B/event")
    print(f"  {'total':45s} {total:>15,} B {total / events:>8,.0f} B/event ({events:,} events)")


def appends(engine: Engine, count: int, per_transaction: int) -> None:
    with engine.connect() as c:
        workspaces = list(
            c.execute(
                text("SELECT id FROM workspaces WHERE NOT is_system ORDER BY id LIMIT 4")
            ).scalars()
        )
    writer, now, latencies = ChainWriter(engine), datetime.now(UTC), []
    started = time.perf_counter()
    for i in range(count // per_transaction):
        drafts = [
            EventDraft(
                occurred_at=now + timedelta(milliseconds=i * per_transaction + k),
                action="chart.view",
                actor_type="member",
                actor_name="Capacity Benchmark",
                actor_email="capacity@bench.example",
            )
            for k in range(per_transaction)
        ]
        before = time.perf_counter()
        writer.append(workspaces[i % len(workspaces)], drafts)
        latencies.append(time.perf_counter() - before)
    seconds = time.perf_counter() - started
    latencies.sort()
    print(
        f"  {count:,} events, {per_transaction} per transaction: {count / seconds:,.0f} events/s, "
        f"median {latencies[len(latencies) // 2] * 1000:.1f} ms, "
        f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms per transaction"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", metavar="URL", help="an already seeded PostgreSQL database")
    parser.add_argument("--workspaces", type=int, default=25)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=96)
    args = parser.parse_args()
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC {platform.node()} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}"
    )
    with ExitStack() as stack:
        url = args.database or stack.enter_context(cluster({"max_wal_size": "8GB"}))
        engine = make_engine(url)
        stack.callback(engine.dispose)
        if not args.database:
            migrate.upgrade(engine)
            plan = SeedPlan(workspaces=args.workspaces, events=args.events, days=args.days,
                            end=END)  # fmt: skip
            started = time.perf_counter()
            seed(engine, plan)
            seconds = time.perf_counter() - started
            print(f"seeded {args.events:,} events in {seconds:.1f} s "
                  f"({args.events / seconds:,.0f} events/s)")  # fmt: skip
        with engine.connect() as c:
            server = c.execute(text("SHOW server_version")).scalar_one()
        print(f"PostgreSQL {server}")
        demo_mix(engine, args.days)
        print("bytes per event:")
        bytes_per_event(engine)
        print("appends through the chain writer:")
        appends(engine, 2_000, 1)
        appends(engine, 20_000, 100)
        print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
