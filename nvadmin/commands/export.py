"""``nvadmin export``: answer an export ticket from the command line.

Same engine as the window (:mod:`nvadmin.export.service`): one database snapshot, atomic file,
manifest, ``activity_log.export`` in the workspace's log. The staff member signs in with a
password read from standard input (first line; a second line, if any, is the authenticator
code), so it never appears in the process list or the shell history. Progress goes to stderr
as a bar when stderr is a terminal.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from nvadmin.commands import arguments
from nvadmin.errors import UserError

if TYPE_CHECKING:
    from nvadmin.context import Context
    from nvadmin.export.profiles import Profile
    from nvadmin.export.service import ExportRequest, ExportResult
    from nvadmin.identity import StaffIdentity


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "export",
        help="export a workspace's activity to CSV or JSON Lines with an evidence manifest",
        description="Export the activity of one workspace between two days (both included) to "
        "a CSV (or JSON Lines) file, with FILE.manifest.json beside it (rows, SHA-256, filter, "
        "ticket). The export is recorded in the workspace's Activity Log.",
    )
    # Required unless --from-manifest gives them (checked in run_export).
    parser.add_argument("--workspace", metavar="SLUG")
    arguments.day_range_options(parser)
    parser.add_argument(
        "--user",
        action="append",
        default=[],
        metavar="EMAIL",
        help="only this team member's events; may be repeated",
    )
    parser.add_argument(
        "--category",
        action="append",
        default=[],
        metavar="CATEGORY",
        help="only this category (chart, records, signin, failed, api, log); may be repeated",
    )
    parser.add_argument(
        "--ticket", default="", metavar="ID", help="support ticket id (required for support staff)"
    )
    parser.add_argument("--output", required=True, type=arguments.output_file, metavar="FILE")
    parser.add_argument("--staff", required=True, metavar="EMAIL", help="your nvadmin e-mail")
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read your password from standard input (first line; a second line is the "
        "authenticator code)",
    )
    parser.add_argument(
        "--tz",
        type=arguments.zone,
        metavar="ZONE",
        help="time zone of the days and of the local time column (default: the workspace's)",
    )
    # The names are those of nvadmin.export.profiles (not imported here: `--help` stays light).
    # `nvadmin --profile NAME` before the command is a saved connection; after `export` the
    # word is the CSV profile, also spelled --csv-profile.
    parser.add_argument(
        "--csv-profile",
        "--profile",
        dest="csv_profile",
        choices=("excel", "data"),
        help="excel (default): UTF-8 with BOM, CRLF, local and UTC times as date-times a "
        "spreadsheet reads (whole seconds) and the UTC offset in its own column; data: UTF-8, "
        "LF, ISO 8601 instants to the microsecond for pandas and BI tools (needed for the "
        "hash columns)",
    )
    parser.add_argument(
        "--bom", action="store_true", help="the same as --profile excel (kept for scripts)"
    )
    arguments.file_format_option(parser)
    # The column names are checked when the command runs (see chosen_columns): they come from
    # the field registry, which `nvadmin --help` must not load.
    parser.add_argument(
        "--columns",
        metavar="A,B,...",
        help="columns to write, comma-separated (default: the export form's default columns; "
        "a name nvadmin does not know is answered with the list of columns)",
    )
    parser.add_argument(
        "--from-manifest",
        type=arguments.input_file,
        metavar="MANIFEST",
        help="re-run the export a delivered manifest describes (its workspace, range, filters, "
        "columns and options) and say whether the new file is byte-identical to the one sent",
    )
    parser.add_argument(
        "--package",
        type=arguments.output_file,
        metavar="ZIP",
        help="also write the encrypted delivery package (as `nvadmin package-export`); its "
        "passphrase is printed once",
    )
    parser.add_argument("--force", action="store_true", help="replace FILE if it exists")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run_export)


def _credentials(args: argparse.Namespace, stdin: TextIO) -> tuple[str, str | None]:
    if args.password_stdin:
        try:
            lines = stdin.read().splitlines()
        except UnicodeDecodeError:
            raise UserError("standard input is not UTF-8 text") from None
        password = lines[0] if lines else ""
        code = lines[1].strip() if len(lines) > 1 and lines[1].strip() else None
    elif stdin.isatty():
        password = getpass.getpass(f"Password for {args.staff}: ")
        code = None
    else:
        raise UserError("give --password-stdin and pipe the password in")
    if not password:
        raise UserError("no password given on standard input")
    return password, code


def sign_in(context: Context, email: str, password: str, code: str | None):  # type: ignore[no-untyped-def]
    from nvadmin.auth.signin import Authenticator, SecondFactorRequired

    try:
        result = Authenticator(context.engine).sign_in(email, password, code)
    except SecondFactorRequired:
        raise UserError(
            "this account needs its authenticator code: give it on the second line of stdin"
        ) from None
    # PostgreSQL: from here on the export reads and records as the staff member's own login.
    context.signed_in(result.engine, result.session_key)
    return result.identity


class ProgressBar:
    """A one-line bar on a terminal, redrawn at most 10 times a second."""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self._stream = stream
        self._enabled = enabled
        self._started = time.monotonic()
        self._last = 0.0

    def __call__(self, done: int, total: int | None = None, message: str = "") -> None:
        if not self._enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.1 and message != "done":
            return
        self._last = now
        elapsed = max(now - self._started, 1e-6)
        rate = done / elapsed
        if total:
            fraction = min(1.0, done / total)
            width = 30
            filled = int(fraction * width)
            eta = (total - done) / rate if rate > 0 else 0.0
            line = (
                f"[{'#' * filled}{'.' * (width - filled)}] {fraction:4.0%} "
                f"{done:,}/{total:,} rows  {rate:,.0f} rows/s  ETA {eta:4.0f} s"
            )
        else:
            line = f"{message or 'working'}..."
        self._stream.write("\r" + line.ljust(96))
        self._stream.flush()

    def close(self) -> None:
        if self._enabled:
            self._stream.write("\n")
            self._stream.flush()


def chosen_columns(text: str | None) -> tuple[str, ...]:
    """``--columns`` as column keys, checked against the export's columns."""
    from nvadmin.export.columns import BY_KEY, DEFAULT_COLUMNS

    if text is None:
        return tuple(DEFAULT_COLUMNS)
    columns = tuple(c.strip() for c in text.split(",") if c.strip())
    unknown = [c for c in columns if c not in BY_KEY]
    if unknown:
        raise UserError(
            f"--columns: unknown column {unknown[0]!r} (the columns are: {', '.join(BY_KEY)})"
        )
    if not columns:
        raise UserError("--columns: name at least one column")
    return columns


