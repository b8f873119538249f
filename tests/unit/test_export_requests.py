"""Export requests on both backends: each state change and its chained event, the requester
rule, legal transitions only, evidence that must be a recorded export, due dates."""

from __future__ import annotations

import csv
import io
import json
import warnings
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import SAWarning

from nvadmin.audit import verify
from nvadmin.auth.accounts import command_line_operator
from nvadmin.db.models import ActivityEvent, TeamMember
from nvadmin.errors import AccessDenied, UserError
from nvadmin.export import requests
from nvadmin.export.manifest import file_sha256
from nvadmin.export.requests import (
    Evidence,
    IllegalTransition,
    Operation,
    RequestDraft,
    Status,
    Verification,
)
from nvadmin.identity import Role, StaffIdentity
from tests.factories import add_member, add_workspace, draft, write

CHICAGO = ZoneInfo("America/Chicago")
OPERATOR = command_line_operator()
SUPPORT = StaffIdentity(7, "sam@nvadmin.example", "Sam Support", Role.SUPPORT)


def received(engine: Engine) -> int:
    ws = add_workspace(engine)
    add_member(engine, ws, "olga@riverside.example", "Olga Owens", "practice_admin")
    add_member(engine, ws, "phil@riverside.example", "Phil Park", "physician")
    with engine.begin() as connection:  # members since long before any request
        connection.execute(
            TeamMember.__table__.update().values(created_at=datetime(2024, 1, 1, tzinfo=UTC))
        )
    write(engine, ws, [draft(i) for i in range(6)])
    return ws


def new_request(ticket: str = "SUP-1", requester: str = "olga@riverside.example", **kw: object):  # type: ignore[no-untyped-def]
    return RequestDraft(
        workspace=kw.pop("workspace", "riverside"),  # type: ignore[arg-type]
        first_day=kw.pop("first_day", date(2025, 3, 1)),  # type: ignore[arg-type]
        last_day=date(2025, 3, 31),
        requester_email=requester,
        ticket=ticket,
        purpose=kw.pop("purpose", "patient complaint review"),  # type: ignore[arg-type]
        recipient=kw.pop("recipient", "Olga Owens, practice admin"),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def events(engine: Engine, ws: int) -> list[tuple[str, dict[str, object]]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(ActivityEvent.action, ActivityEvent.details)
            .where(
                ActivityEvent.workspace_id == ws,
                ActivityEvent.action.like("activity_log.export%"),
            )
            .order_by(ActivityEvent.seq)
        ).all()
    return [(r.action, json.loads(r.details)) for r in rows]


def intact(engine: Engine) -> None:
    report = verify.verify_workspace(engine, OPERATOR, "riverside")
    assert report.intact, report.lines()


# -- due dates -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("received_local", "days", "due_local"),
    [
        (datetime(2026, 11, 27, 10, 0), 2, datetime(2026, 12, 1, 10, 0)),  # Fri -> Tue
        (datetime(2026, 11, 28, 10, 0), 2, datetime(2026, 12, 1, 10, 0)),  # Sat -> Tue
        (datetime(2026, 11, 29, 23, 0), 2, datetime(2026, 12, 1, 23, 0)),  # Sun -> Tue
        (datetime(2026, 11, 30, 9, 0), 2, datetime(2026, 12, 2, 9, 0)),  # Mon -> Wed
        (datetime(2026, 12, 3, 16, 30), 2, datetime(2026, 12, 7, 16, 30)),  # Thu -> Mon
        (datetime(2026, 11, 30, 9, 0), 5, datetime(2026, 12, 7, 9, 0)),  # a working week
        (datetime(2026, 11, 30, 9, 0), 0, datetime(2026, 11, 30, 9, 0)),
        # Fri before the end of daylight saving time: still 10:00 local on Tuesday
        (datetime(2026, 10, 30, 10, 0), 2, datetime(2026, 11, 3, 10, 0)),
    ],
)
def test_due_dates_skip_weekends(received_local: datetime, days: int, due_local: datetime) -> None:
    at = received_local.replace(tzinfo=CHICAGO)
    due = requests.due_by(at.astimezone(UTC), "America/Chicago", days)
    assert due.astimezone(CHICAGO).replace(tzinfo=None) == due_local


