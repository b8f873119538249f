"""``nvadmin requests``: the helpdesk side of export tickets, from e-mail to delivery.

``add`` receives a request (or a JSON/CSV batch from standard input, all rows or none);
``list`` shows the queue, overdue first; ``fulfil`` runs the export through the export service
and attaches its evidence; ``deliver``, ``reject``, ``override`` and ``assign`` move a request;
``disclosures`` writes the workspace's accounting of disclosures. The command line acts as
the operating-system user (see :func:`nvadmin.auth.accounts.command_line_operator`); on
PostgreSQL the server names the actor from the database login.
"""

from __future__ import annotations

import argparse
import csv
import functools
import io
import json
import sys
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any, TextIO

from nvadmin.commands import arguments
from nvadmin.context import Context
from nvadmin.errors import UserError

STATUSES = ("new", "verified", "exported", "delivered", "rejected")
BATCH_FIELDS = (
    "workspace",
    "from",
    "to",
    "requester",
    "ticket",
    "purpose",
    "recipient",
    "requester_name",
    "zone",
    "received_at",
    "users",
    "categories",
    "assign_to",
    "patients",
)
MAX_BATCH = 10_000


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "requests",
        help="export requests: receive, list, fulfil, deliver, reject, override; disclosures",
        description="Export tickets from receipt to delivery. Every change is recorded in the "
        "workspace's Activity Log.",
    )
    actions = parser.add_subparsers(dest="requests_command", metavar="ACTION", required=True)

    add = actions.add_parser(
        "add",
        help="receive a request (or a batch from stdin with --batch json|csv)",
        description="Receive an export request. With --batch, read a JSON array (or CSV with "
        f"a header) from standard input with the fields {', '.join(BATCH_FIELDS)} "
        "(from/to/requester/ticket/workspace required; users, categories and patients as lists, or "
        "separated by ';' in CSV); every row is checked and nothing is added unless all are "
        "good.",
    )
    add.add_argument("--batch", choices=("json", "csv"), help="read many requests from stdin")
    add.add_argument("--workspace", metavar="SLUG")
    arguments.day_range_options(add)
    add.add_argument("--requester", metavar="EMAIL", help="who asked (checked: a clinic admin)")
    add.add_argument("--requester-name", default="", metavar="NAME")
    add.add_argument("--ticket", metavar="ID", help="helpdesk ticket id (unique per workspace)")
    add.add_argument("--purpose", default="", metavar="TEXT", help="why the log is disclosed")
    add.add_argument("--recipient", default="", metavar="TEXT", help="who receives the file")
    add.add_argument("--tz", type=arguments.zone, metavar="ZONE", help="zone of the days")
    add.add_argument("--user", action="append", default=[], metavar="EMAIL")
    add.add_argument("--category", action="append", default=[], metavar="CATEGORY")
    add.add_argument(
        "--patient",
        action="append",
        default=[],
        metavar="ID",
        help="only this patient's events (a patient-scoped request); may be repeated",
    )
    add.add_argument(
        "--received",
        type=_instant,
        metavar="YYYY-MM-DDTHH:MM±HH:MM",
        help="when the e-mail arrived (default: now); the due time counts from it",
    )
    add.add_argument("--assign", metavar="EMAIL", help="staff member who handles it")
    add.set_defaults(run=run_add)

    listing = actions.add_parser("list", help="the queue: overdue first, then by due time")
    listing.add_argument("--status", choices=STATUSES, action="append", default=[])
    listing.add_argument("--overdue", action="store_true", help="only open requests past due")
    listing.add_argument("--assignee", metavar="EMAIL")
    listing.add_argument("--workspace", metavar="SLUG")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(run=run_list)

    show = actions.add_parser("show", help="one request with its check and evidence")
    show.add_argument("request", metavar="ID")
    show.set_defaults(run=run_show)

    fulfil = actions.add_parser(
        "fulfil", help="export a verified request into a folder and attach the evidence"
    )
    fulfil.add_argument("request", metavar="ID")
    fulfil.add_argument("--output", required=True, type=_folder, metavar="DIR")
    fulfil.add_argument("--deliver", action="store_true", help="also mark it delivered")
    arguments.file_format_option(fulfil)
    fulfil.add_argument(
        "--package",
        action="store_true",
        help="also package it (encrypted ZIP beside the export, passphrase printed once) and "
        "mark it delivered with the package's SHA-256",
    )
    _key_option(fulfil)
    fulfil.set_defaults(run=run_fulfil)

    deliver = actions.add_parser(
        "deliver",
        help="mark an exported request delivered (with --package: as an encrypted ZIP)",
    )
    deliver.add_argument("request", metavar="ID")
    deliver.add_argument(
        "--package",
        nargs="?",
        const=True,
        type=arguments.output_file,
        metavar="ZIP",
        help="package the export first (default file: beside the export, .zip); the "
        "passphrase is printed once and the package's SHA-256 recorded",
    )
    _key_option(deliver)
    deliver.set_defaults(run=run_deliver)

    for name, helptext, fn in (
        ("reject", "reject a request, with the reason", run_reject),
        (
            "override",
            "accept a requester the check refused (admins; with the reason)",
            run_override,
        ),
    ):
        sub = actions.add_parser(name, help=helptext)
        sub.add_argument("request", metavar="ID")
        sub.add_argument("--reason", required=True, metavar="TEXT")
        sub.set_defaults(run=fn)

    assign = actions.add_parser("assign", help="give a request to a staff member")
    assign.add_argument("request", metavar="ID")
    assign.add_argument("--to", dest="assignee", metavar="EMAIL", help="omit to unassign")
    assign.set_defaults(run=run_assign)

    report = actions.add_parser(
        "disclosures", help="a workspace's accounting of disclosures (delivered exports)"
    )
    report.add_argument("--workspace", required=True, metavar="SLUG")
    arguments.day_range_options(report)
    report.add_argument(
        "--patient",
        metavar="ID",
        help="one patient's accounting: every delivered export that held this patient's "
        "events (requests naming the patient and wider exports alike)",
    )
    report.add_argument("--csv", type=arguments.output_file, metavar="FILE")
    report.add_argument("--pdf", type=arguments.output_file, metavar="FILE")
    report.add_argument("--force", action="store_true", help="replace the files if they exist")
    report.set_defaults(run=run_disclosures)

    policy = actions.add_parser("policy", help="show or set how many business days are allowed")
    policy.add_argument("--due-days", type=arguments.whole_number, metavar="N")
    policy.set_defaults(run=run_policy)


