"""Patient access and user activity reports match an independent query, on both backends."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, text

from nvadmin.analysis.reports import (
    PATIENT_ACCESS,
    USER_ACTIVITY,
    access_kind,
    patient_access_report,
    user_activity_report,
)
from nvadmin.db.types import sqlite_timestamp
from nvadmin.errors import AccessDenied, UserError
from nvadmin.identity import Role, StaffIdentity
from tests.factories import T0, add_workspace, draft, write

REVIEWER = StaffIdentity(7, "casey@nvadmin.example", "Casey Reviewer", Role.COMPLIANCE)
SUPPORT = StaffIdentity(8, "sam@nvadmin.example", "Sam Support", Role.SUPPORT)
ANA = ("ana@riverside.example", "Ana Ruiz")
BEN = ("ben@riverside.example", "Ben Okafor")


def populate(engine: Engine) -> int:
    ws = add_workspace(engine)
    ana = {"email": ANA[0], "name": ANA[1], "actor_role": "physician", "ip": "10.0.0.5"}
    ben = {"email": BEN[0], "name": BEN[1], "actor_role": "front_desk", "ip": "10.0.0.9"}
    drafts = [
        # Day 1 (Chicago): a failed sign-in, then a session.
        draft(0, "auth.sign_in_failed", outcome="failure", failure_reason="wrong_password", **ana),
        draft(1, "auth.sign_in", session_id="s-a1", **ana),
        draft(
            2,
            "chart.view",
            patient_id="P-17",
            session_id="s-a1",
            details={"sections": ["allergies", "meds"]},
            **ana,
        ),
        draft(
            3,
            "patient_record.update",
            patient_id="P-17",
            session_id="s-a1",
            details={"changes": {"phone": {"before": "555-0100", "after": "555-0199"}}},
            **ana,
        ),
        draft(4, "chart.view", patient_id="P-99", session_id="s-a1", **ana),
        draft(5, "chart.view", patient_id="P-17", session_id="s-b1", **ben),
        draft(
            6,
            "api.request",
            patient_id="P-17",
            actor_type="api_client",
            email=None,
            name="Billing sync",
            details={"method": "GET", "path": "/patients/P-17", "status": 200},
        ),
        # Day 2: another session, and an access outside the report period.
        draft(60 * 24, "auth.sign_in", session_id="s-a2", **ana),
        draft(60 * 24 + 1, "patient_record.read", patient_id="P-17", session_id="s-a2", **ana),
        draft(60 * 24 * 10, "chart.view", patient_id="P-17", session_id="s-a3", **ana),
    ]
    write(engine, ws, drafts)
    return ws


def independent_ids(engine: Engine, where: str, params: dict) -> list[int]:
    sqlite = engine.dialect.name == "sqlite"
    bound = {
        k: sqlite_timestamp(v) if sqlite and isinstance(v, datetime) else v
        for k, v in params.items()
    }
    with engine.connect() as c:
        return list(
            c.execute(
                text(f"SELECT id FROM activity_events WHERE {where} ORDER BY occurred_at, id"),
                bound,
            ).scalars()
        )


def view_events(engine: Engine) -> list[dict]:
    with engine.connect() as c:
        rows = c.execute(
            text("SELECT details FROM activity_events WHERE action = 'activity_log.view'")
        ).scalars()
        return [json.loads(r) for r in rows]


def test_patient_access_report_matches_an_independent_query(engine: Engine) -> None:
    ws = populate(engine)
    start, end = T0 - timedelta(hours=1), T0 + timedelta(days=3)
    report = patient_access_report(
        engine,
        REVIEWER,
        workspace_id=ws,
        patient_id="P-17",
        start=start,
        end=end,
        source="test database",
    )
    expected = independent_ids(
        engine,
        "workspace_id = :ws AND patient_id = 'P-17' AND occurred_at >= :s AND occurred_at < :e",
        {"ws": ws, "s": start, "e": end},
    )
    assert [row.event_id for _, row in report.rows()] == expected
    assert report.row_count == len(expected) == 5
    cells = [row.cells for _, row in report.rows()]
    assert [c[4] for c in cells] == ["View", "Change", "View", "View (API)", "View"]
    assert cells[0][0] == "2025-03-03 03:02:00"  # 09:02 UTC shown in America/Chicago
    assert cells[0][1] == "2025-03-03 09:02:00Z"
    assert cells[0][2] == "Ana Ruiz <ana@riverside.example>" and cells[0][3] == "Physician"
    assert "phone: 555-0100 → 555-0199" in cells[1][6]
    assert cells[0][7].startswith("10.0.0.5")
    header = dict(report.header)
    assert header["Rows"] == "5" and header["Patient"] == "P-17"
    assert header["Time zone"].startswith("America/Chicago")
    assert "Casey Reviewer" in header["Produced by"]
    summary = {line[0]: line for line in report.summary}
    assert summary["Ana Ruiz <ana@riverside.example>"][2:4] == ("2", "1")
    # Producing the report is itself recorded in the workspace's log.
    views = view_events(engine)
    assert views[-1]["purpose"] == "patient access report"
    assert views[-1]["filter"]["terms"] == [{"field": "patient", "value": "P-17", "negate": False}]


def test_user_activity_report_groups_by_day_and_session(engine: Engine) -> None:
    ws = populate(engine)
    start, end = T0 - timedelta(hours=1), T0 + timedelta(days=3)
    report = user_activity_report(
        engine,
        REVIEWER,
        workspace_id=ws,
        user_email="  ANA@riverside.example ",
        start=start,
        end=end,
    )
    expected = independent_ids(
        engine,
        "workspace_id = :ws AND actor_email = :u AND occurred_at >= :s AND occurred_at < :e",
        {"ws": ws, "u": ANA[0], "s": start, "e": end},
    )
    assert [row.event_id for _, row in report.rows()] == expected
    layout = [(s.level, s.title, len(s.rows)) for s in report.sections]
    assert layout == [
        (1, "Monday 03 March 2025", 0),
        (2, "Failed sign-in", 1),
        (2, "Session s-a1", 4),
        (1, "Tuesday 04 March 2025", 0),
        (2, "Session s-a2", 2),
    ]
    assert report.sections[1].rows[0].tone == "failed"
    assert "failed: wrong password" in report.sections[1].rows[0].cells[5]
    assert dict(report.summary)["Failed attempts"] == "1"
    assert view_events(engine)[-1]["purpose"] == "user activity report"


def test_csv_has_the_header_and_every_row(engine: Engine) -> None:
    ws = populate(engine)
    report = user_activity_report(
        engine, REVIEWER, workspace_id=ws, user_email=ANA[0], start=None, end=None
    )
    data = report.csv_bytes()
    assert data.startswith("\ufeff".encode())
    lines = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert lines[0] == ["Report", USER_ACTIVITY]
    header = {line[0]: line[1] for line in lines[1:] if len(line) == 2}
    assert header["Rows"] == "8"
    table_start = lines.index([]) + 1
    assert lines[table_start][:3] == ["Day", "Session", "Time (America/Chicago)"]
    body = lines[table_start + 1 : table_start + 1 + report.row_count]
    assert [int(r[-1]) for r in body] == [row.event_id for _, row in report.rows()]
    assert body[0][:2] == ["2025-03-03", "Failed sign-in"]


def test_csv_cells_cannot_run_as_formulas(engine: Engine) -> None:
    ws = add_workspace(engine)
    write(engine, ws, [draft(0, patient_id="P-1", name='=HYPERLINK("x")', email="m@x.example")])
    report = patient_access_report(
        engine, REVIEWER, workspace_id=ws, patient_id="P-1", start=None, end=None, record=False
    )
    assert "'=HYPERLINK" in report.csv_text()
    assert view_events(engine) == []  # record=False (read-only case files) writes nothing


def test_reports_need_the_reports_permission(engine: Engine) -> None:
    ws = populate(engine)
    with pytest.raises(AccessDenied):
        patient_access_report(
            engine, SUPPORT, workspace_id=ws, patient_id="P-17", start=None, end=None
        )
    with pytest.raises(AccessDenied):  # all workspaces at once: admins only
        user_activity_report(
            engine, REVIEWER, workspace_id=None, user_email=ANA[0], start=None, end=None
        )
    with pytest.raises(UserError, match="patient id"):
        patient_access_report(
            engine, REVIEWER, workspace_id=ws, patient_id=" ", start=None, end=None
        )
    assert view_events(engine) == []


def test_empty_report_says_so(engine: Engine) -> None:
    ws = populate(engine)
    report = patient_access_report(
        engine, REVIEWER, workspace_id=ws, patient_id="P-nobody", start=None, end=None
    )
    assert report.row_count == 0 and "No matching events" in report.html()
    assert PATIENT_ACCESS in report.html()


def test_access_kinds() -> None:
    assert access_kind("chart.print", None) == "View"
    assert access_kind("encounter.note_signed", None) == "Change"
    assert access_kind("api.request", '{"method":"PATCH"}') == "Change (API)"
    assert access_kind("auth.sign_in", None) == "Other"