def test_due_days_are_configurable_per_database(engine: Engine) -> None:
    received(engine)
    assert requests.due_business_days(engine) == 2
    requests.set_due_business_days(engine, 5)
    assert requests.due_business_days(engine) == 5
    friday = datetime(2026, 11, 27, 10, 0, tzinfo=CHICAGO)
    request_id = requests.add_request(engine, OPERATOR, new_request(received_at=friday))
    view = requests.get_request(engine, request_id)
    assert view.due_at.astimezone(CHICAGO) == datetime(2026, 12, 4, 10, 0, tzinfo=CHICAGO)
    with pytest.raises(UserError, match="between 0 and 30"):
        requests.set_due_business_days(engine, 31)


# -- receiving and the requester rule ---------------------------------------------------------


def test_admin_requester_is_received_then_verified_each_chained(engine: Engine) -> None:
    ws = received(engine)
    request_id = requests.add_request(engine, OPERATOR, new_request())
    view = requests.get_request(engine, request_id)
    assert view.status is Status.VERIFIED
    assert view.verification is Verification.ADMIN
    assert "active team member with the practice_admin role" in view.verification_note
    assert view.requester_name == "Olga Owens"  # from the team-member record
    assert view.zone == "America/Chicago"  # the workspace's zone by default
    logged = events(engine, ws)
    assert [a for a, _ in logged] == [
        "activity_log.export_request.received",
        "activity_log.export_request.verified",
    ]
    assert logged[0][1]["ticket"] == "SUP-1"
    assert logged[0][1]["verification"] == "admin"
    assert logged[1][1]["previous_status"] == "new"
    assert logged[1][1]["status"] == "verified"
    intact(engine)


@pytest.mark.parametrize(
    ("requester", "outcome"),
    [
        ("phil@riverside.example", Verification.NOT_ADMIN),
        ("stranger@elsewhere.example", Verification.NOT_MEMBER),
        ("gone@riverside.example", Verification.INACTIVE),
    ],
)
def test_non_admin_requester_is_refused_until_an_admin_overrides(
    engine: Engine, tmp_path: Path, requester: str, outcome: Verification
) -> None:
    ws = received(engine)
    add_member(engine, ws, "gone@riverside.example", "Gus Gone", "admin")
    with engine.begin() as connection:
        connection.execute(
            TeamMember.__table__.update()
            .where(TeamMember.email == "gone@riverside.example")
            .values(active=False)
        )
    request_id = requests.add_request(engine, OPERATOR, new_request(requester=requester))
    view = requests.get_request(engine, request_id)
    assert view.status is Status.NEW
    assert view.verification is outcome
    assert [a for a, _ in events(engine, ws)] == ["activity_log.export_request.received"]
    # not exportable: the export is refused and nothing is written
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(IllegalTransition, match="only a verified request is exported"):
        requests.fulfil(engine, OPERATOR, request_id, out)
    assert list(out.iterdir()) == []
    # the override needs a reason, and an admin (checked for the SQLite file here; the
    # server's own refusal is in tests/pg/test_export_request_boundary.py)
    with pytest.raises(UserError, match="reason is needed"):
        requests.move(engine, OPERATOR, request_id, Operation.OVERRIDE, "  ")
    if engine.dialect.name == "sqlite":
        with pytest.raises(AccessDenied, match="only a staff admin"):
            requests.move(engine, SUPPORT, request_id, Operation.OVERRIDE, "called the owner")
    view = requests.move(
        engine, OPERATOR, request_id, Operation.OVERRIDE, "owner confirmed by phone"
    )
    assert view.status is Status.VERIFIED
    assert view.override_reason == "owner confirmed by phone"
    assert view.override_by
    assert view.verification is outcome  # the check's outcome stays on the request
    action, details = events(engine, ws)[-1]
    assert action == "activity_log.export_request.overridden"
    assert details["reason"] == "owner confirmed by phone"
    assert details["status"] == "verified"
    requests.fulfil(engine, OPERATOR, request_id, out)  # now exportable
    intact(engine)


