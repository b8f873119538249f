"""The compliance toolkit in the main window: verify, reports, case files (both backends)."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QInputDialog
from sqlalchemy import Engine, func, select, text

from nvadmin.analysis.reports import PATIENT_ACCESS, USER_ACTIVITY
from nvadmin.context import Context
from nvadmin.db.engine import make_engine
from nvadmin.db.models import ActivityEvent
from nvadmin.identity import Role, StaffIdentity
from nvadmin.pdf import pdf_bytes
from nvadmin.ui import compliance
from nvadmin.ui.main_window import MainWindow
from nvadmin.ui.report_view import ReportRequestDialog, ReportView
from nvadmin.ui.verify_dialog import VerifyDialog
from nvadmin.workers.jobs import Job
from tests.factories import add_member, add_workspace, draft, sign_in_as, write
from tests.waiting import HANG_GUARD_MS

REVIEWER = StaffIdentity(7, "casey@nvadmin.example", "Casey Reviewer", Role.COMPLIANCE)
SUPPORT = StaffIdentity(8, "sam@nvadmin.example", "Sam Support", Role.SUPPORT)
PASSPHRASE = "correct horse battery staple"


def seed(engine: Engine) -> int:
    ws = add_workspace(engine)
    add_member(engine, ws, "ana@riverside.example", "Ana Ruiz", "physician")
    write(
        engine,
        ws,
        [
            draft(
                i,
                "chart.view" if i % 3 else "patient_record.update",
                patient_id="P-17" if i % 2 else "P-20",
                session_id=f"s{i // 10}",
                ip="10.0.0.5",
            )
            for i in range(60)
        ],
    )
    return ws


@pytest.fixture
def context(db_url: str) -> Iterator[Context]:
    ctx = Context.create(db_url)
    yield ctx
    ctx.dispose()


def open_window(qtbot, context: Context, identity: StaffIdentity = REVIEWER) -> MainWindow:  # type: ignore[no-untyped-def]
    window = MainWindow(context, sign_in_as(context, identity))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.model.event_filter is not None)
    qtbot.waitUntil(lambda: not window.model.loading)
    return window


def done(qtbot, job: Job | None) -> None:  # type: ignore[no-untyped-def]
    """Wait for a report window's save or printout to finish."""
    assert job is not None
    qtbot.waitUntil(lambda: not job.running, timeout=HANG_GUARD_MS)


def actions(menu) -> dict[str, bool]:  # type: ignore[no-untyped-def]
    return {a.text().replace("&", ""): a.isEnabled() for a in menu.actions() if a.text()}


