"""Activity browser benchmark: the real model in an offscreen window on a seeded PostgreSQL.

Run:  uv run python -m benchmarks.browse [--events 10000000] [--workspaces 3] [--scroll 1000000]

A throwaway cluster (tests/pgcluster.py) is seeded with `nvadmin seed`. Then, through
ActivityModel shown in an offscreen QTableView, each measured from the request to the rows being
in the model (what the user sees):

- filter change -> first rows (patient, team member, outcome, category, text filters);
- sort change (each sortable column);
- jump to the end; go to time (random instants);
- RSS after scrolling through --scroll rows page by page (the model keeps a bounded window);
- side by side: the same "jump to the end" and a deep page with OFFSET (the naive baseline).

Results are appended to benchmarks/RESULTS.md under "Activity browser".
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import psutil
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from nvadmin.audit.paging import EventPager, Sort, offset_page
from nvadmin.audit.query import EventFilter, Term
from nvadmin.auth.roles import Role, StaffIdentity
from nvadmin.db.engine import make_engine
from nvadmin.db.models import ActivityEvent as E
from nvadmin.db.models import Workspace
from tests import pgcluster

ADMIN = StaffIdentity(1, "bench@nvadmin.example", "Benchmark", Role.ADMIN)
RESULTS = Path(__file__).with_name("RESULTS.md")


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


def ms(value: float) -> str:
    return f"{value * 1000:.0f}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--workspaces", type=int, default=3)
    parser.add_argument("--scroll", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--url", help="an already seeded database instead of a new cluster")
    args = parser.parse_args()
    if args.url:
        return run(args, args.url)
    with pgcluster.cluster() as server:
        url = make_url(server).set(database="browse_bench")
        admin = make_engine(make_url(server).set(database="postgres"))
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text('CREATE DATABASE "browse_bench"'))
        admin.dispose()
        rendered = url.render_as_string(hide_password=False)
        started = time.monotonic()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "nvadmin",
                "--database",
                rendered,
                "seed",
                "--workspaces",
                str(args.workspaces),
                "--events",
                str(args.events),
            ],
            check=True,
        )
        print(f"seeded in {time.monotonic() - started:.0f} s", flush=True)
        engine = make_engine(rendered)
        with engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                "VACUUM ANALYZE activity_events"
            )
        engine.dispose()
        return run(args, rendered)


def run(args: argparse.Namespace, url: str) -> int:
    from PySide6.QtWidgets import QApplication, QTableView

    from nvadmin.audit import fields
    from nvadmin.ui.activity_model import ActivityModel, column_of

    app = QApplication.instance() or QApplication([])
    engine = make_engine(url)
    with engine.connect() as connection:
        workspaces = (
            connection.execute(
                select(Workspace.id).where(Workspace.is_system.is_(False)).order_by(Workspace.id)
            )
            .scalars()
            .all()
        )
        total = connection.execute(select(func.count()).select_from(E)).scalar_one()
        big = connection.execute(
            select(E.workspace_id, func.count())
            .group_by(E.workspace_id)
            .order_by(func.count().desc())
            .limit(1)
        ).one()
        first, last = connection.execute(
            select(func.min(E.occurred_at), func.max(E.occurred_at))
        ).one()
        samples = connection.execute(
            select(E.patient_id, E.actor_email)
            .where(E.workspace_id == big[0], E.patient_id.is_not(None))
            .limit(2000)
        ).all()
    workspace_id, workspace_events = big
    print(f"{total:,} events; workspace {workspace_id} has {workspace_events:,}", flush=True)
    model = ActivityModel()
    model.set_source(engine, ADMIN)
    view = QTableView()
    view.setModel(model)
    view.resize(1400, 800)
    view.show()
    rng = random.Random(7)

    def wait_rows(action) -> float:  # type: ignore[no-untyped-def]
        done: list[float] = []
        started = time.perf_counter()
        connection = model.rows_shown.connect(lambda shown, sql: done.append(shown))
        action()
        deadline = time.monotonic() + 60
        while not done and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.0005)
        model.rows_shown.disconnect(connection)
        if model.error:
            raise RuntimeError(model.error)
        return time.perf_counter() - started

    base = EventFilter(workspace_ids=(workspace_id,))
    wait_rows(lambda: model.run(base, log_view=False))  # warm the pool and caches
    filters = []
    for _ in range(args.repeat):
        patient, email = rng.choice(samples)
        filters += [
            base.with_terms(Term("patient", patient)),
            base.with_terms(Term("user", email)),
            base.with_terms(Term("outcome", "failure")),
            base.with_terms(Term("category", rng.choice(["chart_views", "sign_ins", "api_usage"]))),
            EventFilter(
                workspace_ids=(workspace_id,), start=last - timedelta(days=rng.randint(1, 30))
            ),
        ]
    first_rows = [wait_rows(lambda f=f: model.run(f, log_view=False)) for f in filters]
    all_ws = [wait_rows(lambda: model.run(EventFilter(), log_view=False)) for _ in range(5)]

    model.run(base, log_view=False)
    sorts = []
    for column in (
        column_of(fields.TIME),
        column_of(fields.ACTION),
        column_of(fields.OUTCOME),
        column_of(fields.PATIENT),
        column_of(fields.NAME),
        column_of(fields.IP),
    ):
        for order in (0, 1):
            from PySide6.QtCore import Qt

            qt_order = Qt.SortOrder.AscendingOrder if order == 0 else Qt.SortOrder.DescendingOrder
            sorts.append(
                (column.name, order, wait_rows(lambda c=column, o=qt_order: model.sort(c, o)))
            )
    wait_rows(lambda: model.run(base, log_view=False, sort=Sort("time", True)))
    jumps = [wait_rows(model.jump_to_end) for _ in range(args.repeat)]
    span = (last - first).total_seconds()
    gotos = [
        wait_rows(lambda: model.go_to_time(first + timedelta(seconds=rng.uniform(0, span))))
        for _ in range(args.repeat)
    ]
    # OFFSET baseline on the same result: the last page and a page 1M rows deep.
    offset_end = []
    for _ in range(3):
        started = time.perf_counter()
        offset_page(engine, base, Sort("time", True), max(0, workspace_events - 200))
        offset_end.append(time.perf_counter() - started)
    depth = min(1_000_000, max(0, workspace_events - 200))
    started = time.perf_counter()
    offset_page(engine, base, Sort("time", True), depth)
    offset_deep = time.perf_counter() - started
    pager = EventPager(engine, ADMIN, base)
    page = pager.first()
    anchor = page.rows[-1].cursor
    keyset_page = []
    for _ in range(3):
        started = time.perf_counter()
        pager.after(anchor)
        keyset_page.append(time.perf_counter() - started)

    # Scroll through rows page by page, as the view would.
    process = psutil.Process()
    rss_before = process.memory_info().rss
    wait_rows(lambda: model.run(EventFilter(), log_view=False, sort=Sort("time", True)))
    scrolled = model.rowCount()
    scroll_started = time.perf_counter()
    while scrolled < args.scroll and not model.at_end:
        before = model.rowCount()
        wait_rows(model.fetch_after)
        scrolled += model.page_size
        if before == model.rowCount() and model.rowCount() < model.max_rows:
            break
    scroll_seconds = time.perf_counter() - scroll_started
    rss_after = process.memory_info().rss

    lines = [
        "",
        f"### {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — {platform.node()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}",
        "",
        f"Command: `uv run python -m benchmarks.browse --events {args.events} "
        f"--scroll {args.scroll}`",
        "",
        f"PostgreSQL, {total:,} events seeded by `nvadmin seed` in {len(workspaces)} "
        f"workspaces; filters on the largest ({workspace_events:,} events). Through "
        "ActivityModel in an offscreen QTableView, request to rows in the model:",
        "",
        "| operation | n | p50 ms | p95 ms | target |",
        "|---|---:|---:|---:|---|",
        f"| filter change -> first rows | {len(first_rows)} | "
        f"{ms(statistics.median(first_rows))} | {ms(p95(first_rows))} | p95 <= 100 |",
        f"| all workspaces, newest first | {len(all_ws)} | {ms(statistics.median(all_ws))} | "
        f"{ms(p95(all_ws))} | |",
        f"| sort change (6 columns x 2 directions) | {len(sorts)} | "
        f"{ms(statistics.median(s[2] for s in sorts))} | {ms(p95([s[2] for s in sorts]))} | |",
        f"| jump to end (keyset) | {len(jumps)} | {ms(statistics.median(jumps))} | "
        f"{ms(p95(jumps))} | <= 150 |",
        f"| go to time (keyset) | {len(gotos)} | {ms(statistics.median(gotos))} | "
        f"{ms(p95(gotos))} | <= 150 |",
        f"| baseline: last page with OFFSET {max(0, workspace_events - 200):,} | 3 | "
        f"{ms(statistics.median(offset_end))} | {ms(max(offset_end))} | |",
        f"| baseline: page at OFFSET {depth:,} | 1 | {ms(offset_deep)} | | |",
        f"| next page (keyset, SQL only) | 3 | {ms(statistics.median(keyset_page))} | "
        f"{ms(max(keyset_page))} | |",
        "",
        "Slowest sorts: "
        + ", ".join(
            f"{name} {'desc' if order else 'asc'} {ms(t)} ms"
            for name, order, t in sorted(sorts, key=lambda s: -s[2])[:3]
        )
        + ".",
        "Jump to end: OFFSET / keyset = "
        f"{statistics.median(offset_end) / statistics.median(jumps):.1f}x.",
        f"Scrolled {scrolled:,} rows in {scroll_seconds:.0f} s (all workspaces, newest first); "
        f"RSS {rss_before / 2**20:.0f} MB before, {rss_after / 2**20:.0f} MB after "
        "(target <= 300 MB); the model holds at most "
        f"{model.max_rows:,} rows.",
    ]
    text_out = "\n".join(lines) + "\n"
    print(text_out)
    existing = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    heading = "## Activity browser"
    if heading not in existing:
        existing = existing.rstrip("\n") + f"\n\n{heading}\n"
    # Insert at the end of this section, before the next one.
    start = existing.index(heading)
    end = existing.find("\n## ", start + len(heading))
    end = len(existing) if end < 0 else end
    RESULTS.write_text(existing[:end].rstrip("\n") + "\n" + text_out + existing[end:])
    engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
