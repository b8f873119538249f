"""The sign-in dialog: e-mail, password, a code when the account has one, and first-run setup.

Every database and keyring call runs in a background job; the dialog stays responsive and
shows what it is waiting for. A failed sign-in always shows the same sentence (see
:mod:`nvadmin.auth.signin`); the reason is in the audit log, not on screen.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QPalette, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from nvadmin.auth.credentials import CredentialStore, KeyringStatus, KeyringUnavailable
from nvadmin.auth.passwords import typed_password
from nvadmin.auth.signin import SecondFactorRequired, SignInResult
from nvadmin.context import Context
from nvadmin.identity import StaffIdentity
from nvadmin.ui.palette import set_tone
from nvadmin.ui.placement import grow_to_fit
from nvadmin.ui.sign_in_pages import DemoAccounts, FirstAdminPage
from nvadmin.workers.jobs import Job, JobControl

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DatabaseFacts:
    """What the dialog needs to know about the database before anyone signs in."""

    staff_count: int
    demo_accounts: list[tuple[str, str, str]]
    privilege_warning: str | None
    # A chain this computer verified no longer extends what it remembers (audit.witness).
    chain_warning: str | None = None


def load_facts(context: Context) -> DatabaseFacts:
    from nvadmin.audit.witness import sign_in_warning
    from nvadmin.auth.accounts import staff_count
    from nvadmin.auth.db_roles import connection_privileges
    from nvadmin.demo.accounts import demo_accounts

    engine = context.engine
    if context.before_sign_in_is_gate:
        # A staff desktop on PostgreSQL: the server holds the accounts; nothing to list.
        return DatabaseFacts(staff_count=1, demo_accounts=[], privilege_warning=None)
    privileges = connection_privileges(engine)
    return DatabaseFacts(
        staff_count=staff_count(engine),
        demo_accounts=demo_accounts(engine),
        privilege_warning=privileges.warning if privileges else None,
        chain_warning=sign_in_warning(engine, context.paths.data_dir, context.database_url),
    )


class _NeedsCode:
    """Returned (not raised) by the sign-in job when the password was right and a code is due."""


class SignInDialog(QDialog):
    # exec() result when the user picked another database: see ``switch_to``.
    SWITCH = 2

    def __init__(
        self,
        context: Context,
        store: CredentialStore,
        parent: QWidget | None = None,
        *,
        keyring_status: KeyringStatus | None = None,
        try_remembered: bool = True,
    ) -> None:
        super().__init__(parent)
        self.context = context
        self.store = store
        self.identity: StaffIdentity | None = None
        self.remember_token: str | None = None
        self.facts: DatabaseFacts | None = None
        self.switch_to: str | None = None
        self.keyring_status = keyring_status
        self._try_remembered = try_remembered
        self._busy = False
        self.setWindowTitle("Sign in to nvadmin")
        self.setObjectName("signInDialog")
        self.setMinimumWidth(460)
        self._build()
        self._start_loading()
        if keyring_status is None:
            from nvadmin.ui.keyring_status import KeyringProbe

            self._probe = KeyringProbe(store, self)
            self._probe.known.connect(self._on_keyring)
            self._probe.start()
        else:
            self._on_keyring(keyring_status)

    # -- building ----------------------------------------------------------------------------

    def _build(self) -> None:
        from nvadmin.ui.keyring_status import KeyringNotice

        title = QLabel("<b>nvadmin</b> — Activity Log administration", self)
        self.database_label = QLabel(f"Database: {self.context.display_url}", self)
        self.database_label.setObjectName("databaseLabel")
        self.database_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.database_label.setWordWrap(True)
        self.database_label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        from nvadmin.ui.connections import choices

        self.connection_box = QComboBox(self)
        self.connection_box.setObjectName("connectionBox")
        self.connection_box.addItem("Switch to another database…", None)
        for label, choice in choices(self.context):
            self.connection_box.addItem(label, choice)
        self.connection_box.setToolTip(
            "Saved connections are added with `nvadmin profile add NAME URL`"
        )
        self.connection_box.setVisible(self.connection_box.count() > 1)
        # The list may be wider than the dialog: long URLs stay readable when it opens.
        view = self.connection_box.view()
        view.setMinimumWidth(view.sizeHintForColumn(0) + 24)
        self.connection_box.activated.connect(self._on_connection_chosen)
        self.privilege_label = QLabel(self)
        self.privilege_label.setObjectName("privilegeWarning")
        self.privilege_label.setWordWrap(True)
        set_tone(self.privilege_label, "error-box")
        self.privilege_label.hide()
        self.keyring_notice = KeyringNotice(self)

        self.pages = QStackedWidget(self)
        self.pages.addWidget(self._build_sign_in_page())
        self.first_admin = FirstAdminPage(self)
        self.first_admin.create_requested.connect(self.create_first_admin)
        self.pages.addWidget(self.first_admin)
        self._show_page(0)

        self.message = QLabel(self)
        self.message.setObjectName("signInMessage")
        self.message.setWordWrap(True)
        self.message.hide()
        self.status = QLabel("Connecting to the database…", self)
        self.status.setForegroundRole(QPalette.ColorRole.PlaceholderText)

        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addWidget(self.database_label)
        layout.addWidget(self.connection_box)
        layout.addWidget(self.privilege_label)
        layout.addWidget(self.pages)
        layout.addWidget(self.message)
        layout.addWidget(self.keyring_notice)
        layout.addWidget(self.status)

    def _on_connection_chosen(self, index: int) -> None:
        choice = self.connection_box.itemData(index)
        if choice is None or self._busy:
            self.connection_box.setCurrentIndex(0)
            return
        self.switch_to = str(choice)
        self.done(self.SWITCH)

    def _build_sign_in_page(self) -> QWidget:
        page = QWidget(self)
        form = QFormLayout()
        self.email_edit = QLineEdit(page)
        self.email_edit.setObjectName("email")
        self.email_edit.setPlaceholderText("you@example.com")
        self.password_edit = QLineEdit(page)
        self.password_edit.setObjectName("password")
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.code_edit = QLineEdit(page)
        self.code_edit.setObjectName("code")
        self.code_edit.setPlaceholderText("6-digit code from your authenticator app")
        self.code_edit.setMaxLength(8)
        self.code_label = QLabel("Code:", page)
        form.addRow("E-mail:", self.email_edit)
        form.addRow("Password:", self.password_edit)
        form.addRow(self.code_label, self.code_edit)
        self.code_label.hide()
        self.code_edit.hide()
        self.remember_box = QCheckBox("Keep me signed in on this computer for 12 hours", page)
        self.remember_box.setEnabled(False)
        self.remember_box.setToolTip("Checking the system keyring…")
        self.sign_in_button = QPushButton("Sign in", page)
        self.sign_in_button.setObjectName("signInButton")
        self.sign_in_button.setDefault(True)
        self.sign_in_button.setAutoDefault(True)
        self.sign_in_button.setEnabled(False)
        self.sign_in_button.clicked.connect(self.submit)
        cancel = QPushButton("Quit", page)
        cancel.setAutoDefault(False)
        cancel.clicked.connect(self.reject)
        QWidget.setTabOrder(cancel, self.sign_in_button)  # Tab reads left to right
        buttons = QHBoxLayout()
        buttons.addWidget(self.remember_box, 1)
        buttons.addWidget(cancel)
        buttons.addWidget(self.sign_in_button)

        self.demo_box = DemoAccounts(page)
        self.demo_box.chosen.connect(self._use_demo_account)

        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 6, 0, 0)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.demo_box)
        return page

    def _show_page(self, index: int) -> None:
        # A stack is as tall as its tallest page; hidden pages are told not to count.
        for i in range(self.pages.count()):
            policy = QSizePolicy.Policy.Preferred if i == index else QSizePolicy.Policy.Ignored
            page = self.pages.widget(i)
            if page is not None:
                page.setSizePolicy(policy, policy)
        self.pages.setCurrentIndex(index)
        self.adjustSize()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self.pages.currentIndex() == 0:
            self.email_edit.setFocus(Qt.FocusReason.OtherFocusReason)

    def event(self, event: QEvent) -> bool:
        handled = super().event(event)
        if event.type() == QEvent.Type.LayoutRequest:
            grow_to_fit(self)
        return handled

    # -- loading -----------------------------------------------------------------------------

    def _start_loading(self) -> None:
        context = self.context
        # Jobs are not parented to the dialog: they keep themselves alive until finished, and
        # a dialog closed meanwhile simply no longer receives their result.
        job = Job(lambda control: load_facts(context), name="sign-in facts")
        job.succeeded.connect(self._on_facts)
        job.failed.connect(self._on_load_failed)
        job.start()

    def _on_facts(self, facts: DatabaseFacts) -> None:
        self.facts = facts
        self.status.setText("")
        self.status.hide()
        warnings = [w for w in (facts.privilege_warning, facts.chain_warning) if w]
        if warnings:
            self.privilege_label.setText("\n".join("⚠ " + w for w in warnings))
            self.privilege_label.show()
            self.adjustSize()
        if facts.staff_count == 0:
            self._show_page(1)
            self.sign_in_button.setDefault(False)
            self.first_admin.create_button.setDefault(True)
            self.first_admin.email.setFocus()
            return
        self.sign_in_button.setEnabled(True)
        if facts.demo_accounts:
            self.demo_box.show_accounts(facts.demo_accounts)
            self.adjustSize()
        self._maybe_use_remembered()

    def _on_load_failed(self, message: str) -> None:
        self.status.hide()
        self.show_error(f"Cannot read the database: {message}")

    def _use_demo_account(self, email: str, password: str) -> None:
        self.email_edit.setText(email)
        self.password_edit.setText(password)
        self.sign_in_button.setFocus()

    # -- keyring and remembered sign-in ------------------------------------------------------

    def _on_keyring(self, status: KeyringStatus) -> None:
        self.keyring_status = status
        self.keyring_notice.show_status(status)
        self.adjustSize()  # the notice may have appeared: grow rather than squeeze the rest
        self.remember_box.setEnabled(status.available)
        self.remember_box.setToolTip(
            "The token is kept in the system keyring and can be revoked by signing out."
            if status.available
            else status.message
        )
        if not status.available:
            self.remember_box.setChecked(False)
        self._maybe_use_remembered()

    def _maybe_use_remembered(self) -> None:
        if not (self._try_remembered and self.facts and self.facts.staff_count):
            return
        if self.keyring_status is None or not self.keyring_status.available:
            return
        self._try_remembered = False
        store, context = self.store, self.context
        database = context.display_url

        def work(control: JobControl) -> tuple[StaffIdentity, str] | None:
            from nvadmin.auth.signin import Authenticator

            if context.engine.dialect.name == "postgresql":
                return None  # a staff login needs its password: the token only skips the code
            token = store.remember_token(database)
            if not token:
                return None
            identity = Authenticator(context.engine).sign_in_with_token(token)
            if identity is None:
                store.forget_remember_token(database)  # expired or revoked: stop trying it
                return None
            return identity, token

        self.status.setText("Looking for a remembered sign-in…")
        self.status.show()
        job = Job(work, name="remembered sign-in")
        job.succeeded.connect(self._on_remembered)
        job.failed.connect(self._on_remembered_failed)
        job.start()

    def _on_remembered(self, found: tuple[StaffIdentity, str] | None) -> None:
        self.status.hide()
        if found is not None and self.identity is None and not self._busy:
            self.identity, self.remember_token = found
            self.accept()

    def _on_remembered_failed(self, message: str) -> None:
        self.status.hide()
        log.info("remembered sign-in not used: %s", message)

    # -- signing in --------------------------------------------------------------------------

    def show_error(self, text: str) -> None:
        set_tone(self.message, "error-box")
        self.message.setText(text)
        self.message.show()
        self.adjustSize()

    def show_info(self, text: str) -> None:
        set_tone(self.message, "info")
        self.message.setText(text)
        self.message.show()
        self.adjustSize()

    def _set_busy(self, busy: bool, text: str = "") -> None:
        self._busy = busy
        for widget in (
            self.email_edit,
            self.password_edit,
            self.code_edit,
            self.sign_in_button,
            self.first_admin.create_button,
        ):
            widget.setEnabled(not busy)
        self.status.setText(text)
        self.status.setVisible(busy)

    def _certificate_sign_in(self) -> bool:
        """The saved connection names a client certificate: the server may ask no password."""
        from nvadmin.db.engine import parse_url

        return "sslcert" in parse_url(self.context.database_url).query

    def submit(self) -> None:
        if self._busy or self.facts is None:
            return
        email = self.email_edit.text().strip()
        password = typed_password(self.password_edit.text())
        if not email or not (password or self._certificate_sign_in()):
            self.show_error("Enter your e-mail and password.")
            (self.email_edit if not email else self.password_edit).setFocus()
            return
        code = self.code_edit.text().strip() if self.code_edit.isVisible() else None
        remember = self.remember_box.isChecked() and self.remember_box.isEnabled()
        context, store = self.context, self.store

        def work(control: JobControl) -> SignInResult | _NeedsCode:
            from nvadmin.auth.signin import Authenticator

            proof = None
            if context.engine.dialect.name == "postgresql":
                # A remembered sign-in on PostgreSQL stands in for the code, not the password.
                try:
                    proof = store.remember_token(context.display_url)
                except KeyringUnavailable:
                    proof = None
            try:
                return Authenticator(context.engine).sign_in(
                    email, password, code, remember=remember, proof=proof
                )
            except SecondFactorRequired:
                return _NeedsCode()

        self._set_busy(True, "Checking…")
        job = Job(work, name="sign in")
        job.succeeded.connect(self._on_signed_in)
        job.failed.connect(self._on_refused)
        job.start()

    def _on_signed_in(self, result: SignInResult | _NeedsCode) -> None:
        self._set_busy(False)
        if isinstance(result, _NeedsCode):
            self.code_label.show()
            self.code_edit.show()
            self.code_edit.clear()
            self.code_edit.setFocus()
            self.show_info("Enter the 6-digit code from your authenticator app.")
            return
        self.identity = result.identity
        self.remember_token = result.remember_token
        self.context.signed_in(result.engine, result.session_key)
        self.accept()

    def _on_refused(self, message: str) -> None:
        self._set_busy(False)
        self.password_edit.clear()
        self.code_edit.clear()
        self.show_error(message)
        self.password_edit.setFocus()

    # -- first run ---------------------------------------------------------------------------

    def create_first_admin(self) -> None:
        if self._busy:
            return
        page = self.first_admin
        password = typed_password(page.password.text())
        if password != typed_password(page.repeat.text()):
            self.show_error("The two passwords differ.")
            return
        email, name, context = page.email.text(), page.name.text(), self.context

        def work(control: JobControl) -> SignInResult:
            from nvadmin.auth.accounts import create_first_admin
            from nvadmin.auth.signin import Authenticator

            account = create_first_admin(context.engine, email, password, name)
            return Authenticator(context.engine).sign_in(account.account.email, password)

        self._set_busy(True, "Creating the administrator…")
        job = Job(work, name="first admin")
        job.succeeded.connect(self._on_signed_in)
        job.failed.connect(self._on_first_admin_failed)
        job.start()

    def _on_first_admin_failed(self, message: str) -> None:
        self._set_busy(False)
        self.show_error(message)
