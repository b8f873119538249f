"""The first hour of each kind of user, each one test from the sign-in dialog to the result,
driven with key presses only into whatever widget has focus (menus by Alt+letter, window
shortcuts, Tab, Enter): what a new support agent, reviewer and admin do on their first day."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtWidgets import QApplication, QWidget
from sqlalchemy import func, select

from nvadmin.auth import accounts
from nvadmin.auth.accounts import command_line_operator
from nvadmin.auth.credentials import CredentialStore
from nvadmin.context import Context
from nvadmin.db.models import ActivityEvent
from nvadmin.export.manifest import manifest_path_for
from nvadmin.paths import Paths
from nvadmin.ui.export_dialog import ExportDialog
from nvadmin.ui.export_panel import State
from nvadmin.ui.main_window import MainWindow
from nvadmin.ui.session import Session
from nvadmin.ui.sign_in import SignInDialog
from tests.factories import add_workspace, draft, write
from tests.gui.windows import open_session_window

PASSWORD = "quiet-river-stones"
ALT = Qt.KeyboardModifier.AltModifier
CTRL = Qt.KeyboardModifier.ControlModifier
NONE = Qt.KeyboardModifier.NoModifier


@pytest.fixture(autouse=True)
def own_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A home folder of the test's own: the export form suggests it, and Qt's file dialog
    keeps its history under the user's configuration folder."""
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)
    usual = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    QSettings.setPath(
        QSettings.Format.NativeFormat, QSettings.Scope.UserScope, str(home / ".config")
    )
    yield home
    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, usual)


@pytest.fixture
def context(sqlite_db_url: str) -> Iterator[Context]:
    ctx = Context(Paths.from_environment(), sqlite_db_url, is_default_database=False)
    yield ctx
    ctx.dispose()


# -- the keyboard ------------------------------------------------------------------------------


def focused() -> QWidget:
    widget = QApplication.focusWidget()
    assert widget is not None, "nothing has the keyboard"
    return widget


def press(qtbot, key: Qt.Key, modifiers: Qt.KeyboardModifier = NONE) -> None:  # type: ignore[no-untyped-def]
    """One key, into the widget that has focus (or the open menu, as the keyboard would)."""
    target = QApplication.activePopupWidget() or focused()
    qtbot.keyClick(target, key, modifiers)


def type_text(qtbot, text: str) -> None:  # type: ignore[no-untyped-def]
    qtbot.keyClicks(focused(), text)


def menu(qtbot, alt_letter: Qt.Key, letter: Qt.Key) -> None:  # type: ignore[no-untyped-def]
    """Alt+letter opens a menu of the bar, the item's letter chooses it."""
    press(qtbot, alt_letter, ALT)
    qtbot.waitUntil(lambda: QApplication.activePopupWidget() is not None)
    press(qtbot, letter)
    qtbot.waitUntil(lambda: QApplication.activePopupWidget() is None)


def active(qtbot, widget: QWidget) -> None:  # type: ignore[no-untyped-def]
    """What the window manager does with a window that opens or gets the keyboard back."""
    qtbot.waitUntil(widget.isVisible)
    widget.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is widget)


def in_focus(qtbot, widget: QWidget) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: QApplication.focusWidget() is widget)


def type_date(qtbot, day: date) -> None:  # type: ignore[no-untyped-def]
    """Over the whole date in the focused date field."""
    press(qtbot, Qt.Key.Key_A, CTRL)
    type_text(qtbot, day.isoformat())


def sign_in_dialog(qtbot, context: Context) -> SignInDialog:  # type: ignore[no-untyped-def]
    dialog = SignInDialog(context, CredentialStore(timeout=2))
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.facts is not None and dialog.keyring_status is not None)
    active(qtbot, dialog)
    in_focus(qtbot, dialog.email_edit)
    return dialog


