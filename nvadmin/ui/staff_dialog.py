"""Account ▸ Staff…: admins add, disable, enable, unlock staff, reset their passwords, change
their roles and turn their second factor on or off.

The dialog calls the same service functions as ``nvadmin staff``; they check the admin role
themselves, so this dialog being reachable is not what protects them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from nvadmin.auth import accounts
from nvadmin.auth.accounts import ChangedSinceSignIn, NewAccount, StaffAccount
from nvadmin.auth.passwords import MIN_PASSWORD_LENGTH, check_policy, typed_password
from nvadmin.context import Context
from nvadmin.errors import UserError
from nvadmin.identity import Role, StaffIdentity
from nvadmin.ui.form_dialog import FormDialog, error_label
from nvadmin.ui.palette import error_brush, set_tone
from nvadmin.workers.jobs import Job, JobControl

log = logging.getLogger(__name__)

COLUMNS = ("E-mail", "Name", "Role", "Status", "2FA", "Last sign-in")
MAX_COLUMN_WIDTH = 300  # pixels; wider text is elided


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "never"


def _sentence(message: str) -> str:
    """A service's refusal ("x is the only active admin: ...") as the sentence shown."""
    first = message.split(" ", 1)[0]
    text = message if "@" in first else message[:1].upper() + message[1:]  # e-mails as typed
    return text if text.endswith((".", "!", "?")) else text + "."


class AccountForm(FormDialog):
    """New account (e-mail, name, role, password, TOTP) or new password for one account.

    OK checks what it can at once and then emits ``submitted``; the form stays open, with
    everything typed, until the account is really saved (:meth:`saved`) or the error is shown
    next to its field (:meth:`show_error`).
    """

    submitted = Signal()

    def __init__(self, parent: QWidget, *, email: str | None = None) -> None:
        super().__init__(
            parent,
            title=f"New password for {email}" if email else "Add staff account",
            name="accountForm",
            error_name="accountError",
        )
        self.reset_only = email is not None
        form = QFormLayout()
        self.email = QLineEdit(self)
        self.email.setObjectName("accountEmail")
        self.name = QLineEdit(self)
        self.role = QComboBox(self)
        for role in Role:
            self.role.addItem(role.value.capitalize(), role.value)
        self.password = QLineEdit(self)
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText(f"at least {MIN_PASSWORD_LENGTH} characters")
        self.repeat = QLineEdit(self)
        self.repeat.setEchoMode(QLineEdit.EchoMode.Password)
        self.totp = QCheckBox("Re&quire a code from an authenticator app", self)
        for field, name in (
            (self.email, "E-mail"),
            (self.name, "Name"),
            (self.role, "Role"),
            (self.password, f"Password, at least {MIN_PASSWORD_LENGTH} characters"),
            (self.repeat, "Repeat the password"),
        ):
            field.setAccessibleName(name)
        self.email_error = error_label(self, "emailError")
        self.name_error = error_label(self, "nameError")
        self.password_error = error_label(self, "passwordError")
        # Each label's Alt+letter takes the keyboard to its field (the label's buddy).
        if not self.reset_only:
            form.addRow("&E-mail:", self.email)
            form.addRow("", self.email_error)
            form.addRow("&Name:", self.name)
            form.addRow("", self.name_error)
            form.addRow("&Role:", self.role)
        form.addRow("&Password:", self.password)
        form.addRow("", self.password_error)
        form.addRow("Repea&t:", self.repeat)
        if not self.reset_only:
            form.addRow("", self.totp)
        else:
            # Not laid out: hidden, or they would sit in a corner and take Tab focus.
            for widget in (self.email, self.name, self.role, self.totp):
                widget.hide()
        for edit in (self.email, self.name, self.password, self.repeat):
            edit.textEdited.connect(lambda _text: self.clear_error())
        self.add(form)
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setText("&Set password" if self.reset_only else "&Add account")
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setText("&Cancel")

    def clear_error(self) -> None:
        super().clear_error()
        for label in (self.email_error, self.name_error, self.password_error):
            label.hide()
        for edit in (self.email, self.name, self.password):
            edit.setAccessibleDescription("")

    def show_error(self, message: str, field: QWidget | None = None) -> None:
        """Show ``message`` next to the field it is about; everything typed stays."""
        self.clear_error()
        self.buttons.setEnabled(True)
        text = _sentence(message)
        lowered = message.lower()
        if not self.reset_only and ("e-mail" in lowered or "staff account for" in lowered):
            label, edit = self.email_error, self.email
        elif not self.reset_only and lowered.startswith("the name"):
            label, edit = self.name_error, self.name
        elif "password" in lowered:
            label, edit = self.password_error, self.password
        else:
            super().show_error(text, field)
            return
        label.setText(text)
        label.show()
        edit.setAccessibleDescription(text)  # read out with the field, not only shown red
        edit.setFocus()
        edit.selectAll()

    def typed_password(self) -> str:
        return typed_password(self.password.text())

    def saved(self) -> None:
        self.accept()

    def submit(self) -> None:
        try:
            if not self.reset_only:
                accounts.normalise_email(self.email.text())
                accounts.check_name(self.name.text())
            check_policy(self.typed_password())
        except UserError as error:
            self.show_error(str(error))
            return
        if self.typed_password() != typed_password(self.repeat.text()):
            self.show_error("The two passwords differ.")
            self.repeat.setFocus()
            return
        self.clear_error()
        self.buttons.setEnabled(False)  # until the account is saved or refused
        self.submitted.emit()


