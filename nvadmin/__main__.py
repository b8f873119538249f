"""Command-line entry point: ``nvadmin`` opens the app; subcommands do the rest.

Nothing happens at import time; :func:`main` parses arguments, builds the context and runs.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from nvadmin import __version__

log = logging.getLogger("nvadmin")

# Subcommand modules, in the order `nvadmin --help` lists them.
COMMANDS = ("db", "seed", "verify", "flags", "export", "staff", "profile")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="nvadmin",
        description="Activity Log administration console. Without a command, opens the app.",
    )
    parser.add_argument("--version", action="version", version=f"nvadmin {__version__}")
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
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="check this installation: start offscreen on a temporary demo database, sign in, "
        "show the first rows, exit 0 (1 with the reason on failure)",
    )
    parser.add_argument(
        "--case",
        metavar="FILE",
        help="open an encrypted case file (.nvcase) offline, read-only; asks for its passphrase",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"nvadmin.commands.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from nvadmin import log as logsetup
    from nvadmin.context import Context
    from nvadmin.db.engine import describe
    from nvadmin.errors import UserError

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.smoke:
        from nvadmin.ui.smoke import run_smoke

        return run_smoke(verbose=args.verbose)
    try:
        database = args.database
        if args.profile:
            if database:
                raise UserError("give --database or --profile, not both")
            from nvadmin.commands.profile import resolve
            from nvadmin.paths import Paths

            database = resolve(Paths.from_environment(), args.profile)
        context = Context.create(database, profile=args.profile)
    except UserError as error:
        print(f"nvadmin: {error}", file=sys.stderr)
        return 2
    context.paths.create()  # the embedded default database's folder, settings, logs
    logsetup.configure(context.paths.log_file, verbose=args.verbose)
    run = getattr(args, "run", None)
    try:
        if run is None and args.case:
            from pathlib import Path

            from nvadmin.ui.compliance import run_case_offline

            return run_case_offline(context, Path(args.case))
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
