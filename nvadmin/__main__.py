"""Command-line entry point: ``nvadmin`` opens the app; subcommands do the rest.

Nothing happens at import time; :func:`main` parses arguments, builds the context and runs.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

# Subcommand modules, in the order `nvadmin --help` lists them.
COMMANDS = ("db", "seed", "verify", "flags", "export", "requests", "staff", "profile", "evidence")


class UsageError(Exception):
    """A command line argparse refused: a missing, unknown or malformed option."""


class CommandLineParser(argparse.ArgumentParser):
    """argparse whose errors become nvadmin's one line, ``nvadmin: --from: <problem>``,
    instead of a usage block (subcommands' parsers are of this class too)."""

    def error(self, message: str) -> NoReturn:
        option = re.match(r"argument ([^:]+): ", message)
        if option:  # a value the option's type refused: the message says what is wrong
            raise UsageError(f"{option.group(1)}: {message[option.end() :]}")
        raise UsageError(f"{message} (see {self.prog} --help)")


class _VersionAction(argparse.Action):
    """``--version``: the installed version, looked up only when asked for."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_args: Any, **_kwargs: Any) -> None:
        from nvadmin import __version__

        print(f"nvadmin {__version__}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    import importlib

    from nvadmin.commands import arguments

    parser = CommandLineParser(
        prog="nvadmin",
        description="Activity Log administration console. Without a command, opens the app.",
    )
    parser.add_argument("--version", action=_VersionAction, help="show the version and exit")
    parser.add_argument(
        "--database",
        metavar="URL",
        help="database to use (default: $NVADMIN_DATABASE_URL, else the local demo database); "
        "e.g. postgresql://user@host/db or sqlite:///path/file.sqlite3",
    )
    parser.add_argument(
        "--profile",
        metavar="NAME",
        help="use a saved connection (see `nvadmin profile`); its password comes from the "
        "OS keyring",
    )
    parser.add_argument(
        "--read-database",
        metavar="URL",
        action="append",
        default=[],
        help="a PostgreSQL hot standby for the heavy reads (browse, counts, reports, exports, "
        "verification; repeat for more); writes stay on the primary (default: "
        "$NVADMIN_READ_DATABASE_URL, else the saved connection's replicas)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="check this installation: start offscreen on a temporary demo database, sign in, "
        "show the first rows, exit 0 (1 with the reason on failure)",
    )
    parser.add_argument(
        "--case",
        type=arguments.input_file,
        metavar="FILE",
        help="open an encrypted case file (.nvcase) offline, read-only; asks for its passphrase",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"nvadmin.commands.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    import os

    from nvadmin.workers import helper

    kind = os.environ.get(helper.ENVIRONMENT)
    if kind:  # started again by nvadmin to do one job (see nvadmin.workers.helper)
        return helper.main(kind)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as error:
        print(f"nvadmin: {error}", file=sys.stderr)
        return 1
    # Only now, with a command to run: `--help` and usage errors load no database library.
    import logging

    from nvadmin import log as logsetup
    from nvadmin.context import Context
    from nvadmin.db.engine import describe
    from nvadmin.errors import UserError

    if args.smoke:
        from nvadmin.ui.smoke import run_smoke

        return run_smoke(verbose=args.verbose)
    try:
        database = args.database
        reads = tuple(args.read_database)
        if args.profile:
            if database:
                raise UserError("give --database or --profile, not both")
            from nvadmin.commands.profile import replicas, resolve
            from nvadmin.paths import Paths

            database = resolve(Paths.from_environment(), args.profile)
            reads = reads or replicas(Paths.from_environment(), args.profile)
        context = Context.create(database, profile=args.profile, read_databases=reads)
    except UserError as error:
        print(f"nvadmin: {error}", file=sys.stderr)
        return 2
    log = logging.getLogger("nvadmin")
    # Reads falling back from a standby (or back to it) are said on stderr, as they happen.
    context.add_notice_listener(lambda message: print(f"nvadmin: {message}", file=sys.stderr))
    context.paths.create()  # the embedded default database's folder, settings, logs
    logsetup.configure(context.paths.log_file, verbose=args.verbose)
    run = getattr(args, "run", None)
    try:
        if run is None and args.case:
            from nvadmin.ui.compliance import run_case_offline

            return run_case_offline(context, args.case)
        if run is None:
            from nvadmin.app import run_gui

            return run_gui(context, args)
        return int(run(context, args) or 0)
    except UserError as error:
        log.info("command failed: %s", error, exc_info=True)
        print(f"nvadmin: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("nvadmin: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        log.exception("unexpected error")
        print(
            f"nvadmin: {describe(error)} (details in {context.paths.log_file})",
            file=sys.stderr,
        )
        return 1
    finally:
        context.dispose()


if __name__ == "__main__":
    sys.exit(main())
