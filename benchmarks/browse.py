"""Activity browser benchmark: the real model in an offscreen window on a seeded database.

Run:  uv run python -m benchmarks.browse [--events 10000000] [--workspaces 3] [--scroll 1000000]
      uv run python -m benchmarks.browse --url URL   (a database already seeded by `nvadmin seed`:
      PostgreSQL, or a SQLite file, the embedded default: sqlite:////path/to/file.sqlite3)

A throwaway cluster (tests/pgcluster.py) is seeded with `nvadmin seed`. Then, through
ActivityModel shown in an offscreen QTableView, each measured from the request to the rows being
in the model (what the user sees):

- filter change -> first rows (patient, team member, outcome, category, text filters);
- each sortable column, both directions: first page, next page, jump to the end, in the
  largest workspace and over all workspaces; and the plan of each sort's first page
  (EXPLAIN ANALYZE: which index, no Sort of the events);
- the match count: what is shown at once (estimate) and the exact count;
- jump to the end; go to time (random instants);
- RSS after scrolling through --scroll rows page by page (the model keeps a bounded window);
- side by side: the same "jump to the end" and a deep page with OFFSET (the naive baseline).

Results are appended to benchmarks/RESULTS.md under "Activity browser".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import psutil
from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import make_url

from nvadmin.db.engine import make_engine
from nvadmin.db.models import ActivityEvent as E
from nvadmin.db.models import Workspace
from nvadmin.identity import Role, StaffIdentity
from nvadmin.query.filters import EventFilter, Term
from nvadmin.query.paging import EventPager, Sort, offset_page
from tests import pgcluster
from tests.plans import explain, sorted_inside_a_part

ADMIN = StaffIdentity(1, "bench@nvadmin.example", "Benchmark", Role.ADMIN)
RESULTS = Path(__file__).with_name("RESULTS.md")


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


def ms(value: float) -> str:
    return f"{value * 1000:.0f}"


PAGES = ("first", "next", "end")
SQL_PAGES = tuple(f"{page} sql" for page in PAGES)


def sort_plans(engine: Engine, event_filter: EventFilter, columns: dict[str, Any]) -> list[str]:
    """For each sort key (descending, as a first click on most headers): the indexes its
    first page reads (partition indexes named by their parent), whether any events were
    sorted, and the database's own time for the first page, the next page and the last page
    (PostgreSQL: EXPLAIN ANALYZE's execution time; SQLite: running the page's query; best of
    3, so the load on a shared machine counts less)."""
    if engine.dialect.name == "sqlite":
        return _sqlite_sort_plans(engine, event_filter, columns)
    with engine.connect() as connection:
        parents = dict(
            connection.exec_driver_sql(
                "SELECT c.relname, p.relname FROM pg_inherits i "
                "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
                "WHERE c.relkind = 'i'"
            ).all()
        )
    lines = []
    for key in columns:
        pager = EventPager(engine, ADMIN, event_filter, Sort(key, True))
        cursor = pager.first().rows[-1].cursor
        seconds = {}
        for page in ("first", "after", "last"):
            runs = [
                json.loads(explain(engine, pager.statement(page, cursor), analyze=True))[0]
                for _ in range(3)
            ]
            seconds[page] = min(run["Execution Time"] for run in runs)
            if page == "first":
                plan = runs[0]
        nodes, pending = [], [plan["Plan"]]
        while pending:
            node = pending.pop()
            nodes.append(node)
            pending.extend(node.get("Plans", []))
        indexes = sorted(
            {parents.get(n["Index Name"], n["Index Name"]) for n in nodes if "Index Name" in n}
        )
        kinds = sorted({n["Node Type"] for n in nodes})
        sorted_events = "Sort" in kinds or "Seq Scan" in kinds
        lines.append(
            f"{key}: {', '.join(indexes) or 'no index'} ({', '.join(kinds)}); "
            f"{'SORTS THE EVENTS' if sorted_events else 'no Sort, no Seq Scan'}; "
            "server execution first / next / last page "
            + " / ".join(f"{seconds[p]:.1f}" for p in ("first", "after", "last"))
            + " ms"
        )
    return lines


def _sqlite_sort_plans(
    engine: Engine, event_filter: EventFilter, columns: dict[str, Any]
) -> list[str]:
    lines = []
    for key in columns:
        pager = EventPager(engine, ADMIN, event_filter, Sort(key, True))
        cursor = pager.first().rows[-1].cursor
        seconds, sorts = {}, []
        for page in ("first", "after", "last"):
            statement = pager.statement(page, cursor)
            plan = explain(engine, statement)
            if page == "first":
                indexes = sorted(set(re.findall(r"INDEX (\w+)", plan)))
            if "TEMP B-TREE" in plan and (page != "after" or sorted_inside_a_part(plan)):
                sorts.append(page)
            runs = []
            for _ in range(3):
                with engine.connect() as connection:
                    started = time.perf_counter()
                    connection.execute(statement).fetchall()
                    runs.append(time.perf_counter() - started)
            seconds[page] = min(runs) * 1000
        lines.append(
            f"{key}: {', '.join(indexes) or 'no index'}; "
            + (f"SORTS THE EVENTS ({', '.join(sorts)})" if sorts else "no sort of the events")
            + "; query first / next / last page "
            + " / ".join(f"{seconds[p]:.1f}" for p in ("first", "after", "last"))
            + " ms"
        )
    return lines


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

    from nvadmin.ui.activity_model import SORT_KEY_OF, ActivityModel

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
            .where(E.workspace_id == big[0], E.patient_id.is_not(None), E.actor_email.is_not(None))
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

    errors: list[str] = []
    sql_seconds: list[float] = []

    def wait_rows(action) -> float:  # type: ignore[no-untyped-def]
        """Seconds from the request to the rows in the model (the SQL's own seconds go to
        ``sql_seconds``). A failure (such as the browser's time limit) is recorded in
        ``errors`` and the run goes on."""
        done: list[float] = []
        failed: list[str] = []
        started = time.perf_counter()
        shown = model.rows_shown.connect(
            lambda seconds, sql: (done.append(seconds), sql_seconds.append(sql))
        )
        refused = model.failed.connect(failed.append)
        action()
        deadline = time.monotonic() + 60
        while not done and not failed and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.0005)
        model.rows_shown.disconnect(shown)
        model.failed.disconnect(refused)
        if failed or not done:
            errors.append(failed[0] if failed else "no rows within 60 s")
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

    from PySide6.QtCore import Qt

    # Each sortable column (the first header column of each sort key), both directions:
    # the click (first page), the next page, and the jump to the end.
    columns: dict[str, int] = {}
    for column, key in SORT_KEY_OF.items():
        columns.setdefault(key, column)
    sort_times: dict[tuple[str, str], dict[str, list[float]]] = {}
    for scope, scope_filter, rounds in (
        ("workspace", base, args.repeat),
        ("all workspaces", EventFilter(), max(1, args.repeat // 4)),
    ):
        for key, column in columns.items():
            wait_rows(lambda f=scope_filter: model.run(f, log_view=False, sort=Sort("time", True)))
            times: dict[str, list[float]] = {p: [] for p in PAGES + SQL_PAGES}
            for _ in range(rounds):
                for order in (Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder):
                    for page, action in (
                        ("first", lambda c=column, o=order: model.sort(c, o)),
                        ("next", model.fetch_after),
                        ("end", model.jump_to_end),
                    ):
                        times[page].append(wait_rows(action))
                        times[f"{page} sql"].append(sql_seconds[-1] if sql_seconds else 0.0)
            sort_times[(scope, key)] = times
            print(
                f"sort {scope:15s} {key:10s} first p95 {ms(p95(times['first']))} ms, "
                f"next {ms(p95(times['next']))} ms, end {ms(p95(times['end']))} ms",
                flush=True,
            )
    plans = sort_plans(engine, base, columns)
    count_estimate, count_exact = [], []
    count_pager = EventPager(engine, ADMIN, base)
    for _ in range(5):
        started = time.perf_counter()
        estimate = count_pager.quick_count()
        count_estimate.append(time.perf_counter() - started)
        started = time.perf_counter()
        exact = count_pager.count()
        count_exact.append(time.perf_counter() - started)
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
        "Command: `uv run python -m benchmarks.browse "
        + (
            f"--url URL --repeat {args.repeat} --scroll {args.scroll}`"
            if args.url
            else f"--events {args.events} --workspaces {args.workspaces} "
            f"--repeat {args.repeat} --scroll {args.scroll}`"
        ),
        "",
        f"{'PostgreSQL' if engine.dialect.name == 'postgresql' else 'SQLite'}, {total:,} "
        f"events seeded by `nvadmin seed` in {len(workspaces)} "
        f"workspaces; filters on the largest ({workspace_events:,} events). Through "
        "ActivityModel in an offscreen QTableView, request to rows in the model:",
        "",
        "| operation | n | p50 ms | p95 ms | target |",
        "|---|---:|---:|---:|---|",
        f"| filter change -> first rows | {len(first_rows)} | "
        f"{ms(statistics.median(first_rows))} | {ms(p95(first_rows))} | p95 <= 100 |",
        f"| all workspaces, newest first | {len(all_ws)} | {ms(statistics.median(all_ws))} | "
        f"{ms(p95(all_ws))} | |",
        f"| match count shown at once: {estimate.label()} | 5 | "
        f"{ms(statistics.median(count_estimate))} | {ms(max(count_estimate))} | at once |",
        f"| exact match count ({exact:,}) | 5 | {ms(statistics.median(count_exact))} | "
        f"{ms(max(count_exact))} | in the background |",
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
        "Sorts (each column, ascending and descending alternately; p50 / p95 ms from the "
        "request to the rows in the model, then the SQL's own p95; target p95 <= 150 for each):",
        "",
        "| scope | sort | n | first page | next page | jump to end | SQL p95: first / next / end |",
        "|---|---|---:|---:|---:|---:|---:|",
        *(
            f"| {scope} | {key} | {len(t['first'])} | "
            + " | ".join(f"{ms(statistics.median(t[p]))} / {ms(p95(t[p]))}" for p in PAGES)
            + " | "
            + " / ".join(ms(p95(t[p])) for p in SQL_PAGES)
            + " |"
            for (scope, key), t in sort_times.items()
        ),
        "",
        f"Errors (time limit or other): {len(errors)}"
        + (f" — {sorted(set(errors))}" if errors else "")
        + ".",
        "",
        "Plan of each sort's first page in the workspace, and the database's time for its "
        + (
            "pages (EXPLAIN ANALYZE, descending, best of 3):"
            if engine.dialect.name == "postgresql"
            else "pages (the query run, descending, best of 3; a page's parts checked too):"
        ),
        "",
        *(f"- {line}" for line in plans),
        "",
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
