"""The Staff dialog: admins manage accounts; for anyone else the services refuse. On
PostgreSQL the admin works through their own staff login (the server checks it too)."""

from __future__ import annotations

import pytest

from nvadmin.auth import accounts
from nvadmin.auth.accounts import command_line_operator
from nvadmin.auth.signin import Authenticator, SignInRefused
from nvadmin.context import Context
from nvadmin.identity import Role, StaffIdentity
from nvadmin.paths import Paths
from nvadmin.ui.staff_dialog import StaffDialog
from tests.factories import sign_in_as

PASSWORD = "quiet-river-stones"


@pytest.fixture
def context(db_url: str):  # type: ignore[no-untyped-def]
    ctx = Context(Paths.from_environment(), db_url, is_default_database=False)
    op = command_line_operator()
    accounts.add_staff(ctx.engine, op, "boss@n.example", PASSWORD, "admin", "Boss")
    accounts.add_staff(ctx.engine, op, "ana@n.example", PASSWORD, "support", "Ana")
    yield ctx
    ctx.dispose()


def admin(context: Context) -> StaffIdentity:
    boss = accounts.find_staff(context.engine, command_line_operator(), "boss@n.example")
    return sign_in_as(context, boss.identity(), PASSWORD)


def row_of(dialog: StaffDialog, email: str) -> int:
    return next(i for i, a in enumerate(dialog.accounts) if a.email == email)


def test_admin_disables_unlocks_and_enables(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    auth = Authenticator(context.engine)
    for _ in range(5):
        with pytest.raises(SignInRefused):
            auth.sign_in("ana@n.example", "wrong-password")
    dialog = StaffDialog(context, admin(context))
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: len(dialog.accounts) == 2)
    row = row_of(dialog, "ana@n.example")
    assert dialog.table.item(row, 3).text().startswith("locked until")
    dialog.table.selectRow(row)
    assert dialog.unlock_button.isEnabled()
    dialog.unlock_button.click()
    qtbot.waitUntil(lambda: dialog.table.item(row, 3).text() == "active")
    assert auth.sign_in("ana@n.example", PASSWORD)

    dialog.disable_button.click()
    qtbot.waitUntil(lambda: dialog.table.item(row, 3).text() == "disabled")
    assert "Disabled ana@n.example" in dialog.message.text()
    with pytest.raises(SignInRefused):
        auth.sign_in("ana@n.example", PASSWORD)
    dialog.enable_button.click()
    qtbot.waitUntil(lambda: dialog.table.item(row, 3).text() == "active")


def test_last_admin_protection_is_shown(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    dialog = StaffDialog(context, admin(context))
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: len(dialog.accounts) == 2)
    dialog.table.selectRow(row_of(dialog, "boss@n.example"))
    dialog.role_box.setCurrentIndex(dialog.role_box.findData("support"))
    dialog.role_button.click()
    qtbot.waitUntil(lambda: "only active admin" in dialog.message.text())


def test_non_admin_is_refused_by_the_service(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    # Even if the dialog were reachable, the service refuses a support identity.
    support = StaffIdentity(2, "ana@n.example", "Ana", Role.SUPPORT)
    dialog = StaffDialog(context, support)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: "not allowed" in dialog.message.text())
    assert dialog.table.rowCount() == 0
