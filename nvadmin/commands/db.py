"""``nvadmin db``: schema upgrade and partition maintenance."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from nvadmin.context import Context


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("db", help="database maintenance")
    actions = parser.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    upgrade = actions.add_parser("upgrade", help="migrate the database to this version's schema")
    upgrade.set_defaults(run=run_upgrade)
    parts = actions.add_parser(
        "partitions", help="create monthly event partitions ahead of time (PostgreSQL)"
    )
    parts.add_argument("--months-ahead", type=int, default=3, metavar="N")
    parts.set_defaults(run=run_partitions)


def run_upgrade(context: Context, args: argparse.Namespace) -> int:
    from nvadmin.db import migrate

    changed = migrate.upgrade(context.engine)
    head = migrate.head_revision()
    print(f"database upgraded to {head}" if changed else f"database already at {head}")
    return 0


def run_partitions(context: Context, args: argparse.Namespace) -> int:
    from nvadmin.db import migrate, partitions

    migrate.require_head(context.engine)
    if context.engine.dialect.name != "postgresql":
        print("SQLite needs no partitions")
        return 0
    created = partitions.ensure_ahead(context.engine, datetime.now(UTC), args.months_ahead)
    print(f"partitions present for {len(created)} months: {created[0]} to {created[-1]}")
    return 0
