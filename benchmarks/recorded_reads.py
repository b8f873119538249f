"""What the events' row-level security costs a staff login: reads only after a recorded access.

Run:  uv run python -m benchmarks.recorded_reads [--events 1000000] [--rounds 5]
      (PostgreSQL: a throwaway cluster, or ``--database URL`` of a superuser)

A signed-in support login opens the largest workspace (a recorded view), then reads it the way
an export does (``COPY (SELECT * ... ORDER BY occurred_at, id) TO STDOUT``) and the way the
export form counts (``count(*)`` with a filter no index serves), under each policy in turn,
alternating within each round:

* the session-only policy of migration 0003 (rows in any signed-in session: the reference);
* the recorded-read policy of migration 0009 (:data:`nvadmin.auth.db_roles.POLICIES`).

It prints the medians and the ratio of the two. The policy is put back as ``db roles`` makes it
however the run ends.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from nvadmin.auth import accounts, db_roles
from nvadmin.auth.accounts import command_line_operator
from nvadmin.auth.server_signin import ServerAuthenticator
from nvadmin.db.engine import make_engine
from nvadmin.identity import Role

PASSWORD = "recorded-reads-benchmark"
SESSION_ONLY = "(SELECT nvadmin_session_verified())"


def _policy(owner: Engine, expression: str) -> None:
    with owner.begin() as connection:
        connection.execute(text("DROP POLICY nvadmin_staff_select ON activity_events"))
        connection.execute(
            text(
                "CREATE POLICY nvadmin_staff_select ON activity_events FOR SELECT "
                f"TO nvadmin_staff USING ({expression})"
            )
        )


def _copy_seconds(engine: Engine, workspace: int) -> tuple[float, int]:
    query = (
        f"COPY (SELECT * FROM activity_events WHERE workspace_id = {workspace} "
        "ORDER BY occurred_at, id) TO STDOUT (FORMAT CSV)"
    )
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cursor:  # type: ignore[attr-defined]
            began, rows = time.perf_counter(), 0
            with cursor.copy(query) as copy:
                for chunk in copy:
                    rows += bytes(chunk).count(b"\n")
            return time.perf_counter() - began, rows
    finally:
        raw.close()


def _count_seconds(engine: Engine, workspace: int) -> float:
    with engine.connect() as connection:
        began = time.perf_counter()
        connection.execute(
            text(
                "SELECT count(*) FROM activity_events "
                "WHERE workspace_id = :w AND user_agent LIKE '%zz%'"
            ),
            {"w": workspace},
        ).scalar()
        return time.perf_counter() - began


def run(url: str, rounds: int) -> None:
    owner = make_engine(url)
    email = f"bench-{uuid.uuid4().hex[:8]}@n.example"
    accounts.add_staff(owner, command_line_operator(), email, PASSWORD, Role.SUPPORT)
    with owner.connect() as connection:
        workspace = connection.execute(
            text("SELECT workspace_id FROM activity_events GROUP BY 1 ORDER BY count(*) DESC")
        ).scalar()
        schema = connection.execute(text("SELECT current_schema()")).scalar_one()
    (recorded,) = [
        e for t, g, _c, e in db_roles.POLICIES if (t, g) == ("activity_events", db_roles.STAFF)
    ]
    recorded = recorded.format(s=schema).removeprefix("USING ")
    session = ServerAuthenticator(make_url(url).set(username=None, password=None)).sign_in(
        email, PASSWORD
    )
    with session.engine.begin() as connection:
        connection.execute(
            text(
                "SELECT nvadmin_record_access(:w, 'activity_log.view', '{}', 'activity_log', "
                ":r, 'benchmark')"
            ),
            {"w": workspace, "r": str(workspace)},
        )
    policies = {"session only (0003)": SESSION_ONLY, "recorded reads (0009)": recorded}
    copies: dict[str, list[float]] = {name: [] for name in policies}
    counts: dict[str, list[float]] = {name: [] for name in policies}
    rows = 0
    try:
        for _ in range(rounds):
            for name, expression in policies.items():
                _policy(owner, expression)
                session.engine.dispose()  # no plan cached under the other policy
                _copy_seconds(session.engine, workspace)  # warm
                seconds, rows = _copy_seconds(session.engine, workspace)
                copies[name].append(seconds)
                counts[name].append(_count_seconds(session.engine, workspace))
    finally:
        _policy(owner, recorded)
        session.engine.dispose()
        owner.dispose()

    def line(label: str, measured: dict[str, list[float]], unit: Callable[[float], Any]) -> None:
        base, new = (statistics.median(v) for v in measured.values())
        spread = ", ".join(
            f"{name} {unit(statistics.median(v))} ({unit(min(v))} to {unit(max(v))})"
            for name, v in measured.items()
        )
        print(f"{label}: {spread}; ratio {new / base:.3f}")

    print(f"{rows:,} rows of workspace {workspace}, {rounds} rounds, policies alternating:")
    line("COPY in time order", copies, lambda s: f"{s:.2f} s")
    line("count(*) with an unindexed filter", counts, lambda s: f"{s * 1000:.0f} ms")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database", help="a migrated, seeded database (superuser URL)")
    args = parser.parse_args()
    if args.database:
        run(args.database, args.rounds)
        return 0
    from benchmarks.casefile import _seeded
    from tests.pgcluster import cluster

    with cluster() as server:
        url = _seeded(server, args.events)
        from nvadmin.__main__ import main as nvadmin

        sys.stdin = io.StringIO("")  # db roles asks nothing
        nvadmin(["--database", url, "db", "roles"])
        run(url, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