class StaffDialog(QDialog):
    def __init__(self, context: Context, identity: StaffIdentity, parent: QWidget | None = None):
        super().__init__(parent)
        self.context = context
        self.identity = identity
        self.accounts: list[StaffAccount] = []
        self._busy = False
        self._form: AccountForm | None = None  # the open form waiting on the running call
        # Set when the services say this admin was demoted or disabled since signing in:
        # nothing done here can change staff any more.
        self._no_longer_admin = False
        self.setObjectName("staffDialog")
        self.setWindowTitle("Staff accounts")
        self.resize(860, 420)

        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setObjectName("staffTable")
        self.table.setAccessibleName("Staff accounts")
        self.table.setAccessibleDescription(
            "One row per account: e-mail, name, role, status, 2FA and last sign-in. "
            "Select a row, then use the buttons below it."
        )
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setTabKeyNavigation(False)  # Tab goes on to the buttons; arrows move rows
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        # A long name or e-mail is cut short with "…" (whole in its tooltip), so the role and
        # status of every account stay in view without scrolling sideways.
        self.table.horizontalHeader().setMaximumSectionSize(MAX_COLUMN_WIDTH)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.itemSelectionChanged.connect(self._show_role)

        self.add_button = QPushButton("&Add…", self)
        self.disable_button = QPushButton("&Disable", self)
        self.enable_button = QPushButton("&Enable", self)
        self.unlock_button = QPushButton("&Unlock", self)
        self.reset_button = QPushButton("&Reset password…", self)
        self.totp_button = QPushButton("Second &factor…", self)
        self.totp_button.setAccessibleDescription(
            "Require a code from an authenticator app for the selected account, give it a new "
            "secret, or stop requiring one."
        )
        self.role_box = QComboBox(self)
        self.role_box.setAccessibleName("Role of the selected account")
        self.role_box.setAccessibleDescription(
            "Shows the selected account's role; choose another, then Change role."
        )
        for role in Role:
            self.role_box.addItem(role.value.capitalize(), role.value)
        self.role_button = QPushButton("C&hange role", self)
        self.add_button.clicked.connect(self.add_account)
        self.disable_button.clicked.connect(lambda: self._act("disable"))
        self.enable_button.clicked.connect(lambda: self._act("enable"))
        self.unlock_button.clicked.connect(lambda: self._act("unlock"))
        self.reset_button.clicked.connect(self.reset_selected_password)
        self.totp_button.clicked.connect(self.change_second_factor)
        self.role_button.clicked.connect(lambda: self._act("role"))
        buttons = QHBoxLayout()
        for widget in (
            self.add_button,
            self.disable_button,
            self.enable_button,
            self.unlock_button,
            self.reset_button,
            self.totp_button,
        ):
            buttons.addWidget(widget)
        buttons.addStretch(1)
        buttons.addWidget(self.role_box)
        buttons.addWidget(self.role_button)
        self.message = QLabel(self)
        self.message.setObjectName("staffMessage")
        self.message.setWordWrap(True)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        layout.addWidget(self.message)
        layout.addWidget(close)
        self._update_buttons()
        self.refresh()

    # -- background calls --------------------------------------------------------------------

    def _run(
        self,
        work: Callable[[], object],
        done_text: str | None,
        form: AccountForm | None = None,
    ) -> None:
        """Run one service call then reload the list. A refusal is said once, where the admin
        is looking: in ``form`` (kept open with what was typed) when the call came from one,
        else under the table. A refusal because this admin was demoted or disabled meanwhile
        closes the form (nothing in it can succeed) and is said under the table."""
        engine, identity = self.context.engine, self.identity

        def job_work(control: JobControl) -> tuple[object, list[StaffAccount] | None]:
            try:
                result: object = work()
            except ChangedSinceSignIn as refusal:
                log.info("staff change refused: %s", refusal)
                result = refusal
            try:
                return result, accounts.list_staff(engine, identity)
            except UserError:
                if isinstance(result, ChangedSinceSignIn):
                    return result, None  # the refusal is what to say; the list can wait
                raise

        self._busy = True
        self._done_text = done_text
        self._form = form
        if form is not None:
            form.finished.connect(lambda _code: self._forget_form(form))
        self.message.clear()
        self._update_buttons()
        job = Job(job_work, name="staff")
        job.succeeded.connect(self._on_done)
        job.failed.connect(self._on_failed)
        job.start()

    def _forget_form(self, form: AccountForm) -> None:
        if self._form is form:
            self._form = None

    def refresh(self) -> None:
        self._run(lambda: None, None)

    def _on_done(self, outcome: tuple[object, list[StaffAccount] | None]) -> None:
        result, listed = outcome
        self._busy = False
        form, self._form = self._form, None
        if listed is not None:
            selected = self.selected()
            self._fill(listed)
            if selected is not None:
                self.select(selected.email)
            self._show_role()
        if isinstance(result, ChangedSinceSignIn):
            self._no_longer_admin = True
            if form is not None:
                form.reject()
            self._say(str(result), error=True)
        else:
            if form is not None:
                form.saved()
            if self._done_text:
                self._say(self._done_text)
            if isinstance(result, NewAccount) and result.totp_secret:
                self._show_totp(result)
        self._update_buttons()

    def _on_failed(self, message: str) -> None:
        self._busy = False
        form, self._form = self._form, None
        if form is not None:
            form.show_error(message)
        else:
            self._say(message, error=True)
        self._update_buttons()

    def _say(self, text: str, *, error: bool = False) -> None:
        set_tone(self.message, "error" if error else "success")
        self.message.setText(_sentence(text) if error else text)

    # -- table -------------------------------------------------------------------------------

    def _fill(self, listed: list[StaffAccount]) -> None:
        self.accounts = listed
        self.table.setRowCount(len(listed))
        for row, account in enumerate(listed):
            status = account.status
            if status == "locked":
                status = f"locked until {_when(account.locked_until)}"
            cells = (
                account.email,
                account.display_name,
                account.role.value,
                status,
                "TOTP" if account.has_totp else "—",
                _when(account.last_sign_in_at),
            )
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                if column == 3 and account.status != "active":
                    item.setForeground(error_brush())
                self.table.setItem(row, column, item)

    def selected(self) -> StaffAccount | None:
        rows = self.table.selectionModel().selectedRows()
        return self.accounts[rows[0].row()] if rows else None

    def select(self, email: str) -> None:
        for row, account in enumerate(self.accounts):
            if account.email == email:
                self.table.selectRow(row)

    def _show_role(self) -> None:
        """The role box starts from the selected account's role."""
        account = self.selected()
        if account is not None:
            self.role_box.setCurrentIndex(self.role_box.findData(account.role.value))

    def _update_buttons(self) -> None:
        account = self.selected()
        idle = not self._busy and not self._no_longer_admin
        self.add_button.setEnabled(idle)
        self.disable_button.setEnabled(idle and account is not None and not account.disabled)
        self.enable_button.setEnabled(idle and account is not None and account.disabled)
        self.unlock_button.setEnabled(
            idle and account is not None and (account.failed_attempts > 0 or account.is_locked())
        )
        self.reset_button.setEnabled(idle and account is not None)
        self.totp_button.setEnabled(idle and account is not None)
        self.role_button.setEnabled(idle and account is not None)
        # Enabled with an account to show the role of, even while a change runs (it keeps
        # the keyboard where the admin left it).
        self.role_box.setEnabled(account is not None and not self._no_longer_admin)

    # -- actions -----------------------------------------------------------------------------

    def _act(self, what: str) -> None:
        account = self.selected()
        if account is None:
            return
        engine, me, email = self.context.engine, self.identity, account.email
        # Asked only when it can happen: the last active admin is refused by the service.
        others = any(
            a.role is Role.ADMIN and not a.disabled and a.email != me.email for a in self.accounts
        )
        if what == "disable":
            if (
                email == me.email
                and others
                and QMessageBox.question(
                    self, "Disable your own account", "Disable your own account?"
                )
                != QMessageBox.StandardButton.Yes
            ):
                return
            self._run(lambda: accounts.disable_staff(engine, me, email), f"Disabled {email}.")
        elif what == "enable":
            self._run(lambda: accounts.enable_staff(engine, me, email), f"Enabled {email}.")
        elif what == "unlock":
            self._run(lambda: accounts.unlock_staff(engine, me, email), f"Unlocked {email}.")
        elif what == "role":
            role = str(self.role_box.currentData())
            if (
                email == me.email
                and others
                and role != Role.ADMIN.value
                and QMessageBox.question(
                    self,
                    "Change your own role",
                    f"Make yourself {role}? You will no longer be able to manage staff.",
                )
                != QMessageBox.StandardButton.Yes
            ):
                return
            self._run(
                lambda: accounts.change_role(engine, me, email, role), f"{email} is now {role}."
            )

    def add_account(self) -> AccountForm:
        form = AccountForm(self)
        form.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        form.submitted.connect(lambda: self._add(form))
        form.open()
        return form

    def _add(self, form: AccountForm) -> None:
        engine, me = self.context.engine, self.identity
        email, name = form.email.text(), form.name.text()
        role, password = str(form.role.currentData()), form.typed_password()
        totp = form.totp.isChecked()
        self._run(
            lambda: accounts.add_staff(engine, me, email, password, role, name, with_totp=totp),
            f"Added {email.strip().lower()}.",
            form,
        )

    def reset_selected_password(self) -> AccountForm | None:
        account = self.selected()
        if account is None:
            return None
        form = AccountForm(self, email=account.email)
        form.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        email = account.email
        form.submitted.connect(lambda: self._reset(form, email))
        form.open()
        return form

    def _reset(self, form: AccountForm, email: str) -> None:
        engine, me, password = self.context.engine, self.identity, form.typed_password()
        self._run(
            lambda: accounts.reset_password(engine, me, email, password),
            f"New password set for {email}; their remembered sign-ins were ended.",
            form,
        )

    def change_second_factor(self) -> None:
        """Turn the selected account's second factor on (its secret shown once, as for a new
        account), give it a new secret, or turn it off: asked first, as each takes effect at
        that account's next sign-in."""
        account = self.selected()
        if account is None:
            return
        engine, me, email = self.context.engine, self.identity, account.email
        box = QMessageBox(self)
        box.setObjectName("secondFactorQuestion")
        box.setWindowTitle("Second factor")
        box.setIcon(QMessageBox.Icon.Question)
        if account.has_totp:
            box.setText(f"{email} signs in with a code from an authenticator app.")
            box.setInformativeText(
                "A new secret stops the one in their app from working; without a second "
                "factor they sign in with their password alone."
            )
            renew = box.addButton("&New secret", QMessageBox.ButtonRole.AcceptRole)
            turn_off = box.addButton("&Turn off", QMessageBox.ButtonRole.DestructiveRole)
        else:
            box.setText(f"Require a code from an authenticator app for {email}?")
            box.setInformativeText(
                "Its secret is shown next, once: give it to them before they next sign in."
            )
            renew = box.addButton("&Require a code", QMessageBox.ButtonRole.AcceptRole)
            turn_off = None
        box.addButton("&Cancel", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(renew)
        box.exec()
        chosen = box.clickedButton()
        if chosen is renew:
            done = (
                f"New authenticator secret for {email}."
                if account.has_totp
                else f"{email} now needs a code from an authenticator app."
            )
            self._run(lambda: accounts.set_totp(engine, me, email, True), done)
        elif turn_off is not None and chosen is turn_off:
            self._run(
                lambda: accounts.set_totp(engine, me, email, False),
                f"{email} no longer needs a code from an authenticator app.",
            )

    def _show_totp(self, new: NewAccount) -> None:
        box = QMessageBox(self)
        box.setObjectName("totpSecret")
        box.setWindowTitle("Authenticator app set-up")
        box.setText(
            f"Give {new.account.email} this secret for their authenticator app now. "
            "It is not shown again."
        )
        box.setInformativeText(f"Secret: {new.totp_secret}\n\n{new.totp_uri}")
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.open()
