"""``nvadmin --smoke``: start the whole application offscreen and prove it works, then exit.

Used on a freshly built bundle (and by the tests) to show that everything the app needs is
really inside: Qt and its platform plugin, the compiled icons, the migrations, the licence
metadata, the database drivers. It goes through the same steps a user does:

1. a temporary ``NVADMIN_HOME`` with a small demo database (2 clinics, 2,000 events);
2. :func:`nvadmin.ui.startup.prepare_database`, as at every start;
3. :func:`nvadmin.ui.session.start_session`: the real sign-in dialog, where the admin demo
   account is chosen and "Sign in" clicked, checked by the real sign-in service;
4. the main window, until its first page of activity rows is on screen.

Exit status 0 when all of that worked, 1 with a one-line reason on stderr otherwise. The
temporary folder is removed afterwards. The system keyring is never touched (the "no keyring"
backend is used, as on a headless machine).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SMOKE_WORKSPACES = 2
SMOKE_EVENTS = 2_000
DEFAULT_TIMEOUT_S = 120.0  # NVADMIN_SMOKE_TIMEOUT overrides it
DEMO_ROLE = "admin"


def process_age() -> float:
    """Seconds since this process started (from the kernel on Linux, so the time spent
    before Python ran, e.g. unpacking a bundle, counts too); elsewhere since import."""
    try:
        stat = Path("/proc/self/stat").read_text()
        start_ticks = int(stat.rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, AttributeError):
        return time.perf_counter() - _IMPORTED_AT


_IMPORTED_AT = time.perf_counter()


class SmokeFailed(Exception):
    pass


def _say(text: str) -> None:
    print(f"nvadmin smoke: {text}", flush=True)


def run_smoke(*, verbose: bool = False) -> int:
    home = Path(tempfile.mkdtemp(prefix="nvadmin-smoke-"))
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    os.environ["NVADMIN_HOME"] = str(home)
    os.environ.pop("NVADMIN_DATABASE_URL", None)
    try:
        return _run(home, verbose)
    except SmokeFailed as failure:
        print(f"nvadmin smoke: FAILED: {failure}", file=sys.stderr, flush=True)
        return 1
    except Exception as error:  # anything else is a failure of the bundle too, with a reason
        log.exception("smoke test failed")
        print(f"nvadmin smoke: FAILED: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    finally:
        logging.shutdown()
        shutil.rmtree(home, ignore_errors=True)


def _run(home: Path, verbose: bool) -> int:
    import keyring
    import keyring.backends.fail

    from nvadmin import __version__
    from nvadmin import log as logsetup
    from nvadmin.context import Context

    keyring.set_keyring(keyring.backends.fail.Keyring())
    context = Context.create()
    logsetup.configure(context.paths.log_file, verbose=verbose)
    context.paths.create()
    _say(f"nvadmin {__version__}, temporary home {home}")

    from PySide6.QtCore import QFile, QTimer
    from PySide6.QtWidgets import QApplication

    from nvadmin.ui import crash, desktop

    _route_qt_messages_to_log()
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication([sys.argv[0]])
    app.setApplicationName("nvadmin")
    app.setOrganizationName("nvadmin")
    reporter = crash.install(context.paths.log_file)
    desktop.prepare_application(app)
    if not QFile.exists(":/app/nvadmin.svg"):
        raise SmokeFailed("the compiled icons are missing from this installation")

    # The deadline covers every step, each of which may wait on a background job.
    timeout_s = float(os.environ.get("NVADMIN_SMOKE_TIMEOUT", DEFAULT_TIMEOUT_S))
    driver = _Driver(app)
    reporter.show_dialogs = False
    reporter.reported.connect(lambda report: driver.fail(f"unexpected error: {report.summary}"))
    deadline = QTimer()
    deadline.setSingleShot(True)
    deadline.timeout.connect(
        lambda: driver.fail(f"no result after {timeout_s:g} s at: {driver.step}")
    )
    deadline.start(int(timeout_s * 1000))
    driver.start()
    try:
        _start_up(context, driver)
    finally:
        deadline.stop()
        driver.stop()
        reporter.uninstall()
    if driver.outcome:
        raise SmokeFailed(driver.outcome)
    _check_about(context, driver.window)
    _check_keyring_backends()
    _check_case_file(context, driver.window, home)
    if driver.window is not None:
        driver.window.close()
    context.dispose()
    _say("OK")
    return 0


def _start_up(context: Any, driver: _Driver) -> None:
    from PySide6.QtCore import QEventLoop

    from nvadmin.ui.session import start_session
    from nvadmin.ui.startup import prepare_database, run_with_progress

    driver.step = "creating the demo database"
    seeding_started = time.perf_counter()
    ok, message = run_with_progress(
        "Preparing the smoke-test database", "Creating demo data…", lambda c: _seed(context)
    )
    driver.seeding = time.perf_counter() - seeding_started
    if driver.outcome:
        return
    if not ok:
        raise SmokeFailed(f"cannot create the demo database: {message}")
    _say(f"demo database with {SMOKE_EVENTS:,} events created in {driver.seeding:.2f} s")

    driver.step = "opening the database"
    if not prepare_database(context):
        raise SmokeFailed(driver.outcome or "the database could not be opened (see the log)")
    if driver.outcome:
        return
    driver.step = "waiting for the sign-in dialog"
    if not start_session(context) and driver.outcome is None:
        driver.fail("the sign-in dialog was closed without signing in")
    if driver.outcome is None:
        loop = QEventLoop()
        driver.finished_callback = loop.quit
        loop.exec()


def _route_qt_messages_to_log() -> None:
    """The offscreen platform warns about window features it lacks; that is expected here
    and belongs in the log, not in the smoke test's output."""
    from PySide6.QtCore import QtMsgType, qInstallMessageHandler

    qt_log = logging.getLogger("qt")
    levels = {
        QtMsgType.QtDebugMsg: logging.DEBUG,
        QtMsgType.QtInfoMsg: logging.INFO,
        QtMsgType.QtWarningMsg: logging.WARNING,
    }

    def handler(kind: Any, _context: Any, message: str) -> None:
        qt_log.log(levels.get(kind, logging.ERROR), "%s", message)

    qInstallMessageHandler(handler)


