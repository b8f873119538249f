"""Patient access and user activity PDFs: compact, with e-mails and addresses whole, roles as
words, the search in the search bar's words and the report's zone named once. Read back with
poppler's pdfinfo/pdftotext, as a reviewer's PDF viewer would show it."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from nvadmin.audit.reports import patient_access_report, user_activity_report
from nvadmin.auth.roles import Role, StaffIdentity
from nvadmin.context import Context
from nvadmin.paths import Paths
from nvadmin.ui.report_view import pdf_bytes
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
