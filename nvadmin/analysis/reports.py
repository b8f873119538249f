"""The reports auditors ask for, built from the same event filter as everything else.

* **Patient access report** — every access to patient P between D1 and D2: when, who, with
  which role, what, from where; deliberate views are told apart from record changes
  (HIPAA 164.312(b) "examine activity", 164.528 accounting of disclosures).
* **User activity report** — everything team member U did between D1 and D2, grouped by day
  and by session, failed sign-ins inline where they happened.

A :class:`Report` is plain data: a header (filter, time zone, row count, who produced it and
when), columns and sections of rows. It renders itself as HTML (shown, printed and saved as PDF
by the window) and as CSV. Producing one writes an ``activity_log.view`` event: looking at a
patient's accesses is itself an access to the log; saving or printing it writes an
``activity_log.export`` event (through the report's :class:`ExportRecorder`) before the file
gets its name or the printer gets a page.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, tzinfo
from html import escape
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from nvadmin import __version__
from nvadmin.audit import access_log
from nvadmin.db.engine import describe
from nvadmin.db.models import ActivityEvent as E
from nvadmin.db.taxonomy import action_label, reason_label, role_label
from nvadmin.errors import DatabaseUnavailable, UserError
from nvadmin.files.cells import neutralise
from nvadmin.identity import Permission, StaffIdentity
from nvadmin.query import workspaces
from nvadmin.query.filters import EventFilter, Term, where_clause
from nvadmin.query.localtime import zone_info
from nvadmin.query.paging import ROW_COLUMNS
from nvadmin.query.search import Search, format_search
from nvadmin.query.workspaces import WorkspaceInfo

log = logging.getLogger(__name__)

PATIENT_ACCESS = "Patient access report"
USER_ACTIVITY = "User activity report"

# How a patient access counts for a reviewer: a deliberate look at PHI, or a change to it.
VIEW_ACTIONS = frozenset({"chart.view", "chart.print", "patient_record.read"})
CHANGE_ACTIONS = frozenset(
    {"patient_record.create", "patient_record.update", "encounter.note_signed"}
)
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class ReportRow:
    cells: tuple[str, ...]
    tone: str = ""  # "view", "change", "failed": how the row is highlighted
    event_id: int = 0


@dataclass
class ReportSection:
    title: str
    rows: list[ReportRow] = field(default_factory=list)
    subtitle: str = ""
    level: int = 1  # 1: day (or the whole list), 2: session within a day


@dataclass(frozen=True)
class ExportRecorder:
    """Where a report leaving nvadmin (a saved file, a printout) is put on record as an
    ``activity_log.export`` of the events it shows: exporting the log is an access to it."""

    engine: Engine  # the primary: records are written there
    identity: StaffIdentity

    def __call__(self, event_filter: EventFilter, facts: Mapping[str, Any]) -> None:
        try:
            access_log.record_export(self.engine, self.identity, event_filter, facts)
        except SQLAlchemyError as error:
            log.warning("recording a report's export failed", exc_info=True)
            raise DatabaseUnavailable(
                f"it could not be recorded in the Activity Log ({describe(error)})"
            ) from error


@dataclass
class Report:
    kind: str
    subject: str  # the patient id or the user's e-mail
    header: list[tuple[str, str]]  # label, value, in order
    columns: tuple[str, ...]
    sections: list[ReportSection]
    summary_columns: tuple[str, ...] = ()
    summary: Sequence[tuple[str, ...]] = field(default_factory=list)
    event_filter: EventFilter = field(default_factory=EventFilter)
    row_count: int = 0
    counted: str = "events"  # what a row is, as the footer and the report view count them
    # None where there is no log to write to (a read-only case file).
    recorder: ExportRecorder | None = field(default=None, repr=False, compare=False)

    @property
    def title(self) -> str:
        return f"{self.kind}: {self.subject}"

    def record_export(self, facts: Mapping[str, Any]) -> None:
        """Put the report's leaving nvadmin on record (``facts``: file, format, sha256, ...);
        raises :class:`DatabaseUnavailable` when it cannot be, and then it must not leave."""
        if self.recorder is not None:
            details = {"kind": "report", "report": self.kind, "rows": self.row_count, **facts}
            self.recorder(self.event_filter, details)

    def rows(self) -> Iterable[tuple[ReportSection, ReportRow]]:
        for section in self.sections:
            for row in section.rows:
                yield section, row

    # -- CSV ------------------------------------------------------------------------------
    def csv_text(self) -> str:
        """The header as ``label,value`` lines, a blank line, then one row per event with the
        day and session it was grouped under. Text that a spreadsheet would run as a formula
        is prefixed with an apostrophe."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(["Report", self.kind])
        for label, value in self.header:
            writer.writerow([label, neutralise(value)])
        writer.writerow([])
        grouped = self.kind == USER_ACTIVITY
        writer.writerow([*(("Day", "Session") if grouped else ()), *self.columns, "Event id"])
        for section, row in self.rows():
            groups: tuple[str, ...] = ()
            if grouped:
                groups = (section.subtitle.split("|")[0], section.title)
            writer.writerow([*(neutralise(v) for v in (*groups, *row.cells)), str(row.event_id)])
        if self.summary:
            writer.writerow([])
            writer.writerow(list(self.summary_columns))
            for line in self.summary:
                writer.writerow([neutralise(v) for v in line])
        return out.getvalue()

    def csv_bytes(self) -> bytes:
        # A BOM so Excel opens UTF-8 names and addresses without garbling them.
        return "\ufeff".encode() + self.csv_text().encode("utf-8")

    # -- HTML (for QTextDocument: printing and PDF) ----------------------------------------
    def html(
        self,
        breaks: Mapping[int, Collection[int]] | None = None,
        widths: Mapping[int, Sequence[float]] | None = None,
    ) -> str:
        """A compact document: the zone named once in the header (times in the table are in
        it; the UTC column stays in the CSV), each person on two lines (name, then e-mail),
        addresses and ids never broken inside (the renderer wraps at spaces only).

        The tables with a header row (the summary, then each section's) are numbered from 0 in
        document order; ``breaks[n]`` lists rows of table ``n`` (0 = its first row) that start a
        new page, the table continuing there under its repeated header, and ``widths[n]`` gives
        its columns' shares of the page width in percent (so the parts keep one set of widths).
        The PDF layout measures where pages fall and asks for these so no row is cut."""
        breaks = breaks or {}
        widths = widths or {}
        tables = 0
        shown = [i for i, c in enumerate(self.columns) if c != "UTC"]
        columns = [_short_title(self.columns[i]) for i in shown]
        parts = [
            "<html><head><meta charset='utf-8'><style>",
            "body { font-family: sans-serif; font-size: 8pt; }",
            "h1 { font-size: 13pt; margin-bottom: 2px; }",
            "h2 { font-size: 10.5pt; margin-top: 10px; margin-bottom: 2px; }",
            "h3 { font-size: 9pt; margin-top: 6px; margin-bottom: 1px; }",
            "table.head td { padding: 0px 8px 0px 0; }",
            "table.rows { border-collapse: collapse; }",
            "table.rows th { text-align: left; padding: 2px 4px; font-weight: bold; "
            "border-bottom: 1px solid gray; }",
            "table.rows td { padding: 1px 4px; vertical-align: top; }",
            "tr.failed td { font-style: italic; }",
            ".muted { color: gray; }",
            "</style></head><body>",
            f"<h1>{escape(self.kind)}: {escape(self.subject)}</h1>",
            "<table class='head'>",
        ]
        for label, value in self.header:
            parts.append(f"<tr><td><b>{escape(label)}</b></td><td>{escape(value)}</td></tr>")
        parts.append("</table>")
        if self.summary:
            style = _NEW_PAGE if 0 in breaks.get(tables, ()) else ""
            parts.append(f"<h2{style}>Summary</h2>")
            parts.append(
                _html_table(
                    [_short_title(c) for c in self.summary_columns],
                    [(s, "") for s in self.summary],
                    breaks.get(tables, ()),
                    widths.get(tables, ()),
                )
            )
            tables += 1
        if not self.row_count:
            parts.append(f"<p><i>No matching {self.counted} in this period.</i></p>")
        for section in self.sections:
            tag = "h2" if section.level == 1 else "h3"
            note = section.subtitle.split("|")[-1] if section.subtitle else ""
            first_row_moves = bool(section.rows) and 0 in breaks.get(tables, ())
            style = _NEW_PAGE if first_row_moves else ""
            parts.append(
                f"<{tag}{style}>{escape(section.title)}"
                + (f" <span class='muted'>— {escape(note)}</span>" if note else "")
                + f"</{tag}>"
            )
            if section.rows:
                rows = [(tuple(r.cells[i] for i in shown), r.tone) for r in section.rows]
                moved = [b for b in breaks.get(tables, ()) if b > 0]
                parts.append(_html_table(columns, rows, moved, widths.get(tables, ())))
                tables += 1
        parts.append(
            f"<p class='muted'>{self.row_count:,} {self.counted}. "
            f"Produced by nvadmin {__version__}.</p>"
        )
        parts.append("</body></html>")
        return "\n".join(parts)


