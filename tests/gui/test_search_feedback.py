"""The search bar's feedback: a partial ``user:`` finds the team member by name or e-mail
(as the Team members field suggests them), and "Search not run" goes once a search ran."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt
from sqlalchemy import Engine, func, select

from nvadmin.context import Context
from nvadmin.db.models import ActivityEvent as E
from nvadmin.db.models import Workspace
from nvadmin.db.taxonomy import Category
from nvadmin.identity import Role, StaffIdentity
from nvadmin.query.filters import EventFilter
from nvadmin.ui.main_window import SEARCH_NOT_RUN, MainWindow
from tests.factories import add_workspace, draft, write

ADMIN = StaffIdentity(id=7, email="dana@nvadmin.example", display_name="Dana", role=Role.ADMIN)


@pytest.fixture
def context(db_url: str) -> Iterator[Context]:
    ctx = Context.create(db_url)
    workspace = add_workspace(ctx.engine)
    people = [
        ("ingrid.olsen@riverside.example", "Ingrid Olsen"),
        ("bo@riverside.example", "Bo Chen"),
        ("Ingo.Park@riverside.example", "Ingo Park"),
        (None, "Ingest bot"),
        ("x_y@riverside.example", "Percent 100%"),
    ]
    drafts = []
    for i in range(60):
        email, name = people[i % len(people)]
        extra = {"actor_type": "api_client"} if email is None else {}
        drafts.append(draft(i, email=email, name=name, **extra))  # type: ignore[arg-type]
    write(ctx.engine, workspace, drafts)
    yield ctx
    ctx.dispose()


def sql_count(engine: Engine, *conditions) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count()).where(
                    E.category != Category.LOG_ACCESS.value,
                    E.workspace_id
                    == select(Workspace.id).where(Workspace.slug == "riverside").scalar_subquery(),
                    *conditions,
                )
            ).scalar_one()
        )


def open_window(qtbot, context: Context) -> MainWindow:  # type: ignore[no-untyped-def]
    window = MainWindow(context, ADMIN)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.state.loaded)
    window.apply_filter(
        EventFilter(
            workspace_ids=(next(w.id for w in window.picker.workspaces if w.slug == "riverside"),),
            include_log_access=False,
        )
    )
    qtbot.waitUntil(lambda: window.model.count is not None)
    return window


def search(qtbot, window: MainWindow, text: str) -> None:  # type: ignore[no-untyped-def]
    edit = window.filter_bar.search_edit
    edit.setFocus()
    qtbot.keyClick(edit, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(edit, text + " -category:log")
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not window.model.loading and window.model.count is not None)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("user:ingrid", lambda: (E.actor_email == "ingrid.olsen@riverside.example",)),
        ("user:INGRID", lambda: (E.actor_email == "ingrid.olsen@riverside.example",)),
        ("user:ingo.p", lambda: (E.actor_email == "Ingo.Park@riverside.example",)),
        ("user:olsen", lambda: (E.id < 0,)),  # a prefix, not any part
        ("user:ing", lambda: (E.actor_name.in_(["Ingrid Olsen", "Ingo Park", "Ingest bot"]),)),
        ("user:x_", lambda: (E.actor_name == "Percent 100%",)),  # _ is no wildcard
        ("user:x%", lambda: (E.id < 0,)),
        ("user:bo@riverside.example", lambda: (E.actor_name == "Bo Chen",)),
        ("-user:ing", lambda: (E.actor_name.not_in(["Ingrid Olsen", "Ingo Park", "Ingest bot"]),)),
    ],
)
def test_a_partial_user_matches_the_start_of_a_name_or_email(
    qtbot, context: Context, typed: str, expected
) -> None:  # type: ignore[no-untyped-def]
    window = open_window(qtbot, context)
    search(qtbot, window, typed)
    assert window.model.count == sql_count(context.engine, *expected())
    assert not window.banner.isVisible()


def test_search_not_run_goes_once_a_search_runs(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    window = open_window(qtbot, context)
    edit = window.filter_bar.search_edit
    edit.setFocus()
    qtbot.keyClick(edit, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(edit, "outcome:maybe")
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    assert window.statusBar().currentMessage().startswith(SEARCH_NOT_RUN)
    search(qtbot, window, "user:bo")
    assert not window.statusBar().currentMessage().startswith(SEARCH_NOT_RUN)
    assert window.model.count == sql_count(context.engine, E.actor_name == "Bo Chen")
