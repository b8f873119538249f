"""Keyboard flows of the main window, with real key presses into the focused widget: where
focus lands (after sign-in, Go to time, a jump, a dialog), window shortcuts from every
focusable widget, and Go to time taking exactly what was typed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QAction, QGuiApplication
from PySide6.QtWidgets import QApplication, QWidget

from nvadmin.auth import accounts
from nvadmin.auth.accounts import command_line_operator
from nvadmin.auth.signin import Authenticator
from nvadmin.context import Context
from nvadmin.paths import Paths
from nvadmin.ui.activity_model import EventRole
from nvadmin.ui.export_dialog import ExportDialog
from nvadmin.ui.main_window import MainWindow
from nvadmin.ui.session import Session
from tests.factories import add_workspace, draft, write
from tests.gui.windows import open_session_window

PASSWORD = "quiet-river-stones"
CHICAGO_DAY = datetime(2026, 11, 5, 16, 0, tzinfo=UTC)  # 10:00 in America/Chicago (CST)
CTRL = Qt.KeyboardModifier.ControlModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier

# The window shortcuts that must work whatever widget has focus: key, modifiers, shortcut text.
SHORTCUTS = [
    (Qt.Key.Key_E, CTRL, "Ctrl+E"),
    (Qt.Key.Key_G, CTRL, "Ctrl+G"),
    (Qt.Key.Key_F, CTRL, "Ctrl+F"),
    (Qt.Key.Key_F5, Qt.KeyboardModifier.NoModifier, "F5"),
    (Qt.Key.Key_L, CTRL, "Ctrl+L"),
    (Qt.Key.Key_I, CTRL | SHIFT, "Ctrl+Shift+I"),
]


@pytest.fixture
def context(sqlite_db_url: str) -> Iterator[Context]:
    ctx = Context(Paths.from_environment(), sqlite_db_url, is_default_database=False)
    workspace = add_workspace(ctx.engine)
    # One event a minute from 09:50 to 10:20 Chicago time on 2026-11-05, plus the seconds
    # 10:06:00 (exact) and 10:33:25 (what the old field jumped to).
    events = [
        draft(occurred_at=CHICAGO_DAY + timedelta(minutes=m, seconds=30), patient_id=f"P{m}")
        for m in range(-10, 20)
    ]
    events.append(draft(occurred_at=CHICAGO_DAY + timedelta(minutes=6), patient_id="EXACT"))
    events.append(draft(occurred_at=CHICAGO_DAY + timedelta(minutes=33, seconds=25)))
    write(ctx.engine, workspace, events)
    accounts.add_staff(ctx.engine, command_line_operator(), "ana@n.example", PASSWORD, "admin")
    yield ctx
    ctx.dispose()


def signed_in(qtbot, context: Context) -> Session:  # type: ignore[no-untyped-def]
    """What sign-in does once the password is accepted: the window opens and loads."""
    session = Session(context, idle_timeout_ms=600_000)
    identity = Authenticator(context.engine).sign_in("ana@n.example", PASSWORD).identity
    open_session_window(qtbot, session, identity)
    return session


def focused(window: MainWindow) -> QWidget:
    widget = QApplication.focusWidget()
    assert widget is not None and widget.window() is window
    return widget


def back_in(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    """The window manager's part once a dialog has gone: the main window is active again."""
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)


def current_event(window: MainWindow):  # type: ignore[no-untyped-def]
    return window.model.data(window.table.currentIndex(), EventRole)


def wait_jumped(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: not window.model.loading)


# -- focus ---------------------------------------------------------------------------------


def test_after_sign_in_the_table_has_focus_at_its_first_row(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    session = signed_in(qtbot, context)
    window = session.window
    assert isinstance(window, MainWindow)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.table)
    assert window.table.currentIndex().row() == 0
    assert window.browser_table.selected_rows() == [0]
    # Ctrl+E at once, into whatever has focus, opens the export form.
    qtbot.keyClick(focused(window), Qt.Key.Key_E, CTRL)
    qtbot.waitUntil(lambda: bool(window.findChildren(ExportDialog)))
    dialog = window.findChildren(ExportDialog)[0]
    qtbot.waitUntil(dialog.isVisible)
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not dialog.isVisible())
    # Closing the dialog gives the keyboard back to the table.
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.table)
    assert session.watcher is not None
    session.watcher.stop()


