"""A request pressed while the one before it is still on its way: a jump while the count
runs, a jump before a search's first page came. The user sees the count, and the search is
on record before any of its rows.

The model's worker pools are held shut by gates so that the requests overlap every time, as
they do when the database is slow; the requests themselves are real key presses."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtCore import QRunnable, Qt, QThreadPool
from sqlalchemy import func, select

from nvadmin.auth import accounts
from nvadmin.auth.accounts import command_line_operator
from nvadmin.context import Context
from nvadmin.db.models import ActivityEvent
from nvadmin.paths import Paths
from nvadmin.ui.main_window import MainWindow
from tests.factories import add_workspace, draft, write
from tests.gui.test_keyboard_flows import CTRL, PASSWORD, signed_in, type_search


@pytest.fixture
def context(sqlite_db_url: str) -> Iterator[Context]:
    """Three pages of events (a page is 200): the table never holds them all at once."""
    ctx = Context(Paths.from_environment(), sqlite_db_url, is_default_database=False)
    workspace = add_workspace(ctx.engine)
    start = datetime(2026, 11, 5, 16, 0, tzinfo=UTC)
    write(
        ctx.engine, workspace, [draft(occurred_at=start + timedelta(minutes=m)) for m in range(600)]
    )
    accounts.add_staff(ctx.engine, command_line_operator(), "ana@n.example", PASSWORD, "admin")
    yield ctx
    ctx.dispose()


class Gate(QRunnable):
    """Holds one thread of a pool until opened."""

    def __init__(self, opened: threading.Event) -> None:
        super().__init__()
        self.opened = opened

    def run(self) -> None:
        self.opened.wait(60)  # a bound for a broken test only: the test opens it


@pytest.fixture
def gates() -> Iterator[list[threading.Event]]:
    made: list[threading.Event] = []
    yield made
    for opened in made:
        opened.set()


def hold(pool: QThreadPool, gates: list[threading.Event]) -> threading.Event:
    """Every thread of ``pool`` busy until the event returned is set."""
    opened = threading.Event()
    gates.append(opened)
    for _ in range(pool.maxThreadCount()):
        pool.start(Gate(opened))
    return opened


def views(context: Context) -> int:
    with context.engine.connect() as connection:
        statement = select(func.count()).where(ActivityEvent.action == "activity_log.view")
        return int(connection.execute(statement).scalar_one())


@pytest.fixture
def window(qtbot, context: Context) -> Iterator[MainWindow]:  # type: ignore[no-untyped-def]
    session = signed_in(qtbot, context)
    window = session.window
    assert isinstance(window, MainWindow)
    qtbot.waitUntil(lambda: not window.model.loading and window.model.count is not None)
    assert not window.model.at_end  # Ctrl+End goes to the database
    yield window
    assert session.watcher is not None
    session.watcher.stop()


def test_a_jump_while_the_count_runs_keeps_the_count(  # type: ignore[no-untyped-def]
    qtbot, window: MainWindow, gates: list[threading.Event]
) -> None:
    counting = hold(window.model._count_pool, gates)
    with qtbot.waitSignal(window.model.rows_shown):
        type_search(qtbot, window, "after:2026-11-02")
    assert window.status.count_label.text() == "counting…"
    with qtbot.waitSignal(window.model.rows_shown):
        qtbot.keyClick(window.table, Qt.Key.Key_End, CTRL)
    assert window.model.at_end
    counting.set()
    qtbot.waitUntil(lambda: window.model.count is not None)
    assert window.status.count_label.text().endswith("events")


def test_a_jump_before_the_first_page_records_the_search_and_counts_it(  # type: ignore[no-untyped-def]
    qtbot, context: Context, window: MainWindow, gates: list[threading.Event]
) -> None:
    before = views(context)
    pages = hold(window.model._pool, gates)
    type_search(qtbot, window, "after:2026-11-02")  # its first page waits for a thread
    qtbot.keyClick(window.table, Qt.Key.Key_End, CTRL)  # ... and is replaced by the jump
    with qtbot.waitSignal(window.model.rows_shown):
        pages.set()
    assert window.model.at_end
    # The search is on record once, before its rows were shown; and it is counted.
    assert views(context) == before + 1
    qtbot.waitUntil(lambda: window.model.count is not None)
    assert window.status.count_label.text().endswith("events")
