"""The Staff dialog as an admin goes through it with the keyboard: the role box starts from
the selected account's role, each refusal is said once where the admin is looking, every
field of the forms has its own Alt+letter, and an admin demoted or disabled meanwhile by
another admin is told so once and changes nothing."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton, QApplication, QLabel, QMessageBox, QWidget

from nvadmin.auth import accounts
from nvadmin.auth.accounts import command_line_operator
from nvadmin.auth.signin import Authenticator, SecondFactorRequired
from nvadmin.auth.totp import code_at
from nvadmin.context import Context
from nvadmin.db.engine import make_engine
from nvadmin.paths import Paths
from nvadmin.ui.staff_dialog import AccountForm, StaffDialog
from tests.gui.test_first_hour import Modals
from tests.gui.test_mnemonics import letter
from tests.gui.test_staff_dialog import PASSWORD, context  # noqa: F401 (the fixture)
from tests.gui.test_staff_form import open_form, type_into
from tests.gui.test_staff_odd_input import open_staff, select_row, staff_actions

ALT = Qt.KeyboardModifier.AltModifier
NEW_PASSWORD = "a long enough password"


def labels_saying(fragment: str) -> list[str]:
    """Every label on screen, in any window, whose text has ``fragment``."""
    return [
        f"{type(label.window()).__name__}/{label.objectName()}"
        for label in QApplication.allWidgets()
        if isinstance(label, QLabel) and label.isVisible() and fragment in label.text()
    ]


def alt(qtbot, key: str) -> None:  # type: ignore[no-untyped-def]
    focused = QApplication.focusWidget()
    assert focused is not None
    qtbot.keyClick(focused, getattr(Qt.Key, f"Key_{key.upper()}"), ALT)


def form_mnemonics(form: AccountForm) -> list[tuple[str, QWidget]]:
    """(letter, the widget it takes the keyboard to) for each shown label and button."""
    found: list[tuple[str, QWidget]] = []
    for widget in form.findChildren(QWidget):
        if not widget.isVisibleTo(form):
            continue
        if isinstance(widget, QLabel) and widget.buddy() is not None:
            if key := letter(widget.text()):
                found.append((key, widget.buddy()))
        elif isinstance(widget, QAbstractButton) and (key := letter(widget.text())):
            found.append((key, widget))
    return found


# -- 1: the role box ----------------------------------------------------------------------------


def test_the_role_box_shows_the_selected_accounts_role(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    accounts.add_staff(
        context.engine, command_line_operator(), "casey@n.example", PASSWORD, "compliance"
    )
    dialog = open_staff(qtbot, context)
    qtbot.waitUntil(lambda: len(dialog.accounts) == 3)
    for email, role in (
        ("casey@n.example", "compliance"),
        ("boss@n.example", "admin"),
        ("ana@n.example", "support"),
        ("casey@n.example", "compliance"),
    ):
        select_row(qtbot, dialog, email)
        assert dialog.role_box.currentData() == role, email

    # Changed from there, and after the change it shows the role now held.
    dialog.role_box.setFocus()
    qtbot.keyClick(dialog.role_box, Qt.Key.Key_Home)  # "Make support"
    alt(qtbot, "h")
    qtbot.waitUntil(lambda: "casey@n.example is now support" in dialog.message.text())
    assert dialog.selected() is not None and dialog.selected().email == "casey@n.example"
    assert dialog.role_box.currentData() == "support"


# -- 2: each refusal once ------------------------------------------------------------------------


def test_a_refusal_in_a_form_is_said_in_the_form_only(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    dialog, form = open_form(qtbot, context)
    type_into(qtbot, form.email, "ana@n.example")
    type_into(qtbot, form.password, NEW_PASSWORD)
    type_into(qtbot, form.repeat, NEW_PASSWORD)
    qtbot.keyClick(form.repeat, Qt.Key.Key_Return)
    qtbot.waitUntil(form.email_error.isVisible)
    qtbot.waitUntil(lambda: not dialog._busy)  # the dialog has heard the outcome too
    assert labels_saying("already exists") == ["AccountForm/emailError"]
    assert dialog.message.text() == ""
    assert len(dialog.accounts) == 2


def test_a_refusal_in_the_dialog_is_said_once(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    dialog = open_staff(qtbot, context)
    select_row(qtbot, dialog, "boss@n.example")
    alt(qtbot, "d")  # the only admin
    qtbot.waitUntil(lambda: "only active admin" in dialog.message.text())
    assert labels_saying("only active admin") == ["StaffDialog/staffMessage"]


# -- 3: Alt+letters in the forms -----------------------------------------------------------------


def test_every_field_of_the_add_form_has_its_own_alt_letter(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    _dialog, form = open_form(qtbot, context)
    found = form_mnemonics(form)
    twice = [key for key, n in Counter(k for k, _ in found).items() if n > 1]
    assert not twice, twice
    fields = [form.email, form.name, form.role, form.password, form.repeat, form.totp]
    reached = [widget for _key, widget in found]
    assert [f.accessibleName() or f.objectName() for f in fields if f not in reached] == []
    assert [b.text() for b in form.buttons.buttons() if b not in reached] == []
    for key, widget in reversed(found):  # from the last field up: each letter moves focus
        if widget in form.buttons.buttons():
            continue
        alt(qtbot, key)
        qtbot.waitUntil(lambda w=widget: QApplication.focusWidget() is w)
    qtbot.waitUntil(form.totp.isChecked)  # its letter ticks it, as a click would
    cancel = form.buttons.button(form.buttons.StandardButton.Cancel)
    with qtbot.waitSignal(form.rejected):
        alt(qtbot, letter(cancel.text()) or "?")


def test_every_field_of_the_password_form_has_its_own_alt_letter(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    dialog = open_staff(qtbot, context)
    select_row(qtbot, dialog, "ana@n.example")
    alt(qtbot, "r")  # Reset password…
    qtbot.waitUntil(lambda: bool(dialog.findChildren(AccountForm)))
    form = dialog.findChildren(AccountForm)[0]
    qtbot.waitUntil(lambda: QApplication.activeWindow() is form)
    found = form_mnemonics(form)
    keys = [k for k, _ in found]
    assert len(keys) == len(set(keys)), keys
    reached = [widget for _key, widget in found]
    assert form.password in reached and form.repeat in reached
    assert all(button in reached for button in form.buttons.buttons())
    alt(qtbot, next(k for k, w in found if w is form.repeat))
    qtbot.waitUntil(lambda: QApplication.focusWidget() is form.repeat)
    form.reject()


# -- 4: demoted or disabled meanwhile ------------------------------------------------------------


@pytest.fixture
def two_admins(sqlite_db_url: str) -> Iterator[tuple[Context, Context]]:
    """Boss's desktop and Second's, over one SQLite file, with Ana (support)."""
    mine = Context(Paths.from_environment(), sqlite_db_url, is_default_database=False)
    theirs = Context(Paths.from_environment(), sqlite_db_url, is_default_database=False)
    operator = command_line_operator()
    accounts.add_staff(mine.engine, operator, "boss@n.example", PASSWORD, "admin", "Boss")
    accounts.add_staff(mine.engine, operator, "second@n.example", PASSWORD, "admin", "Second")
    accounts.add_staff(mine.engine, operator, "ana@n.example", PASSWORD, "support", "Ana")
    yield mine, theirs
    mine.dispose()
    theirs.dispose()


def open_as_boss(qtbot, mine: Context) -> StaffDialog:  # type: ignore[no-untyped-def]
    boss = Authenticator(mine.engine).sign_in("boss@n.example", PASSWORD).identity
    dialog = StaffDialog(mine, boss)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: len(dialog.accounts) == 3)
    dialog.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is dialog)
    return dialog


def second_does(theirs: Context, change: str) -> None:
    second = Authenticator(theirs.engine).sign_in("second@n.example", PASSWORD).identity
    if change == "demote":
        accounts.change_role(theirs.engine, second, "boss@n.example", "support")
    else:
        accounts.disable_staff(theirs.engine, second, "boss@n.example")


def assert_nothing_offered(dialog: StaffDialog) -> None:
    buttons = (
        dialog.add_button,
        dialog.disable_button,
        dialog.enable_button,
        dialog.unlock_button,
        dialog.reset_button,
        dialog.role_button,
    )
    assert [b.text() for b in buttons if b.isEnabled()] == []


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ("demote", "Your account is no longer an admin."),
        ("disable", "Your account is disabled."),
    ],
)
def test_an_admin_changed_meanwhile_is_told_once(qtbot, two_admins, change: str, said: str) -> None:  # type: ignore[no-untyped-def]
    mine, theirs = two_admins
    dialog = open_as_boss(qtbot, mine)
    select_row(qtbot, dialog, "ana@n.example")
    second_does(theirs, change)
    before = staff_actions(mine)
    alt(qtbot, "d")  # disable Ana
    qtbot.waitUntil(lambda: dialog.message.text() == said)
    qtbot.waitUntil(lambda: not dialog._busy)
    assert labels_saying(said[:-1]) == ["StaffDialog/staffMessage"]
    assert staff_actions(mine) == before
    ana = next(a for a in dialog.accounts if a.email == "ana@n.example")
    assert not ana.disabled
    assert_nothing_offered(dialog)


def test_an_add_form_of_an_admin_demoted_meanwhile_closes_and_says_why(qtbot, two_admins) -> None:  # type: ignore[no-untyped-def]
    mine, theirs = two_admins
    dialog = open_as_boss(qtbot, mine)
    dialog.add_button.setFocus()
    alt(qtbot, "a")
    qtbot.waitUntil(lambda: bool(dialog.findChildren(AccountForm)))
    form = dialog.findChildren(AccountForm)[0]
    qtbot.waitUntil(lambda: QApplication.activeWindow() is form)
    type_into(qtbot, form.email, "nils@n.example")
    type_into(qtbot, form.password, NEW_PASSWORD)
    type_into(qtbot, form.repeat, NEW_PASSWORD)
    second_does(theirs, "demote")
    before = staff_actions(mine)
    with qtbot.waitSignal(form.finished):
        qtbot.keyClick(form.repeat, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: dialog.message.text() == "Your account is no longer an admin.")
    assert labels_saying("no longer an admin") == ["StaffDialog/staffMessage"]
    assert staff_actions(mine) == before
    assert "nils@n.example" not in [a.email for a in dialog.accounts]
    assert_nothing_offered(dialog)
    other = make_engine(mine.database_url)
    assert "nils@n.example" not in [
        a.email for a in accounts.list_staff(other, command_line_operator())
    ]
    other.dispose()


# -- 5: a second factor for an account that has none --------------------------------------------


def test_a_second_factor_is_added_to_an_existing_account(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    dialog = open_staff(qtbot, context)
    select_row(qtbot, dialog, "ana@n.example")

    def require(box: QWidget) -> None:
        assert box.text() == "Require a code from an authenticator app for ana@n.example?"  # type: ignore[attr-defined]
        qtbot.keyClick(box, Qt.Key.Key_Return)

    modals = Modals(qtbot, (QMessageBox, require))
    alt(qtbot, "f")  # Second factor…
    qtbot.waitUntil(lambda: modals.answered == ["QMessageBox"])
    qtbot.waitUntil(lambda: "now needs a code" in dialog.message.text())
    assert dialog.message.text() == "ana@n.example now needs a code from an authenticator app."
    shown = dialog.findChild(QMessageBox, "totpSecret")
    assert shown is not None and shown.isVisible()
    found = re.search(r"Secret: ([A-Z2-7]+)", shown.informativeText())
    assert found is not None
    assert dialog.table.item(dialog.accounts.index(dialog.selected()), 4).text() == "TOTP"

    owner = make_engine(context.database_url)
    with pytest.raises(SecondFactorRequired):
        Authenticator(owner).sign_in("ana@n.example", PASSWORD)
    code = code_at(found.group(1), time.time())
    assert Authenticator(owner).sign_in("ana@n.example", PASSWORD, code).identity.email == (
        "ana@n.example"
    )
    owner.dispose()