def chosen_profile(args: argparse.Namespace) -> Profile:
    """``--csv-profile`` (``--bom`` is the excel profile, as it was an Excel option)."""
    from nvadmin.export import profiles

    if args.format != "csv" and (args.bom or args.csv_profile):
        raise UserError(
            "--bom and --csv-profile shape CSV files; JSON Lines has one form (UTF-8, no BOM)"
        )
    if args.bom and args.csv_profile not in (None, "excel"):
        raise UserError("--bom is the excel profile; leave it out with --csv-profile data")
    return profiles.by_key(args.csv_profile) if args.csv_profile else profiles.DEFAULT


def run_export(context: Context, args: argparse.Namespace) -> int:
    from nvadmin.db import migrate
    from nvadmin.db.engine import translate
    from nvadmin.db.taxonomy import CATEGORY_ALIASES
    from nvadmin.export.formats import FileFormat
    from nvadmin.export.service import ExportRequest
    from nvadmin.query import workspaces
    from nvadmin.query.filters import EventFilter, Term
    from nvadmin.query.localtime import day_range

    _check_destinations(args)
    migrate.require_head(context.engine)
    if args.from_manifest is not None:
        return _rerun_manifest(context, args)
    missing = [
        flag
        for flag, value in (
            ("--workspace", args.workspace),
            ("--from", args.first_day),
            ("--to", args.last_day),
        )
        if value is None
    ]
    if missing:
        raise UserError(f"give {', '.join(missing)} (or --from-manifest)")
    first: date = args.first_day
    last: date = args.last_day
    categories = []
    for name in args.category:
        category = CATEGORY_ALIASES.get(name.strip().lower())
        if category is None:
            raise UserError(
                f"unknown category {name!r} (use one of: {', '.join(sorted(CATEGORY_ALIASES))})"
            )
        categories.append(category.value)
    try:
        users = [Term("user", email.strip()) for email in args.user]
    except ValueError as error:
        raise UserError(f"--user: {error}") from None
    columns = chosen_columns(args.columns)
    profile = chosen_profile(args)
    password, code = _credentials(args, sys.stdin)
    identity = sign_in(context, args.staff, password, code)
    try:
        workspace = workspaces.by_slug(context.engine, args.workspace)
    except UserError:
        raise
    except Exception as error:
        raise translate(error) from error
    zone = args.tz or workspace.timezone
    start, end = day_range(first, last, zone)
    terms = users + [Term("category", value) for value in dict.fromkeys(categories)]
    request = ExportRequest(
        event_filter=EventFilter(
            workspace_ids=(workspace.id,), start=start, end=end, terms=tuple(terms)
        ),
        output=args.output.expanduser().absolute(),
        time_zone=zone,
        range_zone=zone,
        columns=columns,
        profile=profile,
        ticket=args.ticket,
        overwrite=args.force,
        file_format=FileFormat(args.format),
    )
    _export_and_report(context, args, identity, request)
    return 0


