"""Typing ``agent:`` in the search bar shows only the events from that browser or app, and
the table and the detail pane name it."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt

from nvadmin.context import Context
from nvadmin.identity import Role, StaffIdentity
from nvadmin.query import fields
from nvadmin.query.fields import agent_family
from nvadmin.query.filters import EventFilter
from nvadmin.ui.activity_model import column_of
from nvadmin.ui.main_window import MainWindow
from tests.factories import add_workspace, draft, write

ADMIN = StaffIdentity(id=7, email="dana@nvadmin.example", display_name="Dana", role=Role.ADMIN)
AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "curl/8.5.0",
    None,
)


@pytest.fixture
def context(db_url: str) -> Iterator[Context]:
    ctx = Context.create(db_url)
    workspace = add_workspace(ctx.engine)
    write(ctx.engine, workspace, [draft(i, user_agent=AGENTS[i % 4]) for i in range(40)])
    yield ctx
    ctx.dispose()


def test_typing_agent_shows_only_that_browsers_events(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    window = MainWindow(context, ADMIN)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.state.loaded)
    riverside = next(w.id for w in window.picker.workspaces if w.slug == "riverside")
    window.apply_filter(EventFilter(workspace_ids=(riverside,), include_log_access=False))
    qtbot.waitUntil(lambda: window.model.count == 40)

    edit = window.filter_bar.search_edit
    edit.setFocus()
    qtbot.keyClick(edit, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(edit, "agent:firefox -category:log")
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.model.count == 10 and not window.model.loading)

    rows = window.model.rows()
    assert len(rows) == 10
    assert {agent_family(r.user_agent) for r in rows} == {"Firefox"}
    column = column_of(fields.AGENT)
    assert window.table.isColumnHidden(column)  # hidden until shown from the header menu
    assert window.model.data(window.model.index(0, column)) == "Firefox"
    window.table.setFocus()
    qtbot.keyClick(window.table, Qt.Key.Key_Home)
    qtbot.waitUntil(lambda: window.detail.shown is not None)
    assert re.search(r"^Browser/app: +Firefox$", window.detail.text.toPlainText(), re.MULTILINE)


def test_a_misspelt_agent_is_not_run(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    window = MainWindow(context, ADMIN)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.state.loaded)
    edit = window.filter_bar.search_edit
    edit.setFocus()
    qtbot.keyClicks(edit, "agent:firefx")
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    assert window.filter_bar.has_error()
    assert "did you mean Firefox?" in window.filter_bar.error_label.text()
    assert edit.selectedText() == "firefx"


def test_a_layout_saved_before_the_column_existed_keeps_it_hidden(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    from nvadmin.ui import settings as keys

    window = MainWindow(context, ADMIN)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.state.loaded)
    agent, ip = column_of(fields.AGENT), column_of(fields.IP)
    window.table.setColumnHidden(ip, True)  # the user's own choice, kept
    # A layout saved by a table without the column restores it shown: it must not appear.
    window.table.setColumnHidden(agent, False)
    window.close()
    window.settings.remove(keys.HEADER_COLUMNS)
    window.settings.sync()
    again = MainWindow(context, ADMIN)
    qtbot.addWidget(again)
    again.show()
    qtbot.waitUntil(lambda: again.state.loaded)
    assert again.table.isColumnHidden(agent)
    assert again.table.isColumnHidden(ip)