def test_fulfil_and_deliver_attach_evidence_and_chain_each_step(
    engine: Engine, tmp_path: Path
) -> None:
    ws = received(engine)
    request_id = requests.add_request(engine, OPERATOR, new_request())
    view = requests.fulfil(engine, OPERATOR, request_id, tmp_path)
    assert view.status is Status.EXPORTED
    assert view.export_rows == 6
    assert view.export_path is not None and view.manifest_path is not None
    assert view.export_sha256 == file_sha256(Path(view.export_path))
    assert view.manifest_sha256 == file_sha256(Path(view.manifest_path))
    assert "6 events" in (view.description or "")
    assert view.exported_at is not None
    view = requests.move(engine, OPERATOR, request_id, Operation.DELIVER)
    assert view.status is Status.DELIVERED and view.delivered_at is not None
    assert [a for a, _ in events(engine, ws)] == [
        "activity_log.export_request.received",
        "activity_log.export_request.verified",
        "activity_log.export",
        "activity_log.export_request.exported",
        "activity_log.export_request.delivered",
    ]
    exported = events(engine, ws)[3][1]
    assert exported["export_sha256"] == view.export_sha256
    assert exported["manifest_sha256"] == view.manifest_sha256
    intact(engine)


@pytest.mark.parametrize(
    ("steps", "refused"),
    [
        ((), Operation.DELIVER),  # verified, not exported
        ((Operation.DELIVER,), Operation.DELIVER),  # delivered twice
        ((Operation.DELIVER,), Operation.REJECT),  # delivered is final
        ((Operation.REJECT,), Operation.OVERRIDE),  # rejected is final
        ((Operation.REJECT,), Operation.DELIVER),
        ((), Operation.OVERRIDE),  # nothing to override on a verified request
    ],
)
def test_only_legal_transitions(
    engine: Engine, tmp_path: Path, steps: tuple[Operation, ...], refused: Operation
) -> None:
    ws = received(engine)
    request_id = requests.add_request(engine, OPERATOR, new_request())
    if Operation.DELIVER in steps:
        requests.fulfil(engine, OPERATOR, request_id, tmp_path)
    for step in steps:
        requests.move(engine, OPERATOR, request_id, step, "wrong workspace named")
    before = events(engine, ws)
    status = requests.get_request(engine, request_id).status
    with pytest.raises(IllegalTransition, match=f"request {request_id} is {status.value}"):
        requests.move(engine, OPERATOR, request_id, refused, "a reason")
    assert requests.get_request(engine, request_id).status is status
    assert events(engine, ws) == before  # nothing chained for a refused change


def test_reject_records_the_reason(engine: Engine) -> None:
    ws = received(engine)
    request_id = requests.add_request(
        engine, OPERATOR, new_request(requester="phil@riverside.example")
    )
    with pytest.raises(UserError, match="reason is needed to reject"):
        requests.move(engine, OPERATOR, request_id, Operation.REJECT, "")
    who = SUPPORT if engine.dialect.name == "sqlite" else OPERATOR  # support may reject
    view = requests.move(
        engine, who, request_id, Operation.REJECT, "requester is not a clinic admin"
    )
    assert view.status is Status.REJECTED
    assert view.rejection_reason == "requester is not a clinic admin"
    action, details = events(engine, ws)[-1]
    assert action == "activity_log.export_request.rejected"
    assert details == {
        "previous_status": "new",
        "reason": "requester is not a clinic admin",
        "request_id": request_id,
        "status": "rejected",
        "ticket": "SUP-1",
    }


