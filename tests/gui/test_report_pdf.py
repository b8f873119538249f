"""Patient access and user activity PDFs: compact, with e-mails and addresses whole, roles as
words, the search in the search bar's words and the report's zone named once. Read back with
poppler's pdfinfo/pdftotext, as a reviewer's PDF viewer would show it."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from nvadmin.analysis.reports import patient_access_report, user_activity_report
from nvadmin.context import Context
from nvadmin.export.requests import Disclosure, DisclosureReport, disclosure_report
from nvadmin.identity import Role, StaffIdentity
from nvadmin.paths import Paths
from nvadmin.pdf import pdf_bytes
from tests.factories import add_workspace, draft, write

pytestmark = pytest.mark.skipif(
    shutil.which("pdftotext") is None, reason="needs poppler-utils (pdftotext, pdfinfo)"
)

ADMIN = StaffIdentity(1, "dana@nvadmin.example", "Dana Admin", Role.ADMIN)
PEOPLE = [
    ("Dr. Rahul Singh", "rahul.singh@riverside-family-clinic.example", "physician"),
    ("David Ivanova", "david.ivanova@riverside-family-clinic.example", "medical_assistant"),
    ("Zoë Walker", "zoe.walker@riverside-family-clinic.example", "nurse_practitioner"),
]
AGENT = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"


@pytest.fixture
def context(sqlite_db_url: str) -> Iterator[Context]:
    ctx = Context(Paths.from_environment(), sqlite_db_url, is_default_database=False)
    yield ctx
    ctx.dispose()


def seed_accesses(context: Context, count: int) -> int:
    workspace = add_workspace(
        context.engine, "denver", "Front Range Family Medicine", "America/Denver"
    )
    drafts = []
    for i in range(count):
        name, email, role = PEOPLE[i % len(PEOPLE)]
        drafts.append(
            draft(
                i * 37,
                "chart.view" if i % 4 else "patient_record.update",
                email=email,
                name=name,
                actor_role=role,
                patient_id="P-0027",
                ip=f"104.237.76.{i % 250}",
                user_agent=AGENT,
                session_id=f"s_{i // 5:016x}",
                details={"sections": ["allergies", "medications", "vitals"]},
            )
        )
    write(context.engine, workspace, drafts)
    return workspace


def read_pdf(data: bytes, tmp_path: Path) -> tuple[int, str]:
    path = tmp_path / "report.pdf"
    path.write_bytes(data)
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True)
    pages = int(next(line.split()[-1] for line in info.stdout.splitlines() if "Pages" in line))
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    # The PDF keeps hyphens in addresses unbreakable (U+2011): read them as hyphens.
    return pages, text.replace("\u2011", "-")


def test_patient_access_pdf_is_compact_and_readable(qtbot, context, tmp_path) -> None:  # type: ignore[no-untyped-def]
    workspace = seed_accesses(context, 27)
    report = patient_access_report(
        context.engine, ADMIN, workspace_id=workspace, patient_id="P-0027", start=None, end=None
    )
    pages, text = read_pdf(pdf_bytes(report), tmp_path)
    assert pages <= 3, pages
    for _name, email, _role in PEOPLE:
        assert email in text  # whole, on one line
    assert "Medical assistant" in text and "medical_assistant" not in text
    assert "patient:P-0027" in text
    assert '"zone"' not in text and "{" not in text.split("Summary")[0]
    assert text.count("America/Denver") <= 3  # named in the header, not on every column
    for i in range(27):
        assert f"104.237.76.{i}" in text


def test_user_activity_pdf_of_a_thousand_events(qtbot, context, tmp_path) -> None:  # type: ignore[no-untyped-def]
    workspace = seed_accesses(context, 1_000)
    report = user_activity_report(
        context.engine,
        ADMIN,
        workspace_id=workspace,
        user_email=PEOPLE[1][1],
        start=None,
        end=None,
    )
    pages, text = read_pdf(pdf_bytes(report), tmp_path)
    rows = report.row_count
    assert rows == 333
    assert pages <= rows // 12, (pages, rows)  # at least a dozen events a page
    assert f"user:{PEOPLE[1][1]}" in text
    days = [s.title for s in report.sections if s.level == 1]
    assert days and all(day in text for day in days)  # every day's heading is printed


def seed_long_rows(context: Context, count: int) -> int:
    """Rows that wrap onto a second line: long details with a marker at each end of the cell
    (``open0007`` ... ``shut0007``), so a row cut by a page break shows as its two markers
    landing on different pages."""
    workspace = add_workspace(
        context.engine, "denver", "Front Range Family Medicine", "America/Denver"
    )
    drafts = []
    for i in range(count):
        name, email, role = PEOPLE[i % len(PEOPLE)]
        drafts.append(
            draft(
                i * 37,
                "chart.view",
                email=email,
                name=name,
                actor_role=role,
                patient_id="P-0027",
                resource_type="patient_chart",
                resource_id=f"chart/P-0027/encounter/{i:06d}",
                ip=f"104.237.76.{i % 250}",
                user_agent=AGENT + f" Chrome/12{i % 10}.0.6099.{i} Safari/537.36 Edg/12{i % 10}",
                session_id=f"s_{i // 5:016x}",
                details={"sections": [f"open{i:04d}", "allergies", "problem-list", f"shut{i:04d}"]},
            )
        )
    write(context.engine, workspace, drafts)
    return workspace


def page_texts(data: bytes, tmp_path: Path) -> list[str]:
    pages, _text = read_pdf(data, tmp_path)
    path = tmp_path / "report.pdf"
    return [
        subprocess.run(
            ["pdftotext", "-layout", "-f", str(n), "-l", str(n), str(path), "-"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.replace("\u2011", "-")
        for n in range(1, pages + 1)
    ]


def assert_rows_whole(texts: list[str], markers: list[int]) -> None:
    """Each row's first and last words are on one page, the same page, and only there."""
    for i in markers:
        opened = [n for n, text in enumerate(texts) if f"open{i:04d}" in text]
        shut = [n for n, text in enumerate(texts) if f"shut{i:04d}" in text]
        assert len(opened) == 1 and opened == shut, (i, opened, shut)


