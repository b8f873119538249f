"""Seeding benchmark: `nvadmin seed` against the raw bulk-load speed of the same rows.

Run:  uv run python -m benchmarks.seed [--events 1000000] [--workspaces 4]

For each backend it times `nvadmin seed` (generation + hashing + loading) into a fresh
database, dumps the generated rows to CSV, then times the database's own bulk loader on those
rows into another fresh database — `psql \\copy ... FROM` on PostgreSQL, the `sqlite3` shell's
`.import` on SQLite — as the reference. Ratios > 1 are the cost of generating and hashing.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from sqlalchemy.engine import make_url

from nvadmin.audit.chain import STORED_FIELDS
from nvadmin.db import migrate, partitions
from nvadmin.db.engine import make_engine, sqlite_url
from nvadmin.demo.seed import SeedPlan, seed
from tests.pgcluster import cluster

END = date(2026, 11, 1)
COLUMNS = ", ".join(STORED_FIELDS)


def _psql(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    u = make_url(url)
    return subprocess.run(
        [
            "psql",
            "-h",
            u.host or "",
            "-p",
            str(u.port),
            "-U",
            u.username or "postgres",
            "-d",
            u.database or "",
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
            *args,
        ],
        check=True,
        capture_output=True,
        text=True,
    )


def bench_postgres(plan: SeedPlan, work: Path) -> tuple[float, float]:
    with cluster() as server:
        url_a = make_url(server).set(database="seed_a").render_as_string(hide_password=False)
        url_b = make_url(server).set(database="seed_b").render_as_string(hide_password=False)
        _psql(server, "-c", "CREATE DATABASE seed_a", "-c", "CREATE DATABASE seed_b")
        engine = make_engine(url_a)
        migrate.upgrade(engine)
        started = time.perf_counter()
        seed(engine, plan)
        ours = time.perf_counter() - started
        engine.dispose()
        csv_file, ws_file = work / "pg-events.csv", work / "pg-workspaces.csv"
        _psql(
            url_a, "-c", f"\\copy (SELECT * FROM workspaces WHERE NOT is_system) TO '{ws_file}' CSV"
        )
        _psql(url_a, "-c", f"\\copy (SELECT {COLUMNS} FROM activity_events) TO '{csv_file}' CSV")
        engine = make_engine(url_b)
        migrate.upgrade(engine)
        with make_engine(url_a).connect() as c:
            first, last = c.exec_driver_sql(
                "SELECT min(occurred_at), max(occurred_at) FROM activity_events"
            ).one()
        partitions.ensure(engine, partitions.months_between(first, last))
        engine.dispose()
        _psql(url_b, "-c", f"\\copy workspaces FROM '{ws_file}' CSV")
        started = time.perf_counter()
        _psql(url_b, "-c", f"\\copy activity_events ({COLUMNS}) FROM '{csv_file}' CSV")
        reference = time.perf_counter() - started
        return ours, reference


def bench_sqlite(plan: SeedPlan, work: Path) -> tuple[float, float]:
    db_a, db_b = work / "a.sqlite3", work / "b.sqlite3"
    engine = make_engine(sqlite_url(db_a))
    migrate.upgrade(engine)
    started = time.perf_counter()
    seed(engine, plan)
    ours = time.perf_counter() - started
    engine.dispose()
    csv_file = work / "sqlite-events.csv"
    subprocess.run(
        ["sqlite3", "-csv", str(db_a), f"SELECT {COLUMNS} FROM activity_events"],
        check=True,
        stdout=csv_file.open("w"),
    )
    engine = make_engine(sqlite_url(db_b))
    migrate.upgrade(engine)
    engine.dispose()
    # .import into a staging table, then INSERT ... SELECT into the real one (the real table
    # has an id column that .import would otherwise fill from the first CSV column).
    script = (
        f"PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;\n"
        f"CREATE TEMP TABLE staging ({COLUMNS});\n"
        f".import --csv {csv_file} staging\n"
        f"INSERT INTO activity_events ({COLUMNS}) SELECT {COLUMNS} FROM staging;\n"
    )
    started = time.perf_counter()
    subprocess.run(["sqlite3", str(db_b)], input=script, text=True, check=True, capture_output=True)
    reference = time.perf_counter() - started
    return ours, reference


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--workspaces", type=int, default=4)
    parser.add_argument("--backend", choices=("both", "postgresql", "sqlite"), default="both")
    args = parser.parse_args()
    plan = SeedPlan(workspaces=args.workspaces, events=args.events, seed=7, end=END)
    print(
        f"{date.today()} {platform.node()} {platform.processor() or platform.machine()} "
        f"{os.cpu_count()} cores, Python {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory(prefix="nvadmin-bench-") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o777)  # the postgres user reads/writes the CSV through psql's client
        backends = ["postgresql", "sqlite"] if args.backend == "both" else [args.backend]
        for backend in backends:
            run = bench_postgres if backend == "postgresql" else bench_sqlite
            ours, reference = run(plan, work)
            loader = "psql \\copy FROM" if backend == "postgresql" else "sqlite3 .import"
            print(
                f"{backend:10s} {args.events:>10,} events: nvadmin seed {ours:6.1f} s "
                f"({args.events / ours:,.0f}/s) | {loader} of the same rows {reference:6.1f} s "
                f"| ratio {ours / reference:.2f}"
            )
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
