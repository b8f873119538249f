"""The sign-in dialog on a real SQLite database, with the in-memory keyring."""

from __future__ import annotations

import keyring
import keyring.backends.fail
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog
from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from nvadmin.auth import accounts, totp
from nvadmin.auth.accounts import command_line_operator
from nvadmin.auth.credentials import CredentialStore
from nvadmin.auth.signin import SIGN_IN_REFUSED
from nvadmin.context import Context
from nvadmin.db.models import ActivityEvent, RememberToken
from nvadmin.demo.accounts import create_demo_accounts
from nvadmin.paths import Paths
from nvadmin.ui.sign_in import SignInDialog
from tests.conftest import MemoryKeyring

PASSWORD = "quiet-river-stones"


@pytest.fixture
def context(sqlite_db_url: str):  # type: ignore[no-untyped-def]
    ctx = Context(Paths.from_environment(), sqlite_db_url, is_default_database=False)
    yield ctx
    ctx.dispose()


def open_dialog(qtbot, context: Context) -> SignInDialog:  # type: ignore[no-untyped-def]
    dialog = SignInDialog(context, CredentialStore(timeout=2))
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.facts is not None and dialog.keyring_status is not None)
    return dialog


def actions(context: Context) -> list[tuple[str, str | None]]:
    with DbSession(context.engine) as session:
        return [
            (a, r)
            for a, r in session.execute(
                select(ActivityEvent.action, ActivityEvent.failure_reason)
                .where(ActivityEvent.action.like("staff.sign%"))
                .order_by(ActivityEvent.seq)
            )
        ]