@pytest.mark.parametrize("count", [27, 1_000])
def test_patient_access_pdf_keeps_rows_whole(qtbot, context, tmp_path, count: int) -> None:  # type: ignore[no-untyped-def]
    workspace = seed_long_rows(context, count)
    report = patient_access_report(
        context.engine, ADMIN, workspace_id=workspace, patient_id="P-0027", start=None, end=None
    )
    texts = page_texts(pdf_bytes(report), tmp_path)
    assert_rows_whole(texts, list(range(count)))
    whole = "\n".join(texts)
    assert "Accesses in time order" in whole
    for header in ("Time", "Who", "Role", "Details", "From where"):
        assert header in texts[0]
    # Columns stay sensible: a whole e-mail and a whole time on one line.
    assert PEOPLE[0][1] in whole
    assert len(texts) <= count // 8 + 2, len(texts)


def test_user_activity_pdf_keeps_rows_and_day_headings(qtbot, context, tmp_path) -> None:  # type: ignore[no-untyped-def]
    workspace = seed_long_rows(context, 1_000)
    report = user_activity_report(
        context.engine,
        ADMIN,
        workspace_id=workspace,
        user_email=PEOPLE[1][1],
        start=None,
        end=None,
    )
    texts = page_texts(pdf_bytes(report), tmp_path)
    assert_rows_whole(texts, list(range(1, 1_000, 3)))
    whole = "\n".join(texts)
    days = [s.title for s in report.sections if s.level == 1]
    assert days and all(day in whole for day in days)
    assert all(s.title in whole for s in report.sections if s.level == 2)
    assert len(texts) <= report.row_count // 8, (len(texts), report.row_count)


def test_disclosures_pdf_shows_every_package_digest_whole(qtbot, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # The package's SHA-256 is the evidence of what was sent: whole, it was wider than its
    # column and ran off the page's right edge (a reviewer's PDF showed 51 of its 64 digits),
    # and its "ff" was printed as one ligature glyph, read back (and copied) as U+FB00.
    digests = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(40)]
    entries = [
        Disclosure(
            delivered_at=datetime(2025, 3, 1 + i % 28, 18, tzinfo=UTC),
            recipient="External auditor, Smith & Partners LLP, 100 Main Street, Springfield",
            purpose="annual HIPAA audit of access to records",
            description="Whole workspace log, 2025-01-01 to 2025-03-31, every category",
            requester="Olga Petrova <olga.petrova@riverside-family-clinic.example>",
            ticket=f"TICKET-{i:05d}",
            rows=1234 * i,
            event_id=1000 + i,
            package_sha256=digest,
        )
        for i, digest in enumerate(digests)
    ]
    accounting = DisclosureReport(
        "riverside", "Riverside Family Clinic", "America/Chicago", "delivered to today", entries
    )
    report = disclosure_report(accounting, ADMIN)
    texts = page_texts(pdf_bytes(report), tmp_path)
    whole = "\n".join(texts)
    for i, digest in enumerate(digests):
        ticket = [n for n, text in enumerate(texts) if f"TICKET-{i:05d}" in text]
        assert len(ticket) == 1, (i, ticket)
        # Every digit on the page, on the ticket's page (the row is whole).
        assert all(digest[k : k + 16] in texts[ticket[0]] for k in range(0, 64, 16)), i
    assert "2025-03-01 12:00:00-06:00" in whole  # a time with its offset on one line


def test_pdf_text_is_found_by_a_search_for_its_words(qtbot, context, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # A reviewer searches the PDF for a name: "ff", "fi" and "ffl" were printed as single
    # ligature glyphs, so "Griffith" and "Stafford" were not found, nor copied as typed.
    workspace = add_workspace(context.engine, "denver", "Front Range", "America/Denver")
    event = draft(
        0,
        email="raffi.griffith@front-range.example",
        name="Raffi Griffith-Stafford",
        patient_id="P-1",
        details={"sections": ["office_flow", "fiscal"]},
    )
    write(context.engine, workspace, [event])
    report = patient_access_report(
        context.engine, ADMIN, workspace_id=workspace, patient_id="P-1", start=None, end=None
    )
    _pages, text = read_pdf(pdf_bytes(report), tmp_path)
    for word in ("Raffi", "Griffith", "Stafford", "office_flow", "fiscal", "first"):
        assert word in text, word
    assert not any(0xFB00 <= ord(c) <= 0xFB06 for c in text)
