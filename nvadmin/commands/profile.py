"""``nvadmin profile``: named database connections whose passwords live in the OS keyring.

``nvadmin profile add prod postgresql://nvadmin@db.internal/audit --password-stdin`` keeps the
URL (without its password) in connections.ini and the password in the keyring; afterwards
``nvadmin --profile prod ...`` (the app or any command) connects with it. Without a usable
keyring the password is not kept anywhere: nvadmin says so and asks for it on a terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import sys
from typing import TYPE_CHECKING

from nvadmin.errors import UserError

# The keyring and the URL parser are loaded by the actions that use them, not by `--help`.
if TYPE_CHECKING:
    from nvadmin.auth.profiles import ProfileStore
    from nvadmin.context import Context
    from nvadmin.paths import Paths


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "profile", help="named database connections (passwords in the OS keyring)"
    )
    actions = parser.add_subparsers(dest="profile_command", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="save (or replace) a connection")
    add.add_argument("name")
    add.add_argument("url", help="database URL; a password in it goes to the keyring")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the database password from the first line of stdin")  # fmt: skip
    add.add_argument("--replica", action="append", default=[], metavar="URL",
                     help="a hot standby the heavy reads go to (repeat for more, tried in "
                     "order); it signs in with the primary's login")  # fmt: skip
    add.set_defaults(run=run_add)
    actions.add_parser("list", help="list saved connections").set_defaults(run=run_list)
    remove = actions.add_parser("remove", help="forget a connection and its password")
    remove.add_argument("name")
    remove.set_defaults(run=run_remove)


def store(paths: Paths) -> ProfileStore:
    from nvadmin.auth.profiles import ProfileStore

    return ProfileStore(paths.config_dir / "connections.ini")


def run_add(context: Context, args: argparse.Namespace) -> int:
    from nvadmin.auth.credentials import CredentialStore, KeyringUnavailable

    profile, password = store(context.paths).save(args.name, args.url, tuple(args.replica))
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n") or None
    saved = profile.url + "".join(f" (replica {r})" for r in profile.replicas)
    if password:
        try:
            CredentialStore().set_database_password(profile.name, password)
        except KeyringUnavailable as unavailable:
            print(f"saved {profile.name}: {saved}")
            print(f"the password was NOT kept: {unavailable}; nvadmin will ask for it")
            return 0
        print(f"saved {profile.name}: {saved} (password in the keyring)")
    else:
        print(f"saved {profile.name}: {saved}")
    return 0


def run_list(context: Context, args: argparse.Namespace) -> int:
    profiles = store(context.paths).profiles()
    if not profiles:
        print("no saved connections (add one with `nvadmin profile add NAME URL`)")
    for profile in profiles:
        replicas = "".join(f"\treplica {r}" for r in profile.replicas)
        print(f"{profile.name}\t{profile.url}{replicas}")
    return 0


def run_remove(context: Context, args: argparse.Namespace) -> int:
    from nvadmin.auth.credentials import CredentialStore, KeyringUnavailable

    if store(context.paths).get(args.name) is None:
        raise UserError(f"no saved connection named {args.name!r}")
    store(context.paths).remove(args.name)
    with contextlib.suppress(KeyringUnavailable):  # then nothing can have been kept there
        CredentialStore().forget_database_password(args.name)
    print(f"removed {args.name}")
    return 0


def replicas(paths: Paths, name: str) -> tuple[str, ...]:
    """The hot standbys a saved connection reads from (no passwords: the primary's login)."""
    profile = store(paths).get(name)
    return profile.replicas if profile is not None else ()


def resolve(paths: Paths, name: str) -> str:
    """The database URL of a saved connection, with its password from the keyring (or asked
    for on a terminal when the keyring has none)."""
    from nvadmin.auth.credentials import CredentialStore, KeyringUnavailable

    profile = store(paths).get(name)
    if profile is None:
        raise UserError(f"no saved connection named {name!r} (see `nvadmin profile list`)")
    try:
        password = CredentialStore().database_password(name)
    except KeyringUnavailable:
        password = None
    if password is None and sys.stdin.isatty():
        password = getpass.getpass(f"Database password for {name} (not stored): ") or None
    return profile.url_with_password(password)
