"""The lock screen: shown over a cleared main window until the staff member's password is given.

HIPAA's automatic logoff (164.312(a)(2)(iii)): the window has already removed every row and
detail from the screen before this appears, so nothing is readable while it waits. The
password check counts towards lockout like any sign-in and is written to the audit log.

An offline case file (``nvadmin --case``) has no staff database to ask: its lock screen takes
the case file's passphrase instead (``check``), and its way out is closing the case file.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QCloseEvent, QKeyEvent
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from nvadmin.auth.passwords import typed_password
from nvadmin.context import Context
from nvadmin.errors import UserError
from nvadmin.identity import StaffIdentity
from nvadmin.ui.palette import set_tone
from nvadmin.ui.placement import grow_to_fit
from nvadmin.workers.jobs import Job, JobControl

# Only the password is asked for here (the e-mail is the session's, no code is needed).
UNLOCK_REFUSED = (
    "Not unlocked: the password is wrong, or the account has been locked or disabled since "
    "you signed in. Sign out and ask an admin if this keeps happening."
)


class LockScreen(QDialog):
    unlocked = Signal()
    sign_out_requested = Signal()

    def __init__(
        self,
        context: Context,
        identity: StaffIdentity,
        reason: str,
        parent: QWidget | None = None,
        *,
        check: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(parent)
        self.context = context
        self.identity = identity
        self.check = check
        self._busy = False
        self.setObjectName("lockScreen")
        self.setWindowTitle("nvadmin is locked")
        self.setModal(True)
        self.setMinimumWidth(480)
        # No close button: the only ways out are the password or signing out.
        self.setWindowFlag(Qt.WindowType.WindowCloseButtonHint, False)

        heading = QLabel("<h3>nvadmin is locked</h3>", self)
        self.reason_label = QLabel(reason, self)
        self.reason_label.setWordWrap(True)
        who = QLabel(
            "This case file is open offline. Enter its passphrase to continue."
            if check is not None
            else f"Signed in as <b>{identity.display_name}</b> &lt;{identity.email}&gt;. "
            "Enter your password to continue.",
            self,
        )
        who.setWordWrap(True)
        self.password_edit = QLineEdit(self)
        self.password_edit.setObjectName("lockPassword")
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.password_edit.setPlaceholderText("Passphrase" if check is not None else "Password")
        self.password_edit.setAccessibleName(self.password_edit.placeholderText())
        self.message = QLabel(self)
        self.message.setObjectName("lockMessage")
        self.message.setWordWrap(True)
        set_tone(self.message, "error-box")
        self.message.hide()
        self.unlock_button = QPushButton("Unlock", self)
        self.unlock_button.setObjectName("unlockButton")
        self.unlock_button.setDefault(True)
        self.unlock_button.clicked.connect(self.submit)
        self.sign_out_button = QPushButton(
            "Close case file" if check is not None else "Sign out", self
        )
        self.sign_out_button.setAutoDefault(False)
        self.sign_out_button.clicked.connect(self._sign_out)
        QWidget.setTabOrder(self.sign_out_button, self.unlock_button)  # left to right
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.sign_out_button)
        buttons.addWidget(self.unlock_button)
        layout = QVBoxLayout(self)
        layout.addWidget(heading)
        layout.addWidget(self.reason_label)
        layout.addWidget(who)
        layout.addWidget(self.password_edit)
        layout.addWidget(self.message)
        layout.addLayout(buttons)
        self.password_edit.setFocus()

    def event(self, event: QEvent) -> bool:
        handled = super().event(event)
        if event.type() == QEvent.Type.LayoutRequest:
            grow_to_fit(self)
        return handled

    def submit(self) -> None:
        if self._busy:
            return
        password = self.password_edit.text()
        if self.check is None:  # a staff password (a case file's passphrase is its own)
            password = typed_password(password)
        if not password:
            self.password_edit.setFocus()
            return
        email, context, check = self.identity.email, self.context, self.check

        def work(control: JobControl) -> None:
            if check is not None:
                check(password)
                return
            from nvadmin.auth.signin import Authenticator, SignInRefused

            try:
                result = Authenticator(context.engine).sign_in(
                    email, password, purpose="unlock", proof=context.session_key
                )
            except SignInRefused:
                # Sign-in's one answer names an e-mail and a code this screen never asked for.
                raise UserError(UNLOCK_REFUSED) from None
            if result.engine is not None:
                result.engine.dispose()  # the window's own connections rejoined nothing new

        self._busy = True
        self.unlock_button.setEnabled(False)
        job = Job(work, name="unlock")
        job.succeeded.connect(self._on_unlocked)
        job.failed.connect(self._on_refused)
        job.start()

    def _on_unlocked(self, _result: object) -> None:
        self._busy = False
        self.password_edit.clear()
        self.unlocked.emit()
        self.accept()

    def _on_refused(self, message: str) -> None:
        self._busy = False
        self.unlock_button.setEnabled(True)
        self.password_edit.clear()
        self.message.setText(message)
        self.message.show()
        self.adjustSize()
        self.password_edit.setFocus()

    def _sign_out(self) -> None:
        self.sign_out_requested.emit()
        self.done(QDialog.DialogCode.Rejected)

    # Escape and the window manager's close must not dismiss the lock.
    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            event.ignore()
            return
        super().keyPressEvent(event)

    def reject(self) -> None:
        pass

    def closeEvent(self, event: QCloseEvent) -> None:
        event.ignore()
