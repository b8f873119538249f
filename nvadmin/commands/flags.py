"""``nvadmin flags``: the security flag rules over one workspace, from the command line.

Made for a scheduled run that alerts: it exits 0 only when every rule ran and found nothing,
and 1 when something is flagged or the run could not be made (then a one-line ``nvadmin: ...``
message on stderr says why, as for every command); it prints one plain line per finding,
and with ``--csv`` writes the same CSV as the Flags tab's export (scope and thresholds on every
row). Running it is recorded in the workspace's log as an ``activity_log.view`` (purpose
``flags``), as viewing flags in the app is. The operator is the command-line user, as for
``nvadmin verify``: whoever can reach the database from a shell.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from nvadmin.commands import arguments
from nvadmin.errors import UserError

if TYPE_CHECKING:
    from nvadmin.context import Context


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "flags",
        help="run the security flag rules over a workspace (exit 1 when something is flagged)",
        description="Run the rule-based security flags (failed sign-in bursts, access outside "
        "working hours, chart-view spikes, API spikes, new addresses, ...) over a workspace "
        "and a time range. Exit 0: nothing flagged; 1: findings (or the run failed).",
    )
    parser.add_argument("--workspace", required=True, metavar="SLUG")
    arguments.instant_range_options(parser)
    parser.add_argument("--last", metavar="N[h|d]", help="the last N hours or days, e.g. 24h or 7d")
    # The rule names are checked when the command runs (see chosen_rules): listing them here
    # would load the rules, and with them SQLAlchemy, for every `nvadmin --help`.
    parser.add_argument(
        "--rule",
        action="append",
        metavar="RULE",
        help="only this rule, by name (may be repeated; a name nvadmin does not know is "
        "answered with the list of rules)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="RULE.KEY=VALUE",
        help="change a threshold, e.g. failed_sign_in_burst.failures=3 (may be repeated)",
    )
    parser.add_argument(
        "--csv", type=arguments.output_file, metavar="FILE", help="also write the findings as CSV"
    )
    parser.add_argument("--force", action="store_true", help="replace the CSV file if it exists")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.set_defaults(run=run_flags)


def parse_thresholds(settings: list[str]) -> dict[str, dict[str, float]]:
    """``RULE.KEY=VALUE`` settings as the thresholds ``evaluate`` takes."""
    from nvadmin.analysis.flags.catalog import RULES

    out: dict[str, dict[str, float]] = {}
    for setting in settings:
        name, _, value = setting.partition("=")
        rule_name, _, key = name.strip().partition(".")
        rule = RULES.get(rule_name)
        keys = [t.key for t in rule.thresholds] if rule else []
        if rule is None or key not in keys:
            known = ", ".join(f"{r.name}.{t.key}" for r in RULES.values() for t in r.thresholds)
            raise UserError(f"unknown threshold {name.strip()!r} (known: {known})")
        try:
            number = float(value)
        except ValueError:
            raise UserError(f"{name.strip()} needs a number, not {value.strip()!r}") from None
        threshold = next(t for t in rule.thresholds if t.key == key)
        if not threshold.minimum <= number <= threshold.maximum:
            raise UserError(
                f"{name.strip()} must be between {threshold.minimum:g} and {threshold.maximum:g}"
            )
        out.setdefault(rule_name, {})[key] = number
    return out


def chosen_rules(names: list[str] | None) -> tuple[str, ...] | None:
    """The ``--rule`` names, checked against the rules nvadmin has (None: every rule)."""
    from nvadmin.analysis.flags.catalog import RULES

    if not names:
        return None
    unknown = [name for name in names if name not in RULES]
    if unknown:
        raise UserError(f"--rule: unknown rule {unknown[0]!r} (the rules are: {', '.join(RULES)})")
    return tuple(dict.fromkeys(names))


def run_flags(context: Context, args: argparse.Namespace) -> int:
    from datetime import datetime

    from nvadmin.analysis.flags.evaluation import evaluate
    from nvadmin.analysis.flags.report import to_csv
    from nvadmin.audit import access_log
    from nvadmin.auth.accounts import command_line_operator
    from nvadmin.auth.server_signin import require_operator_login
    from nvadmin.commands.verify import _progress, parse_bound
    from nvadmin.db import migrate
    from nvadmin.files.atomic import write_file
    from nvadmin.query import workspaces
    from nvadmin.query.filters import EventFilter
    from nvadmin.query.search import describe_scope, relative_range

    rules = chosen_rules(args.rule)
    thresholds = parse_thresholds(args.set)
    if args.last and (args.start or args.end):
        raise UserError("give either --last or --from/--to, not both")
    if args.csv:
        arguments.refuse_to_replace("--csv", args.csv, args.force)
    migrate.require_head(context.engine)
    require_operator_login(context.engine, "flags")
    workspace = workspaces.by_slug(context.engine, args.workspace)
    workspace_id, zone = workspace.id, workspace.timezone
    start: datetime | None = None
    end: datetime | None = None
    if args.last:
        try:
            start = relative_range(args.last.lower())
        except ValueError:
            message = f"--last takes hours or days, e.g. 24h or 7d, not {args.last!r}"
            raise UserError(message) from None
    if args.start:
        start = parse_bound(args.start, zone, is_end=False)
    if args.end:
        end = parse_bound(args.end, zone, is_end=True)
    if start and end and start >= end:
        raise UserError("the range ends before it starts")
    operator = command_line_operator()
    event_filter = EventFilter(workspace_ids=(workspace_id,), start=start, end=end, zone=zone)
    # The query is recorded on the primary before any row is read (from a standby if any).
    read = access_log.recorded_view(
        context.write_engine, context.read_engine, operator, event_filter, "flags"
    )
    progress, close = _progress(args.quiet, "checking")
    try:
        report = evaluate(
            read,
            operator,
            event_filter,
            thresholds,
            rules=rules,
            progress=progress,
        )
    finally:
        close()
    scope = describe_scope(report.event_filter, zone, args.workspace)
    print(scope)
    for result in report.results:
        print(f"{result.rule.title}: {result.count}  ({result.explanation})")
        for finding in result.findings:
            print(
                f"  {finding.day.isoformat()}  {finding.subject}  {finding.events:,} events  "
                f"{finding.detail}"
            )
    total = sum(r.count for r in report.results)
    if args.csv:
        write_file(args.csv, to_csv(report, scope))
        print(f"CSV written to {args.csv}")
    print(f"{total:,} finding{'s' if total != 1 else ''}" if total else "nothing flagged")
    return 1 if total else 0