def type_credentials(qtbot, email: str, password: str) -> None:  # type: ignore[no-untyped-def]
    type_text(qtbot, email)
    press(qtbot, Qt.Key.Key_Tab)
    type_text(qtbot, password)
    press(qtbot, Qt.Key.Key_Return)


def sign_in(qtbot, context: Context, email: str) -> tuple[Session, MainWindow]:  # type: ignore[no-untyped-def]
    """The sign-in dialog, typed into, then the window the session opens for that account."""
    dialog = sign_in_dialog(qtbot, context)
    with qtbot.waitSignal(dialog.accepted):
        type_credentials(qtbot, email, PASSWORD)
    session = Session(context, idle_timeout_ms=600_000)
    assert dialog.identity is not None
    window = open_session_window(qtbot, session, dialog.identity)
    active(qtbot, window)
    in_focus(qtbot, window.table)
    return session, window


def count(context: Context, *where: object) -> int:
    with context.engine.connect() as c:
        return int(
            c.execute(select(func.count()).select_from(ActivityEvent).where(*where)).scalar_one()
        )


def month_before(today: date) -> tuple[date, date]:
    last = today.replace(day=1) - timedelta(days=1)
    return last.replace(day=1), last


# -- support: last month's export for a ticket ----------------------------------------------


def test_support_exports_last_month_for_a_ticket(qtbot, context: Context, own_home: Path) -> None:  # type: ignore[no-untyped-def]
    ws = add_workspace(context.engine)
    now = datetime.now(UTC).replace(microsecond=0)
    write(
        context.engine,
        ws,
        [draft(occurred_at=now - timedelta(hours=11 * i + 1)) for i in range(180, 0, -1)],
    )
    accounts.add_staff(
        context.engine, command_line_operator(), "sam@n.example", PASSWORD, "support"
    )
    session, window = sign_in(qtbot, context, "sam@n.example")

    press(qtbot, Qt.Key.Key_E, CTRL)  # File → Export…
    qtbot.waitUntil(lambda: bool(window.findChildren(ExportDialog)))
    dialog = window.findChildren(ExportDialog)[0]
    active(qtbot, dialog)
    qtbot.waitUntil(lambda: dialog.current_workspace() is not None)
    zone = ZoneInfo(dialog.range_zone_box.currentText())
    first, last = month_before(datetime.now(zone).date())
    press(qtbot, Qt.Key.Key_R, ALT)  # Range: "Last month", the list's last entry
    in_focus(qtbot, dialog.range_preset_box)
    press(qtbot, Qt.Key.Key_End)
    qtbot.waitUntil(lambda: dialog.range_preset_box.currentText() == "Last month")
    assert dialog.from_edit.date().toPython() == first
    assert dialog.to_edit.date().toPython() == last
    press(qtbot, Qt.Key.Key_T, ALT)  # Ticket id
    in_focus(qtbot, dialog.ticket_edit)
    type_text(qtbot, "SUP-1042")
    qtbot.waitUntil(lambda: dialog.last_count is not None)
    press(qtbot, Qt.Key.Key_S, ALT)  # Start export
    panel = window.features.export.panel
    qtbot.waitUntil(lambda: bool(panel.rows))
    row = panel.rows[0]
    qtbot.waitUntil(lambda: row.state is State.DONE)

    start = datetime.combine(first, datetime.min.time(), tzinfo=zone)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    expected = count(
        context,
        ActivityEvent.workspace_id == ws,
        ActivityEvent.occurred_at >= start.astimezone(UTC),
        ActivityEvent.occurred_at < end.astimezone(UTC),
    )
    assert expected > 40
    output = row.request.output
    # Saved where the form suggested: the home folder, named by workspace, days and ticket.
    assert output == own_home / f"riverside_{first}_{last}_SUP-1042.csv"
    assert output.exists()
    with output.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == expected == dialog.last_count == row.result.rows
    manifest = json.loads(manifest_path_for(output).read_text(encoding="utf-8"))
    assert manifest["ticket"] == "SUP-1042"
    assert manifest["rows"] == expected
    assert session.watcher is not None
    session.watcher.stop()


