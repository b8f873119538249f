"""What an admin's first hour throws at the Staff dialog and the sign-in: a password pasted
with its line break, a 500-character name, a role change that changes nothing, demoting
oneself. Each is typed or pasted with keys into the focused widget, as a person would."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget
from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from nvadmin.auth import accounts
from nvadmin.auth.accounts import command_line_operator
from nvadmin.auth.credentials import CredentialStore
from nvadmin.auth.signin import Authenticator
from nvadmin.context import Context
from nvadmin.db.engine import make_engine
from nvadmin.db.models import ActivityEvent
from nvadmin.paths import Paths
from nvadmin.ui.sign_in import SignInDialog
from nvadmin.ui.staff_dialog import StaffDialog
from tests.gui.test_first_hour import Modals
from tests.gui.test_staff_dialog import PASSWORD, admin, context, row_of  # noqa: F401
from tests.gui.test_staff_form import open_form, type_into

NEW_PASSWORD = "a long enough password"


def paste_into(qtbot, edit: QWidget, text: str) -> None:  # type: ignore[no-untyped-def]
    """Ctrl+V of ``text`` (say, copied from a password manager) into ``edit``."""
    QApplication.clipboard().setText(text)
    edit.setFocus()
    qtbot.keyClick(edit, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)


def staff_actions(context: Context) -> list[str]:  # noqa: F811
    """The staff events on record, read as the tables' owner (a staff login on PostgreSQL
    reads the log only through a recorded access)."""
    owner = make_engine(context.database_url)
    with DbSession(owner) as session:
        actions = list(
            session.execute(
                select(ActivityEvent.action)
                .where(ActivityEvent.action.like("staff.%"))
                .order_by(ActivityEvent.seq)
            ).scalars()
        )
    owner.dispose()
    return actions


def open_staff(qtbot, context: Context) -> StaffDialog:  # type: ignore[no-untyped-def]  # noqa: F811
    dialog = StaffDialog(context, admin(context))
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: len(dialog.accounts) >= 2)
    dialog.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is dialog)
    return dialog


def select_row(qtbot, dialog: StaffDialog, email: str) -> None:  # type: ignore[no-untyped-def]
    """Down from the top of the table to ``email``'s row, with the arrow keys."""
    dialog.table.setFocus()
    # To the end, then the top: each moves the current row, and so selects it (Ctrl+Home
    # alone selects nothing when the top row is current already, unselected).
    qtbot.keyClick(dialog.table, Qt.Key.Key_End, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(dialog.table, Qt.Key.Key_Home, Qt.KeyboardModifier.ControlModifier)
    for _ in range(row_of(dialog, email)):
        qtbot.keyClick(dialog.table, Qt.Key.Key_Down)
    chosen = dialog.selected()
    assert chosen is not None and chosen.email == email, (
        [a.email for a in dialog.accounts],
        dialog.table.currentIndex().row(),
        dialog.table.isEnabled(),
        chosen,
    )


def test_a_pasted_password_loses_its_line_break(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    dialog, form = open_form(qtbot, context)
    type_into(qtbot, form.email, "nils@n.example")
    paste_into(qtbot, form.password, NEW_PASSWORD + "\n")
    paste_into(qtbot, form.repeat, NEW_PASSWORD + "\r\n")
    with qtbot.waitSignal(form.accepted):
        qtbot.keyClick(form.repeat, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "Added nils@n.example" in dialog.message.text())
    # The password is the one a person can type again, here and at `--password-stdin`.
    assert Authenticator(context.engine).sign_in("nils@n.example", NEW_PASSWORD)


def test_sign_in_with_a_pasted_password(qtbot, sqlite_db_url: str) -> None:  # type: ignore[no-untyped-def]
    context = Context(Paths.from_environment(), sqlite_db_url, is_default_database=False)  # noqa: F811
    accounts.add_staff(
        context.engine, command_line_operator(), "ana@n.example", PASSWORD, "support"
    )
    dialog = SignInDialog(context, CredentialStore(timeout=2))
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.facts is not None and dialog.keyring_status is not None)
    qtbot.keyClicks(dialog.email_edit, "ana@n.example")
    paste_into(qtbot, dialog.password_edit, PASSWORD + "\n")
    with qtbot.waitSignal(dialog.accepted):
        qtbot.keyClick(dialog.password_edit, Qt.Key.Key_Return)
    assert dialog.identity is not None and dialog.identity.email == "ana@n.example"
    context.dispose()


def test_a_name_too_long_is_said_by_its_field_and_kept(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    _dialog, form = open_form(qtbot, context)
    type_into(qtbot, form.email, "zahra@n.example")
    long_name = "زهرة " * 100  # 500 characters, right to left
    paste_into(qtbot, form.name, long_name)
    type_into(qtbot, form.password, NEW_PASSWORD)
    type_into(qtbot, form.repeat, NEW_PASSWORD)
    before = staff_actions(context)
    qtbot.keyClick(form.repeat, Qt.Key.Key_Return)
    assert form.isVisible()
    assert form.name_error.isVisible()
    assert form.name_error.text() == (
        "The name must have at most 200 characters (this one has 499)."
    )
    assert QApplication.focusWidget() is form.name
    assert form.name.text() == long_name  # nothing typed is lost
    assert form.buttons.isEnabled()
    assert staff_actions(context) == before


def test_a_long_name_leaves_role_and_status_in_view(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    accounts.add_staff(
        context.engine, command_line_operator(), "w@n.example", PASSWORD, "support", "W" * 200
    )
    dialog = open_staff(qtbot, context)
    qtbot.waitUntil(lambda: len(dialog.accounts) == 3)
    header = dialog.table.horizontalHeader()
    status = dialog.table.horizontalHeader().logicalIndex(3)
    right_edge = header.sectionViewportPosition(status) + header.sectionSize(status)
    assert right_edge <= dialog.table.viewport().width()
    row = row_of(dialog, "w@n.example")
    assert dialog.table.item(row, 1).toolTip() == "W" * 200  # the whole name, on hover


def test_a_role_change_that_changes_nothing_is_refused(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    dialog = open_staff(qtbot, context)
    select_row(qtbot, dialog, "ana@n.example")  # a support account
    assert dialog.role_box.currentData() == "support"
    before = staff_actions(context)
    qtbot.keyClick(dialog.table, Qt.Key.Key_H, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: "already" in dialog.message.text())
    assert dialog.message.text() == "ana@n.example is already support: nothing changed."
    assert staff_actions(context) == before  # no role change on record that was none


def test_demoting_yourself_asks_first(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    accounts.add_staff(
        context.engine, command_line_operator(), "second@n.example", PASSWORD, "admin"
    )
    dialog = open_staff(qtbot, context)
    qtbot.waitUntil(lambda: len(dialog.accounts) == 3)
    select_row(qtbot, dialog, "boss@n.example")
    dialog.role_box.setFocus()
    qtbot.keyClick(dialog.role_box, Qt.Key.Key_Home)  # "Make support"
    assert dialog.role_box.currentData() == "support"

    def say_no(box: QWidget) -> None:
        assert "no longer be able to manage staff" in box.text()  # type: ignore[attr-defined]
        qtbot.keyClick(box, Qt.Key.Key_Escape)

    before = staff_actions(context)
    modals = Modals(qtbot, (QMessageBox, say_no))
    qtbot.keyClick(dialog.role_box, Qt.Key.Key_H, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: modals.answered == ["QMessageBox"])
    assert (
        accounts.find_staff(context.engine, command_line_operator(), "boss@n.example").role.value
        == "admin"
    )
    assert staff_actions(context) == before
