"""What the server-enforced identity costs: browsing and exporting as a staff login (row-level
security gated on a signed-in session) against the same work as the table owner.

Run:  uv run python -m benchmarks.staff_login [--events 1000000] [--rounds 5]

Starts a throwaway PostgreSQL cluster, seeds one workspace with ``--events`` events
(`nvadmin seed`'s generator), runs ``nvadmin db roles``, adds a support login and signs it in.
Then, alternately as the owner (no row-level security) and as the signed-in login, it times:
the first page of the workspace (keyset, newest first), the last page, the exact count, and
a CSV export of the whole workspace (COPY). It prints medians and the ratio login/owner
(1.00 = no cost). Sign-in itself is timed too (gate + connection + server checks).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import Engine, select

from nvadmin.auth import accounts, db_roles
from nvadmin.auth.signin import Authenticator
from nvadmin.db import migrate
from nvadmin.db.engine import make_engine
from nvadmin.db.models import Workspace
from nvadmin.demo.seed import SeedPlan, seed
from nvadmin.export.service import ExportRequest, export_csv
from nvadmin.identity import Role, StaffIdentity
from nvadmin.query.filters import EventFilter
from nvadmin.query.paging import EventPager
from tests import pgcluster

END = date(2026, 11, 1)
EMAIL = "bench-support@nvadmin.invalid"
PASSWORD = "benchmark-password-long"
OWNER = StaffIdentity(0, "owner@nvadmin.invalid", "owner", Role.ADMIN)


def _median(work: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _export(
    engine: Engine, identity: StaffIdentity, event_filter: EventFilter, folder: Path
) -> None:
    target = folder / f"export-{time.monotonic_ns()}.csv"
    request = ExportRequest(event_filter, target, "UTC", ticket="BENCH-1")
    result = export_csv(engine, identity, request)
    result.path.unlink()
    result.manifest_path.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, {os.cpu_count()} cores")
    with pgcluster.cluster() as url, tempfile.TemporaryDirectory() as folder:
        owner = make_engine(url)
        migrate.upgrade(owner)
        seed(owner, SeedPlan(workspaces=1, events=args.events, end=END))
        with owner.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
        db_roles.create_roles(owner)
        accounts.add_staff(owner, accounts.command_line_operator(), EMAIL, PASSWORD, Role.SUPPORT)
        started = time.perf_counter()
        session = Authenticator(owner).sign_in(EMAIL, PASSWORD)
        sign_in_seconds = time.perf_counter() - started
        assert session.engine is not None
        with owner.connect() as connection:
            workspace_id = connection.execute(
                select(Workspace.id).where(Workspace.is_system.is_(False))
            ).scalar_one()
        event_filter = EventFilter(workspace_ids=(workspace_id,))
        print(f"{args.events:,} events; sign-in as a staff login {sign_in_seconds * 1000:.0f} ms")
        print(f"{'work':<18}{'owner':>10}{'login':>10}{'ratio':>8}")
        runs: list[tuple[str, Engine, StaffIdentity]] = [
            ("owner", owner, OWNER),
            ("login", session.engine, session.identity),
        ]
        for name, work in (
            ("first page", lambda e, i: EventPager(e, i, event_filter).first()),
            ("last page", lambda e, i: EventPager(e, i, event_filter).last()),
            ("exact count", lambda e, i: EventPager(e, i, event_filter).count()),
            ("CSV export", lambda e, i: _export(e, i, event_filter, Path(folder))),
        ):
            seconds = {
                label: _median(lambda e=engine, i=who, w=work: w(e, i), args.rounds)  # type: ignore[misc]
                for label, engine, who in runs
            }
            ratio = seconds["login"] / seconds["owner"]
            print(
                f"{name:<18}{seconds['owner'] * 1000:>8.1f}ms{seconds['login'] * 1000:>8.1f}ms"
                f"{ratio:>8.2f}"
            )
        session.engine.dispose()
        owner.dispose()


if __name__ == "__main__":
    main()
