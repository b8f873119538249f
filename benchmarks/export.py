"""Export benchmark: nvadmin's CSV export against the database's own C client, in one run.

Run:  uv run python -m benchmarks.export [--events 1000000] [--sqlite-events 1000000]
      uv run python -m benchmarks.export --database URL --sqlite-database FILE   (seeded)
      add --formats csv,jsonl to measure the JSON Lines export too (same baseline)

Each backend (a throwaway PostgreSQL cluster from tests/pgcluster.py and a SQLite file, seeded
with `nvadmin seed`'s generator, one workspace, every event in the exported range) is measured
``--rounds`` times, side by side on the same rows and order, warm cache:

- baseline: `psql \\copy (SELECT * ... ORDER BY occurred_at, id) TO file CSV` /
  `sqlite3 -csv FILE "SELECT * ... ORDER BY occurred_at, id" > file` (raw rows, no formatting:
  the speed limit);
- nvadmin: `export_csv` in this process (formatted, neutralised, hashed, fsynced, logged).

Both run on the whole range, on its second half and on its last hour. The last hour's export is
nearly all fixed cost (connection, snapshot, count, manifest, audit record), so the whole range
less the last hour gives the cost per million rows of each, and the last hour less its few
rows nvadmin's fixed cost; the second half shows the cost growing with the rows. The ratio
printed is the median of the rounds' ratios. RSS growth of this process is sampled during the
whole range's and the half's exports.

PostgreSQL extras (one run each, `--no-extras` skips them): the `nvadmin export` CLI as a
subprocess (sign-in included), the Exports dock's worker while a 50 ms QTimer on the GUI thread
measures how late the event loop runs, and row by row (server-side cursor + csv.writer, what
typical tools do). Results are added to benchmarks/RESULTS.md under "Export".
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import itertools
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from nvadmin.auth.accounts import add_staff, command_line_operator
from nvadmin.db import migrate
from nvadmin.db.engine import make_engine, sqlite_url
from nvadmin.db.models import ActivityEvent, Staff, Workspace
from nvadmin.demo.seed import SeedPlan, seed
from nvadmin.export import profiles
from nvadmin.export.formats import FileFormat
from nvadmin.export.profiles import Profile
from nvadmin.export.service import ExportRequest, export_csv
from nvadmin.files.cells import neutralise
from nvadmin.identity import Role, StaffIdentity
from nvadmin.query.filters import EventFilter
from tests.pgcluster import cluster

END = date(2026, 11, 1)
DAYS = 30
PASSWORD = "Benchmark password 2026!"
STAFF = "bench@nvadmin.example"
ROOT = Path(__file__).resolve().parents[1]
_CONTENDER = {
    FileFormat.CSV: "nvadmin `export_csv`",
    FileFormat.JSONL: "nvadmin JSON Lines",
}
_WHAT = {
    FileFormat.CSV: "neutralised",
    FileFormat.JSONL: "one JSON object per line",
}


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
    """Peak RSS of this process while a block runs (``tree``: with its child processes, their
    RSS added up at each sample)."""

    def __init__(self, tree: bool = False) -> None:
        self._process = psutil.Process()
        self._tree = tree
        self._stop = threading.Event()
        self.start_rss = 0
        self.peak = 0

    def __enter__(self) -> RssSampler:
        self.start_rss = self.peak = self._rss()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _rss(self) -> int:
        rss = self._process.memory_info().rss
        for child in self._process.children(recursive=True) if self._tree else ():
            with contextlib.suppress(psutil.Error):  # it may end between the two calls
                rss += child.memory_info().rss
        return int(rss)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self._rss())

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


@dataclass
class Side:
    """One export measured against its C-client baseline: the whole range, its second half and
    its last hour.

    The cost per row is the whole range's time less the last hour's, over the rows between
    them. It was the whole range less the second half, but that difference of two long runs
    moved by ±0.3 s between runs of the same code on this shared machine (per row 0.94 to 1.36 times
    for one build), while the last hour, well under a second, is nearly all fixed cost. Its
    fixed part is, if anything, smaller than the whole range's (fewer columns are worth reading
    ahead: :mod:`nvadmin.export.plain`), which counts against nvadmin's cost per row."""

    rows: int
    half_rows: int
    ours: list[float]
    base: list[float]
    ours_half: list[float]
    base_half: list[float]
    short_rows: int = 0
    ours_short: list[float] = field(default_factory=list)
    base_short: list[float] = field(default_factory=list)
    rss_all_mb: float = 0.0
    rss_half_mb: float = 0.0
    # CPU seconds of the exporting process / the client process (the whole range)
    ours_cpu: list[float] = field(default_factory=list)
    base_cpu: list[float] = field(default_factory=list)

    def ratio(self) -> float:
        return statistics.median(o / b for o, b in zip(self.ours, self.base, strict=True))

    def per_row(self) -> tuple[float, float, float, float]:
        """(nvadmin s per M rows, baseline s per M rows, their ratio, nvadmin fixed s)."""
        extra = (self.rows - self.short_rows) / 1e6
        ours = (statistics.median(self.ours) - statistics.median(self.ours_short)) / extra
        base = (statistics.median(self.base) - statistics.median(self.base_short)) / extra
        fixed = statistics.median(self.ours_short) - ours * self.short_rows / 1e6
        return ours, base, ours / base, fixed

    def lines(self, client: str, contender: str = "nvadmin `export_csv`") -> list[str]:
        ours_m, base_m, per_row, fixed = self.per_row()
        o, b = statistics.median(self.ours), statistics.median(self.base)
        oh, bh = statistics.median(self.ours_half), statistics.median(self.base_half)
        os_, bs = statistics.median(self.ours_short), statistics.median(self.base_short)
        return [
            f"| rows | {client} | {contender} | ratio (median of rounds) |",
            "|---:|---:|---:|---:|",
            f"| {self.rows:,} | {b:.2f} s | {o:.2f} s | **{self.ratio():.2f}** |",
            f"| {self.half_rows:,} (second half) | {bh:.2f} s | {oh:.2f} s | {oh / bh:.2f} |",
            f"| {self.short_rows:,} (last hour) | {bs:.2f} s | {os_:.2f} s | {os_ / bs:.2f} |",
            "",
            f"Per million rows (whole range less the last hour): nvadmin {ours_m:.2f} s, "
            f"{client} "
            f"{base_m:.2f} s, **{per_row:.2f}x per row**; nvadmin's fixed cost "
            f"**{fixed:.2f} s**. Rounds: nvadmin {', '.join(f'{x:.2f}' for x in self.ours)}; "
            f"{client} {', '.join(f'{x:.2f}' for x in self.base)}.",
            f"CPU time of the process itself (whole range, median; a database server's is not "
            f"counted): nvadmin {statistics.median(self.ours_cpu):.2f} s, {client} "
            f"{statistics.median(self.base_cpu):.2f} s, ratio "
            f"{statistics.median(self.ours_cpu) / statistics.median(self.base_cpu):.2f}.",
            f"RSS growth during the export: {self.half_rows:,} rows {self.rss_half_mb:.0f} MB, "
            f"{self.rows:,} rows {self.rss_all_mb:.0f} MB.",
        ]


