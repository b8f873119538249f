"""A case file browses in the same order as the database it was made from: every sort, both
ways, read forwards from the first page and backwards from the last, alone and under a
search, gives the same events once each (ties in time, then id, order)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy import Engine, text

from nvadmin.casefile.builder import create_case_file
from nvadmin.casefile.reader import open_case_file
from nvadmin.demo.seed import SeedPlan, seed
from nvadmin.identity import Role, StaffIdentity
from nvadmin.query.filters import EventFilter, Term
from nvadmin.query.paging import SORT_KEYS, EventPager, Sort

REVIEWER = StaffIdentity(7, "casey@nvadmin.example", "Casey Reviewer", Role.COMPLIANCE)
PASSPHRASE = "correct horse battery staple"
PAGE = 37  # pages end inside runs of equal values


def _walk(engine: Engine, event_filter: EventFilter, sort: Sort, *, backwards: bool) -> list[int]:
    """Every event's id in display order, page after page as the browser reads them."""
    pager = EventPager(engine, REVIEWER, event_filter, sort, page_size=PAGE)
    page = pager.last() if backwards else pager.first()
    rows = list(page.rows)
    while not (page.at_start if backwards else page.at_end):
        if backwards:
            page = pager.before(rows[0].cursor)
            rows = [*page.rows, *rows]
        else:
            page = pager.after(rows[-1].cursor)
            rows = [*rows, *page.rows]
    return [row.id for row in rows]


def test_every_sort_matches_the_source(engine: Engine, tmp_path: Path) -> None:
    seed(engine, SeedPlan(workspaces=2, events=1_500, seed=5, end=date(2026, 11, 1)))
    with engine.connect() as c:
        ws = c.execute(
            text(
                "SELECT workspace_id FROM activity_events GROUP BY workspace_id "
                "ORDER BY count(*) DESC"
            )
        ).scalars()
        workspace = int(next(iter(ws)))
    whole = EventFilter(workspace_ids=(workspace,))
    summary = create_case_file(engine, REVIEWER, whole, tmp_path / "c", PASSPHRASE, source="t")
    case = open_case_file(summary.path, PASSPHRASE)
    searches = [
        whole,
        EventFilter(workspace_ids=(workspace,), text="chart"),
        EventFilter(workspace_ids=(workspace,), terms=(Term("outcome", "failure", True),)),
    ]
    try:
        for event_filter in searches:
            for key in SORT_KEYS:
                for descending in (False, True):
                    sort = Sort(key, descending)
                    carried = _walk(case.engine, event_filter, sort, backwards=False)
                    shown = set(carried)
                    # The source also holds the case file's own export event, made after.
                    source = _walk(engine, event_filter, sort, backwards=False)
                    assert len(set(source) - shown) <= 1, (key, descending)
                    source = [i for i in source if i in shown]
                    where = (event_filter.text, event_filter.terms, key, descending)
                    assert len(shown) == len(carried) > 0, where
                    assert carried == source, where
                    assert _walk(case.engine, event_filter, sort, backwards=True) == carried, where
    finally:
        case.close()
