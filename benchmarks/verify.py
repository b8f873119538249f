"""Verification benchmark: `verify_workspace` against plain reading of the same rows.

Run:  uv run python -m benchmarks.verify [--events 1000000] [--backend sqlite|postgresql|both]
      uv run python -m benchmarks.verify --database URL     (an already seeded database)

For each backend it seeds one workspace with ``--events`` events (`nvadmin seed`'s generator),
then, in the same run and on the same warm database:

* reads every column of the same rows in chain order and does nothing with them (the
  reference: what reading costs) — with the driver cursor verification's careful pass uses
  and, on PostgreSQL, also with ``COPY ... TO STDOUT (FORMAT BINARY)``, the fastest way to
  get rows into Python; the ratio is taken against the faster of the two;
* verifies the whole chain (``verify_workspace``: every event's hash recomputed).

It prints the rates in events/s and the ratio (1.0 = verification as fast as reading).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from datetime import date
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.engine import make_url

from nvadmin.audit.chain import CHAINED_FIELDS
from nvadmin.audit.seed import SeedPlan, seed
from nvadmin.audit.verify import _MAX_SEQ, _stream, verify_workspace
from nvadmin.auth.roles import Role, StaffIdentity
from nvadmin.db import migrate
from nvadmin.db.engine import make_engine, sqlite_url
from nvadmin.db.models import Workspace

END = date(2026, 11, 1)
REVIEWER = StaffIdentity(0, "bench@nvadmin.invalid", "benchmark", Role.COMPLIANCE)


def _workspace(engine: Engine) -> tuple[int, str]:
    with engine.connect() as c:
        row = c.execute(
            select(Workspace.id, Workspace.slug).where(Workspace.is_system.is_(False))
        ).first()
    assert row is not None
    return int(row[0]), str(row[1])


def plain_read(engine: Engine, workspace_id: int) -> tuple[int, float]:
    started = time.perf_counter()
    count = 0
    with engine.connect() as connection, connection.begin():
        for _row in _stream(connection, "activity_events", workspace_id, 1, _MAX_SEQ):
            count += 1
    return count, time.perf_counter() - started


def copy_read(engine: Engine, workspace_id: int) -> tuple[int, float]:
    """Every column by binary COPY, each row parsed into Python values by the driver."""
    columns = ", ".join((*CHAINED_FIELDS, "id", "prev_hash", "hash"))
    select_sql = (
        f"SELECT {columns} FROM activity_events WHERE workspace_id = {int(workspace_id)} "
        "ORDER BY seq, id"
    )
    started = time.perf_counter()
    count = 0
    with engine.connect() as connection:
        pg = connection.connection.driver_connection
        with pg.cursor() as cursor:  # type: ignore[union-attr]
            cursor.execute(select_sql + " LIMIT 0")
            types = [d.type_code for d in cursor.description]
            with cursor.copy(f"COPY ({select_sql}) TO STDOUT (FORMAT BINARY)") as copy:
                copy.set_types(types)
                for _row in copy.rows():
                    count += 1
    return count, time.perf_counter() - started


def measure(engine: Engine, events: int, label: str, *, seeded: bool = False) -> dict[str, float]:
    if not seeded:
        migrate.upgrade(engine)
        started = time.perf_counter()
        seed(engine, SeedPlan(workspaces=1, events=events, end=END, plant=False))
        print(f"[{label}] seeded {events:,} events in {time.perf_counter() - started:.1f} s")
    workspace_id, slug = _workspace(engine)
    plain_read(engine, workspace_id)  # warm the cache: every measurement reads warm pages
    rows, read_s = plain_read(engine, workspace_id)
    print(f"[{label}] plain read, cursor: {read_s:.2f} s ({rows / read_s:,.0f}/s)")
    if engine.dialect.name == "postgresql":
        copied, copy_s = copy_read(engine, workspace_id)
        assert copied == rows
        print(f"[{label}] plain read, binary COPY: {copy_s:.2f} s ({rows / copy_s:,.0f}/s)")
        read_s = min(read_s, copy_s)
    result = verify_workspace(engine, REVIEWER, slug)
    assert result.intact, result.lines()
    assert result.events_verified == rows
    out = {"rows": rows, "read_s": read_s, "verify_s": result.seconds}
    print(
        f"[{label}] {rows:,} events: verify {result.seconds:.2f} s "
        f"({rows / result.seconds:,.0f}/s), verify/read time ratio "
        f"{result.seconds / read_s:.2f} (against the faster plain read)"
    )
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--database", metavar="URL", help="an already seeded database (its first clinic is used)"
    )
    args = parser.parse_args()
    print(
        f"{date.today()} {platform.node()} {platform.machine()} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    if args.database:
        engine = make_engine(args.database)
        measure(engine, 0, engine.dialect.name, seeded=True)
        engine.dispose()
        return 0
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as folder:
            engine = make_engine(sqlite_url(Path(folder) / "bench.sqlite3"))
            measure(engine, args.events, "sqlite")
            engine.dispose()
    if args.backend in ("postgresql", "both"):
        from tests.pgcluster import cluster

        with cluster() as server:
            admin = make_engine(make_url(server).set(database="postgres"))
            with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.exec_driver_sql("CREATE DATABASE bench_verify")
            admin.dispose()
            engine = make_engine(make_url(server).set(database="bench_verify"))
            measure(engine, args.events, "postgresql")
            engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