def test_evidence_must_be_an_export_recorded_for_the_ticket(engine: Engine) -> None:
    ws = received(engine)
    request_id = requests.add_request(engine, OPERATOR, new_request())
    forged = Evidence("/tmp/x.csv", "a" * 64, "/tmp/x.csv.manifest.json", "b" * 64, 6, "forged")
    with pytest.raises(UserError, match="no recorded export of ticket SUP-1"):
        requests.move(engine, OPERATOR, request_id, Operation.EXPORT, evidence=forged)
    bad = Evidence("/tmp/x.csv", "not-a-hash", "/tmp/m.json", "b" * 64, 6, "forged")
    with pytest.raises(UserError, match="SHA-256"):
        requests.move(engine, OPERATOR, request_id, Operation.EXPORT, evidence=bad)
    assert requests.get_request(engine, request_id).status is Status.VERIFIED
    assert len(events(engine, ws)) == 2


def test_bad_input_is_named_and_a_batch_is_all_or_nothing(engine: Engine) -> None:
    ws = received(engine)
    with pytest.raises(UserError, match="no workspace with the slug 'nowhere'"):
        requests.add_request(engine, OPERATOR, new_request(workspace="nowhere"))  # type: ignore[arg-type]
    impossible = new_request(first_day=date(2025, 4, 1))  # type: ignore[arg-type]
    with pytest.raises(UserError, match="impossible range: 2025-04-01 is after 2025-03-31"):
        requests.add_request(engine, OPERATOR, impossible)
    with pytest.raises(UserError, match="row 3: no workspace"):
        requests.add_requests(
            engine,
            OPERATOR,
            [new_request("A-1"), new_request("A-2"), new_request("A-3", workspace="nowhere")],  # type: ignore[arg-type]
        )
    with pytest.raises(UserError, match="row 2: ticket A-1 already has request"):
        requests.add_requests(engine, OPERATOR, [new_request("A-1"), new_request("A-1")])
    assert requests.list_requests(engine) == []
    assert events(engine, ws) == []
    with pytest.raises(UserError, match="no export request 999"):
        requests.move(engine, OPERATOR, 999, Operation.DELIVER)


def test_queue_order_overdue_first_and_filters(engine: Engine) -> None:
    received(engine)
    now = datetime.now(UTC)
    late = requests.add_request(
        engine, OPERATOR, new_request("LATE", received_at=now - timedelta(days=10))
    )
    fresh = requests.add_request(engine, OPERATOR, new_request("FRESH"))
    waiting = requests.add_request(
        engine, OPERATOR, new_request("WAIT", requester="phil@riverside.example")
    )
    queue = requests.list_requests(engine)
    assert queue[0].id == late and queue[0].overdue()
    assert {v.id for v in queue[1:]} == {fresh, waiting}
    assert [v.id for v in requests.list_requests(engine, overdue=True)] == [late]
    assert [v.id for v in requests.list_requests(engine, statuses=[Status.NEW])] == [waiting]


def test_a_requester_who_joined_after_the_request_is_not_verified(engine: Engine) -> None:
    received(engine)
    with engine.begin() as connection:
        connection.execute(
            TeamMember.__table__.update().values(created_at=datetime.now(UTC) - timedelta(days=1))
        )
    request_id = requests.add_request(
        engine, OPERATOR, new_request(received_at=datetime.now(UTC) - timedelta(days=2))
    )
    view = requests.get_request(engine, request_id)
    assert view.verification is Verification.JOINED_LATER
    assert view.status is Status.NEW  # the rule is "at the time of the request"


def test_disclosures_list_every_delivered_export(engine: Engine, tmp_path: Path) -> None:
    received(engine)
    delivered = requests.add_request(engine, OPERATOR, new_request("D-1", recipient="=cmd|x"))
    requests.fulfil(engine, OPERATOR, delivered, tmp_path)
    requests.move(engine, OPERATOR, delivered, Operation.DELIVER)
    exported_only = requests.add_request(engine, OPERATOR, new_request("D-2"))
    requests.fulfil(engine, OPERATOR, exported_only, tmp_path)
    report = requests.disclosures(engine, OPERATOR, "riverside")
    assert [e.ticket for e in report.entries] == ["D-1"]
    table = requests.disclosure_report(report, OPERATOR).csv_text().split("\r\n\r\n")[1]
    rows = list(csv.DictReader(io.StringIO(table)))
    assert len(rows) == 1
    assert rows[0]["Recipient"] == "'=cmd|x"  # neutralised for spreadsheets
    assert rows[0]["Purpose"] == "patient complaint review"
    assert rows[0]["Events"] == "6"
    assert rows[0]["Ticket"] == "D-1"
    with engine.connect() as connection:  # the row names the chained "delivered" event
        delivered_event = connection.execute(
            select(ActivityEvent.id).where(
                ActivityEvent.action == "activity_log.export_request.delivered"
            )
        ).scalar_one()
    assert rows[0]["Event id"] == str(delivered_event)
    assert rows[0]["Description"].startswith("Activity Log of Riverside Family Clinic")
    assert datetime.fromisoformat(rows[0]["Disclosed"]).utcoffset() is not None