def _key_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--key",
        type=arguments.input_file,
        metavar="PUBLIC.pem",
        help="the signer's public key for the package (default: this computer's signing key "
        "or trusted keys, as package-export)",
    )


def _instant(text: str) -> datetime:
    value = arguments.when(text)
    if not isinstance(value, datetime):
        raise argparse.ArgumentTypeError(
            f"{arguments.shown(text)} needs a time with its offset, e.g. 2026-11-30T09:15-06:00"
        )
    return value


def _folder(text: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{arguments.shown(text)} is not an existing folder")
    return path


Run = Callable[[Context, argparse.Namespace], int]


def _on_current_schema(run: Run) -> Run:
    """``run``, after checking the database is at this nvadmin's schema: an empty or older
    database is named as such (as by every command), not by the first missing table."""

    @functools.wraps(run)
    def checked(context: Context, args: argparse.Namespace) -> int:
        from nvadmin.db import migrate

        migrate.require_head(context.engine)
        return run(context, args)

    return checked


def _operator():  # type: ignore[no-untyped-def]
    from nvadmin.auth.accounts import command_line_operator

    return command_line_operator()


# -- add -------------------------------------------------------------------------------------


@_on_current_schema
def run_add(context: Context, args: argparse.Namespace) -> int:
    from nvadmin.export import requests

    if args.batch:
        given = [o for o in ("workspace", "first_day", "last_day", "requester", "ticket")
                 if getattr(args, o) is not None]  # fmt: skip
        if given:
            raise UserError("--batch reads every field from stdin; give no request options")
        drafts = read_batch(sys.stdin, args.batch)
    else:
        missing = [
            option
            for option, value in (
                ("--workspace", args.workspace),
                ("--from", args.first_day),
                ("--to", args.last_day),
                ("--requester", args.requester),
                ("--ticket", args.ticket),
            )
            if value is None
        ]
        if missing:
            raise UserError(f"missing {', '.join(missing)} (or use --batch json|csv)")
        drafts = [
            requests.RequestDraft(
                workspace=args.workspace,
                first_day=args.first_day,
                last_day=args.last_day,
                requester_email=args.requester,
                ticket=args.ticket,
                purpose=args.purpose,
                recipient=args.recipient,
                requester_name=args.requester_name,
                zone=args.tz,
                users=tuple(args.user),
                categories=tuple(args.category),
                received_at=args.received,
                assign_to=args.assign,
                patients=tuple(args.patient),
            )
        ]
    ids = requests.add_requests(context.engine, _operator(), drafts)
    for request_id in ids:
        view = requests.get_request(context.engine, request_id)
        print(f"request {view.id} ({view.ticket}, {view.workspace_slug}): {view.status.value}; "
              f"{view.verification_note}; {requests.due_in_words(view)}")  # fmt: skip
    return 0


def read_batch(stream: TextIO, kind: str) -> list[Any]:
    """Drafts from a JSON array or a CSV with a header; every row's problems are listed."""
    data = stream.read()
    if kind == "json":
        try:
            rows = json.loads(data)
        except json.JSONDecodeError as error:
            raise UserError(f"stdin is not JSON: {error}") from None
        if isinstance(rows, dict):
            rows = [rows]
        if not isinstance(rows, list):
            raise UserError("the JSON batch must be an array of objects")
    else:
        reader = csv.DictReader(io.StringIO(data))
        unknown = [f for f in reader.fieldnames or () if f not in BATCH_FIELDS]
        if unknown:
            raise UserError(
                f"unknown CSV column {unknown[0]!r} (columns: {', '.join(BATCH_FIELDS)})"
            )
        rows = list(reader)
    if not rows:
        raise UserError("the batch on stdin is empty")
    if len(rows) > MAX_BATCH:
        raise UserError(f"at most {MAX_BATCH:,} requests in one batch")
    drafts, problems = [], []
    for index, row in enumerate(rows, 1):
        try:
            drafts.append(_draft(row))
        except UserError as error:
            problems.append(f"row {index}: {error}")
    if problems:
        shown = problems[:20] + (
            [f"... and {len(problems) - 20} more"] if len(problems) > 20 else []
        )
        raise UserError(
            f"{len(problems)} of {len(rows)} rows are wrong; nothing was added:\n  "
            + "\n  ".join(shown)
        )
    return drafts


def _draft(row: Any) -> Any:
    from nvadmin.export.requests import RequestDraft

    if not isinstance(row, dict):
        raise UserError("not an object with request fields")
    unknown = [k for k in row if k not in BATCH_FIELDS]
    if unknown:
        raise UserError(f"unknown field {str(unknown[0])!r}")

    def text(name: str, required: bool = False) -> str:
        value = row.get(name)
        if value is None or value == "":
            if required:
                raise UserError(f"{name} is missing")
            return ""
        if not isinstance(value, str):
            raise UserError(f"{name} must be text")
        return value

    def day(name: str) -> date:
        try:
            return arguments.day(text(name, required=True))
        except argparse.ArgumentTypeError as error:
            raise UserError(f"{name}: {error}") from None

    def many(name: str) -> tuple[str, ...]:
        value = row.get(name)
        if value in (None, ""):
            return ()
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(";") if v.strip())
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise UserError(f"{name} must be a list of text")

    received = None
    if text("received_at"):
        try:
            received = _instant(text("received_at"))
        except argparse.ArgumentTypeError as error:
            raise UserError(f"received_at: {error}") from None
    zone = text("zone") or None
    if zone is not None:
        try:
            zone = arguments.zone(zone)
        except argparse.ArgumentTypeError as error:
            raise UserError(f"zone: {error}") from None
    draft = RequestDraft(
        workspace=text("workspace", required=True),
        first_day=day("from"),
        last_day=day("to"),
        requester_email=text("requester", required=True),
        ticket=text("ticket", required=True),
        purpose=text("purpose"),
        recipient=text("recipient"),
        requester_name=text("requester_name"),
        zone=zone,
        users=many("users"),
        categories=many("categories"),
        received_at=received,
        assign_to=text("assign_to") or None,
        patients=many("patients"),
    )
    return draft.checked()