def _short_title(column: str) -> str:
    """ "Time (America/Denver)" -> "Time": the header names the zone once."""
    return "Time" if column.startswith("Time (") else column


def _html_cell(value: str) -> str:
    """A person "Name <e-mail>" on two lines, a time on one; e-mail and IP
    addresses, paths and ids are never broken inside (the layout wraps at spaces only, and
    a hyphen or slash inside a word is made unbreakable)."""
    if value.endswith(">") and " <" in value:
        name, email = value[:-1].split(" <", 1)
        return f"{escape(name)}<br><span class='muted'>{escape(_whole(email))}</span>"
    if _TIME.fullmatch(value):
        return value.replace(" ", "&nbsp;")
    if _DIGEST.fullmatch(value):
        # A SHA-256 is wider than its column, and the layout breaks only at spaces: whole, it
        # ran off the page's edge. Groups of 16 hex digits wrap inside the column instead.
        # In a fixed-width face, whose letters are never joined: a proportional one printed
        # "ff" as one ligature glyph, and a digest copied from the PDF no longer matched.
        groups = " ".join(value[i : i + 16] for i in range(0, len(value), 16))
        return f"<span style='font-family: monospace'>{groups}</span>"
    if " · " in value:  # "IP · device": one line where there is room, else two
        ip, device = value.split(" · ", 1)
        return f"{escape(_whole(ip))} · {escape(device).replace(' ', '&nbsp;')}"
    return escape(" ".join(_whole(word) for word in value.split(" ")))


