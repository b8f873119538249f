"""Case file benchmark: create, open and verify a case file holding every event of a workspace.

Run:  uv run python -m benchmarks.casefile --database sqlite:///path/seeded.sqlite3
      uv run python -m benchmarks.casefile [--events 1000000]     (seeds a fresh SQLite file)

Reports, next to a reference measured in the same run (reading the same rows and the size of
the source database file), the time to create the case file (copy into an in-memory SQLite,
index, compress, encrypt), its size, the time to open it (scrypt, decrypt, deserialise), to
verify it offline, and the process's peak resident memory.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from datetime import date
from pathlib import Path

import psutil
from sqlalchemy import Engine, select

from benchmarks.verify import plain_read
from nvadmin.audit.query import EventFilter
from nvadmin.audit.seed import SeedPlan, seed
from nvadmin.auth.roles import Role, StaffIdentity
from nvadmin.casefile.builder import create_case_file
from nvadmin.casefile.reader import open_case_file, verify_case
from nvadmin.db import migrate
from nvadmin.db.engine import make_engine, sqlite_url
from nvadmin.db.models import Workspace

REVIEWER = StaffIdentity(0, "bench@nvadmin.invalid", "benchmark", Role.COMPLIANCE)
PASSPHRASE = "benchmark passphrase, not secret"


def _peak_rss_mb() -> float:
    info = psutil.Process().memory_info()
    return getattr(info, "peak_wset", 0) / 1e6 or _vm_hwm() or info.rss / 1e6


def _vm_hwm() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1e3
    except OSError:
        pass
    return 0.0


def run(engine: Engine, folder: Path, source_size: int | None) -> None:
    with engine.connect() as c:
        workspace_id = c.execute(
            select(Workspace.id).where(Workspace.is_system.is_(False)).order_by(Workspace.id)
        ).scalar_one()
    rows, read_s = plain_read(engine, workspace_id)
    print(f"reference: plain read of {rows:,} events {read_s:.1f} s")
    if source_size:
        print(f"reference: source database file {source_size / 1e6:,.0f} MB")
    started = time.perf_counter()
    summary = create_case_file(
        engine,
        REVIEWER,
        EventFilter(workspace_ids=(workspace_id,)),
        folder / "bench",
        PASSPHRASE,
        source="benchmark",
    )
    create_s = time.perf_counter() - started
    print(
        f"create: {summary.events:,} events in {create_s:.1f} s "
        f"({summary.events / create_s:,.0f} events/s), file {summary.bytes / 1e6:,.1f} MB "
        f"({summary.bytes / max(summary.events, 1):.0f} bytes/event)"
    )
    started = time.perf_counter()
    case = open_case_file(summary.path, PASSPHRASE)
    open_s = time.perf_counter() - started
    print(f"open: {open_s:.1f} s (scrypt + decrypt + decompress + deserialise)")
    started = time.perf_counter()
    (result,) = verify_case(case, REVIEWER)
    verify_s = time.perf_counter() - started
    assert result.intact, result.lines()
    print(f"verify offline: {result.events_verified:,} events in {verify_s:.1f} s")
    case.close()
    print(f"peak resident memory of the process: {_peak_rss_mb():,.0f} MB")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--database", metavar="URL", help="an already seeded database")
    args = parser.parse_args()
    print(
        f"{date.today()} {platform.node()} {platform.machine()} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory() as folder:
        if args.database:
            engine = make_engine(args.database)
            path = Path(engine.url.database or "") if engine.dialect.name == "sqlite" else None
        else:
            path = Path(folder) / "source.sqlite3"
            engine = make_engine(sqlite_url(path))
            migrate.upgrade(engine)
            seed(engine, SeedPlan(workspaces=1, events=args.events, end=date(2026, 11, 1)))
        size = path.stat().st_size if path and path.exists() else None
        run(engine, Path(folder), size)
        engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
