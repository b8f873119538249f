"""``nvadmin seed``: fill an empty database with deterministic demo activity."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

from nvadmin.commands import arguments

if TYPE_CHECKING:
    from nvadmin.context import Context


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "seed", help="generate realistic demo activity into an empty database"
    )
    number = arguments.whole_number
    parser.add_argument("--workspaces", type=number, default=3, metavar="N")
    parser.add_argument("--events", type=number, default=150_000, metavar="M")
    parser.add_argument("--seed", type=number, default=1, metavar="S")
    parser.add_argument("--days", type=number, default=90, help="length of the history (days)")
    parser.add_argument(
        "--end",
        type=arguments.day,
        metavar="YYYY-MM-DD",
        help="day after the last generated day (default and latest: tomorrow, UTC); nothing "
        "is generated after the current time; an --end in the past gives byte-identical runs "
        "on different days",
    )
    parser.set_defaults(run=run)


def run(context: Context, args: argparse.Namespace) -> int:
    from nvadmin.db import migrate
    from nvadmin.demo.seed import SeedPlan, seed_demo

    plan_args = {
        "workspaces": args.workspaces,
        "events": args.events,
        "seed": args.seed,
        "days": args.days,
    }
    if args.end:
        plan_args["end"] = args.end
    plan = SeedPlan(**plan_args)  # checks the arguments before the database is touched
    migrate.upgrade(context.engine)
    started = time.monotonic()
    bar = TerminalProgress("seeding")
    report = seed_demo(context.engine, plan, progress=bar)
    bar.close()
    elapsed = time.monotonic() - started
    print(
        f"seeded {report.events:,} events in {len(report.workspaces)} workspaces "
        f"({', '.join(report.workspaces)}) in {elapsed:.1f} s "
        f"({report.events / max(elapsed, 1e-9):,.0f} events/s); "
        f"{len(report.planted)} planted cases; demo staff accounts created"
    )
    return 0


class TerminalProgress:
    """A one-line progress bar on a terminal; plain lines every 10 % otherwise."""

    def __init__(self, label: str, stream=None) -> None:  # type: ignore[no-untyped-def]
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.started = time.monotonic()
        self._last_tenth = -1

    def __call__(self, done: int, total: int | None = None, message: str = "") -> None:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = done / elapsed
        if total:
            fraction = min(1.0, done / total)
            eta = (total - done) / rate if rate else 0
            if self.tty:
                filled = int(fraction * 30)
                self.stream.write(
                    f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] {fraction:6.1%} "
                    f"{done:,}/{total:,} {rate:,.0f}/s ETA {eta:4.0f}s "
                )
                self.stream.flush()
            elif int(fraction * 10) > self._last_tenth:
                self._last_tenth = int(fraction * 10)
                print(f"{self.label}: {fraction:.0%} ({done:,}/{total:,})", file=self.stream)
        elif self.tty:
            self.stream.write(f"\r{self.label}: {done:,} {rate:,.0f}/s ")
            self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