# -- modal dialogs -----------------------------------------------------------------------------


class Modals:
    """Answers, with keys, the modal dialogs that an action opens with exec() (a file
    dialog, a passphrase prompt): each is awaited in turn, as a person would answer it."""

    def __init__(self, qtbot, *answers: tuple[type, Callable[[QWidget], None]]) -> None:  # type: ignore[no-untyped-def]
        self.qtbot = qtbot
        self.pending = list(answers)
        self.answered: list[str] = []
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._look)
        self.timer.start()

    def _look(self) -> None:
        modal = QApplication.activeModalWidget()
        if not self.pending or modal is None or not modal.isVisible():
            return
        kind, answer = self.pending[0]
        if not isinstance(modal, kind):
            return
        self.pending.pop(0)
        if not self.pending:
            self.timer.stop()
        modal.activateWindow()
        self.answered.append(type(modal).__name__)
        try:
            answer(modal)
        finally:
            if modal.isVisible():  # a wrong answer must not leave the test waiting forever
                modal.reject()  # type: ignore[attr-defined]


def wait_keyboard_in(qtbot, dialog: QWidget) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(
        lambda: (
            QApplication.activeWindow() is dialog
            and QApplication.focusWidget() is not None
            and focused().window() is dialog
        ),
    )


def file_name(qtbot, path: Path) -> Callable[[QWidget], None]:  # type: ignore[no-untyped-def]
    """Type a whole path into the file dialog's name field, then Enter."""

    def answer(dialog: QWidget) -> None:
        wait_keyboard_in(qtbot, dialog)
        press(qtbot, Qt.Key.Key_A, CTRL)
        type_text(qtbot, str(path))
        press(qtbot, Qt.Key.Key_Return)

    return answer


def typed(qtbot, text: str) -> Callable[[QWidget], None]:  # type: ignore[no-untyped-def]
    def answer(dialog: QWidget) -> None:
        wait_keyboard_in(qtbot, dialog)
        type_text(qtbot, text)
        press(qtbot, Qt.Key.Key_Return)

    return answer


# -- reviewer: who opened patient X last week → report PDF → case file ----------------------


PASSPHRASE = "correct horse battery staple"


