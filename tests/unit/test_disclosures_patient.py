"""One patient's accounting of disclosures, on both backends: every delivered export that held
that patient's events — requests naming the patient and wider exports alike — counted from the
log as it was when each export ran; nothing else."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from nvadmin.__main__ import main
from nvadmin.errors import UserError
from nvadmin.export import requests
from nvadmin.export.requests import CONTAINING, PATIENT_SCOPED, Operation, RequestDraft
from tests.factories import draft, write
from tests.unit.test_export_requests import OPERATOR, received


def at(day: int, month: int = 3) -> datetime:
    return datetime(2025, month, day, 15, tzinfo=UTC)


def ask(ticket: str, first: date, last: date, **kw: object) -> RequestDraft:
    return RequestDraft(
        workspace="riverside",
        first_day=first,
        last_day=last,
        requester_email="olga@riverside.example",
        ticket=ticket,
        purpose=f"purpose of {ticket}",
        recipient=f"recipient of {ticket}",
        **kw,  # type: ignore[arg-type]
    )


def deliver(engine: Engine, folder: Path, request: RequestDraft, *, deliver: bool = True) -> int:
    request_id = requests.add_request(engine, OPERATOR, request)
    requests.fulfil(engine, OPERATOR, request_id, folder)
    if deliver:
        requests.move(engine, OPERATOR, request_id, Operation.DELIVER)
    return request_id


MARCH = (date(2025, 3, 1), date(2025, 3, 31))


@pytest.fixture
def clinic(engine: Engine, tmp_path: Path) -> Engine:
    ws = received(engine)  # six events on 2025-03-03 with no patient, by ana@
    write(
        engine,
        ws,
        [
            draft(occurred_at=at(5), patient_id="P1"),
            draft(occurred_at=at(6), patient_id="P1", email="phil@riverside.example"),
            draft(occurred_at=at(7), patient_id="P2"),
        ],
    )
    deliver(engine, tmp_path, ask("WHOLE-MARCH", *MARCH))
    deliver(engine, tmp_path, ask("P1-MARCH", *MARCH, patients=("P1",)))
    deliver(engine, tmp_path, ask("P2-MARCH", *MARCH, patients=("P2",)))
    deliver(engine, tmp_path, ask("FEBRUARY", date(2025, 2, 1), date(2025, 2, 28)))
    deliver(engine, tmp_path, ask("PHIL", *MARCH, users=("phil@riverside.example",)))
    deliver(engine, tmp_path, ask("OLGA-ONLY", *MARCH, users=("olga@riverside.example",)))
    deliver(engine, tmp_path, ask("NOT-SENT", *MARCH), deliver=False)
    # Exported and delivered before P1's April event was written: the file did not hold it.
    deliver(engine, tmp_path, ask("APRIL", date(2025, 4, 1), date(2025, 4, 30)))
    write(engine, ws, [draft(occurred_at=at(10, 4), patient_id="P1")])
    return engine


def test_every_delivered_export_holding_the_patients_events(clinic: Engine) -> None:
    report = requests.disclosures(clinic, OPERATOR, "riverside", patient="P1")
    listed = {e.ticket: e for e in report.entries}
    assert sorted(listed) == ["P1-MARCH", "PHIL", "WHOLE-MARCH"]
    assert listed["WHOLE-MARCH"].rows == 2  # P1's events in the file, not the file's 9
    assert listed["PHIL"].rows == 1
    assert listed["P1-MARCH"].rows == 2
    assert listed["P1-MARCH"].description.startswith(PATIENT_SCOPED)
    assert listed["WHOLE-MARCH"].description.startswith(CONTAINING)
    assert listed["WHOLE-MARCH"].recipient == "recipient of WHOLE-MARCH"
    assert listed["WHOLE-MARCH"].purpose == "purpose of WHOLE-MARCH"
    # The workspace's accounting still lists every delivered export.
    every = requests.disclosures(clinic, OPERATOR, "riverside")
    assert len(every.entries) == 7


def test_the_other_patient_and_an_unknown_one(clinic: Engine) -> None:
    report = requests.disclosures(clinic, OPERATOR, "riverside", patient="P2")
    assert sorted(e.ticket for e in report.entries) == ["P2-MARCH", "WHOLE-MARCH"]
    assert requests.disclosures(clinic, OPERATOR, "riverside", patient="P9").entries == []
    with pytest.raises(UserError, match="patient id"):
        requests.disclosures(clinic, OPERATOR, "riverside", patient="a\nb")


def test_the_report_names_the_patient(clinic: Engine) -> None:
    report = requests.disclosures(clinic, OPERATOR, "riverside", patient="P1")
    document = requests.disclosure_report(report, OPERATOR)
    assert "P1" in document.subject
    header, table = document.csv_text().split("\r\n\r\n")[:2]
    assert "Patient,P1" in header
    rows = list(csv.DictReader(io.StringIO(table)))
    assert [r["Ticket"] for r in rows] == ["WHOLE-MARCH", "P1-MARCH", "PHIL"]
    assert [r["Events"] for r in rows] == ["2", "2", "1"]


def test_a_patient_scoped_request_exports_only_that_patient(clinic: Engine) -> None:
    (view,) = [v for v in requests.list_requests(clinic) if v.ticket == "P1-MARCH"] or [None]
    assert view is not None and view.filters == {"patient": ["P1"]}
    assert view.export_rows == 2
    with pytest.raises(UserError, match="patient id"):
        requests.add_request(clinic, OPERATOR, ask("BAD", *MARCH, patients=("x" * 41,)))


def test_from_the_command_line(
    clinic: Engine,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "p1.csv"
    code = main(["--database", db_url, "requests", "disclosures", "--workspace", "riverside",
                 "--patient", "P1", "--csv", str(out)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert "3 disclosures written" in capsys.readouterr().out
    text = out.read_text(encoding="utf-8-sig")
    assert "Patient,P1" in text and "WHOLE-MARCH" in text and "P2-MARCH" not in text
    # A patient-scoped request received from the command line.
    code = main(["--database", db_url, "requests", "add", "--workspace", "riverside",
                 "--from", "2025-03-01", "--to", "2025-03-31", "--requester",
                 "olga@riverside.example", "--ticket", "CLI-P2", "--patient", "P2"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    (view,) = [v for v in requests.list_requests(clinic) if v.ticket == "CLI-P2"]
    assert view.filters == {"patient": ["P2"]}
