"""``nvadmin staff``: manage the staff accounts that may sign in to nvadmin.

Passwords are read from standard input (``--password-stdin``), never from the command line,
where they would end up in shell history and in every user's view of the process list.
The command line acts as an admin named after the operating-system user (see
:func:`nvadmin.auth.accounts.command_line_operator`); this is how the first admin of a new
database is created.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from nvadmin.errors import UserError

if TYPE_CHECKING:
    from nvadmin.context import Context

ROLES = ("support", "compliance", "admin")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("staff", help="add, list, disable, unlock staff accounts")
    actions = parser.add_subparsers(dest="staff_command", metavar="ACTION", required=True)

    add = actions.add_parser("add", help="create a staff account")
    add.add_argument("email")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--name", help="display name (default: the part before @)")
    _password_option(add)
    add.add_argument(
        "--totp",
        action="store_true",
        help="require a code from an authenticator app (prints the secret once)",
    )
    add.set_defaults(run=run_add)

    listing = actions.add_parser("list", help="list staff accounts and their status")
    listing.set_defaults(run=run_list)

    for name, helptext, fn in (
        ("disable", "stop an account from signing in (ends remembered sign-ins)", run_disable),
        ("enable", "allow a disabled account to sign in again", run_enable),
        ("unlock", "end a lockout after too many failed sign-ins", run_unlock),
    ):
        sub = actions.add_parser(name, help=helptext)
        sub.add_argument("email")
        sub.set_defaults(run=fn)

    reset = actions.add_parser(
        "reset-password", help="set a new password (ends remembered sign-ins)"
    )
    reset.add_argument("email")
    _password_option(reset)
    reset.set_defaults(run=run_reset_password)

    role = actions.add_parser("set-role", help="change an account's role")
    role.add_argument("email")
    role.add_argument("role", choices=ROLES)
    role.set_defaults(run=run_set_role)

    policy = actions.add_parser(
        "policy", help="show or set lockout and idle-lock rules for this database"
    )
    policy.add_argument("--max-failures", type=int, metavar="N", dest="max_failed_sign_ins")
    policy.add_argument("--lockout-minutes", type=int, metavar="MIN")
    policy.add_argument("--idle-lock-minutes", type=int, metavar="MIN")
    policy.add_argument("--remember-hours", type=int, metavar="H")
    policy.set_defaults(run=run_policy)


def _password_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (otherwise it is asked for, twice)",
    )


def read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        from nvadmin.auth.passwords import typed_password

        password = typed_password(sys.stdin.readline())
        if not password:
            raise UserError("no password on standard input")
        return password
    if not sys.stdin.isatty():
        raise UserError("give the password with --password-stdin when not at a terminal")
    first = getpass.getpass("New password: ")
    if getpass.getpass("Repeat it: ") != first:
        raise UserError("the two passwords differ")
    return first


def _ready(context: Context):  # type: ignore[no-untyped-def]
    from nvadmin.db import migrate

    migrate.require_head(context.engine)
    return context.engine


def run_add(context: Context, args: argparse.Namespace) -> int:
    from nvadmin.auth import accounts

    password = read_password(args)
    new = accounts.add_staff(
        _ready(context),
        accounts.command_line_operator(),
        args.email,
        password,
        args.role,
        args.name,
        with_totp=args.totp,
    )
    print(f"added {new.account.email} ({new.account.role})")
    if new.totp_secret:
        print("Enter this in the authenticator app now; it is not shown again:")
        print(f"  secret: {new.totp_secret}")
        print(f"  URI:    {new.totp_uri}")
    return 0


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "never"


def run_list(context: Context, args: argparse.Namespace) -> int:
    from nvadmin.auth import accounts

    staff = accounts.list_staff(_ready(context), accounts.command_line_operator())
    if not staff:
        print(
            "no staff accounts yet: add the first admin with "
            "`nvadmin staff add EMAIL --role admin --password-stdin`"
        )
        return 0
    rows = [("E-MAIL", "NAME", "ROLE", "STATUS", "2FA", "LAST SIGN-IN")]
    for a in staff:
        status = a.status
        if status == "locked":
            status = f"locked until {_when(a.locked_until)}"
        rows.append(
            (
                a.email,
                a.display_name,
                a.role.value,
                status,
                "totp" if a.has_totp else "-",
                _when(a.last_sign_in_at),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return 0


def run_disable(context: Context, args: argparse.Namespace) -> int:
    from nvadmin.auth import accounts

    account = accounts.disable_staff(_ready(context), accounts.command_line_operator(), args.email)
    print(f"disabled {account.email}")
    return 0


def run_enable(context: Context, args: argparse.Namespace) -> int:
    from nvadmin.auth import accounts

    account = accounts.enable_staff(_ready(context), accounts.command_line_operator(), args.email)
    print(f"enabled {account.email}")
    return 0


def run_unlock(context: Context, args: argparse.Namespace) -> int:
    from nvadmin.auth import accounts

    account = accounts.unlock_staff(_ready(context), accounts.command_line_operator(), args.email)
    print(f"unlocked {account.email}")
    return 0


def run_reset_password(context: Context, args: argparse.Namespace) -> int:
    from nvadmin.auth import accounts

    password = read_password(args)
    account = accounts.reset_password(
        _ready(context), accounts.command_line_operator(), args.email, password
    )
    print(f"new password set for {account.email}; remembered sign-ins ended")
    return 0


def run_set_role(context: Context, args: argparse.Namespace) -> int:
    from nvadmin.auth import accounts

    account = accounts.change_role(
        _ready(context), accounts.command_line_operator(), args.email, args.role
    )
    print(f"{account.email} is now {account.role}")
    return 0


def run_policy(context: Context, args: argparse.Namespace) -> int:
    from nvadmin.auth.policy import load_policy, save_policy

    engine = _ready(context)
    policy = load_policy(engine)
    names = ("max_failed_sign_ins", "lockout_minutes", "idle_lock_minutes", "remember_hours")
    changes = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    if changes:
        policy = policy.with_values(**changes)
        save_policy(engine, policy)
    print(
        f"lock an account after {policy.max_failed_sign_ins} failed sign-ins "
        f"for {policy.lockout_minutes} min"
    )
    print(f"lock the window after {policy.idle_lock_minutes} min without input")
    print(f"remember a sign-in for at most {policy.remember_hours} h")
    return 0
