"""Add staff keeps everything typed when something is wrong, with the reason next to the
field; it closes only once the account is really saved."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from nvadmin.context import Context
from nvadmin.ui.staff_dialog import AccountForm, StaffDialog
from tests.gui.test_staff_dialog import admin, context  # noqa: F401 (the fixture)


def open_form(qtbot, context: Context) -> tuple[StaffDialog, AccountForm]:  # type: ignore[no-untyped-def]  # noqa: F811
    dialog = StaffDialog(context, admin(context))
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: len(dialog.accounts) == 2)
    dialog.add_button.setFocus()
    qtbot.keyClick(dialog.add_button, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: bool(dialog.findChildren(AccountForm)))
    form = dialog.findChildren(AccountForm)[0]
    qtbot.waitUntil(form.isVisible)
    form.activateWindow()  # what the window manager does with a new dialog
    qtbot.waitUntil(lambda: QApplication.activeWindow() is form)
    return dialog, form


def type_into(qtbot, edit, text: str) -> None:  # type: ignore[no-untyped-def]
    edit.setFocus()
    qtbot.keyClick(edit, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(edit, text)


def test_a_wrong_field_keeps_the_form_and_says_where(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    dialog, form = open_form(qtbot, context)
    type_into(qtbot, form.email, "ingrid at clinic")
    type_into(qtbot, form.name, "Ingrid Olsen")
    form.role.setFocus()
    qtbot.keyClick(form.role, Qt.Key.Key_Down)  # support → compliance
    type_into(qtbot, form.password, "short")
    type_into(qtbot, form.repeat, "short")
    qtbot.keyClick(form.repeat, Qt.Key.Key_Return)
    assert form.isVisible()
    assert form.email_error.isVisible() and "Not an e-mail address" in form.email_error.text()
    assert QApplication.focusWidget() is form.email
    assert (form.email.text(), form.name.text()) == ("ingrid at clinic", "Ingrid Olsen")
    assert form.role.currentData() == "compliance" and form.password.text() == "short"

    type_into(qtbot, form.email, "ingrid@n.example")
    assert not form.email_error.isVisible()  # the error goes once the field is corrected
    qtbot.keyClick(form.email, Qt.Key.Key_Return)
    assert form.isVisible() and form.password_error.isVisible()
    assert "at least" in form.password_error.text()
    assert QApplication.focusWidget() is form.password

    type_into(qtbot, form.password, "a long enough password")
    type_into(qtbot, form.repeat, "a long enough password")
    with qtbot.waitSignal(form.accepted):
        qtbot.keyClick(form.repeat, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len(dialog.accounts) == 3)
    added = next(a for a in dialog.accounts if a.email == "ingrid@n.example")
    assert added.role == "compliance" and added.display_name == "Ingrid Olsen"


def test_an_existing_account_is_said_in_the_form(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    dialog, form = open_form(qtbot, context)
    type_into(qtbot, form.email, "ana@n.example")
    type_into(qtbot, form.name, "Another Ana")
    type_into(qtbot, form.password, "a long enough password")
    type_into(qtbot, form.repeat, "a long enough password")
    qtbot.keyClick(form.repeat, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: form.email_error.isVisible())
    assert "already exists" in form.email_error.text()
    assert form.isVisible() and form.name.text() == "Another Ana"
    assert form.buttons.isEnabled()
    assert len(dialog.accounts) == 2