def test_menus_and_roles(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    seed(context.engine)
    window = open_window(qtbot, context)
    tools = actions(window.menus.tools)
    assert tools["Verify integrity…"] and tools["Patient access report…"]
    assert tools["User activity report…"]
    files = actions(window.menus.file)
    assert files["Save case file…"] and files["Open case file…"]
    support = open_window(qtbot, context, SUPPORT)
    assert not actions(support.menus.tools)["Verify integrity…"]
    assert not actions(support.menus.file)["Save case file…"]


def test_verify_dialog_intact_then_broken(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    seed(context.engine)
    window = open_window(qtbot, context)
    dialog = window.features.compliance.open_verify()
    assert isinstance(dialog, VerifyDialog)
    qtbot.waitUntil(lambda: dialog.verify_button.isEnabled())
    assert dialog.selected_workspace().slug == "riverside"
    dialog.start()
    qtbot.waitUntil(lambda: bool(dialog.results))
    # 60 events plus the view the browser itself recorded when it opened.
    assert "61 events verified, chain intact" in dialog.headline.text()
    engine = make_engine(context.database_url)  # the attacker: the owner, not the reviewer
    with engine.begin() as c:
        if engine.dialect.name == "postgresql":
            c.execute(text("SET LOCAL session_replication_role = replica"))
        else:
            c.execute(text("DROP TRIGGER activity_events_no_update"))
        c.execute(text("UPDATE activity_events SET patient_id = 'P-99' WHERE seq = 33"))
    engine.dispose()
    dialog.results = []
    dialog.start()
    qtbot.waitUntil(lambda: bool(dialog.results))
    assert "Chain broken at event #33" in dialog.headline.text()
    assert "altered" in dialog.headline.text()
    assert "expected hash" in dialog.details.toPlainText()


def test_verify_independently_from_the_keyboard(qtbot, context: Context, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Alt+I asks for every hash to be recomputed in nvadmin: the database is not asked to
    lay out or hash any event, and the result says how it was checked."""
    from nvadmin.audit import verify as verify_module

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the database was asked to lay out or hash the events")

    seed(context.engine)
    window = open_window(qtbot, context)
    dialog = window.features.compliance.open_verify()
    assert isinstance(dialog, VerifyDialog)
    qtbot.waitUntil(lambda: dialog.verify_button.isEnabled())
    monkeypatch.setattr(verify_module, "_fast_sql", refuse)
    dialog.activateWindow()  # as a window manager gives it the keyboard (offscreen has none)
    qtbot.waitUntil(lambda: QApplication.activeWindow() is dialog)
    dialog.verify_button.setFocus()
    qtbot.keyClick(dialog.verify_button, Qt.Key.Key_I, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(dialog.independent.isChecked)  # a mnemonic clicks the box (animated)
    qtbot.keyClick(dialog.verify_button, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: bool(dialog.results))
    assert "61 events verified, chain intact" in dialog.headline.text()
    assert "laid out and hashed by nvadmin itself" in dialog.details.toPlainText()


def test_verification_can_be_cancelled(qtbot, context: Context, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import threading

    from nvadmin.audit import fastpass, verify

    seed(context.engine)
    monkeypatch.setattr(verify, "_BATCH", 1)  # a check for cancel after every event
    monkeypatch.setattr(fastpass, "BATCH", 1)
    streamed: list[object] = []
    cancel_pressed = threading.Event()

    def slowed(stream):  # type: ignore[no-untyped-def]
        def slow_stream(*args, **kwargs):  # type: ignore[no-untyped-def]
            import time

            for row in stream(*args, **kwargs):
                time.sleep(0.02)  # progress is shown at most 10 times a second
                streamed.append(row)
                if len(streamed) == 30:  # progress was shown by now: wait for Cancel
                    cancel_pressed.wait(HANG_GUARD_MS / 1000)  # however busy the machine
                yield row

        return slow_stream

    monkeypatch.setattr(verify, "_stream", slowed(verify._stream))
    monkeypatch.setattr(verify, "_server_batches", slowed(verify._server_batches))
    monkeypatch.setattr(fastpass, "batches", slowed(fastpass.batches))
    window = open_window(qtbot, context)
    dialog = window.features.compliance.open_verify()
    qtbot.waitUntil(lambda: dialog.verify_button.isEnabled())
    dialog.start()
    qtbot.waitUntil(lambda: dialog.progress.value() > 0)
    dialog.cancel()
    cancel_pressed.set()
    qtbot.waitUntil(lambda: dialog.verify_button.isEnabled())
    assert "cancelled" in dialog.headline.text()
    assert not dialog.results


def test_patient_report_renders_saves_pdf_and_csv(qtbot, context: Context, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ws = seed(context.engine)
    window = open_window(qtbot, context)
    request = window.features.compliance.ask_report(PATIENT_ACCESS)
    assert isinstance(request, ReportRequestDialog)
    request.subject.setText("P-17")
    request.first.setDate(date(2025, 3, 1))
    request.last.setDate(date(2025, 3, 31))
    views: list[ReportView] = []
    original = window.features.compliance.show_report
    window.features.compliance.show_report = lambda report: views.append(original(report))  # type: ignore[method-assign]
    request.submit()
    qtbot.waitUntil(lambda: bool(views))
    view = views[0]
    assert view.report.row_count == 30
    assert "P-17" in view.browser.toPlainText()
    done(qtbot, view.save("pdf", tmp_path / "report"))
    pdf = tmp_path / "report.pdf"
    assert view.status.text() == f"Saved {pdf}" and pdf.read_bytes().startswith(b"%PDF")
    assert stat.S_IMODE(pdf.stat().st_mode) == 0o600
    from PySide6.QtPrintSupport import QPrinter

    printer = QPrinter()
    printer.setOutputFormat(QPrinter.OutputFormat.PdfFormat)
    printer.setOutputFileName(str(tmp_path / "printed.pdf"))
    done(qtbot, view.print_report(printer))
    assert (tmp_path / "printed.pdf").read_bytes().startswith(b"%PDF")
    done(qtbot, view.save("csv", tmp_path / "report.csv"))
    assert (tmp_path / "report.csv").read_bytes().count(b"\r\n") > 30
    with context.engine.connect() as c:
        purposes = [
            json.loads(d)["purpose"]
            for d in c.execute(
                select(ActivityEvent.details).where(
                    ActivityEvent.action == "activity_log.view", ActivityEvent.workspace_id == ws
                )
            ).scalars()
        ]
    assert "patient access report" in purposes


def test_user_report_pdf_has_pages(qapp) -> None:  # type: ignore[no-untyped-def]
    # Fonts and pages need an application: without one (this test first in its worker) Qt
    # aborts the process.
    from datetime import UTC, datetime

    from nvadmin.analysis.reports import Report, ReportRow, ReportSection

    rows = [
        ReportRow((f"2025-03-0{1 + i % 9}", "x", "Viewed chart"), event_id=i) for i in range(300)
    ]
    report = Report(
        USER_ACTIVITY,
        "ana@riverside.example",
        [("Produced at", datetime.now(UTC).isoformat())],
        ("Time", "UTC", "Action"),
        [ReportSection("Monday", rows)],
        row_count=300,
    )
    data = pdf_bytes(report)
    assert (
        data.startswith(b"%PDF") and data.count(b"/Type /Page\n") + data.count(b"/Type/Page") >= 1
    )


def test_case_file_round_trip_in_the_browser(qtbot, context: Context, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ws = seed(context.engine)
    window = open_window(qtbot, context)
    from nvadmin.query.filters import EventFilter, Term

    window.apply_filter(EventFilter(workspace_ids=(ws,), terms=(Term("patient", "P-17"),)))
    qtbot.waitUntil(lambda: not window.model.loading and window.model.rowCount() == 30)
    dialog = window.features.compliance.ask_save_case()
    dialog.path.setText(str(tmp_path / "incident"))
    dialog.passphrase.setText(PASSPHRASE)
    dialog.confirm.setText("something else entirely")
    dialog.submit()
    assert "differ" in dialog.error.text()
    dialog.confirm.setText(PASSPHRASE)
    job = window.features.compliance.save_case(
        dialog.destination(), PASSPHRASE, dialog.event_filter
    )
    with qtbot.waitSignal(job.finished):
        pass
    path = tmp_path / "incident.nvcase"
    assert path.exists()

    views_before = _count_views(context.engine)
    opening = window.features.compliance.open_case(path, PASSPHRASE)
    with qtbot.waitSignal(opening.finished):
        pass
    (case_window,) = window.features.compliance.case_windows  # closed (and deleted) at the end
    assert case_window.context.read_only
    qtbot.waitUntil(lambda: case_window.model.event_filter is not None)
    qtbot.waitUntil(
        lambda: not case_window.model.loading and case_window.model.rowCount() == 30,
    )
    assert "case file incident.nvcase" in case_window.windowTitle()
    # The case file lists its own workspace only (no staff workspace, no "All workspaces"),
    # and the keys cannot move the picker off it.
    picker = case_window.picker
    assert [picker.itemText(i) for i in range(picker.count())] == [picker.currentText()]
    picker.setFocus()
    qtbot.keyClick(picker, Qt.Key.Key_Home)
    qtbot.keyClick(picker, Qt.Key.Key_Up)
    assert picker.current() is not None and picker.current().id == ws
    assert not case_window.banner.isVisible()  # no failed write, no error
    assert not actions(case_window.menus.file)["Save case file…"]
    assert not actions(case_window.menus.file)["Export…"]  # a case file has no log to record it
    verify_dialog = case_window.features.compliance.open_verify()
    verify_dialog.start()
    qtbot.waitUntil(lambda: bool(verify_dialog.results))
    assert "chain intact" in verify_dialog.headline.text()
    assert _count_views(context.engine) == views_before  # browsing a case file logs nothing
    # Locking the window it came from hides the case window's rows too.
    window.set_locked(True)
    assert case_window.model.rowCount() == 0
    window.set_locked(False)
    close_and_wait(qtbot, case_window)


def test_wrong_passphrase_is_shown_and_nothing_opens(
    qtbot, context: Context, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    ws = seed(context.engine)
    window = open_window(qtbot, context)
    from nvadmin.query.filters import EventFilter

    job = window.features.compliance.save_case(
        tmp_path / "c.nvcase", PASSPHRASE, EventFilter(workspace_ids=(ws,))
    )
    with qtbot.waitSignal(job.finished):
        pass
    opening = window.features.compliance.open_case(
        tmp_path / "c.nvcase", "not the passphrase at all"
    )
    with qtbot.waitSignal(opening.finished):
        pass
    assert window.features.compliance.case_windows == []
    # Asked again, saying why, rather than left in the browser's banner.
    prompt = QApplication.activeModalWidget()
    assert isinstance(prompt, QInputDialog)
    assert prompt.labelText().startswith("That is not its passphrase")
    qtbot.keyClick(prompt.focusWidget() or prompt, Qt.Key.Key_Escape)
    assert not prompt.isVisible() and not window.banner.isVisible()
    assert window.features.compliance.case_windows == []


def close_and_wait(qtbot, case_window) -> None:  # type: ignore[no-untyped-def]
    """Close a case window and wait until it is gone with its decrypted database, so its
    deferred deletion never lands in the middle of a later test."""
    gone: list[bool] = []
    case_window.destroyed.connect(lambda: gone.append(True))
    case_window.close()
    qtbot.waitUntil(lambda: bool(gone))


def _count_views(engine: Engine) -> int:
    with engine.connect() as c:
        return int(
            c.execute(
                select(func.count()).where(ActivityEvent.action == "activity_log.view")
            ).scalar_one()
        )


def test_case_of_unknown_context_is_none(context: Context) -> None:
    assert compliance.case_of(context) is None


def test_offline_open_under_the_creators_identity(qtbot, context: Context, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """What `nvadmin --case FILE` does once the passphrase is typed: no database at all."""
    from nvadmin.casefile.builder import create_case_file
    from nvadmin.casefile.reader import OpenCase
    from nvadmin.query.filters import EventFilter, Term

    ws = seed(context.engine)
    path = tmp_path / "offline.nvcase"
    create_case_file(
        context.engine,
        REVIEWER,
        EventFilter(workspace_ids=(ws,), terms=(Term("patient", "P-20"),)),
        path,
        PASSPHRASE,
        source="test",
    )
    assert "wrong passphrase" in str(compliance._open_with_progress(path, "nope, not this one"))
    case = compliance._open_with_progress(path, PASSPHRASE)
    assert isinstance(case, OpenCase)
    offline = Context.create("sqlite:///" + str(tmp_path / "never-created.sqlite3"))
    window = compliance.open_case_window(case, offline, case.creator)
    qtbot.waitUntil(lambda: not window.model.loading and window.model.rowCount() == 30)
    assert window.identity == REVIEWER
    from PySide6.QtWidgets import QLabel

    assert window.findChild(QLabel, "caseFileBadge") is not None
    window.close()
    qtbot.waitUntil(lambda: compliance.case_of(window.context) is None)
    assert not (tmp_path / "never-created.sqlite3").exists()


def test_a_case_file_opened_on_its_own_locks_when_idle(
    qtbot, context: Context, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """``nvadmin --case`` has no staff database: after the idle time its window clears and
    only the case file's passphrase opens it again."""
    from nvadmin.casefile.reader import open_case_file, passphrase_check
    from nvadmin.query.filters import EventFilter

    ws = seed(context.engine)
    window = open_window(qtbot, context)
    job = window.features.compliance.save_case(
        tmp_path / "c.nvcase", PASSPHRASE, EventFilter(workspace_ids=(ws,))
    )
    with qtbot.waitSignal(job.finished):
        pass
    case = open_case_file(tmp_path / "c.nvcase", PASSPHRASE)
    case_window = compliance.open_case_window(case, context, case.creator)
    # The rows first (read from the file in place), then the idle lock: on a loaded machine
    # the first page can take longer than the short idle time used here.
    qtbot.waitUntil(
        lambda: not case_window.model.loading and case_window.model.rowCount() > 0,
    )
    lock = compliance.OfflineLock(case_window, passphrase_check(PASSPHRASE), timeout_ms=300)
    qtbot.waitUntil(lambda: lock.screen is not None)
    screen = lock.screen
    assert case_window.model.rowCount() == 0  # nothing readable while locked
    assert "passphrase" in screen.password_edit.placeholderText().lower()
    screen.password_edit.setText("a guess")
    screen.submit()
    qtbot.waitUntil(lambda: screen.message.isVisible())
    assert "not the case file's passphrase" in screen.message.text()
    assert lock.screen is screen and case_window.model.rowCount() == 0
    # Unlocking restarts the idle countdown; stopped right after (same event) so that the
    # reload, however slow, is seen before a second idle lock clears the rows again.
    screen.unlocked.connect(lock.watcher.stop)
    screen.password_edit.setText(PASSPHRASE)
    screen.submit()
    qtbot.waitUntil(lambda: lock.screen is None)
    qtbot.waitUntil(lambda: case_window.model.rowCount() > 0)
    close_and_wait(qtbot, case_window)