def test_requests_table_is_in_both_schemas(engine: Engine) -> None:
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM export_requests")).scalar() == 0


def test_the_model_and_the_migration_agree(engine: Engine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from nvadmin.db.models import Base

    with engine.connect() as connection, warnings.catch_warnings():
        # SQLite's reflection skips the sort indexes' expressions (coalesce); they are not
        # what this compares.
        warnings.filterwarnings("ignore", "Skipped unsupported reflection", SAWarning)
        warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression")
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert [d for d in differences if "export_requests" in repr(d)] == []


def test_delivered_as_a_package_records_its_hash_in_the_chain(
    engine: Engine, tmp_path: Path
) -> None:
    import pyzipper

    from nvadmin.audit.checkpoints import KeyStore
    from nvadmin.paths import Paths

    store = KeyStore(Paths.from_environment().config_dir)
    store.create_signing_key()
    ws = received(engine)
    request_id = requests.add_request(engine, OPERATOR, new_request())
    with pytest.raises(IllegalTransition, match="only an exported request is packaged"):
        requests.deliver_package(engine, OPERATOR, request_id, store.trusted_keys())
    view = requests.fulfil(engine, OPERATOR, request_id, tmp_path)
    # a hash that is not one is refused before anything changes
    for bad in ("ABC", "g" * 64, "A" * 64, ""):
        with pytest.raises(UserError, match="64 hexadecimal characters"):
            requests.move(
                engine, OPERATOR, request_id, Operation.DELIVER,
                delivery=requests.Delivery(str(tmp_path / "x.zip"), bad),
            )  # fmt: skip
    with pytest.raises(UserError, match="only when the request is delivered"):
        requests.move(
            engine, OPERATOR, request_id, Operation.REJECT, "no",
            delivery=requests.Delivery(str(tmp_path / "x.zip"), "a" * 64),
        )  # fmt: skip
    assert requests.get_request(engine, request_id).status is Status.EXPORTED

    view, package = requests.deliver_package(engine, OPERATOR, request_id, store.trusted_keys())
    assert view.status is Status.DELIVERED
    assert package.path == Path(view.export_path or "").with_suffix(".zip")
    assert view.package_path == str(package.path)
    assert view.package_sha256 == package.sha256 == file_sha256(package.path)
    delivered = events(engine, ws)[-1]
    assert delivered[0] == "activity_log.export_request.delivered"
    assert delivered[1]["package_sha256"] == package.sha256
    assert delivered[1]["package_path"] == str(package.path)
    assert "passphrase" not in json.dumps(delivered[1]) and package.passphrase not in json.dumps(
        delivered[1]
    )
    intact(engine)
    shown = dict(requests.view_lines(view))
    assert shown["Package SHA-256"] == package.sha256
    with pyzipper.AESZipFile(package.path) as archive:
        archive.setpassword(package.passphrase.encode())
        assert (
            archive.read(Path(view.export_path or "").name)
            == Path(view.export_path or "").read_bytes()
        )
        assert "signing-key.pem" in archive.namelist()
    report = requests.disclosures(engine, OPERATOR, "riverside")
    table = requests.disclosure_report(report, OPERATOR).csv_text().split("\r\n\r\n")[1]
    rows = list(csv.DictReader(io.StringIO(table)))
    assert rows[0]["Package SHA-256"] == package.sha256
