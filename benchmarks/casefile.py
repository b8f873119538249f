"""Case file benchmark: create, open and verify a case file holding every event of a workspace.

Run:  uv run python -m benchmarks.casefile [--events 1000000]      (PostgreSQL, throwaway cluster)
      uv run python -m benchmarks.casefile --backend sqlite [--events 1000000]
      uv run python -m benchmarks.casefile --database URL          (an already seeded database)
      ... [--window] [--bounds]

Each step runs in a process of its own, so its peak resident memory (``ru_maxrss``) is its
own: creating the case file, and opening it then verifying it offline. The reference, in the
same run on the same warm database, is the database's own client reading the same rows in
chain order and throwing them away: ``psql`` (``SELECT * ... ORDER BY seq`` printed unaligned
to /dev/null) or the ``sqlite3`` shell. Printed: each step's time, CPU time and peak memory,
and the create / reference ratio (target ≤ 2, memory ≤ 300 MB and flat in the number of
events; open ≤ 2 s whatever the size), then the case browser's slowest page per sort and
search on the open case file (the open step's process, after verification).

``--window`` also measures the create step in the main window, as a reviewer saves a case
file of the workspace being browsed (offscreen Qt): the window's memory while browsing, and
the peak of the window and the copying process together while the case file is built.

``--bounds`` (SQLite sources) also measures two lower bounds of the create step, each in a
process of its own, with the builder's copy (one ``INSERT ... SELECT`` from the source attached
to the case database, in a process with no other connection to the source:
``nvadmin.casefile.copier``):
the rows alone into the encrypted case database with no event index but the chain's (what
encryption costs), and the rows into a plain, unencrypted SQLite file with every case index
built after the copy by ``CREATE INDEX`` (the fastest way SQLite has to a file with those
indexes; its sorts hold every key in memory, so the builder cannot use it beyond a million
events or so: see ``nvadmin.casefile.builder.CACHE_KIB``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import make_url

REVIEWER_EMAIL = "bench@nvadmin.invalid"
PASSPHRASE = "benchmark passphrase, not secret"
END = date(2026, 11, 1)


def _workspace(url: str) -> int:
    from nvadmin.db.engine import make_engine
    from nvadmin.db.models import Workspace

    engine = make_engine(url)
    with engine.connect() as c:
        workspace_id = c.execute(
            select(Workspace.id).where(Workspace.is_system.is_(False)).order_by(Workspace.id)
        ).scalar_one()
    engine.dispose()
    return int(workspace_id)


def _peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e3 if sys.platform != "darwin" else peak / 1e6


def _cpu() -> float:
    """CPU seconds of this process and of its children that ended (the case-file builder's
    copying process)."""
    return sum(
        usage.ru_utime + usage.ru_stime
        for usage in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    )


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1e3
    return 0.0


def step_create(url: str, destination: Path) -> dict[str, Any]:
    from benchmarks.export import RssSampler
    from nvadmin.casefile.builder import create_case_file
    from nvadmin.db.engine import make_engine
    from nvadmin.identity import Role, StaffIdentity
    from nvadmin.query.filters import EventFilter

    reviewer = StaffIdentity(0, REVIEWER_EMAIL, "benchmark", Role.COMPLIANCE)
    engine = make_engine(url)
    workspace_id = _workspace(url)
    cpu, started = _cpu(), time.perf_counter()
    with RssSampler(tree=True) as rss:  # the copying process's memory counts too
        summary = create_case_file(
            engine,
            reviewer,
            EventFilter(workspace_ids=(workspace_id,)),
            destination,
            PASSPHRASE,
            source="benchmark",
        )
    return {
        "seconds": time.perf_counter() - started,
        "cpu": _cpu() - cpu,
        "events": summary.events,
        "bytes": summary.bytes,
        "peak_mb": max(_peak_mb(), rss.peak / 1e6),
    }


def step_open_verify(path: Path) -> dict[str, Any]:
    from benchmarks.export import RssSampler
    from nvadmin.casefile.reader import open_case_file, verify_case
    from nvadmin.identity import Role, StaffIdentity

    reviewer = StaffIdentity(0, REVIEWER_EMAIL, "benchmark", Role.COMPLIANCE)
    cpu, started = _cpu(), time.perf_counter()
    case = open_case_file(path, PASSPHRASE)
    open_s, open_cpu = time.perf_counter() - started, _cpu() - cpu
    open_rss = _rss_mb()
    started = time.perf_counter()
    with RssSampler(tree=True) as rss:  # the page-checking process's memory counts too
        (result,) = verify_case(case, reviewer)
    verify_s = time.perf_counter() - started
    assert result.intact, result.lines()
    # Open and verify; browsing may sort in memory (temp_store = MEMORY).
    peak = max(_peak_mb(), rss.peak / 1e6)
    browse = _browse(case, result.workspace_id)
    case.close()
    return {
        "open_seconds": open_s,
        "open_cpu": open_cpu,
        "rss_open_mb": open_rss,
        "verify_seconds": verify_s,
        "verified": result.events_verified,
        "peak_mb": peak,
        "browse_peak_mb": _peak_mb(),
        "browse": browse,
    }


def step_window(url: str, destination: Path) -> dict[str, Any]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["NVADMIN_HOME"] = str(destination.parent / "home")  # not the user's settings
    from PySide6.QtWidgets import QApplication

    from benchmarks.export import RssSampler
    from nvadmin.context import Context
    from nvadmin.identity import Role, StaffIdentity
    from nvadmin.query.filters import EventFilter
    from nvadmin.ui.main_window import MainWindow

    app = QApplication([])
    reviewer = StaffIdentity(0, REVIEWER_EMAIL, "benchmark", Role.COMPLIANCE)
    context = Context.create(url)
    window = MainWindow(context, reviewer)
    window.show()
    workspace = EventFilter(workspace_ids=(_workspace(url),))
    window.apply_filter(workspace)
    while window.model.loading or window.model.rowCount() == 0:
        app.processEvents()
        time.sleep(0.01)
    browsing = _rss_mb()
    done: list[bool] = []
    started = time.perf_counter()
    with RssSampler(tree=True) as rss:  # the window and the copying process
        job = window.features.compliance.save_case(destination, PASSPHRASE, workspace)
        job.finished.connect(lambda *_: done.append(True))
        while not done:
            app.processEvents()
            time.sleep(0.02)
    seconds = time.perf_counter() - started
    if not destination.with_name(destination.name + ".nvcase").exists():
        raise SystemExit("the window did not save the case file")
    return {
        "seconds": seconds,
        "browsing_mb": browsing,
        "peak_mb": rss.peak / 1e6,
        "after_mb": _rss_mb(),
    }


def step_bound(url: str, destination: Path, bound: str) -> dict[str, Any]:
    """One lower bound of the create step (see the module's text): ``rows`` or ``plain``."""
    import sqlcipher3

    from nvadmin.casefile import builder, encrypted, schema
    from nvadmin.db import migrate

    destination.touch()
    if bound == "rows":
        database = encrypted.create(destination, os.urandom(32), cache_kib=builder.CACHE_KIB)
    else:
        database = sqlcipher3.connect(
            str(destination), isolation_level=None, factory=encrypted.KeptConnection
        )
        for pragma in ("locking_mode = EXCLUSIVE", "journal_mode = OFF", "synchronous = OFF"):
            database.execute(f"PRAGMA main.{pragma}")
        database.execute(f"PRAGMA main.cache_size = -{builder.CACHE_KIB}")
    engine = builder.connection_engine(database, sqlcipher3)
    migrate.upgrade(engine)
    engine.dispose()
    schema.use_one_workspace_indexes(database)
    indexes = schema.event_indexes()
    later = [name for name in indexes if name != "ix_case_events_chain"]
    for name in later:
        database.execute(f"DROP INDEX {name}")
    columns = ", ".join(builder.EVENT_COLUMNS)
    source = str(Path(make_url(url).database or "").resolve())
    workspace_id = _workspace(url)
    cpu, started = _cpu(), time.perf_counter()
    database.execute("ATTACH DATABASE ? AS src KEY ''", (source,))
    database.execute(
        f"INSERT INTO main.activity_events ({columns}) SELECT {columns} FROM src.activity_events "
        f"WHERE workspace_id = {workspace_id} ORDER BY workspace_id, seq, id"
    )
    if bound == "plain":
        for name in later:
            database.execute(f"CREATE INDEX {name} ON activity_events ({', '.join(indexes[name])})")
    seconds = time.perf_counter() - started
    database.discard()
    return {"seconds": seconds, "cpu": _cpu() - cpu, "peak_mb": _peak_mb()}


def _browse(case: Any, workspace_id: int) -> list[tuple[str, float]]:
    """The case browser's pages on the open case file: each sort's first, next and last
    page (descending), a patient's, a member's and an action's events in time order (a case
    file of one workspace offers no "All workspaces"); the slowest page of each, in
    milliseconds."""
    from nvadmin.casefile.schema import sorted_keys
    from nvadmin.identity import Role, StaffIdentity
    from nvadmin.query.filters import EventFilter, Term
    from nvadmin.query.paging import EventPager, Sort

    reviewer = StaffIdentity(0, REVIEWER_EMAIL, "benchmark", Role.COMPLIANCE)
    mine = EventFilter(workspace_ids=(workspace_id,))
    newest = EventPager(case.engine, reviewer, mine, Sort("time", True)).first().rows
    cases: list[tuple[str, Any, EventFilter, Sort]] = [
        (f"sort by {key}", reviewer, mine, Sort(key, True)) for key in [*sorted_keys(), "workspace"]
    ]
    for field, value in (
        ("patient", next((r.patient_id for r in newest if r.patient_id), None)),
        ("user", next((r.actor_email for r in newest if r.actor_email), None)),
        ("action", newest[0].action),
    ):
        if value:
            searched = EventFilter(workspace_ids=(workspace_id,), terms=(Term(field, value),))
            cases.append((f"{field}: search", reviewer, searched, Sort("time", True)))
    slowest: list[tuple[str, float]] = []
    for label, identity, event_filter, sort in cases:
        pager = EventPager(case.engine, identity, event_filter, sort)
        first = pager.first()
        pages = [first.elapsed]
        if first.rows:
            pages.append(pager.after(first.rows[-1].cursor).elapsed)
        pages.append(pager.last().elapsed)
        slowest.append((label, max(pages) * 1e3))
    return slowest


def _child(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.casefile", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def reference_read(url: str, workspace_id: int) -> tuple[float, float]:
    """The database's own client reading the same rows, in chain order, into /dev/null:
    its time and the client's CPU time."""
    query = f"SELECT * FROM activity_events WHERE workspace_id = {workspace_id} ORDER BY seq"
    u = make_url(url)
    if u.get_backend_name() == "postgresql":
        libpq = u.set(drivername="postgresql").render_as_string(hide_password=False)
        command = ["psql", libpq, "-X", "-q", "-A", "-t", "-c", query]
    else:
        command = ["sqlite3", u.database or "", query]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return seconds, cpu


def run(url: str, folder: Path, label: str, bounds: bool = False, window: bool = False) -> None:
    workspace_id = _workspace(url)
    reference_read(url, workspace_id)  # warm the cache as the steps will find it
    reference, reference_cpu = reference_read(url, workspace_id)
    client = "psql" if url.startswith("postgresql") else "sqlite3"
    path = folder / "bench.nvcase"
    created = _child("--step", "create", "--database", url, "--out", str(path))
    opened = _child("--step", "open", "--out", str(path))
    path.unlink()
    events = created["events"]
    ratio = created["seconds"] / reference
    print(f"{label}: {events:,} events, file {created['bytes'] / 1e6:,.0f} MB")
    print("| step | nvadmin | baseline | ratio | peak RSS |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| create | {created['seconds']:.1f} s (CPU {created['cpu']:.1f} s) | "
        f"{client} read of the rows {reference:.1f} s (client CPU {reference_cpu:.1f} s) | "
        f"{ratio:.2f} | "
        f"{created['peak_mb']:,.0f} MB |"
    )
    print(
        f"| open | {opened['open_seconds']:.2f} s (CPU {opened.get('open_cpu', 0):.2f} s; "
        f"{opened['rss_open_mb']:,.0f} MB resident once open) | — | — | — |"
    )
    print(
        f"| open + verify | {opened['open_seconds'] + opened['verify_seconds']:.1f} s "
        f"({opened['verified']:,} events) | — | — | {opened['peak_mb']:,.0f} MB |"
    )
    print(
        f"case browser, slowest of first / next / last page (peak RSS after browsing "
        f"{opened['browse_peak_mb']:,.0f} MB):"
    )
    print(", ".join(f"{label} {ms:,.0f} ms" for label, ms in opened["browse"]))
    if window:
        path = folder / "window"
        inside = _child("--step", "window", "--database", url, "--out", str(path))
        path.with_name("window.nvcase").unlink()
        print(
            f"in the main window: {inside['browsing_mb']:,.0f} MB while browsing the "
            f"workspace; saving its case file took {inside['seconds']:.1f} s, the window and "
            f"the copying process together peaking at {inside['peak_mb']:,.0f} MB (the window "
            f"alone {inside['after_mb']:,.0f} MB after)"
        )
    if bounds:
        _bounds(url, folder, reference)


def _bounds(url: str, folder: Path, reference: float) -> None:
    print("lower bounds of the create step (the source attached; see --bounds):")
    print("| bound | seconds | ratio to the read | peak RSS |")
    print("|---|---:|---:|---:|")
    for bound, label in (
        ("rows", "the rows alone, encrypted, no index but the chain's"),
        ("plain", "no encryption, every case index built after the copy (sorts in memory)"),
    ):
        path = folder / f"bound-{bound}.sqlite3"
        result = _child("--step", f"bound-{bound}", "--database", url, "--out", str(path))
        path.unlink()
        print(
            f"| {label} | {result['seconds']:.1f} s (CPU {result['cpu']:.1f} s) | "
            f"{result['seconds'] / reference:.2f} | {result['peak_mb']:,.0f} MB |"
        )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--database", metavar="URL", help="an already seeded database")
    parser.add_argument(
        "--bounds", action="store_true", help="also measure the create step's lower bounds"
    )
    parser.add_argument(
        "--window", action="store_true", help="also measure the create step in the main window"
    )
    steps = ("create", "open", "window", "bound-rows", "bound-plain")
    parser.add_argument("--step", choices=steps, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    backend = make_url(args.database).get_backend_name() if args.database else args.backend
    if args.bounds and args.step is None and backend != "sqlite":
        parser.error("--bounds copies from a SQLite source: give --backend sqlite or a file")
    if args.step == "create":
        print(json.dumps(step_create(args.database, args.out)))
        return 0
    if args.step == "open":
        print(json.dumps(step_open_verify(args.out)))
        return 0
    if args.step == "window":
        print(json.dumps(step_window(args.database, args.out)))
        return 0
    if args.step:
        print(json.dumps(step_bound(args.database, args.out, args.step.removeprefix("bound-"))))
        return 0
    print(
        f"{date.today()} {platform.node()} {platform.machine()} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory() as folder:
        if args.database:
            run(args.database, Path(folder), "given database", args.bounds, args.window)
        elif args.backend == "sqlite":
            if shutil.which("sqlite3") is None:
                raise SystemExit("the sqlite3 shell is the reference: apt-get install sqlite3")
            source = _seeded(f"sqlite:///{folder}/source.sqlite3", args.events)
            run(source, Path(folder), "SQLite", args.bounds, args.window)
        else:
            from tests.pgcluster import cluster

            with cluster() as server:
                run(_seeded(server, args.events), Path(folder), "PostgreSQL", window=args.window)
        print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


def _seeded(url: str, events: int) -> str:
    from nvadmin.db import migrate
    from nvadmin.db.engine import make_engine
    from nvadmin.demo.seed import SeedPlan, seed

    engine = make_engine(url)
    migrate.upgrade(engine)
    seed(engine, SeedPlan(workspaces=1, events=events, end=END))
    if engine.dialect.name == "postgresql":
        # As autovacuum would have long before anyone makes a case file of these events.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM (ANALYZE) activity_events")
    engine.dispose()
    return url


if __name__ == "__main__":
    raise SystemExit(main())
