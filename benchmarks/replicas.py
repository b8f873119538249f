"""Read replicas under load: two concurrent exports plus a steady append load on the primary,
with the exports reading the primary and then reading a streaming hot standby.

Run:  uv run python -m benchmarks.replicas [--events 1000000] [--rounds 3] [--rate 50]

A throwaway primary + standby (tests/pgcluster.py) is seeded with ``--events`` events in one
workspace (nvadmin seed's generator) and the standby waited for. Then, per round and per case
(``primary``: both exports read the primary; ``standby``: both read the standby, each recording
its export event on the primary):

- an appender thread writes one event every 1/``--rate`` s through nvadmin's chain writer on the
  primary, timing each append (commit included);
- two exports of the whole workspace run at once (``export_csv``, as the Exports dock does);
- the CPU time used by every process of each server (postmaster and backends, the walsender
  included) is summed from psutil over the exports' window.

Printed: per case the median over rounds of the exports' wall time, the primary's and the
standby's CPU seconds, and the append latency p50/p95 (all appends of all rounds) together with
the latency of appends with no export running (the baseline, measured first in each round).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import psutil
from sqlalchemy import Engine, select
from sqlalchemy.engine import make_url

from nvadmin.audit.chain import ChainWriter, EventDraft
from nvadmin.auth.accounts import command_line_operator
from nvadmin.db import migrate, routing
from nvadmin.db.engine import make_engine
from nvadmin.db.models import Workspace
from nvadmin.demo.seed import SeedPlan, seed
from nvadmin.export.service import ExportRequest, export_csv
from nvadmin.query.filters import EventFilter
from tests.pgcluster import Server, primary_and_standby

END = date(2026, 11, 1)
DAYS = 30


def server_cpu(server: Server) -> dict[int, float]:
    """CPU seconds (user + system) of every process of ``server``, by pid; under -1, those of
    the backends that have exited (the postmaster reaped them: its children's times), so a
    connection closed during the window still counts."""
    pid = int((server.data / "postmaster.pid").read_text().splitlines()[0])
    main = psutil.Process(pid)
    reaped = main.cpu_times()
    found: dict[int, float] = {-1: reaped.children_user + reaped.children_system}
    for process in [main, *main.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        found[process.pid] = times.user + times.system
    return found


def used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two :func:`server_cpu` readings: a backend that exits in between
    moves its time from its own entry to the reaped total, so the sums stay comparable."""
    return sum(after.values()) - sum(before.values())


class Appender(threading.Thread):
    """One event every ``interval`` seconds on the primary; each append timed."""

    def __init__(self, engine: Engine, workspace_id: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.writer = ChainWriter(engine)
        self.workspace_id = workspace_id
        self.interval = interval
        self.latencies: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        n = 0
        next_at = time.perf_counter()
        while not self.stop.is_set():
            n += 1
            draft = EventDraft(
                occurred_at=datetime.now(UTC),
                action="chart.view",
                actor_type="member",
                actor_name="Load Generator",
                actor_email="load@bench.example",
                patient_id=f"P{n:06d}",
            )
            started = time.perf_counter()
            self.writer.append_one(self.workspace_id, draft)
            self.latencies.append(time.perf_counter() - started)
            next_at += self.interval
            self.stop.wait(max(0.0, next_at - time.perf_counter()))

    def take(self) -> list[float]:
        taken, self.latencies = self.latencies, []
        return taken


@dataclass
class Case:
    name: str
    seconds: list[float] = field(default_factory=list)
    primary_cpu: list[float] = field(default_factory=list)
    standby_cpu: list[float] = field(default_factory=list)
    appends: list[float] = field(default_factory=list)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_exports(
    read: Engine, write: Engine, workspace_id: int, folder: Path, tag: str
) -> tuple[float, list[int]]:
    identity = command_line_operator()
    rows: list[int] = []
    errors: list[BaseException] = []

    def one(index: int) -> Callable[[], None]:
        def work() -> None:
            request = ExportRequest(
                event_filter=EventFilter(workspace_ids=(workspace_id,)),
                output=folder / f"{tag}-{index}.csv",
                time_zone="UTC",
                overwrite=True,
            )
            try:
                result = export_csv(read, identity, request, write_engine=write)
                rows.append(result.rows)
            except BaseException as error:  # reported after the join
                errors.append(error)

        return work

    threads = [threading.Thread(target=one(i)) for i in range(2)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - started, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=50.0, help="appends per second")
    parser.add_argument("--baseline-seconds", type=float, default=5.0)
    args = parser.parse_args()

    with primary_and_standby() as pair, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        primary = make_engine(pair.primary.url, statement_timeout_ms=None)
        standby = make_engine(pair.standby.url)
        migrate.upgrade(primary)
        started = time.perf_counter()
        seed(primary, SeedPlan(workspaces=1, events=args.events, end=END, days=DAYS, plant=False))
        print(f"seeded {args.events:,} events in {time.perf_counter() - started:.1f} s")
        with primary.connect() as connection:
            workspace_id = connection.execute(
                select(Workspace.id).where(Workspace.is_system.is_(False))
            ).scalar_one()
        assert routing.wait_for_replay(standby, routing.current_lsn(primary), timeout=600)
        print(f"standby replayed; primary {make_url(pair.primary.url).port}, "
              f"standby {make_url(pair.standby.url).port}")  # fmt: skip
        appender = Appender(primary, workspace_id, 1 / args.rate)
        appender.start()
        baseline: list[float] = []
        cases = {"primary": Case("exports read the primary"),
                 "standby": Case("exports read the standby")}  # fmt: skip
        for round_ in range(args.rounds):
            appender.take()
            appender.stop.wait(args.baseline_seconds)
            baseline += appender.take()
            for key, read in (("primary", primary), ("standby", standby)):
                p0, s0 = server_cpu(pair.primary), server_cpu(pair.standby)
                seconds, rows = run_exports(read, primary, workspace_id, folder, key)
                p1, s1 = server_cpu(pair.primary), server_cpu(pair.standby)
                case = cases[key]
                case.seconds.append(seconds)
                case.primary_cpu.append(used(p0, p1))
                case.standby_cpu.append(used(s0, s1))
                case.appends += appender.take()
                print(f"round {round_ + 1} {key}: 2 x {rows[0]:,} rows in {seconds:.2f} s, "
                      f"primary CPU {case.primary_cpu[-1]:.2f} s, "
                      f"standby CPU {case.standby_cpu[-1]:.2f} s")  # fmt: skip
                # Let the standby catch up before the next case (the appends keep coming).
                routing.wait_for_replay(standby, routing.current_lsn(primary), timeout=600)
        appender.stop.set()
        appender.join()
        load = psutil.getloadavg()
        print()
        print(f"{args.events:,} events, 2 concurrent exports, {args.rate:g} appends/s, "
              f"{args.rounds} rounds, {psutil.cpu_count()} CPUs, load {load[0]:.2f}")  # fmt: skip
        ms = 1000
        print("| case | exports (median) | primary CPU s | standby CPU s | "
              "append p50 | append p95 | appends |")  # fmt: skip
        print("|---|---|---|---|---|---|---|")
        print(f"| no export (baseline) | — | — | — | {percentile(baseline, 0.5) * ms:.1f} ms | "
              f"{percentile(baseline, 0.95) * ms:.1f} ms | {len(baseline)} |")  # fmt: skip
        for case in cases.values():
            print(
                f"| {case.name} | {statistics.median(case.seconds):.2f} s "
                f"| {statistics.median(case.primary_cpu):.2f} "
                f"| {statistics.median(case.standby_cpu):.2f} "
                f"| {percentile(case.appends, 0.5) * ms:.1f} ms "
                f"| {percentile(case.appends, 0.95) * ms:.1f} ms | {len(case.appends)} |"
            )
        primary.dispose()
        standby.dispose()


if __name__ == "__main__":
    main()