def test_reviewer_who_opened_a_patient_last_week_report_and_case_file(
    qtbot, context: Context, tmp_path: Path, own_home: Path
) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtWidgets import QFileDialog, QInputDialog

    from nvadmin.ui.compliance import CaseFileDialog
    from nvadmin.ui.report_view import ReportRequestDialog, ReportView

    ws = add_workspace(context.engine)
    zone = ZoneInfo("America/Chicago")
    today = datetime.now(zone).date()
    monday = today - timedelta(days=today.weekday() + 7)  # last week, Monday to Sunday
    sunday = monday + timedelta(days=6)
    people = [("ana@riverside.example", "Ana Ruiz"), ("ben@riverside.example", "Ben Ode")]
    events = []
    for day in range(-3, 10):  # from before last week into this one
        at = datetime.combine(monday + timedelta(days=day), datetime.min.time(), tzinfo=zone)
        for hour, (email, name) in enumerate(people, start=9):
            events.append(
                draft(
                    occurred_at=(at + timedelta(hours=hour)).astimezone(UTC),
                    email=email,
                    name=name,
                    patient_id="P-4411" if day % 2 else "P-2000",
                )
            )
    now = datetime.now(UTC)
    write(context.engine, ws, [e for e in events if e.occurred_at < now])
    accounts.add_staff(
        context.engine, command_line_operator(), "casey@n.example", PASSWORD, "compliance"
    )
    start = datetime.combine(monday, datetime.min.time(), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(sunday + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    in_week = (
        ActivityEvent.workspace_id == ws,
        ActivityEvent.patient_id == "P-4411",
        ActivityEvent.occurred_at >= start,
        ActivityEvent.occurred_at < end.astimezone(UTC),
    )
    expected = count(context, *in_week)
    assert expected > 0
    session, window = sign_in(qtbot, context, "casey@n.example")
    assert window.display_zone().key == "America/Chicago"

    # Who opened the patient last week: the search bar.
    press(qtbot, Qt.Key.Key_F, CTRL)
    in_focus(qtbot, window.filter_bar.search_edit)
    press(qtbot, Qt.Key.Key_A, CTRL)
    type_text(qtbot, f"patient:P-4411 after:{monday} before:{sunday}")
    press(qtbot, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not window.model.loading and window.model.rowCount() == expected)
    from nvadmin.ui.activity_model import EventRole

    shown = [window.model.data(window.model.index(r, 0), EventRole) for r in range(expected)]
    assert {e.actor_email for e in shown} == {email for email, _name in people}
    assert {e.patient_id for e in shown} == {"P-4411"}

    # The report, from the same search (Tools → Patient access report…).
    press(qtbot, Qt.Key.Key_Escape)  # the keyboard back in the table, as after any search
    menu(qtbot, Qt.Key.Key_T, Qt.Key.Key_P)
    qtbot.waitUntil(lambda: bool(window.findChildren(ReportRequestDialog)))
    request = window.findChildren(ReportRequestDialog)[0]
    active(qtbot, request)
    assert request.subject.text() == "P-4411"
    assert request.days() == (monday, sunday)
    press(qtbot, Qt.Key.Key_Return)  # Produce report
    qtbot.waitUntil(lambda: bool(window.findChildren(ReportView)))
    view = window.findChildren(ReportView)[0]
    active(qtbot, view)
    assert view.report.row_count == expected
    pdf = tmp_path / "P-4411 last week.pdf"
    answers = Modals(qtbot, (QFileDialog, file_name(qtbot, pdf)))
    press(qtbot, Qt.Key.Key_D, ALT)  # Save as PDF…
    qtbot.waitUntil(pdf.exists)
    assert answers.answered == ["QFileDialog"]
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    assert data.count(b"/Type /Page\n") + data.count(b"/Type/Page\n") >= 1
    active(qtbot, view)  # the file dialog has gone: the report has the keyboard again
    press(qtbot, Qt.Key.Key_Escape)  # close the report
    qtbot.waitUntil(lambda: not view.isVisible())

    # The same events as a case file (File → Save case file…).
    active(qtbot, window)
    menu(qtbot, Qt.Key.Key_F, Qt.Key.Key_C)
    qtbot.waitUntil(lambda: bool(window.findChildren(CaseFileDialog)))
    saving = window.findChildren(CaseFileDialog)[0]
    active(qtbot, saving)
    in_focus(qtbot, saving.path)
    case = tmp_path / "P-4411-last-week.nvcase"
    press(qtbot, Qt.Key.Key_A, CTRL)
    type_text(qtbot, str(case))
    press(qtbot, Qt.Key.Key_Tab)  # Browse…
    press(qtbot, Qt.Key.Key_Tab)
    in_focus(qtbot, saving.passphrase)
    type_text(qtbot, PASSPHRASE)
    press(qtbot, Qt.Key.Key_Tab)
    type_text(qtbot, PASSPHRASE)
    press(qtbot, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: case.exists() and not window.running_work())

    # ... and it opens (File → Open case file…, its name, its passphrase).
    active(qtbot, window)
    answers = Modals(
        qtbot, (QFileDialog, file_name(qtbot, case)), (QInputDialog, typed(qtbot, PASSPHRASE))
    )
    menu(qtbot, Qt.Key.Key_F, Qt.Key.Key_O)
    # The passphrase prompt opens once the file is chosen and checked, not inside the menu.
    qtbot.waitUntil(lambda: answers.answered == ["QFileDialog", "QInputDialog"])
    assert (own_home / ".config" / "QtProject.conf").exists()  # the dialog's history, here
    qtbot.waitUntil(lambda: bool(window.features.compliance.case_windows))
    (case_window,) = window.features.compliance.case_windows
    qtbot.waitUntil(
        lambda: (
            case_window.model.event_filter is not None
            and not case_window.model.loading
            and case_window.model.rowCount() == expected
        ),
    )
    gone: list[bool] = []
    case_window.destroyed.connect(lambda: gone.append(True))
    case_window.close()
    qtbot.waitUntil(lambda: bool(gone))
    assert session.watcher is not None
    session.watcher.stop()


# -- admin: search by e-mail across workspaces, go to a time, add and disable staff ---------


def sign_in_refused(qtbot, context: Context, email: str) -> str:  # type: ignore[no-untyped-def]
    dialog = sign_in_dialog(qtbot, context)
    type_credentials(qtbot, email, PASSWORD)
    qtbot.waitUntil(lambda: dialog.message.isVisible() and dialog.sign_in_button.isEnabled())
    assert dialog.identity is None and dialog.isVisible()
    text = dialog.message.text()
    dialog.close()
    return text


def test_admin_searches_an_email_everywhere_goes_to_a_time_and_manages_staff(
    qtbot, context: Context
) -> None:  # type: ignore[no-untyped-def]
    from nvadmin.auth.signin import SIGN_IN_REFUSED
    from nvadmin.ui.activity_model import EventRole
    from nvadmin.ui.staff_dialog import AccountForm, StaffDialog
    from nvadmin.ui.workspace_picker import ALL_WORKSPACES

    wanted = "ingrid@north.example"
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    for slug, name, shift in (("riverside", "Riverside Family Clinic", 0), ("north", "North", 7)):
        ws = add_workspace(context.engine, slug, name)
        write(
            context.engine,
            ws,
            [
                draft(
                    occurred_at=base + timedelta(minutes=10 * i + shift),
                    email=wanted if i % 3 == 0 else f"other{i}@{slug}.example",
                    name="Ingrid Olsen" if i % 3 == 0 else f"Other {i}",
                )
                for i in range(40)
            ],
        )
    accounts.add_staff(context.engine, command_line_operator(), "root@n.example", PASSWORD, "admin")
    expected = count(context, ActivityEvent.actor_email == wanted)
    assert expected == 28
    session, window = sign_in(qtbot, context, "root@n.example")

    # Every workspace: Alt+W goes to the workspace picker.
    press(qtbot, Qt.Key.Key_W, ALT)
    in_focus(qtbot, window.picker)
    press(qtbot, Qt.Key.Key_A, CTRL)
    type_text(qtbot, ALL_WORKSPACES)
    press(qtbot, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.picker.has_choice() and window.picker.current() is None)

    # The e-mail, in the search bar.
    press(qtbot, Qt.Key.Key_F, CTRL)
    in_focus(qtbot, window.filter_bar.search_edit)
    press(qtbot, Qt.Key.Key_A, CTRL)
    type_text(qtbot, f"user:{wanted}")
    press(qtbot, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not window.model.loading and window.model.rowCount() == expected)
    shown = [window.model.data(window.model.index(r, 0), EventRole) for r in range(expected)]
    assert {e.actor_email for e in shown} == {wanted}
    assert len({e.workspace_id for e in shown}) == 2

    # Go to a time: the first of her events at or after it is selected, in the table.
    zone = window.display_zone()
    moment = (base + timedelta(minutes=95)).astimezone(zone).replace(tzinfo=None)
    with context.engine.connect() as c:  # her first event at or after it, by SQL
        first_after = c.execute(
            select(func.min(ActivityEvent.occurred_at)).where(
                ActivityEvent.actor_email == wanted,
                ActivityEvent.occurred_at >= base + timedelta(minutes=95),
            )
        ).scalar_one()
    press(qtbot, Qt.Key.Key_G, CTRL)
    qtbot.waitUntil(lambda: window.go_to_time_dialog is not None)
    dialog = window.go_to_time_dialog
    assert dialog is not None
    active(qtbot, dialog)
    in_focus(qtbot, dialog.edit)
    press(qtbot, Qt.Key.Key_A, CTRL)
    type_text(qtbot, f"{moment:%Y-%m-%d %H:%M:%S}")
    press(qtbot, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.go_to_time_dialog is None)
    qtbot.waitUntil(lambda: not window.model.loading)
    active(qtbot, window)
    in_focus(qtbot, window.table)
    current = window.model.data(window.table.currentIndex(), EventRole)
    assert current.occurred_at == first_after and current.actor_email == wanted
    assert window.browser_table.selected_rows() == [window.table.currentIndex().row()]

    # A new staff member (Account → Staff…, Add…).
    new = "dana@n.example"

    def add_dana(staff: QWidget) -> None:
        assert isinstance(staff, StaffDialog)
        wait_keyboard_in(qtbot, staff)
        qtbot.waitUntil(lambda: len(staff.accounts) == 1)
        press(qtbot, Qt.Key.Key_A, ALT)  # Add…
        qtbot.waitUntil(lambda: bool(staff.findChildren(AccountForm)))
        form = staff.findChildren(AccountForm)[0]
        active(qtbot, form)
        in_focus(qtbot, form.email)
        type_text(qtbot, new)
        press(qtbot, Qt.Key.Key_Tab)
        type_text(qtbot, "Dana Reyes")
        press(qtbot, Qt.Key.Key_Tab)  # the role: support, as it comes
        press(qtbot, Qt.Key.Key_Tab)
        type_text(qtbot, PASSWORD)
        press(qtbot, Qt.Key.Key_Tab)
        type_text(qtbot, PASSWORD)
        press(qtbot, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: len(staff.accounts) == 2)
        active(qtbot, staff)
        press(qtbot, Qt.Key.Key_Escape)

    answers = Modals(qtbot, (StaffDialog, add_dana))
    menu(qtbot, Qt.Key.Key_A, Qt.Key.Key_S)
    assert answers.answered == ["StaffDialog"] and not answers.pending
    listed = {a.email: a for a in accounts.list_staff(context.engine, command_line_operator())}
    assert listed[new].role.value == "support" and listed[new].display_name == "Dana Reyes"

    # She can sign in ...
    dialog_in = sign_in_dialog(qtbot, context)
    with qtbot.waitSignal(dialog_in.accepted):
        type_credentials(qtbot, new, PASSWORD)
    assert dialog_in.identity is not None and dialog_in.identity.email == new

    # ... until she is disabled (Account → Staff…, her row, Disable).
    def disable_dana(staff: QWidget) -> None:
        assert isinstance(staff, StaffDialog)
        wait_keyboard_in(qtbot, staff)
        qtbot.waitUntil(lambda: len(staff.accounts) == 2)
        in_focus(qtbot, staff.table)
        type_text(qtbot, "dana")  # the table finds her row as she is typed
        qtbot.waitUntil(lambda: staff.selected() is not None and staff.selected().email == new)
        press(qtbot, Qt.Key.Key_D, ALT)  # Disable
        qtbot.waitUntil(lambda: f"Disabled {new}" in staff.message.text())
        press(qtbot, Qt.Key.Key_Escape)

    active(qtbot, window)
    answers = Modals(qtbot, (StaffDialog, disable_dana))
    menu(qtbot, Qt.Key.Key_A, Qt.Key.Key_S)
    assert answers.answered == ["StaffDialog"] and not answers.pending
    assert sign_in_refused(qtbot, context, new) == SIGN_IN_REFUSED
    assert session.watcher is not None
    session.watcher.stop()
