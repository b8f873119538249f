"""Property tests over real databases (RELIABILITY.md C1, C2).

C1: no text cell of an export starts with ``= + - @``, tab, CR or LF unless made inert.
C2: whatever the text (commas, quotes, CR/LF, U+2028, emoji, right-to-left), reading the CSV
back gives the stored value (after neutralising).
"""

from __future__ import annotations

import csv
import itertools
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from nvadmin.db.engine import make_engine, sqlite_url
from nvadmin.export.service import ExportRequest, export_csv
from nvadmin.files.cells import FORMULA_STARTS, neutralise
from nvadmin.identity import Role, StaffIdentity
from nvadmin.query.filters import EventFilter
from nvadmin.query.localtime import day_range
from tests.factories import add_workspace, draft, write

CLEO = StaffIdentity(8, "cleo@nvadmin.example", "Cleo Compliance", Role.COMPLIANCE)
_slugs = itertools.count()

TRICKY = [",", '"', "\r", "\n", "\r\n", "\u2028", "\u2029", "😀", "שלום", "مرحبا", "'", ";", "\t"]
cell_text = st.one_of(
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        max_size=30,
    ),
    st.lists(st.sampled_from([*TRICKY, "a", "é", " "]), max_size=8).map("".join),
    st.tuples(st.sampled_from(FORMULA_STARTS), st.text(max_size=10)).map(
        lambda t: (t[0] + t[1]).replace("\x00", "")
    ),
)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def shared_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """One database per backend for all examples (each example gets its own workspace)."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        folder = Path(tempfile.mkdtemp(prefix="nvadmin-prop-"))
        shutil.copyfile(template, folder / "audit.sqlite3")
        engine = make_engine(sqlite_url(folder / "audit.sqlite3"))
        yield engine
        engine.dispose()
        shutil.rmtree(folder, ignore_errors=True)
        return
    server: str = request.getfixturevalue("pg_server_url")
    template_name: str = request.getfixturevalue("pg_template")
    name = f"nvadmin_p_{uuid.uuid4().hex[:10]}"
    admin = make_engine(make_url(server).set(database="postgres"))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"'))
    engine = make_engine(make_url(server).set(database=name))
    yield engine
    engine.dispose()
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def export_values(engine: Engine, values: list[str]) -> list[dict[str, str]]:
    ws = add_workspace(engine, slug=f"prop-{next(_slugs)}")
    write(
        engine,
        ws,
        [
            draft(i, name=v, email=v or None, resource_id=v[:100] or None, user_agent=v or None)
            for i, v in enumerate(values)
        ],
    )
    start, end = day_range(date(2025, 3, 1), date(2025, 3, 31), "UTC")
    folder = Path(tempfile.mkdtemp(prefix="nvadmin-prop-out-"))
    try:
        out = folder / "p.csv"
        export_csv(
            engine,
            CLEO,
            ExportRequest(
                event_filter=EventFilter(workspace_ids=(ws,), start=start, end=end),
                output=out,
                time_zone="UTC",
            ),
        )
        with out.open(encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(values=st.lists(cell_text, min_size=1, max_size=4))
def test_round_trip_and_no_live_formula(shared_engine: Engine, values: list[str]) -> None:
    rows = export_values(shared_engine, values)
    assert len(rows) == len(values)
    for row, value in zip(rows, values, strict=True):
        # C2: read(write(x)) == neutralise(x)
        assert row["actor_name"] == (neutralise(value) or "")
        assert row["user_agent"] == (neutralise(value) or "")
        assert row["resource_id"] == (neutralise(value[:100]) or "")
        # C1: nothing a spreadsheet would evaluate
        for cell in row.values():
            assert not cell or cell[0] not in FORMULA_STARTS
