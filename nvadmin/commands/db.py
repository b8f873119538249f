"""``nvadmin db``: schema upgrade and partition maintenance."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from nvadmin.commands import arguments
from nvadmin.errors import UserError

if TYPE_CHECKING:
    from nvadmin.context import Context

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
        help="make PostgreSQL enforce staff identity: groups, logins, grants, policies",
        description="Creates the staff groups nvadmin_support, nvadmin_compliance and "
        "nvadmin_admin, the nvadmin_gate sign-in login and the nvadmin_viewer event-writing "
        "service role; gives every staff account its own login (a converted account needs "
        "`nvadmin staff reset-password`). Run as the owner of the audit tables, with "
        "CREATEROLE. Prints every role's privileges.",
    )
    roles.add_argument(
        "--login", metavar="NAME", help="also create this service login (member of nvadmin_viewer)"
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
    report = db_roles.create_roles(context.engine, args.login, password)
    if args.print:
        for statement in report.statements:
            print(f"{statement};")
    for role, privileges in db_roles.privileges_by_role().items():
        print(f"{role}:")
        for privilege in privileges:
            print(f"  - {privilege}")
    groups = ", ".join(db_roles.GROUPS.values())
    print(f"staff groups {groups} (members of {db_roles.STAFF}) are ready")
    if args.login:
        print(f"service login {args.login} is a member of {db_roles.VIEWER}")
    for email in report.converted:
        print(f"{email}: has a login now; set its password: nvadmin staff reset-password {email}")
    for warning in report.warnings:
        print(f"warning: {warning}")
    for email in report.too_long:
        print(f"{email}: longer than a PostgreSQL login name (63 bytes); add it again shorter")
    return 0