def _whole(word: str) -> str:
    # U+2011 non-breaking hyphen; U+2060 word joiner after a slash.
    return word.replace("-", "\u2011").replace("/", "/\u2060")


_NEW_PAGE = " style='page-break-before: always'"
_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:[+-]\d{2}:\d{2})?")
_DIGEST = re.compile(r"[0-9a-f]{40,}")


def _html_table(
    columns: Sequence[str],
    rows: Sequence[tuple[Sequence[str], str]],
    breaks: Collection[int] = (),
    widths: Sequence[float] = (),
) -> str:
    """One table, or several (one per page) when ``breaks`` names rows that start a page."""
    if len(widths) == len(columns):
        head = "".join(
            f"<th width='{w:.2f}%'>{escape(c)}</th>" for c, w in zip(columns, widths, strict=True)
        )
    else:
        head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    starts = sorted({0, *(b for b in breaks if 0 < b < len(rows))})
    tables = []
    for n, (first, stop) in enumerate(zip(starts, [*starts[1:], len(rows)], strict=True)):
        body = []
        for cells, tone in rows[first:stop]:
            attr = f" class='{tone}'" if tone == "failed" else ""
            body.append(
                f"<tr{attr}>" + "".join(f"<td>{_html_cell(c)}</td>" for c in cells) + "</tr>"
            )
        style = _NEW_PAGE if n else ""
        tables.append(
            f"<table class='rows' width='100%' cellspacing='0'{style}><thead><tr>"
            + head
            + "</tr></thead><tbody>"
            + "".join(body)
            + "</tbody></table>"
        )
    return "".join(tables)


# -- shared pieces -------------------------------------------------------------------------