def test_closing_any_dialog_gives_the_keyboard_back_to_the_table(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    session = signed_in(qtbot, context)
    window = session.window
    assert isinstance(window, MainWindow)
    for open_dialog in (
        window.features.compliance.ask_save_case,  # File → Save case file…
        lambda: window.features.compliance.ask_report("Patient access report"),
        window.features.compliance.open_verify,
    ):
        edit = window.filter_bar.search_edit
        qtbot.keyClick(focused(window), Qt.Key.Key_F, CTRL)
        qtbot.waitUntil(lambda e=edit: QApplication.focusWidget() is e)
        dialog = open_dialog()
        assert dialog is not None
        qtbot.waitUntil(dialog.isVisible)
        dialog.activateWindow()
        qtbot.waitUntil(lambda d=dialog: QApplication.activeWindow() is d)
        qtbot.keyClick(QApplication.focusWidget() or dialog, Qt.Key.Key_Escape)
        qtbot.waitUntil(lambda d=dialog: not d.isVisible())
        back_in(qtbot, window)
        assert QApplication.focusWidget() is window.table
        assert window.table.currentIndex().isValid()
    assert session.watcher is not None
    session.watcher.stop()


def focusable_widgets(window: MainWindow) -> list[QWidget]:
    """Every widget of the window that Tab can reach, in tab order."""
    found: list[QWidget] = []
    widget = window.table.nextInFocusChain()
    while widget is not window.table:
        if (
            widget.window() is window
            and widget.isVisible()
            and widget.isEnabled()
            and widget.focusPolicy() & Qt.FocusPolicy.TabFocus
            and widget.focusProxy() is None
        ):
            found.append(widget)
        widget = widget.nextInFocusChain()
    return [window.table, *found]


def test_window_shortcuts_work_from_every_focusable_widget(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    session = signed_in(qtbot, context)
    window = session.window
    assert isinstance(window, MainWindow)
    actions: dict[str, QAction] = {}
    for action in window.findChildren(QAction):
        for text in (s.toString() for s in action.shortcuts()):
            if text in {shortcut for _k, _m, shortcut in SHORTCUTS}:
                actions[text] = action
    assert sorted(actions) == sorted(s for _k, _m, s in SHORTCUTS)
    # Count what each key reaches instead of opening its dialog (the dispatch from the key
    # press to the action is what is tested here).
    fired: list[str] = []
    for text, action in actions.items():
        action.triggered.disconnect()
        action.triggered.connect(lambda _checked=False, t=text: fired.append(t))
    widgets = focusable_widgets(window)
    names = {w.metaObject().className() for w in widgets}
    assert {"QTableView", "QLineEdit"} <= names, names
    assert window.picker in widgets  # an editable combo box: its line edit sees the keys
    missed = []
    for widget in widgets:
        widget.setFocus(Qt.FocusReason.TabFocusReason)
        qtbot.waitUntil(lambda w=widget: QApplication.focusWidget() is w)
        for key, modifiers, text in SHORTCUTS:
            fired.clear()
            qtbot.keyClick(widget, key, modifiers)
            if fired != [text]:
                missed.append(f"{text} in {widget.metaObject().className()} {widget.objectName()}")
    assert missed == []
    assert session.watcher is not None
    session.watcher.stop()


@pytest.mark.skipif(
    os.environ.get("QT_QPA_PLATFORM") == "xcb" or shutil.which("xvfb-run") is None,
    reason="needs xvfb-run (or is the X11 run itself)",
)
@pytest.mark.slow
def test_window_shortcuts_under_x11_key_bindings(tmp_path: Path) -> None:
    """On X11 a line edit binds Ctrl+E (end of line) itself; the offscreen platform does not,
    so the shortcut tests run once more on a real X server."""
    env = dict(os.environ, QT_QPA_PLATFORM="xcb", NVADMIN_REQUIRE_PG="0")
    env.pop("NVADMIN_TEST_PG_URL", None)
    result = subprocess.run(
        [
            "xvfb-run",
            "-a",
            "-s",
            "-screen 0 1600x1000x24",
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            "-n",
            "0",
            f"{__file__}::test_window_shortcuts_work_from_every_focusable_widget",
            f"{__file__}::test_after_sign_in_the_table_has_focus_at_its_first_row",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "2 passed" in result.stdout


# -- Go to time ----------------------------------------------------------------------------


def go_to(qtbot, window: MainWindow, typed: str, *, paste: bool = False) -> None:  # type: ignore[no-untyped-def]
    qtbot.keyClick(focused(window), Qt.Key.Key_G, CTRL)
    qtbot.waitUntil(lambda: window.go_to_time_dialog is not None)
    dialog = window.go_to_time_dialog
    assert dialog is not None
    qtbot.waitUntil(lambda: QApplication.focusWidget() is dialog.edit)
    edit = dialog.edit
    qtbot.keyClick(edit, Qt.Key.Key_A, CTRL)
    if paste:
        QGuiApplication.clipboard().setText(typed)
        qtbot.keyClick(edit, Qt.Key.Key_V, CTRL)  # pasted as copied, spaces and line break too
    else:
        qtbot.keyClicks(edit, typed)
    assert edit.text() == typed  # what was typed is what is read, nothing moved between fields
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.go_to_time_dialog is None)
    wait_jumped(qtbot, window)
    back_in(qtbot, window)


@pytest.mark.parametrize(
    ("typed", "paste", "expected"),
    [
        ("2026-11-05 10:06:00", False, CHICAGO_DAY + timedelta(minutes=6)),
        ("2026-11-05 10:06", False, CHICAGO_DAY + timedelta(minutes=6)),
        ("10:06", False, CHICAGO_DAY + timedelta(minutes=6)),
        ("2026-11-05T10:06:01", False, CHICAGO_DAY + timedelta(minutes=6, seconds=30)),
        ("  2026-11-05 10:06:00\n", True, CHICAGO_DAY + timedelta(minutes=6)),
        ("2026-11-05T16:12:00Z", False, CHICAGO_DAY + timedelta(minutes=12, seconds=30)),
    ],
)
def test_go_to_time_takes_exactly_what_was_typed(
    qtbot, context: Context, typed: str, paste: bool, expected: datetime
) -> None:  # type: ignore[no-untyped-def]
    session = signed_in(qtbot, context)
    window = session.window
    assert isinstance(window, MainWindow)
    assert window.display_zone().key == "America/Chicago"
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.table)
    # The oldest event (Ctrl+End) is on 2026-11-05 in Chicago: the day "10:06" is on.
    qtbot.keyClick(window.table, Qt.Key.Key_End, CTRL)
    wait_jumped(qtbot, window)
    assert current_event(window).occurred_at.date().isoformat() == "2026-11-05"
    go_to(qtbot, window, typed.strip() if not paste else typed, paste=paste)
    event = current_event(window)
    assert event is not None and event.occurred_at == expected
    assert window.browser_table.selected_rows() == [window.table.currentIndex().row()]
    assert QApplication.focusWidget() is window.table
    # Ctrl+C into the table copies that row.
    qtbot.keyClick(window.table, Qt.Key.Key_C, CTRL)
    assert window.statusBar().currentMessage() == "Copied 1 row(s)."
    copied = window.browser_table.selection_as_text().splitlines()
    assert len(copied) == 2
    assert copied[1].startswith(
        expected.astimezone(window.display_zone()).strftime("%Y-%m-%d %H:%M:%S")
    )
    assert session.watcher is not None
    session.watcher.stop()


def test_go_to_time_keeps_a_wrong_entry_and_says_why(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    session = signed_in(qtbot, context)
    window = session.window
    assert isinstance(window, MainWindow)
    before = current_event(window)
    qtbot.keyClick(focused(window), Qt.Key.Key_G, CTRL)
    qtbot.waitUntil(lambda: window.go_to_time_dialog is not None)
    dialog = window.go_to_time_dialog
    assert dialog is not None
    qtbot.keyClick(dialog.edit, Qt.Key.Key_A, CTRL)
    qtbot.keyClicks(dialog.edit, "2026-11-31 10:06")
    qtbot.keyClick(dialog.edit, Qt.Key.Key_Return)
    assert dialog.isVisible() and dialog.edit.text() == "2026-11-31 10:06"
    assert "is not a date and time" in dialog.error.text() and dialog.error.isVisible()
    qtbot.keyClick(dialog.edit, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: window.go_to_time_dialog is None)
    assert current_event(window) == before
    back_in(qtbot, window)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.table)
    assert session.watcher is not None
    session.watcher.stop()


# -- Go to time outside the view ------------------------------------------------------------

OLDEST = CHICAGO_DAY + timedelta(minutes=-10, seconds=30)  # 09:50:30 Chicago
NEWEST = CHICAGO_DAY + timedelta(minutes=33, seconds=25)  # 10:33:25 Chicago


def search_for(qtbot, window: MainWindow, text: str) -> None:  # type: ignore[no-untyped-def]
    """:func:`type_search`, then its first page shown and counted."""
    with qtbot.waitSignal(window.model.rows_shown):
        type_search(qtbot, window, text)
    qtbot.waitUntil(lambda: not window.model.loading and window.model.count is not None)


def type_search(qtbot, window: MainWindow, text: str) -> None:  # type: ignore[no-untyped-def]
    """Ctrl+F, the search typed over the bar's text, Enter."""
    edit = window.filter_bar.search_edit
    qtbot.keyClick(focused(window), Qt.Key.Key_F, CTRL)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is edit)
    qtbot.keyClick(edit, Qt.Key.Key_A, CTRL)
    qtbot.keyClicks(edit, text)
    qtbot.keyClick(edit, Qt.Key.Key_Return)


def go_to_and_read_status(qtbot, window: MainWindow, typed: str) -> str:  # type: ignore[no-untyped-def]
    """Ctrl+G, ``typed`` over the field, Enter; the status bar's message once the rows show
    (read at once: it is the message the user sees as the table lands)."""
    qtbot.keyClick(focused(window), Qt.Key.Key_G, CTRL)
    qtbot.waitUntil(lambda: window.go_to_time_dialog is not None)
    dialog = window.go_to_time_dialog
    assert dialog is not None
    qtbot.waitUntil(lambda: QApplication.focusWidget() is dialog.edit)
    qtbot.keyClick(dialog.edit, Qt.Key.Key_A, CTRL)
    qtbot.keyClicks(dialog.edit, typed)
    assert dialog.edit.text() == typed
    with qtbot.waitSignal(window.model.rows_shown):
        qtbot.keyClick(dialog.edit, Qt.Key.Key_Return)
    message = window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: window.go_to_time_dialog is None)
    back_in(qtbot, window)
    qtbot.waitUntil(lambda: not window.model.loading)
    return message


