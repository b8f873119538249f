"""What a spreadsheet makes of an export in the excel profile: LibreOffice Calc (headless)
converts the CSV to xlsx and openpyxl reads the cells back. Runs where ``soffice`` is
installed (.ci/run installs libreoffice-calc-nogui).

The import is the one README tells users to make (LibreOffice's Text Import dialog, Excel's
Data > From Text/CSV): UTF-8, comma, "Detect special numbers" on (what Excel always does when
it opens a CSV), and the id columns typed as Text. Measured with LibreOffice 7.4: it reads
``2026-10-19 23:59:24`` as a date-time but no time that carries an offset, reads an offset
alone (``-07:00``) as a time of day, and turns ids that look like numbers into numbers
(``1.00`` -> 1, ``1E02`` -> 100, ``00123`` -> 123) unless their column is Text.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from nvadmin.db.engine import make_engine
from nvadmin.export.columns import DEFAULT_COLUMNS
from nvadmin.export.profiles import EXCEL
from nvadmin.export.service import ExportRequest, export_csv
from nvadmin.identity import Role, StaffIdentity
from nvadmin.query.filters import EventFilter
from nvadmin.query.localtime import day_range
from tests.factories import add_workspace, draft, write

openpyxl = pytest.importorskip("openpyxl")
pytestmark = pytest.mark.skipif(shutil.which("soffice") is None, reason="needs LibreOffice")

SUPPORT = StaffIdentity(7, "sam@nvadmin.example", "Sam Support", Role.SUPPORT)
ZONE = "America/Los_Angeles"
# Patient ids a spreadsheet would read as numbers.
PATIENT_IDS = ("1.00", "1E02", "00123")
IDS = ("seq", "event_id", "patient_id")
TIMES = ("occurred_at_local", "occurred_at_utc")
COLUMNS = (*DEFAULT_COLUMNS, "event_id")
# LibreOffice's CSV filter options, as its Text Import dialog sets them: comma, double quote,
# UTF-8 (76), from line 1, the column types, English (1033), quoted fields not forced to
# text, detect special numbers.
TEXT = 2  # a column type: Text


def _export(engine: Engine, folder: Path) -> Path:
    ws = add_workspace(engine, timezone=ZONE)
    instants = [
        datetime(2026, 10, 20, 6, 59, 24, 500_000, tzinfo=UTC),  # Oct 19, 23:59:24.5 PDT
        datetime(2026, 10, 20, 7, 0, 0, tzinfo=UTC),  # Oct 20, 00:00:00 PDT
        datetime(2026, 11, 2, 8, 30, 0, 999_999, tzinfo=UTC),  # Nov 2, 00:30 PST (-08:00)
    ]
    write(
        engine,
        ws,
        [draft(occurred_at=at, patient_id=p) for at, p in zip(instants, PATIENT_IDS, strict=True)],
    )
    start, end = day_range(date(2026, 10, 19), date(2026, 11, 2), ZONE)
    out = folder / "export.csv"
    export_csv(
        engine,
        SUPPORT,
        ExportRequest(
            event_filter=EventFilter(workspace_ids=(ws,), start=start, end=end),
            output=out,
            time_zone=ZONE,
            ticket="SUP-1",
            columns=COLUMNS,
            profile=EXCEL,
        ),
    )
    return out


def _cells(
    csv_path: Path, folder: Path, text_columns: tuple[str, ...]
) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """The CSV's rows as the csv module reads them, and the cells LibreOffice made of them
    (the first row is the header) with ``text_columns`` imported as Text."""
    # Column numbers in ascending order, as the Text Import dialog writes them.
    numbers = sorted(COLUMNS.index(k) + 1 for k in text_columns)
    types = "/".join(f"{n}/{TEXT}" for n in numbers)
    options = f"CSV:44,34,76,1,{types},1033,false,true"
    profile = folder / "lo-profile"  # its own profile: parallel runs, and root, work
    subprocess.run(
        [
            "soffice",
            f"-env:UserInstallation={profile.as_uri()}",
            "--headless",
            f"--infilter={options}",
            "--convert-to",
            "xlsx",
            "--outdir",
            str(folder),
            str(csv_path),
        ],
        check=True,
        capture_output=True,
        timeout=180,
        env={"HOME": str(folder), "PATH": "/usr/bin:/bin"},
    )
    sheet = openpyxl.load_workbook(folder / f"{csv_path.stem}.xlsx").active
    rows = list(sheet.iter_rows())
    header = [c.value for c in rows[0]]
    cells = [dict(zip(header, row, strict=True)) for row in rows[1:]]
    with csv_path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle)), cells


def test_times_are_date_times_and_ids_keep_their_text(engine: Engine, tmp_path: Path) -> None:
    texts, cells = _cells(_export(engine, tmp_path), tmp_path, IDS)
    assert len(texts) == len(cells) == 3
    assert list(cells[0]) == list(COLUMNS)  # the BOM is not part of the first name
    for text, cell in zip(texts, cells, strict=True):
        for key in TIMES:
            # A date-time cell, exactly the file's second.
            assert cell[key].is_date, (key, text[key], cell[key].value)
            assert cell[key].value == datetime.strptime(text[key], "%Y-%m-%d %H:%M:%S")
        # The offset stays the text it is (not a time of day).
        assert (cell["utc_offset"].data_type, cell["utc_offset"].value) == ("s", text["utc_offset"])
        for key in IDS:
            assert (cell[key].data_type, cell[key].value) == ("s", text[key]), key
    assert [t["patient_id"] for t in texts] == list(PATIENT_IDS)
    assert [(c["occurred_at_local"].value, c["utc_offset"].value) for c in cells] == [
        (datetime(2026, 10, 19, 23, 59, 24), "UTC-07:00"),
        (datetime(2026, 10, 20, 0, 0, 0), "UTC-07:00"),
        (datetime(2026, 11, 2, 0, 30, 0), "UTC-08:00"),
    ]
    assert [c["occurred_at_utc"].value for c in cells] == [
        datetime(2026, 10, 20, 6, 59, 24),
        datetime(2026, 10, 20, 7, 0, 0),
        datetime(2026, 11, 2, 8, 30, 0),
    ]


def test_without_text_columns_number_like_ids_become_numbers(
    sqlite_db_url: str, tmp_path: Path
) -> None:
    """Why README says to import the id columns as Text: left to the spreadsheet's guess,
    patient ids that look like numbers lose their text (what a double-click in Excel does)."""
    engine = make_engine(sqlite_db_url)
    try:
        texts, cells = _cells(_export(engine, tmp_path), tmp_path, ())
    finally:
        engine.dispose()
    assert [c["patient_id"].value for c in cells] == [1, 100, 123]
    assert [t["patient_id"] for t in texts] == list(PATIENT_IDS)
    assert all(c["occurred_at_local"].is_date for c in cells)