def _local(instant: datetime, zone: tzinfo) -> str:
    return instant.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def _utc(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def describe_details(action: str, details: str | None, failure_reason: str | None) -> str:
    """A short reading of the event's details: fields seen, changes made, API call."""
    parts: list[str] = []
    data: Any = None
    if details:
        try:
            data = json.loads(details)
        except ValueError:
            data = details
    if isinstance(data, dict):
        if "method" in data and "path" in data:
            status = f" → {data['status']}" if "status" in data else ""
            parts.append(f"{data['method']} {data['path']}{status}")
        for key in ("fields", "sections"):
            if isinstance(data.get(key), list):
                parts.append(f"{key}: " + ", ".join(str(v) for v in data[key]))
        changes = data.get("changes")
        if isinstance(changes, dict):
            for name, change in changes.items():
                if isinstance(change, dict):
                    before, after = change.get("before"), change.get("after")
                    parts.append(f"{name}: {before!s} → {after!s}")
                else:
                    parts.append(f"{name} changed")
        known = {"method", "path", "status", "fields", "sections", "changes"}
        for key, value in data.items():
            if key not in known and not isinstance(value, dict | list):
                shown = json.dumps(value) if isinstance(value, bool) or value is None else value
                parts.append(f"{key}: {shown}")
    elif data:
        parts.append(str(data))
    if failure_reason:
        parts.insert(0, f"failed: {reason_label(failure_reason)}")
    return "; ".join(parts)


def access_kind(action: str, details: str | None) -> str:
    if action in VIEW_ACTIONS:
        return "View"
    if action in CHANGE_ACTIONS:
        return "Change"
    if action == "api.request" and details:
        try:
            method = str(json.loads(details).get("method", "")).upper()
        except (ValueError, AttributeError):
            method = ""
        if method:
            return "View (API)" if method in _READ_METHODS else "Change (API)"
    return "Other"


def _who(name: str | None, email: str | None) -> str:
    if email and name and email != name:
        return f"{name} <{email}>"
    return name or email or "unknown"


def _where(ip: str | None, agent: str | None) -> str:
    """The IP address and the device the user agent names: "104.237.76.103 · Windows NT 10.0"
    (the whole user agent is in the detail pane and the export)."""
    return " · ".join(p for p in (ip, _device(agent)) if p)


def _device(agent: str | None) -> str:
    agent = (agent or "").strip()
    if "(" in agent:
        inside = agent.split("(", 1)[1].split(")", 1)[0]
        first = inside.split(";")[0].strip()
        # "(iPad; CPU OS 18_1 ...)" and "(Windows NT 10.0; Win64)" name the device first.
        return first if first else agent.split(" ", 1)[0]
    return agent.split(" ", 1)[0]


def _period(start: datetime | None, end: datetime | None, zone: tzinfo, zone_name: str) -> str:
    first = _local(start, zone) if start else "the first event"
    last = _local(end - timedelta(microseconds=1), zone) if end else "the newest event"
    return f"{first} to {last} ({zone_name}, both included)"


def _recorded_rows(
    engine: Engine,
    write_engine: Engine | None,
    identity: StaffIdentity,
    event_filter: EventFilter,
    purpose: str,
    record: bool,
) -> list[Any]:
    """The report's rows; unless ``record`` is False (a read-only case file) the view is first
    committed through ``write_engine`` (default ``engine``: the primary), then rows are read."""
    if record:
        engine = access_log.recorded_view(
            write_engine or engine, engine, identity, event_filter, purpose
        )
    return _fetch(engine, event_filter)


def _fetch(engine: Engine, event_filter: EventFilter) -> list[Any]:
    statement = select(*ROW_COLUMNS).where(where_clause(event_filter)).order_by(E.occurred_at, E.id)
    with engine.connect() as connection:
        return list(connection.execute(statement))


def _header(
    identity: StaffIdentity,
    workspace: WorkspaceInfo | None,
    subject: tuple[str, str],
    period: str,
    zone_name: str,
    rows: int,
    source: str,
    event_filter: EventFilter,
) -> list[tuple[str, str]]:
    now = datetime.now(UTC)
    zone = zone_info(zone_name)
    workspace_text = workspace.label if workspace else "all workspaces"
    return [
        ("Workspace", workspace_text),
        subject,
        ("Period", period),
        ("Time zone", f"{zone_name}: every time below (the CSV also gives each in UTC)"),
        ("Rows", f"{rows:,}"),
        ("Produced by", f"{identity.display_name} <{identity.email}> ({identity.role})"),
        ("Produced at", f"{_local(now, zone)} {zone_name} ({_utc(now)})"),
        ("Source", source),
        (
            "Search",
            format_search(Search.from_filter(replace(event_filter, workspace_ids=())), zone),
        ),
    ]


def _authorise(identity: StaffIdentity, workspace_id: int | None) -> None:
    identity.require(Permission.REPORTS)
    if workspace_id is None:
        identity.require(Permission.ALL_WORKSPACES)


# -- the two reports -------------------------------------------------------------------------


def patient_access_report(
    engine: Engine,
    identity: StaffIdentity,
    *,
    workspace_id: int,
    patient_id: str,
    start: datetime | None,
    end: datetime | None,
    zone: str | None = None,
    source: str = "",
    record: bool = True,
    write_engine: Engine | None = None,
) -> Report:
    """Every access to one patient in one workspace between ``start`` and ``end``.

    ``record=False`` only for a read-only case file, where there is no log to write to.
    ``engine`` reads (a hot standby when there is one); the view is recorded through
    ``write_engine`` (default: ``engine``) before any row is read.
    """
    _authorise(identity, workspace_id)
    patient_id = patient_id.strip()
    if not patient_id:
        raise UserError("give the patient id to report on")
    workspace = workspaces.by_id(engine, workspace_id)
    zone_name = zone or workspace.timezone
    tz = zone_info(zone_name)
    event_filter = EventFilter(
        workspace_ids=(workspace_id,),
        start=start,
        end=end,
        terms=(Term("patient", patient_id),),
    )
    rows = _recorded_rows(
        engine, write_engine, identity, event_filter, "patient access report", record
    )
    columns = (
        f"Time ({zone_name})",
        "UTC",
        "Who",
        "Role",
        "Access",
        "What",
        "Details",
        "From where",
        "Session",
    )
    section = ReportSection("Accesses in time order")
    people: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        kind = access_kind(r.action, r.details)
        what = action_label(r.action)
        if r.resource_type or r.resource_id:
            what += f" ({r.resource_type or ''} {r.resource_id or ''})".replace("( ", "(")
        tone = "failed" if r.outcome == "failure" else ("change" if "Change" in kind else "")
        section.rows.append(
            ReportRow(
                (
                    _local(r.occurred_at, tz),
                    _utc(r.occurred_at),
                    _who(r.actor_name, r.actor_email),
                    role_label(r.actor_role or r.actor_type),
                    kind + (" — failed" if r.outcome == "failure" else ""),
                    what,
                    describe_details(r.action, r.details, r.failure_reason),
                    _where(r.ip, r.user_agent),
                    r.session_id or r.request_id or "",
                ),
                tone,
                int(r.id),
            )
        )
        person = people.setdefault(
            (_who(r.actor_name, r.actor_email), role_label(r.actor_role or r.actor_type)),
            {"views": 0, "changes": 0, "other": 0, "first": r.occurred_at, "last": r.occurred_at},
        )
        bucket = "views" if kind.startswith("View") else "changes" if "Change" in kind else "other"
        person[bucket] += 1
        person["last"] = r.occurred_at
    summary = [
        (
            who,
            role,
            str(p["views"]),
            str(p["changes"]),
            str(p["other"]),
            _local(p["first"], tz),
            _local(p["last"], tz),
        )
        for (who, role), p in sorted(people.items(), key=lambda item: item[1]["first"])
    ]
    report = Report(
        kind=PATIENT_ACCESS,
        subject=patient_id,
        header=_header(
            identity,
            workspace,
            ("Patient", patient_id),
            _period(start, end, tz, zone_name),
            zone_name,
            len(rows),
            source,
            event_filter,
        ),
        columns=columns,
        sections=[section],
        summary_columns=("Who", "Role", "Views", "Changes", "Other", "First", "Last"),
        summary=summary,
        event_filter=event_filter,
        row_count=len(rows),
        recorder=ExportRecorder(write_engine or engine, identity) if record else None,
    )
    return report


def user_activity_report(
    engine: Engine,
    identity: StaffIdentity,
    *,
    workspace_id: int | None,
    user_email: str,
    start: datetime | None,
    end: datetime | None,
    zone: str | None = None,
    source: str = "",
    record: bool = True,
    write_engine: Engine | None = None,
) -> Report:
    """Everything one team member did, by day (in ``zone``) and session; sign-in attempts
    that failed appear where they happened, outside any session."""
    _authorise(identity, workspace_id)
    email = user_email.strip().lower()
    if not email:
        raise UserError("give the team member's e-mail address to report on")
    if "@" not in email:
        # The search reads a value without "@" as the start of any e-mail or name: the
        # report would mix several people's activity under one person's name.
        raise UserError(f"give the team member's whole e-mail address, not {email!r}")
    workspace = workspaces.by_id(engine, workspace_id) if workspace_id is not None else None
    zone_name = zone or (workspace.timezone if workspace else "UTC")
    tz = zone_info(zone_name)
    event_filter = EventFilter(
        workspace_ids=(workspace_id,) if workspace_id is not None else (),
        start=start,
        end=end,
        terms=(Term("user", email),),
    )
    rows = _recorded_rows(
        engine, write_engine, identity, event_filter, "user activity report", record
    )
    columns = (
        f"Time ({zone_name})",
        "UTC",
        "Action",
        "Outcome",
        "Patient",
        "Details",
        "From where",
    )
    sections: list[ReportSection] = []
    day_key = None
    day_section: ReportSection | None = None
    day_counts: dict[str, int] = {}
    groups: dict[str, ReportSection] = {}
    current_loose: ReportSection | None = None
    failed_total = 0
    sessions: set[str] = set()
    for r in rows:
        local = r.occurred_at.astimezone(tz)
        key = local.strftime("%Y-%m-%d")
        if key != day_key:
            day_key = key
            day_section = ReportSection(local.strftime("%A %d %B %Y"), subtitle=key, level=1)
            sections.append(day_section)
            groups = {}
            current_loose = None
        assert day_section is not None
        day_counts[key] = day_counts.get(key, 0) + 1
        failed = r.outcome == "failure"
        failed_total += failed
        row = ReportRow(
            (
                _local(r.occurred_at, tz),
                _utc(r.occurred_at),
                action_label(r.action),
                "failed" if failed else "success",
                r.patient_id or "",
                describe_details(r.action, r.details, r.failure_reason),
                _where(r.ip, r.user_agent),
            ),
            "failed" if failed else ("change" if r.action in CHANGE_ACTIONS else ""),
            int(r.id),
        )
        if r.session_id:
            sessions.add(r.session_id)
            group = groups.get(r.session_id)
            if group is None:
                group = ReportSection(f"Session {r.session_id}", subtitle=key, level=2)
                groups[r.session_id] = group
                sections.append(group)
            current_loose = None
        else:
            # Events outside a session (failed sign-ins, API calls) stay where they happened:
            # consecutive ones share a block placed between the sessions around them.
            if current_loose is None or sections[-1] is not current_loose:
                title = (
                    "Failed sign-in" if failed and "sign_in" in r.action else "Outside a session"
                )
                current_loose = ReportSection(title, subtitle=key, level=2)
                sections.append(current_loose)
            elif failed and "sign_in" in r.action and current_loose.title == "Outside a session":
                current_loose.title = "Outside a session (with failed sign-ins)"
            group = current_loose
        group.rows.append(row)
    for section in sections:
        if section.level == 1:
            count = day_counts.get(section.subtitle, 0)
            section.subtitle = f"{section.subtitle}|{count:,} event{'' if count == 1 else 's'}"
        elif section.rows:
            first, last = section.rows[0].cells[0][11:16], section.rows[-1].cells[0][11:16]
            failures = sum(1 for r in section.rows if r.tone == "failed")
            count = len(section.rows)
            note = f"{first} to {last}, {count} event{'' if count == 1 else 's'}"
            if failures:
                note += f", {failures} failed"
            where = section.rows[0].cells[6]
            if where:
                note += f", {where}"
            section.subtitle = f"{section.subtitle}|{note}"
    name = next((r.actor_name for r in rows if r.actor_name), email)
    summary = [
        ("Events", f"{len(rows):,}"),
        ("Days with activity", f"{len(day_counts):,}"),
        ("Sessions", f"{len(sessions):,}"),
        ("Failed attempts", f"{failed_total:,}"),
    ]
    report = Report(
        kind=USER_ACTIVITY,
        subject=f"{name} <{email}>" if name != email else email,
        header=_header(
            identity,
            workspace,
            ("Team member", f"{name} <{email}>" if name != email else email),
            _period(start, end, tz, zone_name),
            zone_name,
            len(rows),
            source,
            event_filter,
        ),
        columns=columns,
        sections=sections,
        summary_columns=("", "Count"),
        summary=summary,
        event_filter=event_filter,
        row_count=len(rows),
        recorder=ExportRecorder(write_engine or engine, identity) if record else None,
    )
    return report