def _check_destinations(args: argparse.Namespace) -> None:
    """Refuse, before the password is read, files the export may not write: existing ones
    without ``--force``, and those that are not regular files even with it (the export
    service checks the first again, not yet the second)."""
    from nvadmin.export.manifest import manifest_path_for

    arguments.refuse_to_replace("--output", args.output, args.force)
    arguments.refuse_to_replace("--output", manifest_path_for(args.output), args.force)
    if args.package is not None:
        arguments.refuse_to_replace("--package", args.package, args.force)


def _export_and_report(
    context: Context, args: argparse.Namespace, identity: StaffIdentity, request: ExportRequest
) -> ExportResult:
    """Run the export with a progress bar on a terminal, say what was written, and package it
    when ``--package`` asks."""
    from nvadmin.export.service import export_csv

    bar = ProgressBar(sys.stderr, enabled=not args.quiet and sys.stderr.isatty())
    try:
        # The rows from a hot standby when there is one; the export event on the primary.
        result = export_csv(
            context.read_engine,
            identity,
            request,
            progress=bar,
            write_engine=context.write_engine,
        )
    finally:
        bar.close()
    print(f"{result.rows:,} rows written to {result.path}")
    print(f"sha256 {result.sha256}")
    print(f"manifest {result.manifest_path}")
    read_from = result.manifest.get("read_from")
    if read_from:
        where = "standby" if read_from["in_recovery"] else "server"
        print(f"read from {where} {read_from['server']} at LSN {read_from['replay_lsn']}")
    _package(context, args, result.path)
    return result


def _rerun_manifest(context: Context, args: argparse.Namespace) -> int:
    """``--from-manifest``: the same export again, compared with the delivered file."""
    from nvadmin.export import manifest as manifests
    from nvadmin.export.evidence import request_from_manifest

    given = [
        flag
        for flag, value in (
            ("--workspace", args.workspace),
            ("--from", args.first_day),
            ("--to", args.last_day),
            ("--user", args.user),
            ("--category", args.category),
            ("--columns", args.columns),
            ("--tz", args.tz),
            ("--csv-profile", args.csv_profile),
            ("--bom", args.bom),
            ("--format", args.format != "csv"),
        )
        if value
    ]
    if given:
        raise UserError(f"--from-manifest takes the export from the manifest; leave out {given[0]}")
    try:
        delivered = manifests.load(args.from_manifest)
    except (OSError, ValueError) as error:
        raise UserError(f"cannot read the manifest {args.from_manifest}: {error}") from None
    request = request_from_manifest(
        delivered, args.output.expanduser().absolute(), overwrite=args.force
    )
    password, code = _credentials(args, sys.stdin)
    identity = sign_in(context, args.staff, password, code)
    result = _export_and_report(context, args, identity, request)
    if result.sha256 == delivered.get("sha256"):
        print(f"byte-identical to the delivered {delivered.get('file')}")
        return 0
    print(
        f"differs from the delivered {delivered.get('file')}: {result.rows:,} rows now, "
        f"{delivered.get('rows')} then (events in the range were added or changed since, or "
        "the export ran on another database)"
    )
    return 1


def _package(context: Context, args: argparse.Namespace, csv_path: Path) -> None:
    """``--package``: the delivery package of the file just written."""
    if args.package is None:
        return
    from nvadmin.audit.checkpoints import KeyStore
    from nvadmin.commands.evidence import print_package
    from nvadmin.export.evidence import package_export

    print_package(
        package_export(
            csv_path,
            args.package.expanduser().absolute(),
            KeyStore(context.paths.config_dir).trusted_keys(),
            overwrite=args.force,
        )
    )