# -- the queue -------------------------------------------------------------------------------


@_on_current_schema
def run_list(context: Context, args: argparse.Namespace) -> int:
    from nvadmin.export import requests

    workspace_id = None
    if args.workspace:
        workspace_id = requests.workspace_id(context.engine, args.workspace)
    views = requests.list_requests(
        context.engine,
        statuses=[requests.Status(s) for s in args.status],
        overdue=args.overdue,
        assignee=args.assignee,
        workspace_id=workspace_id,
    )
    if args.json:
        print(json.dumps([requests.view_facts(v) for v in views], indent=2))
        return 0
    if not views:
        print("no export requests match")
        return 0
    print(f"{'id':>5}  {'ticket':<14} {'workspace':<16} {'status':<9} {'due':<22} {'requester'}")
    for v in views:
        print(
            f"{v.id:>5}  {v.ticket[:14]:<14} {v.workspace_slug[:16]:<16} {v.status.value:<9} "
            f"{requests.due_in_words(v)[:22]:<22} {v.requester_email}"
            + ("" if v.verification.passed or v.override_reason else "  (requester check failed)")
        )
    return 0


@_on_current_schema
def run_show(context: Context, args: argparse.Namespace) -> int:
    from nvadmin.export import requests

    view = requests.find_request(context.engine, args.request)
    for label, value in requests.view_lines(view):
        print(f"{label + ':':<18} {value}")
    return 0


