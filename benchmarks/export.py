"""Export benchmark: nvadmin's CSV export against the database's own CSV dump, in one run.

Run:  uv run python -m benchmarks.export [--events 2000000] [--sqlite-events 500000]

PostgreSQL (throwaway cluster from tests/pgcluster.py, seeded with `nvadmin seed`, one
workspace, every event in the exported range), side by side on the same rows and order:

- reference: `psql \\copy (SELECT * ... ORDER BY occurred_at, id) TO file CSV` (raw rows, no
  formatting: the speed limit);
- nvadmin CLI: `nvadmin export ...` as a subprocess (sign-in included);
- nvadmin GUI worker: the Exports dock's Job on its thread pool, while a 50 ms QTimer on the GUI
  thread measures how late the event loop runs (max lateness);
- row by row: psycopg server-side cursor + csv.writer with the same formatting in Python (what
  typical tools do).

Memory: RSS growth of this process during in-process exports of half and all of the rows.
SQLite: nvadmin export against `sqlite3 -csv` on the same query.
Results are appended to benchmarks/RESULTS.md under "Export".
"""

from __future__ import annotations

import argparse
import csv
import itertools
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import select
from sqlalchemy.engine import make_url

from nvadmin.audit.query import EventFilter
from nvadmin.audit.seed import SeedPlan, seed
from nvadmin.auth.accounts import add_staff, command_line_operator
from nvadmin.auth.roles import Role, StaffIdentity
from nvadmin.db import migrate
from nvadmin.db.engine import make_engine, sqlite_url
from nvadmin.db.models import Workspace
from nvadmin.export.columns import neutralise
from nvadmin.export.service import ExportRequest, export_csv
from tests.pgcluster import cluster

END = date(2026, 11, 1)
DAYS = 30
PASSWORD = "Benchmark password 2026!"
STAFF = "bench@nvadmin.example"
ROOT = Path(__file__).resolve().parents[1]


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - started, result


def count_rows(path: Path, *, header: bool = True) -> int:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return sum(1 for _ in csv.reader(handle)) - (1 if header else 0)


def libpq_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def reference_psql(url: str, workspace_id: int, start: datetime, end: datetime, out: Path) -> float:
    query = (
        f"SELECT * FROM activity_events WHERE workspace_id = {workspace_id} "
        f"AND occurred_at >= '{start.isoformat()}' AND occurred_at < '{end.isoformat()}' "
        "ORDER BY occurred_at, id"
    )
    seconds, _ = timed(
        subprocess.run,
        ["psql", libpq_url(url), "-q", "-c", f"\\copy ({query}) TO '{out}' CSV"],
        check=True,
    )
    return float(seconds)


def row_by_row(url: str, workspace_id: int, start: datetime, end: datetime, out: Path) -> float:
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(libpq_url(url)) as connection, out.open("w", newline="") as handle:
        writer = csv.writer(handle)
        with connection.cursor(name="rows") as cursor:
            cursor.itersize = 10_000
            cursor.execute(
                "SELECT occurred_at, seq, actor_type, actor_email, actor_name, actor_role, action,"
                " category, outcome, failure_reason, resource_type, resource_id, patient_id, ip,"
                " user_agent, session_id, request_id, details FROM activity_events"
                " WHERE workspace_id = %s AND occurred_at >= %s AND occurred_at < %s"
                " ORDER BY occurred_at, id",
                (workspace_id, start, end),
            )
            for row in cursor:
                at = row[0]
                writer.writerow(
                    [at.isoformat(), at.astimezone(UTC).isoformat(), row[1]]
                    + [neutralise(v) for v in row[2:]]
                )
    return time.perf_counter() - started