def side_by_side(
    rounds: int,
    ours: Any,
    base: Any,
    start: datetime,
    end: datetime,
    half_start: datetime,
    short_start: datetime,
) -> Side:
    """``ours(start, end)`` -> (seconds, rows); ``base(start, end)`` -> seconds."""
    base(start, end)  # warm the cache so the first contender is not penalised
    side = Side(0, 0, [], [], [], [])
    for _ in range(rounds):
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        side.base.append(base(start, end))
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        side.base_cpu.append(
            after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
        )
        cpu = time.process_time()
        with RssSampler() as rss_all:
            seconds, side.rows = ours(start, end)
        side.ours_cpu.append(time.process_time() - cpu)
        side.ours.append(seconds)
        side.base_half.append(base(half_start, end))
        with RssSampler() as rss_half:
            seconds, side.half_rows = ours(half_start, end)
        side.ours_half.append(seconds)
        side.base_short.append(base(short_start, end))
        seconds, side.short_rows = ours(short_start, end)
        side.ours_short.append(seconds)
        side.rss_all_mb = max(side.rss_all_mb, rss_all.growth_mb)
        side.rss_half_mb = max(side.rss_half_mb, rss_half.growth_mb)
        print(
            f"  round: base {side.base[-1]:.2f} s, nvadmin {side.ours[-1]:.2f} s; half: base "
            f"{side.base_half[-1]:.2f} s, nvadmin {side.ours_half[-1]:.2f} s; last hour: base "
            f"{side.base_short[-1]:.2f} s, nvadmin {side.ours_short[-1]:.2f} s",
            flush=True,
        )
    return side