def _seed(context: Any) -> None:
    from nvadmin.db import migrate
    from nvadmin.demo.seed import SeedPlan, seed_demo

    migrate.upgrade(context.engine)
    seed_demo(context.engine, SeedPlan(workspaces=SMOKE_WORKSPACES, events=SMOKE_EVENTS, days=30))


def _check_about(context: Any, window: Any) -> None:
    """The About dialog lists the bundled components: their metadata made it into the bundle."""
    from nvadmin import __version__
    from nvadmin.ui.desktop import AboutDialog

    if __version__.startswith("0.0.0"):
        raise SmokeFailed("nvadmin's own version metadata is missing")
    dialog = AboutDialog(context, window)
    names = {c.name.lower().replace("_", "-") for c in dialog.components}
    missing = {"sqlalchemy", "alembic", "pyside6-essentials", "keyring"} - names
    dialog.deleteLater()
    if missing:
        raise SmokeFailed(f"licence metadata missing for: {', '.join(sorted(missing))}")
    _say(f"About lists {len(dialog.components)} components with their licences")


def _check_case_file(context: Any, window: Any, home: Path) -> None:
    """A case file written, opened in place and verified: SQLCipher (a native library inside
    the sqlcipher3 package) made it into the bundle and encrypts."""
    from sqlalchemy import select

    from nvadmin.casefile.builder import create_case_file
    from nvadmin.casefile.reader import open_case_file, verify_case
    from nvadmin.db.models import Workspace
    from nvadmin.query.filters import EventFilter

    if window is None:
        return
    with context.engine.connect() as connection:
        workspace_id = connection.execute(
            select(Workspace.id).where(Workspace.is_system.is_(False)).order_by(Workspace.id)
        ).scalar()
    passphrase = "smoke test passphrase"
    summary = create_case_file(
        context.engine,
        window.identity,
        EventFilter(workspace_ids=(workspace_id,)),
        home / "smoke.nvcase",
        passphrase,
        source="smoke test",
    )
    case = open_case_file(summary.path, passphrase)
    try:
        (result,) = verify_case(case, window.identity)
    finally:
        case.close()
    if not result.intact:
        raise SmokeFailed(f"the case file does not verify: {result.lines()}")
    _say(f"case file of {summary.events:,} events written, opened and verified offline")