class RssSampler:
    """Peak RSS of this process while a block runs."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._stop = threading.Event()
        self.start_rss = 0
        self.peak = 0

    def __enter__(self) -> RssSampler:
        self.start_rss = self.peak = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.start_rss) / 1e6


def gui_worker(
    engine: Any, identity: StaffIdentity, request: ExportRequest
) -> tuple[float, float, int]:
    """The Exports dock's path; returns (seconds, max event-loop lateness in ms, ticks)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from nvadmin.ui.export_panel import ExportPanel, State

    app = QApplication.instance() or QApplication([])
    panel = ExportPanel(engine, identity)
    panel.show()
    beats: list[float] = []
    timer = QTimer()
    timer.setInterval(50)
    timer.timeout.connect(lambda: beats.append(time.perf_counter()))
    loop = QEventLoop()
    started = time.perf_counter()
    timer.start()
    row = panel.start(request)
    panel.export_finished.connect(lambda _row: loop.quit())
    loop.exec()
    seconds = time.perf_counter() - started
    timer.stop()
    if row.state is not State.DONE:
        raise RuntimeError(f"GUI export ended {row.state}: {row.error}")
    gaps = [b - a for a, b in itertools.pairwise(beats)]
    lateness = max((g - 0.05 for g in gaps), default=0.0) * 1000
    panel.deleteLater()
    app.processEvents()
    return seconds, max(0.0, lateness), len(beats)


def bench_postgres(events: int, folder: Path) -> list[str]:
    lines: list[str] = []
    with cluster() as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        print(f"seeding {events:,} events into PostgreSQL…", flush=True)
        seconds, _ = timed(
            seed, engine, SeedPlan(workspaces=1, events=events, seed=7, end=END, days=DAYS)
        )
        print(f"  seeded in {seconds:.0f} s", flush=True)
        # A live database has been vacuumed and analysed by autovacuum long before anyone
        # exports from it; do the same so neither side is timed against a cold bulk load.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM (ANALYZE) activity_events")
        add_staff(engine, command_line_operator(), STAFF, PASSWORD, "compliance")
        with engine.connect() as connection:
            ws = connection.execute(
                select(Workspace.id, Workspace.slug).where(Workspace.is_system.is_(False))
            ).one()
        engine.dispose()
        first = END - timedelta(days=DAYS + 2)
        start = datetime.combine(first, datetime.min.time(), UTC)
        end = datetime.combine(END + timedelta(days=2), datetime.min.time(), UTC)
        identity = StaffIdentity(1, STAFF, "Bench", Role.COMPLIANCE)
        maintenance = make_engine(url)
        with maintenance.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE activity_events")
        maintenance.dispose()

        def request(name: str, start_: datetime = start) -> ExportRequest:
            return ExportRequest(
                event_filter=EventFilter(workspace_ids=(ws.id,), start=start_, end=end),
                output=folder / name,
                time_zone="America/Chicago",
                overwrite=True,
            )

        def drop(path: Path) -> None:
            path.unlink(missing_ok=True)
            Path(str(path) + ".manifest.json").unlink(missing_ok=True)

        results: dict[str, float] = {}
        # Warm the cache once so the first contender is not penalised.
        reference_psql(url, ws.id, start, end, folder / "warm.csv")
        drop(folder / "warm.csv")

        results["psql"] = reference_psql(url, ws.id, start, end, folder / "ref.csv")
        rows = count_rows(folder / "ref.csv", header=False)
        drop(folder / "ref.csv")

        cli = [
            sys.executable, "-m", "nvadmin", "--database", url, "export",
            "--workspace", ws.slug, "--from", first.isoformat(), "--to",
            (END + timedelta(days=1)).isoformat(), "--tz", "UTC", "--output",
            str(folder / "cli.csv"), "--staff", STAFF, "--password-stdin", "--force", "--quiet",
        ]  # fmt: skip
        seconds, done = timed(
            subprocess.run, cli, input=PASSWORD + "\n", text=True, capture_output=True, cwd=ROOT
        )
        if done.returncode != 0:
            raise RuntimeError(done.stderr)
        results["cli"] = seconds
        assert count_rows(folder / "cli.csv") == rows, "CLI export row count differs"
        drop(folder / "cli.csv")

        engine = make_engine(url)
        seconds, lateness, beats = gui_worker(engine, identity, request("gui.csv"))
        results["gui"] = seconds
        drop(folder / "gui.csv")

        with RssSampler() as rss_all:
            results["inprocess"], _ = timed(export_csv, engine, identity, request("mem.csv"))
        drop(folder / "mem.csv")
        half_start = start + (end - start) / 2
        with RssSampler() as rss_half:
            _, half = timed(export_csv, engine, identity, request("half.csv", half_start))
        drop(folder / "half.csv")
        engine.dispose()

        results["row_by_row"] = row_by_row(url, ws.id, start, end, folder / "rows.csv")
        drop(folder / "rows.csv")

    ref = results["psql"]
    lines += [
        f"PostgreSQL, {rows:,} rows of one workspace (30 days), formatted in America/Chicago "
        "(CLI: UTC), neutralised, ordered by time:",
        "",
        "| path | seconds | x psql reference |",
        "|---|---:|---:|",
        f"| `psql \\copy (SELECT * … ORDER BY occurred_at, id) TO … CSV` | {ref:.1f} | 1.00 |",
        f"| `nvadmin export` CLI (process start + sign-in included) | {results['cli']:.1f} "
        f"| {results['cli'] / ref:.2f} |",
        f"| GUI worker (Exports dock Job) | {results['gui']:.1f} | {results['gui'] / ref:.2f} |",
        f"| `export_csv` in process | {results['inprocess']:.1f} "
        f"| {results['inprocess'] / ref:.2f} |",
        f"| row by row: server-side cursor + csv.writer | {results['row_by_row']:.1f} "
        f"| {results['row_by_row'] / ref:.2f} |",
        "",
        f"GUI event loop during the GUI export: max lateness of a 50 ms QTimer "
        f"{lateness:.0f} ms over {beats} ticks.",
        f"RSS growth during in-process export: {half.rows:,} rows {rss_half.growth_mb:.0f} MB, "
        f"{rows:,} rows {rss_all.growth_mb:.0f} MB.",
    ]
    return lines