def days_for(events: int) -> int:
    """The seeder writes at most 100,000 events a day per workspace."""
    return max(DAYS, -(-events // 100_000))


def event_range(engine: Any, workspace_id: int) -> tuple[datetime, datetime]:
    """Whole UTC days around every event of the workspace: the range exported."""
    with engine.connect() as connection:
        low, high = connection.execute(
            select(func.min(ActivityEvent.occurred_at), func.max(ActivityEvent.occurred_at)).where(
                ActivityEvent.workspace_id == workspace_id
            )
        ).one()
    first = datetime.combine(low.date() - timedelta(days=1), datetime.min.time(), UTC)
    last = datetime.combine(high.date() + timedelta(days=2), datetime.min.time(), UTC)
    return first, last


def later_starts(engine: Any, workspace_id: int) -> tuple[datetime, datetime]:
    """The starts of the second half (the time of the workspace's middle event) and of the last
    hour (an hour before its last event)."""
    events = ActivityEvent.__table__
    with engine.connect() as connection:
        count = connection.execute(
            select(func.count()).where(events.c.workspace_id == workspace_id)
        ).scalar_one()
        at, last = (
            connection.execute(
                select(ActivityEvent.occurred_at)
                .where(ActivityEvent.workspace_id == workspace_id)
                .order_by(ActivityEvent.occurred_at)
                .offset(offset)
                .limit(1)
            ).scalar_one()
            for offset in (count // 2, count - 1)
        )
    at, last = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in (at, last))
    return at, last - timedelta(hours=1)


def _seed_postgres(url: str, events: int) -> None:
    engine = make_engine(url)
    migrate.upgrade(engine)
    print(f"seeding {events:,} events into PostgreSQL…", flush=True)
    seconds, _ = timed(
        seed,
        engine,
        SeedPlan(workspaces=1, events=events, seed=7, end=END, days=days_for(events)),
    )
    print(f"  seeded in {seconds:.0f} s", flush=True)
    # A live database has been vacuumed and analysed by autovacuum long before anyone
    # exports from it; do the same so neither side is timed against a cold bulk load.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM (ANALYZE) activity_events")
    engine.dispose()


def _bench_staff(engine: Any) -> None:
    with engine.connect() as connection:
        exists = connection.execute(select(Staff.id).where(Staff.email == STAFF)).first()
    if exists is None:
        add_staff(engine, command_line_operator(), STAFF, PASSWORD, "compliance")


def bench_postgres(
    events: int,
    folder: Path,
    rounds: int,
    database: str | None,
    extras: bool,
    variants: list[tuple[FileFormat, Profile]],
) -> list[str]:
    with contextlib.ExitStack() as stack:
        if database:
            url = database
        else:
            url = stack.enter_context(cluster())
            _seed_postgres(url, events)
        return _bench_postgres(url, folder, rounds, extras, variants)
    raise AssertionError("unreachable")


def drop(path: Path) -> None:
    """Remove a run's file (and manifest) outside the timed part, so no run pays for replacing
    the one before it."""
    path.unlink(missing_ok=True)
    Path(str(path) + ".manifest.json").unlink(missing_ok=True)


def _bench_postgres(
    url: str, folder: Path, rounds: int, extras: bool, variants: list[tuple[FileFormat, Profile]]
) -> list[str]:
    lines: list[str] = []
    engine = make_engine(url)
    _bench_staff(engine)
    with engine.connect() as connection:
        ws = connection.execute(
            select(Workspace.id, Workspace.slug).where(Workspace.is_system.is_(False))
        ).first()
    assert ws is not None
    start, end = event_range(engine, ws.id)
    identity = StaffIdentity(1, STAFF, "Bench", Role.COMPLIANCE)

    def request(
        name: str,
        start_: datetime = start,
        file_format: FileFormat = FileFormat.CSV,
        profile: Profile = profiles.DEFAULT,
    ) -> ExportRequest:
        return ExportRequest(
            event_filter=EventFilter(workspace_ids=(ws.id,), start=start_, end=end),
            output=folder / name,
            time_zone="America/Chicago",
            overwrite=True,
            file_format=file_format,
            profile=profile,
        )

    def ours_as(file_format: FileFormat, profile: Profile) -> Any:
        def ours(start_: datetime, end_: datetime) -> tuple[float, int]:
            name = f"mem{file_format.suffix}"
            seconds, result = timed(
                export_csv, engine, identity, request(name, start_, file_format, profile)
            )
            drop(folder / name)
            return seconds, result.rows

        return ours

    def base(start_: datetime, end_: datetime) -> float:
        seconds = reference_psql(url, ws.id, start_, end_, folder / "ref.csv")
        drop(folder / "ref.csv")
        return seconds

    for file_format, profile in variants:
        what = file_format.label
        if file_format is FileFormat.CSV:
            what += f", {profile.key} profile"
        print(f"PostgreSQL: psql \\copy against the {what} export…", flush=True)
        side = side_by_side(
            rounds, ours_as(file_format, profile), base, start, end, *later_starts(engine, ws.id)
        )
        lines += [
            *([""] if lines else []),
            f"PostgreSQL, {what}, {side.rows:,} rows of one workspace, formatted "
            f"in America/Chicago, {_WHAT[file_format]}, ordered by time; baseline "
            "`psql \\copy (SELECT * … ORDER BY occurred_at, id) TO file CSV` (raw rows):",
            "",
            *side.lines("`psql \\copy`", _CONTENDER[file_format]),
        ]
    side_rows = side.rows
    if not extras:
        engine.dispose()
        return lines

    results: dict[str, float] = {"psql": statistics.median(side.base)}
    cli = [
        sys.executable, "-m", "nvadmin", "--database", url, "export",
        "--workspace", ws.slug, "--from", start.date().isoformat(), "--to",
        (end.date() - timedelta(days=1)).isoformat(), "--tz", "UTC", "--output",
        str(folder / "cli.csv"), "--staff", STAFF, "--password-stdin", "--force", "--quiet",
    ]  # fmt: skip
    seconds, done = timed(
        subprocess.run, cli, input=PASSWORD + "\n", text=True, capture_output=True, cwd=ROOT
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    results["cli"] = seconds
    assert count_rows(folder / "cli.csv") == side_rows, "CLI export row count differs"
    drop(folder / "cli.csv")

    seconds, lateness, beats = gui_worker(engine, identity, request("gui.csv"))
    results["gui"] = seconds
    drop(folder / "gui.csv")
    engine.dispose()

    results["row_by_row"] = row_by_row(url, ws.id, start, end, folder / "rows.csv")
    drop(folder / "rows.csv")
    ref = results["psql"]
    lines += [
        "",
        "Other paths, one run each (x the median `psql \\copy` above):",
        "",
        "| path | seconds | x psql reference |",
        "|---|---:|---:|",
        f"| `nvadmin export` CLI (process start + sign-in included) | {results['cli']:.1f} "
        f"| {results['cli'] / ref:.2f} |",
        f"| GUI worker (Exports dock Job) | {results['gui']:.1f} | {results['gui'] / ref:.2f} |",
        f"| row by row: server-side cursor + csv.writer | {results['row_by_row']:.1f} "
        f"| {results['row_by_row'] / ref:.2f} |",
        "",
        f"GUI event loop during the GUI export: max lateness of a 50 ms QTimer "
        f"{lateness:.0f} ms over {beats} ticks.",
    ]
    return lines


def bench_sqlite(
    events: int,
    folder: Path,
    rounds: int,
    database: Path | None,
    formats: tuple[FileFormat, ...] = (FileFormat.CSV,),
) -> list[str]:
    path = database or folder / "bench.sqlite3"
    engine = make_engine(sqlite_url(path))
    if database is None:
        migrate.upgrade(engine)
        print(f"seeding {events:,} events into SQLite…", flush=True)
        plan = SeedPlan(workspaces=1, events=events, seed=7, end=END, days=days_for(events))
        seed(engine, plan)
    with engine.connect() as connection:
        ws = connection.execute(select(Workspace.id).where(Workspace.is_system.is_(False))).first()
    assert ws is not None
    start, end = event_range(engine, ws.id)
    identity = StaffIdentity(1, STAFF, "Bench", Role.COMPLIANCE)

    def ours_as(file_format: FileFormat) -> Any:
        def ours(start_: datetime, end_: datetime) -> tuple[float, int]:
            request = ExportRequest(
                event_filter=EventFilter(workspace_ids=(ws.id,), start=start_, end=end_),
                output=folder / f"sqlite{file_format.suffix}",
                time_zone="America/Chicago",
                overwrite=True,
                file_format=file_format,
            )
            seconds, result = timed(export_csv, engine, identity, request)
            drop(request.output)
            return seconds, result.rows

        return ours

    def base(start_: datetime, end_: datetime) -> float:
        query = (
            f"SELECT * FROM activity_events WHERE workspace_id = {ws.id} AND occurred_at >= "
            f"'{start_:%Y-%m-%d %H:%M:%S.%f}' AND occurred_at < '{end_:%Y-%m-%d %H:%M:%S.%f}' "
            "ORDER BY occurred_at, id"
        )
        with (folder / "sqlite-ref.csv").open("w") as handle:
            seconds, _ = timed(
                subprocess.run, ["sqlite3", "-csv", str(path), query], stdout=handle, check=True
            )
        drop(folder / "sqlite-ref.csv")
        return float(seconds)

    lines: list[str] = []
    for file_format in formats:
        print(f"SQLite: sqlite3 -csv against the {file_format.label} export…", flush=True)
        side = side_by_side(
            rounds, ours_as(file_format), base, start, end, *later_starts(engine, ws.id)
        )
        lines += [
            "",
            f"SQLite, {file_format.label}, {side.rows:,} rows, same export; baseline "
            '`sqlite3 -csv FILE "SELECT * … ORDER BY occurred_at, id" > file` (raw rows):',
            "",
            *side.lines("`sqlite3 -csv`", _CONTENDER[file_format]),
        ]
    engine.dispose()
    return lines


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--sqlite-events", type=int, default=1_000_000)
    parser.add_argument("--database", metavar="URL", help="an already seeded PostgreSQL database")
    parser.add_argument(
        "--sqlite-database", metavar="FILE", type=Path, help="an already seeded SQLite file"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--no-extras", action="store_true", help="skip the CLI, GUI and row-by-row paths"
    )
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument(
        "--formats",
        default="csv",
        metavar="csv,jsonl",
        help="the export formats measured, comma-separated (default: csv)",
    )
    parser.add_argument(
        "--csv-profiles",
        default=",".join(p.key for p in profiles.PROFILES),
        help="the CSV profiles to measure on PostgreSQL, comma-separated (default: all)",
    )
    args = parser.parse_args()
    formats = tuple(FileFormat(f.strip()) for f in args.formats.split(",") if f.strip())
    with tempfile.TemporaryDirectory(prefix="nvadmin-export-bench-") as tmp:
        folder = Path(tmp)
        os.chmod(folder, 0o777)  # psql's \copy writes as the client user, but be safe
        lines = []
        if args.events or args.database:
            chosen = [profiles.by_key(k.strip()) for k in args.csv_profiles.split(",")]
            variants = [
                (f, p) for f in formats for p in (chosen if f is FileFormat.CSV else chosen[:1])
            ]
            lines += bench_postgres(
                args.events, folder, args.rounds, args.database, not args.no_extras, variants
            )
        if args.sqlite_events or args.sqlite_database:
            lines += bench_sqlite(
                args.sqlite_events, folder, args.rounds, args.sqlite_database, formats
            )
    command = " ".join(
        [f"--events {args.events}", f"--sqlite-events {args.sqlite_events}"]
        if not (args.database or args.sqlite_database)
        else [
            *(["--database URL"] if args.database else ["--events 0"]),
            *(["--sqlite-database FILE"] if args.sqlite_database else ["--sqlite-events 0"]),
        ]
    )
    load = os.getloadavg()
    header = (
        f"\n### {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — {platform.node()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, load average "
        f"{load[0]:.1f} at the end\n\n"
        f"Command: `uv run python -m benchmarks.export {command} --rounds {args.rounds}"
        f"{' --no-extras' if args.no_extras else ''}"
        f"{f' --formats {args.formats}' if args.formats != 'csv' else ''}`\n\n"
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
