"""Before sign-in: make sure the database is usable, building the demo database on first run.

Everything that touches the database runs in a background job behind a progress dialog, so
the window system never sees a frozen application, even while 150,000 demo events are made.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEventLoop, Qt
from PySide6.QtWidgets import QMessageBox, QProgressDialog

from nvadmin.context import Context
from nvadmin.workers.cancel import ProgressUpdate
from nvadmin.workers.jobs import Job, JobControl

log = logging.getLogger(__name__)

# The embedded demo: a few clinics and enough activity to feel real, built in ~15 s.
DEMO_WORKSPACES = 4
DEMO_EVENTS = 150_000


def prepare_database(context: Context) -> bool:
    """Migrate (and on first run seed) the database; False (after telling the user) on failure."""
    # The embedded default is (re)built whenever it is missing or empty, so a first run that
    # was interrupted (power cut, killed) simply starts over next time.
    first_run = context.is_default_database and not _has_workspaces(context)
    if first_run:
        title = "Preparing the demo database"
        label = (
            f"Creating a demo database with {DEMO_EVENTS:,} activity events in "
            f"{DEMO_WORKSPACES} clinics. This happens once."
        )
    else:
        title, label = "Opening the database", f"Connecting to {context.display_url}…"
    ok, message = run_with_progress(
        title, label, lambda control: _prepare(context, control, first_run)
    )
    if not ok:
        if first_run:
            _discard_partial_demo(context)
        show_fatal(message)
    return ok


def _has_workspaces(context: Context) -> bool:
    import sqlite3

    path = context.paths.default_database
    if not path.exists():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return bool(db.execute("SELECT 1 FROM workspaces WHERE NOT is_system").fetchone())
    except sqlite3.Error:
        return True  # let the normal path report a damaged file instead of overwriting it


def _prepare(context: Context, control: JobControl, first_run: bool) -> None:
    from nvadmin.db import migrate, partitions

    engine = context.engine
    if context.before_sign_in_is_gate:
        migrate.require_head(engine)  # a staff desktop never changes the schema
    else:
        migrate.upgrade(engine)
    if first_run:
        from nvadmin.demo.seed import SeedPlan, seed_demo  # not on every start: first run only

        def progress(done: int, total: int) -> None:
            control.token.check()
            control.progress(done, total, f"{done:,} of {total:,} events")

        seed_demo(engine, SeedPlan(workspaces=DEMO_WORKSPACES, events=DEMO_EVENTS), progress)
    elif not context.before_sign_in_is_gate:  # the gate login creates nothing
        from datetime import UTC, datetime

        partitions.ensure_ahead(engine, datetime.now(UTC), 2)


def _discard_partial_demo(context: Context) -> None:
    """A demo database whose seeding failed or was cancelled is rebuilt next time."""
    context.dispose()
    for suffix in ("", "-wal", "-shm"):
        path = context.paths.default_database.with_name(
            context.paths.default_database.name + suffix
        )
        path.unlink(missing_ok=True)


def run_with_progress(
    title: str, label: str, work: Callable[[JobControl], Any]
) -> tuple[bool, str]:
    """Run ``work`` in a job behind a modal progress dialog; returns (succeeded, message)."""
    dialog = QProgressDialog(label, "Cancel", 0, 0)
    dialog.setWindowTitle(title)
    dialog.setWindowModality(Qt.WindowModality.ApplicationModal)
    dialog.setMinimumDuration(400)
    dialog.setMinimumWidth(460)
    dialog.setAutoClose(False)
    dialog.setAutoReset(False)
    outcome: dict[str, Any] = {"ok": False, "message": "cancelled"}
    loop = QEventLoop()
    job = Job(work, name=title)

    def on_progress(update: ProgressUpdate) -> None:
        if update.total:
            dialog.setMaximum(update.total)
            dialog.setValue(min(update.done, update.total))
        if update.message:
            dialog.setLabelText(f"{label}\n{update.message}")

    def on_failed(message: str) -> None:
        outcome["message"] = message

    job.progressed.connect(on_progress)
    job.succeeded.connect(lambda _result: outcome.update(ok=True, message=""))
    job.failed.connect(on_failed)
    job.cancelled.connect(lambda: outcome.update(message="cancelled"))
    job.finished.connect(loop.quit)
    dialog.canceled.connect(job.cancel)
    job.start()
    loop.exec()
    dialog.close()
    return bool(outcome["ok"]), str(outcome["message"])


def show_fatal(message: str) -> None:
    box = QMessageBox(QMessageBox.Icon.Critical, "nvadmin", "nvadmin cannot start.")
    box.setInformativeText(message)
    box.exec()