# -- moving ----------------------------------------------------------------------------------


@_on_current_schema
def run_fulfil(context: Context, args: argparse.Namespace) -> int:
    from nvadmin.export import requests

    view = requests.find_request(context.engine, args.request)
    view = requests.fulfil(
        context.engine,
        _operator(),
        view.id,
        args.output.absolute(),
        file_format=args.format,
        read_engine=context.read_engine,
    )
    print(f"request {view.id} exported: {view.export_rows:,} rows to {view.export_path}")
    print(f"sha256 {view.export_sha256}")
    print(f"manifest {view.manifest_path} (sha256 {view.manifest_sha256})")
    if args.package:
        return _deliver_package(context, view.id, None, args.key)
    if args.deliver:
        view = requests.move(context.engine, _operator(), view.id, requests.Operation.DELIVER)
        print(f"request {view.id} delivered")
    return 0


def _deliver_package(context: Context, request_id: int, output: Path | None, key: Any) -> int:
    from nvadmin.commands.evidence import keys_for, print_package
    from nvadmin.export import requests

    view, package = requests.deliver_package(
        context.engine,
        _operator(),
        request_id,
        keys_for(context, key),
        output.expanduser().absolute() if output is not None else None,
    )
    print_package(package)
    print(f"request {view.id} ({view.ticket}) delivered; package SHA-256 recorded")
    return 0


def _move(context: Context, args: argparse.Namespace, operation: Any, reason: str | None) -> int:
    from nvadmin.export import requests

    view = requests.find_request(context.engine, args.request)
    view = requests.move(context.engine, _operator(), view.id, operation, reason)
    print(f"request {view.id} ({view.ticket}): {view.status.value}")
    return 0


@_on_current_schema
def run_deliver(context: Context, args: argparse.Namespace) -> int:
    from nvadmin.export import requests
    from nvadmin.export.requests import Operation

    if args.package is not None:
        view = requests.find_request(context.engine, args.request)
        output = None if args.package is True else args.package
        return _deliver_package(context, view.id, output, args.key)
    if args.key is not None:
        raise UserError("--key is for --package")
    return _move(context, args, Operation.DELIVER, None)


@_on_current_schema
def run_reject(context: Context, args: argparse.Namespace) -> int:
    from nvadmin.export.requests import Operation

    return _move(context, args, Operation.REJECT, args.reason)


@_on_current_schema
def run_override(context: Context, args: argparse.Namespace) -> int:
    from nvadmin.export.requests import Operation

    return _move(context, args, Operation.OVERRIDE, args.reason)


@_on_current_schema
def run_assign(context: Context, args: argparse.Namespace) -> int:
    from nvadmin.export.requests import Operation

    return _move(context, args, Operation.ASSIGN, args.assignee)


# -- the accounting of disclosures -----------------------------------------------------------


@_on_current_schema
def run_disclosures(context: Context, args: argparse.Namespace) -> int:
    from nvadmin.export import requests
    from nvadmin.files.atomic import write_file

    if not args.csv and not args.pdf:
        raise UserError("give --csv FILE and/or --pdf FILE")
    for option, path in (("--csv", args.csv), ("--pdf", args.pdf)):
        if path is not None:
            arguments.refuse_to_replace(option, path, args.force)
    report = requests.disclosures(
        context.engine,
        _operator(),
        args.workspace,
        args.first_day,
        args.last_day,
        patient=args.patient,
    )
    document = requests.disclosure_report(report, _operator())
    if args.csv:
        write_file(args.csv, document.csv_bytes())
        print(f"{len(report.entries)} disclosures written to {args.csv}")
    if args.pdf:
        import os

        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # no window: a file only
        from PySide6.QtWidgets import QApplication

        from nvadmin.pdf import pdf_bytes

        _app = QApplication.instance() or QApplication([])  # fonts and pages need an app
        write_file(args.pdf, pdf_bytes(document))
        print(f"{len(report.entries)} disclosures written to {args.pdf}")
    return 0


@_on_current_schema
def run_policy(context: Context, args: argparse.Namespace) -> int:
    from nvadmin.export import requests

    if args.due_days is not None:
        requests.set_due_business_days(context.engine, args.due_days)
    days = requests.due_business_days(context.engine)
    print(f"requests are due {days} business days after receipt (weekends skipped)")
    return 0