def fits_the_status_bar(qtbot, window: MainWindow, message: str) -> None:  # type: ignore[no-untyped-def]
    """``message`` is drawn whole left of the status bar's permanent labels (count, query
    time, who is signed in), which take their room first, at the 1280-pixel width."""
    status = window.statusBar()

    def room() -> int:
        labels = [
            w
            for w in status.findChildren(QWidget, options=Qt.FindChildOption.FindDirectChildrenOnly)
            if w.isVisible() and w.width() > 0
        ]
        return min(w.x() for w in labels) - 12  # QStatusBar's margin and spacing

    qtbot.waitUntil(lambda: status.fontMetrics().horizontalAdvance(message) <= room())


@pytest.mark.parametrize(
    ("typed", "landed", "said"),
    [
        (
            "2026-11-06 09:00",
            NEWEST,
            "2026-11-06 09:00 is after the newest event in this view "
            "(the filter ends 2026-11-05); showing the newest.",
        ),
        (
            "2026-11-04 23:00",
            OLDEST,
            "2026-11-04 23:00 is before the oldest event in this view "
            "(the filter starts 2026-11-05); showing the oldest.",
        ),
        (  # inside the filter's day, after its last event
            "2026-11-05 10:40",
            NEWEST,
            "2026-11-05 10:40 is after the newest event in this view; showing the newest.",
        ),
    ],
)
def test_go_to_time_outside_the_view_goes_to_the_nearest_event_and_says_why(
    qtbot, context: Context, typed: str, landed: datetime, said: str
) -> None:  # type: ignore[no-untyped-def]
    session = signed_in(qtbot, context)
    window = session.window
    assert isinstance(window, MainWindow)
    window.resize(1280, 720)
    search_for(qtbot, window, "on:2026-11-05")
    message = go_to_and_read_status(qtbot, window, typed)
    assert message == said  # the moment as typed, why, and where the table went
    assert current_event(window).occurred_at == landed
    assert window.browser_table.selected_rows() == [window.table.currentIndex().row()]
    assert QApplication.focusWidget() is window.table
    fits_the_status_bar(qtbot, window, message)
    # A time inside the view lands where asked, and the note about the other one goes.
    assert go_to_and_read_status(qtbot, window, "2026-11-05 10:06") == ""
    assert current_event(window).patient_id == "EXACT"
    assert session.watcher is not None
    session.watcher.stop()


