"""Verification benchmark: `verify_workspace` against the database's own client reading the
same rows, in one run.

Run:  uv run python -m benchmarks.verify [--events 1000000] [--backend sqlite|postgresql|both]
      uv run python -m benchmarks.verify --database URL     (an already seeded database)

For each backend it seeds one workspace with ``--events`` events (`nvadmin seed`'s generator),
then, on the same warm database, ``--rounds`` times (ratios are taken within a round, the
median reported):

* the baseline: the C client reads every column of the same rows in chain order and throws
  them away (``psql -c "\\copy (SELECT ... ORDER BY seq, id) TO '/dev/null'"`` /
  ``sqlite3 FILE "SELECT ... ORDER BY seq, id" > /dev/null``): what a user without nvadmin
  would have to run to see the rows at all;
* nvadmin: ``verify_workspace`` over the whole chain (every event's hash recomputed: on
  PostgreSQL by the server, nvadmin checking the links; with ``--independent`` every event
  laid out and hashed in nvadmin, the database only returning the stored values).

It prints both times and their ratio (1.0 = verification as fast as the C client reading),
and the CPU time of the client and of nvadmin with the helper processes that walk a long
SQLite chain's later stretches on the other cores (``nvadmin.audit.fastpass``).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import tempfile
import time
from datetime import date
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.engine import make_url

from nvadmin.audit.chain import CHAINED_FIELDS
from nvadmin.audit.verify import verify_workspace
from nvadmin.db import migrate
from nvadmin.db.engine import make_engine, sqlite_url
from nvadmin.db.models import Workspace
from nvadmin.demo.seed import SeedPlan, seed
from nvadmin.identity import Role, StaffIdentity

END = date(2026, 11, 1)
REVIEWER = StaffIdentity(0, "bench@nvadmin.invalid", "benchmark", Role.COMPLIANCE)


def _workspace(engine: Engine) -> tuple[int, str]:
    with engine.connect() as c:
        row = c.execute(
            select(Workspace.id, Workspace.slug).where(Workspace.is_system.is_(False))
        ).first()
    assert row is not None
    return int(row[0]), str(row[1])


def read_sql(workspace_id: int) -> str:
    columns = ", ".join((*CHAINED_FIELDS, "id", "prev_hash", "hash"))
    return (
        f"SELECT {columns} FROM activity_events WHERE workspace_id = {int(workspace_id)} "
        "ORDER BY seq, id"
    )


def client_read(engine: Engine, workspace_id: int) -> tuple[float, float]:
    """Seconds (wall, CPU of the client process) for the database's C client to read the rows
    verification reads."""
    url = engine.url
    children = _children_cpu()
    started = time.perf_counter()
    if engine.dialect.name == "postgresql":
        libpq = url.set(drivername="postgresql").render_as_string(hide_password=False)
        command = ["psql", libpq, "-q", "-c", f"\\copy ({read_sql(workspace_id)}) TO '/dev/null'"]
        subprocess.run(command, check=True)
    else:
        assert url.database
        with open(os.devnull, "wb") as sink:
            subprocess.run(
                ["sqlite3", url.database, read_sql(workspace_id)], stdout=sink, check=True
            )
    seconds = time.perf_counter() - started
    return seconds, _children_cpu() - children


def _children_cpu() -> float:
    """CPU seconds of the ended child processes (SQLite's verification helpers)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(
    engine: Engine,
    events: int,
    label: str,
    *,
    seeded: bool = False,
    rounds: int = 3,
    independent: bool = False,
) -> dict[str, float]:
    if not seeded:
        migrate.upgrade(engine)
        started = time.perf_counter()
        seed(engine, SeedPlan(workspaces=1, events=events, end=END, plant=False))
        print(f"[{label}] seeded {events:,} events in {time.perf_counter() - started:.1f} s")
    workspace_id, slug = _workspace(engine)
    client = "psql \\copy" if engine.dialect.name == "postgresql" else "sqlite3"
    client_read(engine, workspace_id)  # warm the cache: every measurement reads warm pages
    mode = " --independent" if independent else ""
    ratios, reads, verifies, cpu_ratios = [], [], [], []
    rows = 0
    for round_ in range(1, rounds + 1):
        read_s, read_cpu = client_read(engine, workspace_id)
        cpu, helpers = time.process_time(), _children_cpu()
        result = verify_workspace(engine, REVIEWER, slug, independent=independent)
        verify_cpu = time.process_time() - cpu + _children_cpu() - helpers
        cpu_ratios.append(verify_cpu / read_cpu)
        assert result.intact, result.lines()
        rows = result.events_verified
        reads.append(read_s)
        verifies.append(result.seconds)
        ratios.append(result.seconds / read_s)
        print(
            f"[{label}] round {round_}: {rows:,} events: {client} read {read_s:.2f} s, "
            f"nvadmin verify{mode} {result.seconds:.2f} s ({rows / result.seconds:,.0f}/s), "
            f"ratio {ratios[-1]:.2f}; CPU of the processes {read_cpu:.2f} s / "
            f"{verify_cpu:.2f} s, ratio {cpu_ratios[-1]:.2f}",
            flush=True,
        )
    out = {
        "rows": rows,
        "read_s": statistics.median(reads),
        "verify_s": statistics.median(verifies),
        "ratio": statistics.median(ratios),
        "cpu_ratio": statistics.median(cpu_ratios),
    }
    print(
        f"[{label}] median of {rounds}: {client} {out['read_s']:.2f} s, nvadmin verify{mode} "
        f"{out['verify_s']:.2f} s, ratio {out['ratio']:.2f} (CPU of the client, and of nvadmin "
        f"with its helper processes: ratio {out['cpu_ratio']:.2f}; a database server's is not "
        "counted)"
    )
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--database", metavar="URL", help="an already seeded database (its first clinic is used)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--independent",
        action="store_true",
        help="measure `verify --independent` (every event laid out and hashed in nvadmin)",
    )
    args = parser.parse_args()
    print(
        f"{date.today()} {platform.node()} {platform.machine()} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    if args.database:
        engine = make_engine(args.database)
        measure(
            engine,
            0,
            engine.dialect.name,
            seeded=True,
            rounds=args.rounds,
            independent=args.independent,
        )
        engine.dispose()
        return 0
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as folder:
            engine = make_engine(sqlite_url(Path(folder) / "bench.sqlite3"))
            measure(engine, args.events, "sqlite", rounds=args.rounds, independent=args.independent)
            engine.dispose()
    if args.backend in ("postgresql", "both"):
        from tests.pgcluster import cluster

        with cluster() as server:
            admin = make_engine(make_url(server).set(database="postgres"))
            with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.exec_driver_sql("CREATE DATABASE bench_verify")
            admin.dispose()
            engine = make_engine(make_url(server).set(database="bench_verify"))
            measure(
                engine, args.events, "postgresql", rounds=args.rounds, independent=args.independent
            )
            engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
