"""``nvadmin db``: schema upgrade and partition maintenance."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from nvadmin.commands import arguments
from nvadmin.context import Context
from nvadmin.errors import UserError

# Ten years of empty monthly partitions is already more than anyone plans ahead.
MAX_MONTHS_AHEAD = 120


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("db", help="database maintenance")
    actions = parser.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    upgrade = actions.add_parser("upgrade", help="migrate the database to this version's schema")
    upgrade.set_defaults(run=run_upgrade)
    parts = actions.add_parser(
        "partitions", help="create monthly event partitions ahead of time (PostgreSQL)"
    )
    parts.add_argument(
        "--months-ahead", type=arguments.whole_number, default=3, metavar="N", help="0 to 120"
    )
    parts.set_defaults(run=run_partitions)
    roles = actions.add_parser(
        "roles",
        help="create least-privilege PostgreSQL roles for nvadmin staff (run as the owner)",
        description="Creates nvadmin_viewer (read everything, append nvadmin's own events, "
        "no UPDATE/DELETE/TRUNCATE of events) and nvadmin_staff_admin (viewer + staff "
        "accounts). See nvadmin/auth/db_roles.py for every privilege and why.",
    )
    roles.add_argument("--login", metavar="NAME", help="also create this login role as a member")
    roles.add_argument(
        "--staff-admin",
        action="store_true",
        help="make the login a member of nvadmin_staff_admin instead of nvadmin_viewer",
    )
    roles.add_argument(
        "--password-stdin", action="store_true", help="read the login's password from stdin"
    )
    roles.add_argument("--print", action="store_true", help="print the SQL as it runs")
    roles.set_defaults(run=run_roles)


def run_upgrade(context: Context, args: argparse.Namespace) -> int:
    from nvadmin.db import migrate

    changed = migrate.upgrade(context.engine)
    head = migrate.head_revision()
    print(f"database upgraded to {head}" if changed else f"database already at {head}")
    return 0


def run_partitions(context: Context, args: argparse.Namespace) -> int:
    from nvadmin.db import migrate, partitions

    if not 0 <= args.months_ahead <= MAX_MONTHS_AHEAD:
        raise UserError(f"--months-ahead: give 0 to {MAX_MONTHS_AHEAD} months")
    migrate.require_head(context.engine)
    if context.engine.dialect.name != "postgresql":
        print("SQLite needs no partitions")
        return 0
    created = partitions.ensure_ahead(context.engine, datetime.now(UTC), args.months_ahead)
    print(f"partitions present for {len(created)} months: {created[0]} to {created[-1]}")
    return 0


def run_roles(context: Context, args: argparse.Namespace) -> int:
    import sys

    from nvadmin.auth import db_roles
    from nvadmin.db import migrate

    migrate.require_head(context.engine)
    password = None
    if args.password_stdin:
        if not args.login:
            raise UserError("--password-stdin needs --login NAME")
        password = sys.stdin.readline().rstrip("\r\n") or None
    statements = db_roles.create_roles(
        context.engine, args.login, password, staff_admin=args.staff_admin
    )
    if args.print:
        for statement in statements:
            print(f"{statement};")
    print(f"roles {db_roles.VIEWER} and {db_roles.STAFF_ADMIN} are ready")
    if args.login:
        group = db_roles.STAFF_ADMIN if args.staff_admin else db_roles.VIEWER
        print(f"login {args.login} is a member of {group}")
    return 0