def test_focus_in_email_and_enter_signs_in(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    accounts.add_staff(
        context.engine, command_line_operator(), "ana@n.example", PASSWORD, "support"
    )
    dialog = open_dialog(qtbot, context)
    assert dialog.email_edit.hasFocus()
    assert not dialog.demo_box.isVisible()  # not a demo database
    qtbot.keyClicks(dialog.email_edit, "ana@n.example")
    dialog.password_edit.setFocus()
    qtbot.keyClicks(dialog.password_edit, PASSWORD)
    with qtbot.waitSignal(dialog.accepted):
        qtbot.keyClick(dialog.password_edit, Qt.Key.Key_Return)
    assert dialog.result() == QDialog.DialogCode.Accepted
    assert dialog.identity and dialog.identity.email == "ana@n.example"
    assert actions(context) == [("staff.sign_in", None)]


def test_refusal_message_is_the_same_and_logged(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    accounts.add_staff(
        context.engine, command_line_operator(), "ana@n.example", PASSWORD, "support"
    )
    dialog = open_dialog(qtbot, context)
    shown = []
    for email, password in (("ana@n.example", "wrong-password!"), ("who@n.example", PASSWORD)):
        dialog.email_edit.setText(email)
        dialog.password_edit.setText(password)
        dialog.sign_in_button.click()
        qtbot.waitUntil(lambda: dialog.message.isVisible() and dialog.sign_in_button.isEnabled())
        shown.append(dialog.message.text())
        dialog.message.hide()
    assert shown == [SIGN_IN_REFUSED, SIGN_IN_REFUSED]
    assert dialog.password_edit.text() == ""  # cleared after a refusal
    assert actions(context) == [
        ("staff.sign_in_failed", "wrong_password"),
        ("staff.sign_in_failed", "unknown_account"),
    ]


def test_code_asked_after_right_password(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    new = accounts.add_staff(
        context.engine, command_line_operator(), "ana@n.example", PASSWORD, "admin", with_totp=True
    )
    dialog = open_dialog(qtbot, context)
    assert not dialog.code_edit.isVisible()
    dialog.email_edit.setText("ana@n.example")
    dialog.password_edit.setText(PASSWORD)
    dialog.sign_in_button.click()
    qtbot.waitUntil(dialog.code_edit.isVisible)
    assert dialog.code_edit.hasFocus()
    assert new.totp_secret
    import time

    dialog.code_edit.setText(totp.code_at(new.totp_secret, time.time()))
    with qtbot.waitSignal(dialog.accepted):
        dialog.sign_in_button.click()


def test_demo_accounts_shown_only_on_demo_database(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    created = create_demo_accounts(context.engine)
    dialog = open_dialog(qtbot, context)
    assert dialog.demo_box.isVisible()
    buttons = dialog.demo_box.findChildren(type(dialog.sign_in_button))
    assert len(buttons) == 3
    buttons[2].click()
    assert (dialog.email_edit.text(), dialog.password_edit.text()) == created[2][:2]
    with qtbot.waitSignal(dialog.accepted):
        dialog.sign_in_button.click()
    assert dialog.identity and dialog.identity.role == "admin"


def test_first_run_creates_the_first_admin(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    dialog = open_dialog(qtbot, context)
    assert dialog.pages.currentIndex() == 1
    dialog.first_admin.email.setText("boss@n.example")
    dialog.first_admin.name.setText("Boss")
    dialog.first_admin.password.setText("short")
    dialog.first_admin.repeat.setText("short")
    dialog.first_admin.create_button.click()
    qtbot.waitUntil(lambda: "at least 12" in dialog.message.text())
    dialog.first_admin.password.setText(PASSWORD)
    dialog.first_admin.repeat.setText(PASSWORD)
    with qtbot.waitSignal(dialog.accepted):
        dialog.first_admin.create_button.click()
    assert dialog.identity and dialog.identity.role == "admin"
    assert accounts.staff_count(context.engine) == 1


def test_no_keyring_disables_remember_me_and_says_so(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    keyring.set_keyring(keyring.backends.fail.Keyring())
    accounts.add_staff(
        context.engine, command_line_operator(), "ana@n.example", PASSWORD, "support"
    )
    dialog = open_dialog(qtbot, context)
    assert dialog.keyring_notice.isVisible()
    assert "No system keyring" in dialog.keyring_notice.text()
    assert not dialog.remember_box.isEnabled()
    dialog.email_edit.setText("ana@n.example")
    dialog.password_edit.setText(PASSWORD)
    with qtbot.waitSignal(dialog.accepted):
        dialog.sign_in_button.click()  # signing in still works
    assert dialog.remember_token is None


def test_remembered_sign_in_skips_the_password(
    qtbot, context: Context, memory_keyring: MemoryKeyring
) -> None:  # type: ignore[no-untyped-def]
    from nvadmin.ui.session import Session

    accounts.add_staff(
        context.engine, command_line_operator(), "ana@n.example", PASSWORD, "support"
    )
    dialog = open_dialog(qtbot, context)
    assert dialog.remember_box.isEnabled()
    dialog.email_edit.setText("ana@n.example")
    dialog.password_edit.setText(PASSWORD)
    dialog.remember_box.setChecked(True)
    with qtbot.waitSignal(dialog.accepted):
        dialog.sign_in_button.click()
    token = dialog.remember_token
    assert token
    session = Session(context)
    session._store_token(token)
    key = ("nvadmin", f"remember:{context.display_url}")
    qtbot.waitUntil(lambda: key in memory_keyring.secrets)
    assert memory_keyring.secrets[key] == token
    with DbSession(context.engine) as db:
        assert db.execute(select(RememberToken.token_hash)).scalar_one() != token.encode()

    again = SignInDialog(context, CredentialStore(timeout=2))
    qtbot.addWidget(again)
    with qtbot.waitSignal(again.accepted):
        again.show()
    assert again.identity and again.identity.email == "ana@n.example"


def test_switching_to_a_saved_connection_from_the_dialog(qtbot, context: Context, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Another database is one pick away: the dialog lists the saved connections, and the
    chosen one is prepared (migrated) and becomes the session's database."""
    from nvadmin.auth.profiles import ProfileStore
    from nvadmin.db.engine import sqlite_url
    from nvadmin.ui.session import Session

    other = sqlite_url(tmp_path / "clinic-b.sqlite3")
    ProfileStore(context.paths.config_dir / "connections.ini").save("clinic-b", other)
    dialog = open_dialog(qtbot, context)
    labels = [dialog.connection_box.itemText(i) for i in range(dialog.connection_box.count())]
    assert any(label.startswith("clinic-b — ") for label in labels)
    assert any("Embedded demo database" in label for label in labels)
    index = next(i for i, label in enumerate(labels) if label.startswith("clinic-b"))
    dialog.connection_box.activated.emit(index)
    assert dialog.result() == SignInDialog.SWITCH and dialog.switch_to == "clinic-b"

    session = Session(context, CredentialStore(timeout=2))
    assert session.switch_database("clinic-b")
    assert session.context.database_url == other and session.context.profile == "clinic-b"
    with session.context.engine.connect() as c:  # prepared: migrated to this version
        assert c.exec_driver_sql("SELECT count(*) FROM workspaces WHERE is_system").scalar_one()
    # The current database is not offered again.
    again = open_dialog(qtbot, session.context)
    offered = [again.connection_box.itemData(i) for i in range(again.connection_box.count())]
    assert "clinic-b" not in offered
    session.context.dispose()


def test_a_connection_that_fails_keeps_the_current_database(
    qtbot, context: Context, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from nvadmin.auth.profiles import ProfileStore
    from nvadmin.ui import startup
    from nvadmin.ui.session import Session

    told: list[str] = []
    monkeypatch.setattr(startup, "show_fatal", told.append)
    ProfileStore(context.paths.config_dir / "connections.ini").save(
        "nowhere", "postgresql+psycopg://nvadmin@127.0.0.1:1/audit"
    )
    keyring.set_password("nvadmin", "database:nowhere", "not-used")
    session = Session(context, CredentialStore(timeout=2))
    assert not session.switch_database("nowhere")
    assert session.context is context
    assert told and "127.0.0.1" in told[0] and "not-used" not in told[0]


def test_a_saved_connection_password_comes_from_the_keyring(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    from nvadmin.auth.profiles import ConnectionProfile
    from nvadmin.ui.connections import _url_with_password

    keyring.set_password("nvadmin", "database:audit", "s3cret-from-keyring")
    profile = ConnectionProfile("audit", "postgresql+psycopg://nv@db.example/audit")
    url = _url_with_password(profile, CredentialStore(timeout=2), None)
    assert url is not None and "s3cret-from-keyring" in url


@pytest.mark.pg
def test_staff_desktop_signs_in_as_its_own_login(qtbot, pg_url: str) -> None:  # type: ignore[no-untyped-def]
    """A PostgreSQL URL with no user: before sign-in only the gate login is used; after it,
    everything runs as the staff member's own login, and a TOTP code is asked by the server."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from nvadmin.db.engine import make_engine

    owner = make_engine(pg_url)
    new = accounts.add_staff(
        owner, command_line_operator(), "ana@n.example", PASSWORD, "support", with_totp=True
    )
    owner.dispose()
    assert new.totp_secret
    desktop = make_url(pg_url)._replace(username=None).render_as_string(hide_password=False)
    context = Context(Paths.from_environment(), desktop, is_default_database=False)
    try:
        dialog = open_dialog(qtbot, context)
        assert not dialog.demo_box.isVisible() and dialog.email_edit.hasFocus()
        with context.engine.connect() as connection:
            assert connection.execute(text("SELECT current_user")).scalar() == "nvadmin_gate"
        qtbot.keyClicks(dialog.email_edit, "ana@n.example")
        qtbot.keyClick(dialog.email_edit, Qt.Key.Key_Tab)
        qtbot.keyClicks(dialog.password_edit, PASSWORD)
        qtbot.keyClick(dialog.password_edit, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: dialog.code_edit.isVisible())
        code = totp.code_at(new.totp_secret, __import__("time").time())
        qtbot.keyClicks(dialog.code_edit, code)
        with qtbot.waitSignal(dialog.accepted):
            qtbot.keyClick(dialog.code_edit, Qt.Key.Key_Return)
        assert dialog.identity and dialog.identity.email == "ana@n.example"
        with context.engine.connect() as connection:
            assert connection.execute(text("SELECT current_user")).scalar() == "ana@n.example"
            assert connection.execute(text("SELECT count(*) FROM workspaces")).scalar()
    finally:
        context.dispose()
