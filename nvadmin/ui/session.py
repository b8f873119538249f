"""A staff session: sign-in, the main window, idle lock, lock now, sign out, and again.

The idle lock watches input for the whole application (an event filter on the
QApplication), not one widget, so typing in any dialog counts as activity. Signing out
revokes the remember-me token, disposes the engine's pooled connections and shows the
sign-in dialog again.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QDialog

from nvadmin.auth.credentials import CredentialStore, KeyringStatus, KeyringUnavailable
from nvadmin.auth.policy import SecurityPolicy
from nvadmin.context import Context
from nvadmin.identity import Permission, StaffIdentity
from nvadmin.workers.jobs import Job, JobControl

if TYPE_CHECKING:
    from nvadmin.ui.main_window import MainWindow

log = logging.getLogger(__name__)

_INPUT_EVENTS = frozenset(
    {
        QEvent.Type.KeyPress,
        QEvent.Type.MouseButtonPress,
        QEvent.Type.MouseButtonDblClick,
        QEvent.Type.MouseMove,
        QEvent.Type.Wheel,
        QEvent.Type.TouchBegin,
        QEvent.Type.TabletPress,
        QEvent.Type.ShortcutOverride,
    }
)


def load_window_code() -> None:
    """Import the main window and its features while the password is checked.

    The check is a background job, mostly Argon2 outside the interpreter, and the dialog is
    disabled meanwhile: loading the window's code then, instead of after the check, opens the
    window that much sooner. A module that fails to load is reported when the window opens.
    """
    try:
        from nvadmin.ui import features, main_window  # noqa: F401

        features.load_code()
    except ImportError:
        log.debug("could not load the window's code ahead of it", exc_info=True)


class IdleWatcher(QObject):
    """Emits ``idle`` after ``timeout_ms`` without keyboard, mouse or touch input anywhere."""

    idle = Signal()

    def __init__(self, timeout_ms: int, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(timeout_ms)
        self._timer.timeout.connect(self.idle.emit)
        self._installed = False

    @property
    def timeout_ms(self) -> int:
        return self._timer.interval()

    def start(self) -> None:
        app = QCoreApplication.instance()
        if app is not None and not self._installed:
            app.installEventFilter(self)
            self._installed = True
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
        app = QCoreApplication.instance()
        if app is not None and self._installed:
            app.removeEventFilter(self)
            self._installed = False

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in _INPUT_EVENTS and self._timer.isActive():
            self._timer.start()  # restart the countdown
        return False


class Session(QObject):
    """One signed-in staff member's time in the main window, and the way back to sign-in."""

    ended = Signal()  # the user closed the sign-in dialog: the application should quit
    signed_out = Signal()  # the window is gone and the database connections are closed

    def __init__(
        self,
        context: Context,
        store: CredentialStore | None = None,
        *,
        idle_timeout_ms: int | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.context = context
        self.store = store or CredentialStore()
        self.identity: StaffIdentity | None = None
        self.window: MainWindow | None = None
        self.lock_screen: QDialog | None = None
        self.keyring_status: KeyringStatus | None = None
        self._remember_token: str | None = None
        self._idle_override = idle_timeout_ms
        self.watcher: IdleWatcher | None = None
        self.staff_action: QAction | None = None

    # -- sign-in -----------------------------------------------------------------------------

    def sign_in(self) -> bool:
        """Show the sign-in dialog (blocking in its own event loop); True once signed in."""
        from nvadmin.ui.sign_in import SignInDialog

        while True:
            dialog = SignInDialog(self.context, self.store, keyring_status=self.keyring_status)
            dialog.sign_in_button.clicked.connect(load_window_code)
            result = dialog.exec()
            self.keyring_status = dialog.keyring_status
            if result != SignInDialog.SWITCH or dialog.switch_to is None:
                break
            self.switch_database(dialog.switch_to)
        accepted = result == QDialog.DialogCode.Accepted and dialog.identity is not None
        if not accepted:
            return False
        assert dialog.identity is not None
        self.identity = dialog.identity
        self._remember_token = dialog.remember_token
        if dialog.remember_token and dialog.remember_box.isChecked():
            self._store_token(dialog.remember_token)
        privilege_warning = dialog.facts.privilege_warning if dialog.facts else None
        self.open_window(privilege_warning)
        return True

    def switch_database(self, choice: str) -> bool:
        """Move to another database before signing in (the old one stays if this fails)."""
        from nvadmin.ui.connections import open_choice

        target = open_choice(self.context, choice, self.store)
        if target is None:
            return False
        old, self.context = self.context, target
        old.dispose()
        return True

    def _store_token(self, token: str) -> None:
        store, database = self.store, self.context.display_url

        def work(control: JobControl) -> None:
            store.set_remember_token(database, token)

        job = Job(work, name="remember sign-in")
        job.failed.connect(self._on_token_not_stored)
        job.start()

    def _on_token_not_stored(self, message: str) -> None:
        self._message(f"You will not stay signed in: {message}", error=True)

    # -- the window --------------------------------------------------------------------------

    def open_window(self, privilege_warning: str | None = None) -> None:
        from nvadmin.auth.policy import load_policy
        from nvadmin.ui.main_window import MainWindow

        assert self.identity is not None
        window = MainWindow(self.context, self.identity)
        self.window = window
        window.signed_out.connect(self.sign_out)
        window.lock_requested.connect(self.lock_now)
        self._add_account_actions(window)
        if self._idle_override is not None:
            timeout_ms = self._idle_override
        else:
            try:
                policy = load_policy(self.context.engine)
            except Exception:  # a policy that cannot be read must not disable the lock
                log.exception("cannot read the security policy; using the defaults")
                policy = SecurityPolicy()
            timeout_ms = policy.idle_lock_minutes * 60_000
        self.watcher = IdleWatcher(timeout_ms, self)
        self.watcher.idle.connect(self.lock_idle)
        self.watcher.start()
        window.show()
        if privilege_warning:
            window.show_message(privilege_warning, error=True)

    def _add_account_actions(self, window: MainWindow) -> None:
        menu = window.menus.account
        menu.addSeparator()
        if self.identity is not None and self.identity.can(Permission.MANAGE_STAFF):
            self.staff_action = QAction("&Staff…", window)
            self.staff_action.triggered.connect(self.open_staff_dialog)
            menu.addAction(self.staff_action)
            window.staff_action = self.staff_action
        keyring_action = QAction("&Keyring status…", window)
        keyring_action.triggered.connect(self.show_keyring_status)
        menu.addAction(keyring_action)

    def _message(self, text: str, *, error: bool = False) -> None:
        if self.window is not None:
            self.window.show_message(text, error=error)

    def open_staff_dialog(self) -> None:
        from nvadmin.ui.staff_dialog import StaffDialog

        assert self.identity is not None
        dialog = StaffDialog(self.context, self.identity, self.window)
        dialog.exec()

    def show_keyring_status(self) -> None:
        from PySide6.QtWidgets import QMessageBox

        status = self.keyring_status
        if status is None:
            status = self.store.probe()  # bounded by the store's timeout
            self.keyring_status = status
        box = QMessageBox(self.window)
        box.setObjectName("keyringStatus")
        box.setWindowTitle("System keyring")
        box.setIcon(QMessageBox.Icon.Information if status.available else QMessageBox.Icon.Warning)
        box.setText(status.message)
        box.setInformativeText(
            f"Backend: {status.backend or 'none'}. nvadmin keeps only database passwords and "
            "the remember-me token there — never your staff password, never in a file."
        )
        box.exec()

    # -- locking -----------------------------------------------------------------------------

    def lock_idle(self) -> None:
        minutes = max(1, round((self.watcher.timeout_ms if self.watcher else 0) / 60_000))
        self.lock(f"Locked after {minutes} minute(s) without input.", "idle")

    def lock_now(self) -> None:
        self.lock("Locked on request.", "requested")

    def lock(self, text: str, reason: str) -> None:
        from nvadmin.ui.lock_screen import LockScreen

        if self.window is None or self.identity is None or self.lock_screen is not None:
            return
        self.window.set_locked(True)
        if self.watcher is not None:
            self.watcher.stop()
        self._record(lambda auth, who: auth.record_lock(who, reason))
        screen = LockScreen(self.context, self.identity, text, self.window)
        screen.unlocked.connect(self._on_unlocked)
        screen.sign_out_requested.connect(self.sign_out)
        self.lock_screen = screen
        screen.open()

    def _on_unlocked(self) -> None:
        self.lock_screen = None
        if self.window is not None:
            self.window.set_locked(False)
        if self.watcher is not None:
            self.watcher.start()

    @property
    def locked(self) -> bool:
        return self.lock_screen is not None

    # -- signing out -------------------------------------------------------------------------

    def _record(self, what) -> None:  # type: ignore[no-untyped-def]
        identity, engine = self.identity, self.context.engine

        def work(control: JobControl) -> None:
            from nvadmin.auth.signin import Authenticator

            what(Authenticator(engine), identity)

        Job(work, name="session event").start()

    def sign_out(self) -> None:
        """Revoke the remembered sign-in, record it, close the window and its connections,
        then ask who signs in next (or quit if nobody does)."""
        from nvadmin.auth.signin import Authenticator

        if self.identity is None:
            return
        window = self.window
        if window is not None and not window.stop_work_first("sign out", self.sign_out):
            return  # asked whether to wait for the running exports; the answer decides
        identity, token = self.identity, self._remember_token
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None
        if self.lock_screen is not None:
            screen, self.lock_screen = self.lock_screen, None
            screen.done(QDialog.DialogCode.Rejected)
        app = QApplication.instance()
        if isinstance(app, QApplication):
            # Between the window going and the sign-in dialog coming, no window is open;
            # that must not end the application.
            app.setQuitOnLastWindowClosed(False)
        window, self.window = self.window, None
        if window is not None:
            # The window is hidden, not closed, so keep its size, splitter and columns here.
            window.save_layout()
            window.set_locked(True)
            window.hide()
            window.deleteLater()
        self.identity = None
        self._remember_token = None
        store, context = self.store, self.context

        # Written before the connections go: the last thing the session does, off the GUI
        # thread like every database and keyring call.
        def work(control: JobControl) -> None:
            try:
                auth = Authenticator(context.engine)
                if token:
                    auth.revoke_token(token)
                auth.record_sign_out(identity)
            finally:
                if token:
                    try:
                        store.forget_remember_token(context.display_url)
                    except KeyringUnavailable as error:
                        log.info("remember-me token not removed from the keyring: %s", error)

        job = Job(work, name="sign out")
        job.finished.connect(self._after_sign_out)
        job.start()

    def _after_sign_out(self) -> None:
        self.context.dispose()
        self.signed_out.emit()
        QTimer.singleShot(0, self._sign_in_again)

    def _sign_in_again(self) -> None:
        signed_in = self.sign_in()
        app = QApplication.instance()
        if isinstance(app, QApplication):
            app.setQuitOnLastWindowClosed(True)
        if not signed_in:
            self.ended.emit()
            if app is not None:
                app.quit()

    def record_quit(self) -> None:
        """The application is quitting while signed in: say so in the audit log."""
        if self.identity is None:
            return
        from nvadmin.auth.signin import Authenticator

        try:
            Authenticator(self.context.engine).record_sign_out(self.identity, "quit")
        except Exception:
            log.exception("could not record the sign-out at quit")


_sessions: list[Session] = []  # keeps the running session alive for the application's life


def start_session(context: Context) -> bool:
    """Sign in and open the main window; False if the sign-in dialog was closed."""
    session = Session(context)
    if not session.sign_in():
        return False
    _sessions.append(session)
    app = QApplication.instance()
    if app is not None:
        app.aboutToQuit.connect(session.record_quit)
    return True