def _check_keyring_backends() -> None:
    """The system keyrings are found through keyring's entry points; without its metadata in
    the bundle "remember me" would silently never be offered."""
    from importlib.metadata import entry_points

    names = sorted(e.name for e in entry_points(group="keyring.backends"))
    wanted = {"linux": "SecretService", "win32": "Windows", "darwin": "macOS"}
    expected = next((v for k, v in wanted.items() if sys.platform.startswith(k)), None)
    if expected and expected not in names:
        raise SmokeFailed(f"the {expected} keyring backend is missing (found: {names})")
    _say(f"keyring backends available: {', '.join(names)}")


class _Driver:
    """Polls the real widgets, like a user watching the screen, and clicks what they would."""

    def __init__(self, app: Any) -> None:
        from PySide6.QtCore import QTimer

        self.app = app
        self.seeding = 0.0
        self.step = "starting"
        self.outcome: str | None = None  # None while running, "" on success, else the failure
        self.window: Any = None
        self.finished_callback: Callable[[], None] | None = None
        self._dialog: Any = None
        self._signed_in_at = 0.0
        self._timer = QTimer()
        self._timer.setInterval(10)
        self._timer.timeout.connect(self._poll)

    def start(self) -> None:
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def fail(self, reason: str) -> None:
        self._finish(reason)

    def _finish(self, outcome: str) -> None:
        if self.outcome is not None:
            return
        self.outcome = outcome
        if not outcome:
            self._timer.stop()
        if self.finished_callback is not None:
            self.finished_callback()

    def _close_dialogs(self) -> None:
        """After a failure, close whatever dialog holds the start-up (one may still be
        about to open), so the failure is reported instead of waiting forever."""
        from PySide6.QtWidgets import QApplication, QDialog

        for widget in QApplication.topLevelWidgets():
            if isinstance(widget, QDialog) and widget.isVisible():
                widget.reject()

    def _poll(self) -> None:
        if self.outcome:
            self._close_dialogs()
            return
        try:
            if self._dialog is None or (self.window is None and self._dialog.isVisible()):
                self._drive_sign_in()
            else:
                self._wait_for_rows()
        except Exception as error:  # a failure of the smoke test, never of the hook machinery
            log.exception("smoke driver failed")
            self.fail(f"{type(error).__name__}: {error}")

    def _drive_sign_in(self) -> None:
        from PySide6.QtWidgets import QApplication, QPushButton

        from nvadmin.ui.sign_in import SignInDialog

        if self._dialog is None:
            found = [
                w
                for w in QApplication.topLevelWidgets()
                if isinstance(w, SignInDialog) and w.isVisible()
            ]
            if not found:
                return
            self._dialog = found[0]
        dialog = self._dialog
        if dialog.message.isVisible() and dialog.message.text():
            self.fail(f"sign-in refused: {dialog.message.text()}")
            return
        if self._signed_in_at or dialog.facts is None or not dialog.sign_in_button.isEnabled():
            return
        ready = process_age()
        _say(
            f"sign-in dialog interactive {ready:.2f} s after the process started; "
            f"start-up without the demo data: {ready - self.seeding:.2f} s"
        )
        buttons = [
            b
            for b in dialog.demo_box.findChildren(QPushButton)
            if b.property("demoRole") == DEMO_ROLE
        ]
        if not buttons:
            self.fail("the demo accounts are not offered on the sign-in dialog")
            return
        self.step = "signing in with the admin demo account"
        buttons[0].click()
        self._signed_in_at = time.perf_counter()
        dialog.sign_in_button.click()

    def _wait_for_rows(self) -> None:
        from nvadmin.ui.main_window import MainWindow
        from nvadmin.ui.session import _sessions

        if self.window is None:
            window = _sessions[-1].window if _sessions else None
            if not isinstance(window, MainWindow):
                return
            self.window = window
            self.step = "waiting for the first page of activity rows"
            _say(f"signed in as {window.identity.email} ({window.identity.role})")
        window = self.window
        if window.banner.isVisible() and window.banner.text():
            self.fail(f"the main window shows an error: {window.banner.text()}")
            return
        rows = window.model.rowCount()
        if rows and not window.model.loading:
            seconds = time.perf_counter() - self._signed_in_at
            _say(f"{rows} activity rows shown {seconds:.2f} s after signing in")
            self._finish("")