def bench_sqlite(events: int, folder: Path) -> list[str]:
    path = folder / "bench.sqlite3"
    engine = make_engine(sqlite_url(path))
    migrate.upgrade(engine)
    print(f"seeding {events:,} events into SQLite…", flush=True)
    seed(engine, SeedPlan(workspaces=1, events=events, seed=7, end=END, days=DAYS))
    with engine.connect() as connection:
        ws = connection.execute(select(Workspace.id).where(Workspace.is_system.is_(False))).one()
    start = datetime.combine(END - timedelta(days=DAYS + 2), datetime.min.time(), UTC)
    end = datetime.combine(END + timedelta(days=2), datetime.min.time(), UTC)
    identity = StaffIdentity(1, STAFF, "Bench", Role.COMPLIANCE)
    query = (
        f"SELECT * FROM activity_events WHERE workspace_id = {ws.id} AND occurred_at >= "
        f"'{start:%Y-%m-%d %H:%M:%S.%f}' AND occurred_at < '{end:%Y-%m-%d %H:%M:%S.%f}' "
        "ORDER BY occurred_at, id"
    )
    with (folder / "sqlite-ref.csv").open("w") as handle:
        ref, _ = timed(
            subprocess.run, ["sqlite3", "-csv", str(path), query], stdout=handle, check=True
        )
    request = ExportRequest(
        event_filter=EventFilter(workspace_ids=(ws.id,), start=start, end=end),
        output=folder / "sqlite.csv",
        time_zone="America/Chicago",
        overwrite=True,
    )
    ours, result = timed(export_csv, engine, identity, request)
    engine.dispose()
    return [
        "",
        f"SQLite, {result.rows:,} rows: `sqlite3 -csv` (raw rows) {ref:.1f} s; nvadmin export "
        f"{ours:.1f} s ({ours / ref:.2f}x, {result.rows / ours:,.0f} rows/s).",
    ]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--sqlite-events", type=int, default=500_000)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nvadmin-export-bench-") as tmp:
        folder = Path(tmp)
        os.chmod(folder, 0o777)  # psql's \copy writes as the client user, but be safe
        lines = bench_postgres(args.events, folder) if args.events else []
        if args.sqlite_events:
            lines += bench_sqlite(args.sqlite_events, folder)
    header = (
        f"\n### {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — {platform.node()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}\n\n"
        f"Command: `uv run python -m benchmarks.export --events {args.events} "
        f"--sqlite-events {args.sqlite_events}`\n\n"
    )
    text = header + "\n".join(lines) + "\n"
    print(text)
    if not args.no_record:
        results = ROOT / "benchmarks" / "RESULTS.md"
        existing = results.read_text() if results.exists() else "# Benchmark results\n"
        if "\n## Export\n" not in existing:
            existing = existing.rstrip("\n") + "\n\n## Export\n"
            results.write_text(existing + text)
        else:
            head, tail = existing.split("\n## Export\n", 1)
            results.write_text(head + "\n## Export\n" + text + tail)
    return 0


if __name__ == "__main__":
    sys.exit(main())