def test_go_to_time_from_another_order_goes_by_time_and_says_why(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    """Go to time reads the table in time order: sorted by patient, it sorts by time first,
    and "newest" is the newest whichever way the times run."""
    from nvadmin.query import fields
    from nvadmin.ui.activity_model import SORT_KEY_OF, column_of

    session = signed_in(qtbot, context)
    window = session.window
    assert isinstance(window, MainWindow)
    window.resize(1280, 720)
    search_for(qtbot, window, "on:2026-11-05")
    header = window.table.horizontalHeader()
    patient = column_of(fields.PATIENT)
    assert patient in SORT_KEY_OF
    with qtbot.waitSignal(window.model.rows_shown):
        qtbot.mouseClick(
            header.viewport(),
            Qt.MouseButton.LeftButton,
            pos=QPoint(header.sectionViewportPosition(patient) + 10, header.height() // 2),
        )
    assert window.model.sort_order.key == "patient"
    message = go_to_and_read_status(qtbot, window, "2026-11-06 09:00")
    assert message == (
        "2026-11-06 09:00 is after the newest event in this view "
        "(the filter ends 2026-11-05); showing the newest."
    )
    assert header.sortIndicatorSection() == column_of(fields.TIME)
    assert window.model.sort_order.key == "time"
    assert current_event(window).occurred_at == NEWEST
    # Sorted again, the rows are others: the note about where Go to time went goes.
    with qtbot.waitSignal(window.model.rows_shown):
        qtbot.mouseClick(
            header.viewport(),
            Qt.MouseButton.LeftButton,
            pos=QPoint(header.sectionViewportPosition(patient) + 10, header.height() // 2),
        )
    assert window.statusBar().currentMessage() == ""
    assert session.watcher is not None
    session.watcher.stop()


def test_go_to_time_with_no_events_says_there_is_nothing_to_go_to(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    session = signed_in(qtbot, context)
    window = session.window
    assert isinstance(window, MainWindow)
    window.resize(1280, 720)
    search_for(qtbot, window, "patient:NOBODY")
    assert window.model.rowCount() == 0
    message = go_to_and_read_status(qtbot, window, "2026-11-05 10:06")
    assert message == "No events match these filters: there is nothing to go to."
    assert window.model.rowCount() == 0
    assert session.watcher is not None
    session.watcher.stop()


def test_jump_to_the_end_leaves_focus_in_the_table(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    session = signed_in(qtbot, context)
    window = session.window
    assert isinstance(window, MainWindow)
    window.filter_bar.search_edit.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.filter_bar.search_edit)
    window.window_actions.jump_end.trigger()  # View → Jump to the end
    wait_jumped(qtbot, window)
    assert QApplication.focusWidget() is window.table
    assert window.table.currentIndex().row() == window.model.rowCount() - 1
    assert session.watcher is not None
    session.watcher.stop()


def test_moments_people_type() -> None:
    from datetime import date
    from zoneinfo import ZoneInfo

    from nvadmin.query.localtime import parse_moment

    denver = ZoneInfo("America/Denver")
    day = date(2026, 11, 5)
    at = datetime(2026, 11, 5, 17, 6, tzinfo=UTC)  # 10:06 MST
    for typed in (
        "2026-11-05 10:06:00",
        "2026-11-05 10:06",
        "2026-11-05T10:06",
        "10:06",
        "10:06:00",
    ):
        assert parse_moment(typed, denver, day) == at, typed
    assert parse_moment("9:05:30", denver, day) == datetime(2026, 11, 5, 16, 5, 30, tzinfo=UTC)
    assert parse_moment("2026-11-05T10:06:00-07:00", ZoneInfo("UTC"), day) == at
    assert parse_moment("2026-11-05", denver, day) == datetime(2026, 11, 5, 7, tzinfo=UTC)
    # The repeated hour when clocks go back: the earlier one.
    assert parse_moment("2026-11-01 01:30", denver, day) == datetime(2026, 11, 1, 7, 30, tzinfo=UTC)
    for wrong in ("", "  ", "10:61", "2026-11-31 10:06", "yesterday", "25:00"):
        with pytest.raises(ValueError):
            parse_moment(wrong, denver, day)
