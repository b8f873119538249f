"""What a run of the flag rules found: findings per rule, and the findings as CSV."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nvadmin.analysis.flags.rule import FlagRule
    from nvadmin.query.filters import EventFilter
    from nvadmin.query.workspaces import WorkspaceInfo


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    workspace_id: int
    workspace: str  # slug
    subject: str  # member e-mail, IP address or API client
    day: date  # local day in the workspace's zone
    first: datetime
    last: datetime
    events: int
    detail: str
    event_filter: EventFilter


@dataclass
class FlagResult:
    rule: FlagRule
    values: dict[str, float]
    explanation: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.findings)


@dataclass
class FlagReport:
    event_filter: EventFilter
    start: datetime
    end: datetime
    workspaces: list[WorkspaceInfo]
    results: list[FlagResult]
    hidden: int = 0  # findings with no event matching the search's terms

    def findings(self) -> list[Finding]:
        return [f for r in self.results for f in r.findings]


CSV_COLUMNS = (
    "flag",
    "flag_title",
    "workspace",
    "subject",
    "local_day",
    "time_zone",
    "first_utc",
    "last_utc",
    "events",
    "detail",
    "thresholds",
    "explanation",
    "events_filter",
)


def to_csv(report: FlagReport, scope: str) -> bytes:
    """The findings as CSV (UTF-8 with BOM for spreadsheets, CRLF). The scope (filter, range
    and time zone) and each rule's thresholds are repeated on every row, so a row read alone
    still says what it covers; a rule with no findings gets one row saying so. Cells that a
    spreadsheet would run as formulas are neutralised."""
    import csv
    import io
    import json

    from nvadmin.files.cells import neutralise

    zones = {w.id: w.timezone for w in report.workspaces}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*CSV_COLUMNS, "scope"])
    for result in report.results:
        thresholds = json.dumps(result.values, sort_keys=True)
        if not result.findings:
            # A rule that found nothing is stated too: "checked, nothing found" is evidence.
            empty = [result.rule.name, result.rule.title, "", "", "", "", "", "", "0"]
            empty += ["no findings", thresholds, result.explanation, "", scope]
            writer.writerow([neutralise(cell) for cell in empty])
        for f in result.findings:
            row = [
                f.rule,
                result.rule.title,
                f.workspace,
                f.subject,
                f.day.isoformat(),
                zones.get(f.workspace_id, "UTC"),
                f.first.astimezone(UTC).isoformat(),
                f.last.astimezone(UTC).isoformat(),
                str(f.events),
                f.detail,
                thresholds,
                result.explanation,
                json.dumps(f.event_filter.to_dict(), sort_keys=True),
                scope,
            ]
            writer.writerow([neutralise(cell) for cell in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")
