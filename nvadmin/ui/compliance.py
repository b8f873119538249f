"""The compliance toolkit in the main window.

Tools → Verify integrity…, Patient access report…, User activity report…;
File → Save case file…, Open case file…. A case file opens in a second browser window over an
in-memory, read-only copy: the same filters, sorting, reports and verification, no network,
nothing written anywhere.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from datetime import UTC, date, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QEventLoop, QObject, Qt, QTimer
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QProgressDialog,
    QPushButton,
    QWidget,
)

from nvadmin.analysis.reports import (
    PATIENT_ACCESS,
    USER_ACTIVITY,
    Report,
    patient_access_report,
    user_activity_report,
)
from nvadmin.audit.checkpoints import KeyStore
from nvadmin.audit.witness import ChainWitness
from nvadmin.casefile import container
from nvadmin.casefile.builder import SUFFIX, CaseFileSummary, create_case_file
from nvadmin.casefile.container import WrongPassphrase
from nvadmin.casefile.reader import OpenCase, open_case_file, passphrase_check
from nvadmin.context import Context
from nvadmin.errors import UserError
from nvadmin.export.service import count_matching
from nvadmin.identity import Permission, StaffIdentity
from nvadmin.query.filters import EventFilter
from nvadmin.query.paging import EventRow
from nvadmin.query.search import Search, format_search
from nvadmin.ui.browser.work import RunningWork
from nvadmin.ui.features import FeatureHost
from nvadmin.ui.form_dialog import FormDialog
from nvadmin.ui.palette import set_tone
from nvadmin.ui.report_view import ReportRequestDialog, ReportView
from nvadmin.ui.verify_dialog import VerifyDialog
from nvadmin.workers.cancel import ProgressUpdate
from nvadmin.workers.jobs import Job, JobControl, running_jobs

if TYPE_CHECKING:
    from nvadmin.ui.main_window import MainWindow

log = logging.getLogger(__name__)

# Case files open in their own windows; their decrypted databases live as long as those do.
_open_cases: dict[int, OpenCase] = {}


def case_of(context: Context) -> OpenCase | None:
    return _open_cases.get(id(context))


class Compliance:
    """The toolkit's actions on one main window."""

    def __init__(self, host: FeatureHost) -> None:
        self.host = host
        window = host.widget()
        self.keys = KeyStore(host.context.paths.config_dir)
        self.case_windows: list[MainWindow] = []
        self.verify_dialogs: list[VerifyDialog] = []
        self.case_builds: list[Job] = []
        # Looked up when a report comes, not now (a test may watch what is shown).
        self.reports = ReportJobs(host, lambda report: self.show_report(report))
        self.last_folder: Path | None = None
        identity = host.identity
        read_only = host.context.read_only

        def add(
            menu: QMenu, text: str, slot: Callable[[], object], permission: Permission, tip: str
        ) -> QAction:
            act = QAction(text, window)
            act.setStatusTip(tip)
            act.triggered.connect(lambda _checked=False: slot())
            allowed = identity.can(permission)
            act.setEnabled(allowed)
            if not allowed:
                act.setToolTip("Only compliance and admin staff may do this")
            menu.addAction(act)
            return act

        tools = host.menus.tools
        tools.addSeparator()
        self.verify_action = add(
            tools,
            "&Verify integrity…",
            self.open_verify,
            Permission.VERIFY,
            "Check that the workspace's log was not altered, removed from or added to",
        )
        self.patient_action = add(
            tools,
            "&Patient access report…",
            lambda: self.ask_report(PATIENT_ACCESS),
            Permission.REPORTS,
            "Every access to one patient between two days",
        )
        self.user_action = add(
            tools,
            "&User activity report…",
            lambda: self.ask_report(USER_ACTIVITY),
            Permission.REPORTS,
            "Everything one team member did, by day and session",
        )
        file_menu = host.menus.file
        quit_action = host.window_actions.quit
        self.save_case_action = QAction("Save &case file…", window)
        self.save_case_action.setStatusTip(
            "Take the events of the current filter offline, encrypted with a passphrase"
        )
        self.save_case_action.triggered.connect(self.ask_save_case)
        self.save_case_action.setEnabled(identity.can(Permission.CASE_FILES) and not read_only)
        self.open_case_action = QAction("&Open case file…", window)
        self.open_case_action.triggered.connect(self.ask_open_case)
        self.open_case_action.setEnabled(identity.can(Permission.CASE_FILES))
        for act in (self.save_case_action, self.open_case_action):
            file_menu.insertAction(quit_action, act)
        file_menu.insertSeparator(quit_action)
        # Case windows lock and unlock with the window they were opened from: the session
        # locks the one window it knows, and PHI in a case window must not stay on screen.
        host.on_lock_changed(self._follow_lock)
        host.add_work_source(self.running_work)
        if read_only:
            badge = QLabel("  Offline case file · read-only  ", window)
            badge.setObjectName("caseFileBadge")
            set_tone(badge, "badge")
            host.add_status_widget(badge)

    # -- locking --------------------------------------------------------------------------------

    def _follow_lock(self, locked: bool) -> None:
        self.reports.follow_lock(locked)
        for case_window in list(self.case_windows):
            case_window.set_locked(locked)
            case_window.setEnabled(not locked)

    def running_work(self) -> list[RunningWork]:
        """Verifications, reports and case files being built: closing the window asks first."""
        self.case_builds = [job for job in self.case_builds if job.running]
        work = [RunningWork("case file", job) for job in self.case_builds]
        work += [RunningWork("report", job) for job in self.reports.running()]
        for dialog in self.verify_dialogs:
            if dialog.job is not None and dialog.job.running:
                work.append(RunningWork("verification", dialog.job))
        return work

    # -- verification ---------------------------------------------------------------------------

    def open_verify(self) -> VerifyDialog:
        host = self.host
        dialog = VerifyDialog(
            host.context.engine,
            host.identity,
            self.keys,
            read_engine=host.context.read_engine,
            current=host.current_workspace(),
            case=case_of(host.context),
            witness=ChainWitness.for_database(
                host.context.paths.data_dir, host.context.database_url
            ),
            parent=host.widget(),
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.verify_dialogs.append(dialog)
        dialog.destroyed.connect(lambda *_: self.verify_dialogs.remove(dialog))
        dialog.show()
        return dialog

    # -- reports --------------------------------------------------------------------------------

    def ask_report(self, kind: str) -> ReportRequestDialog | None:
        host = self.host
        workspace = host.current_workspace()
        if workspace is None:
            host.show_message("Choose a workspace first: reports cover one workspace.")
            return None
        current: EventFilter = host.current_filter()
        if kind == PATIENT_ACCESS:
            subject = next(iter(current.values("patient")), "")
        else:
            subject = _team_member_address(host.current_event(), current)
        zone = host.display_zone().key
        if zone == "UTC" and workspace.timezone:
            zone = workspace.timezone
        first_day = last_day = None
        if current.start is not None:
            first_day = current.start.astimezone(host.display_zone()).date()
        if current.end is not None:
            last_day = (
                (current.end - timedelta(microseconds=1)).astimezone(host.display_zone()).date()
            )
        dialog = ReportRequestDialog(
            kind,
            workspace_label=workspace.label,
            zone=zone,
            subject=subject,
            first_day=first_day,
            last_day=last_day,
            parent=host.widget(),
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self.produce_report(kind, workspace.id, dialog))
        dialog.open()
        return dialog

    def produce_report(self, kind: str, workspace_id: int, dialog: ReportRequestDialog) -> Job:
        host = self.host
        engine, identity = host.context.read_engine, host.identity
        writer = host.context.write_engine
        subject = dialog.subject.text().strip()
        start, end = dialog.bounds()
        zone = dialog.zone
        read_only = host.context.read_only
        source = host.context.display_url

        def work(control: JobControl) -> Report:
            # Cancelled while waiting for a thread: not even the view is recorded.
            control.token.check()
            if kind == PATIENT_ACCESS:
                return patient_access_report(
                    engine,
                    identity,
                    workspace_id=workspace_id,
                    patient_id=subject,
                    start=start,
                    end=end,
                    zone=zone,
                    source=source,
                    record=not read_only,
                    write_engine=writer,
                )
            return user_activity_report(
                engine,
                identity,
                workspace_id=workspace_id,
                user_email=subject,
                start=start,
                end=end,
                zone=zone,
                source=source,
                record=not read_only,
                write_engine=writer,
            )

        return self.reports.start(kind, work)

    def show_report(self, report: Report) -> ReportView:
        view = ReportView(report, self.host.widget())
        view.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        view.show()
        self.host.show_message(f"{report.kind}: {report.row_count:,} {report.counted}")
        return view

    # -- case files -----------------------------------------------------------------------------

    def ask_save_case(self) -> CaseFileDialog:
        host = self.host
        event_filter = host.current_filter()
        names = host.workspace_names()
        dialog = CaseFileDialog(
            event_filter,
            self.last_folder,
            host.widget(),
            description=describe_filter(event_filter, names, host.display_zone()),
        )
        engine, identity = host.context.read_engine, host.identity
        writer = host.context.write_engine
        count = Job(
            lambda control: count_matching(
                engine, identity, event_filter, control.token, write_engine=writer
            ),
            name="case file event count",
        )
        # Bound methods: a dialog closed (and deleted) before the count is simply not told.
        count.succeeded.connect(dialog.show_count)
        count.failed.connect(dialog.show_count_failed)
        dialog.finished.connect(lambda _result: count.cancel())
        count.start()
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(
            lambda: self.save_case(
                dialog.destination(), dialog.passphrase.text(), dialog.event_filter
            )
        )
        dialog.open()
        return dialog

    def save_case(self, destination: Path, passphrase: str, event_filter: EventFilter) -> Job:
        host = self.host
        engine, identity = host.context.read_engine, host.identity
        writer = host.context.write_engine
        source = host.context.display_url
        keys = self.keys
        self.last_folder = destination.parent

        def work(control: JobControl) -> CaseFileSummary:
            return create_case_file(
                engine,
                identity,
                event_filter,
                destination,
                passphrase,
                source=source,
                public_keys=keys.trusted_keys(),
                progress=control.progress,
                cancel=control.token,
                write_engine=writer,
            )

        progress = _progress_dialog("Saving case file…", host.widget())
        job = Job(work, name="save case file")
        _wire(job, progress)
        job.succeeded.connect(
            lambda summary: host.show_message(
                f"Case file saved: {summary.path} ({summary.events:,} events, "
                f"{summary.bytes / 1e6:,.1f} MB, encrypted)"
            )
        )
        job.failed.connect(lambda message: host.show_message(message, error=True))
        job.cancelled.connect(lambda: host.show_message("Case file not saved (cancelled)."))
        job.start()
        self.case_builds.append(job)
        return job

    def ask_open_case(self) -> None:
        host = self.host
        chosen, _ = QFileDialog.getOpenFileName(
            host.widget(),
            "Open case file",
            str(self.last_folder or Path.home()),
            f"nvadmin case files (*{SUFFIX});;All files (*)",
        )
        if chosen:
            self.ask_case_passphrase(Path(chosen))

    def ask_case_passphrase(self, path: Path, note: str = "") -> QInputDialog | None:
        """Ask for ``path``'s passphrase and open it; None when nothing is asked: the case is
        already open (its window comes to the front) or the file is refused (missing, a
        folder, not a case file, truncated) in one sentence before anyone types it."""
        self.last_folder = path.parent
        showing = case_window_of(path)
        if showing is not None:
            showing.showNormal()
            showing.raise_()
            showing.activateWindow()
            self.host.show_message(f"{path.name} is already open in its own window.")
            return None
        try:
            container.read_header_of(path)
        except container.CaseFileError as error:
            self._refuse(path, str(error))
            return None
        prompt = passphrase_prompt(self.host.widget(), path, note)
        prompt.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        prompt.textValueSelected.connect(lambda text: self.open_case(path, text))
        prompt.open()
        return prompt

    def open_case(self, path: Path, passphrase: str) -> Job:
        host = self.host
        progress = _progress_dialog(f"Opening {path.name}…", host.widget())

        def work(control: JobControl) -> OpenCase | WrongPassphrase:
            try:
                return open_case_file(
                    path, passphrase, progress=lambda done, total: control.progress(done, total, "")
                )
            except WrongPassphrase as wrong:
                return wrong  # not a failure: the passphrase is asked for again

        def opened(outcome: OpenCase | WrongPassphrase) -> None:
            if isinstance(outcome, WrongPassphrase):
                self.ask_case_passphrase(path, "That is not its passphrase; try again.")
            else:
                self.show_case(outcome)

        job = Job(work, name="open case file")
        _wire(job, progress)
        job.succeeded.connect(opened)
        job.failed.connect(lambda message: self._refuse(path, message))
        job.start()
        return job

    def _refuse(self, path: Path, reason: str) -> QMessageBox:
        """Why ``path`` cannot be opened, in a message of its own (not the browser's banner,
        whose Retry would search again) and on the status bar."""
        text = f"{path.name} cannot be opened: {reason}"
        text += "" if text.endswith((".", "?", ")")) else "."
        self.host.show_message(text)
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            "Open case file",
            text,
            QMessageBox.StandardButton.Ok,
            self.host.widget(),
        )
        box.setObjectName("caseRefusal")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        return box

    def show_case(self, case: OpenCase) -> MainWindow:
        case_window = open_case_window(case, self.host.context, self.host.identity)
        self.case_windows.append(case_window)
        case_window.destroyed.connect(lambda *_: self._forget(case_window))
        return case_window

    def _forget(self, case_window: MainWindow) -> None:
        if case_window in self.case_windows:
            self.case_windows.remove(case_window)


class ReportJobs(QObject):
    """The reports being produced for one window.

    Each shows its progress with a Cancel button, as a case file being saved does, and is
    listed with the window's running work, so closing the window or signing out asks first.
    A report done while the window is locked waits for the unlock (nothing opens over the
    lock screen); one done after the window closed or signed out opens nothing and says
    nothing. Results come to this object's own methods, so once the window is deleted Qt
    delivers nothing at all.
    """

    def __init__(self, host: FeatureHost, open_report: Callable[[Report], object]) -> None:
        super().__init__(host.widget())
        self.host = host
        self.open_report = open_report
        self.jobs: list[Job] = []
        self.locked = False
        self.held: list[Report] = []  # done while locked

    def running(self) -> list[Job]:
        self.jobs = [job for job in self.jobs if job.running]
        return list(self.jobs)

    def start(self, kind: str, work: Callable[[JobControl], Report]) -> Job:
        host = self.host
        progress = _progress_dialog(f"Producing the {kind.lower()}…", host.widget())
        progress.setObjectName("reportProgress")
        job = Job(work, name=kind)
        _wire(job, progress)
        job.succeeded.connect(self._produced)
        job.failed.connect(self._failed)
        job.cancelled.connect(self._cancelled)
        host.show_message(f"Producing the {kind.lower()}…")
        job.start()
        self.jobs.append(job)
        return job

    def follow_lock(self, locked: bool) -> None:
        self.locked = locked
        if not locked:
            held, self.held = self.held, []
            for report in held:
                self._produced(report)

    def _produced(self, report: Report) -> None:
        if not self.host.widget().isVisible():
            return  # closed or signed out meanwhile
        if self.locked:
            self.held.append(report)
        else:
            self.open_report(report)

    def _failed(self, message: str) -> None:
        if self.host.widget().isVisible():
            self.host.show_message(message, error=True)

    def _cancelled(self) -> None:
        job = self.sender()
        kind = job.name if isinstance(job, Job) else "Report"  # each job is named for its kind
        if self.host.widget().isVisible():
            self.host.show_message(f"{kind} not produced (cancelled).")


def _team_member_address(event: EventRow | None, current: EventFilter) -> str:
    """Whom a user activity report is about, when that is known as a whole e-mail address:
    the selected event's team member, else the filter's ``user:`` when it names one address
    (a value without "@" is the start of several people's addresses or names)."""
    if event is not None and event.actor_email and "@" in event.actor_email:
        return event.actor_email
    addresses = [value for value in current.values("user") if "@" in value]
    return addresses[0] if len(addresses) == 1 else ""


def case_window_of(path: Path) -> MainWindow | None:
    """The window in which the case file at ``path`` is open, if one is."""
    from nvadmin.ui.main_window import MainWindow  # the window imports the features

    wanted = path.resolve()
    for widget in QApplication.topLevelWidgets():
        if isinstance(widget, MainWindow) and widget.isVisible():
            case = case_of(widget.context)
            if case is not None and case.path.resolve() == wanted:
                return widget
    return None


def open_case_window(case: OpenCase, base: Context, identity: StaffIdentity) -> MainWindow:
    """A browser window over the decrypted case file, closed with it."""
    from nvadmin.ui.main_window import MainWindow  # the window imports the features

    context = Context(
        paths=base.paths,
        database_url="sqlite://",
        is_default_database=False,
        _engine=case.engine,
        read_only=True,
        label=case.label,
    )
    _open_cases[id(context)] = case
    window = MainWindow(context, identity)
    # Not deleted on close at once: its background queries may still be running on the
    # decrypted database; _CaseWindowCloser lets them end first.
    window.installEventFilter(_CaseWindowCloser(window))
    window.setWindowTitle(f"nvadmin — {case.label}")
    made = case.manifest.get("created_by", {})
    window.show_message(
        f"Offline case file made by {made.get('display_name', '?')} on "
        f"{str(case.manifest.get('created_at', ''))[:10]}: "
        f"{case.manifest.get('events', 0):,} events, read-only"
    )

    def closed() -> None:
        _open_cases.pop(id(context), None)
        case.close()
        log.info("closed case file %s", case.path)

    window.destroyed.connect(closed)
    window.show()
    return window


class _CaseWindowCloser(QObject):
    """Deletes a closed case window (and so frees the decrypted database) once no
    background job is running any more."""

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self.window = window
        self.timer = QTimer(self)
        self.timer.setInterval(100)
        self.timer.timeout.connect(self._try_delete)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Close and not self.timer.isActive():
            self.timer.start()
        return False

    def _try_delete(self) -> None:
        if self.window.isVisible():  # reopened (e.g. the close was refused)
            self.timer.stop()
            return
        if not running_jobs():
            self.timer.stop()
            self.window.deleteLater()


class CaseFileDialog(FormDialog):
    """Where to save the case file and the passphrase that will protect it."""

    def __init__(
        self,
        event_filter: EventFilter,
        folder: Path | None,
        parent: QWidget | None = None,
        *,
        description: str | None = None,
    ) -> None:
        super().__init__(
            parent,
            title="Save case file",
            name="caseFileDialog",
            error_name="caseError",
            buttons=QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel,
        )
        self.event_filter = event_filter
        self.path = QLineEdit(self)
        self.path.setObjectName("casePath")
        self.path.setText(str((folder or Path.home()) / f"case-{date.today().isoformat()}{SUFFIX}"))
        browse = QPushButton("Browse…", self)
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        self.passphrase = QLineEdit(self)
        self.passphrase.setObjectName("casePassphrase")
        self.passphrase.setEchoMode(QLineEdit.EchoMode.Password)
        self.confirm = QLineEdit(self)
        self.confirm.setObjectName("caseConfirm")
        self.confirm.setEchoMode(QLineEdit.EchoMode.Password)
        self.path.setAccessibleName("Case file to save")
        self.passphrase.setAccessibleName("Passphrase")
        self.confirm.setAccessibleName("Repeat passphrase")
        summary = QLabel(description or describe_filter(event_filter), self)
        summary.setObjectName("caseSummary")
        summary.setWordWrap(True)
        summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.count_label = QLabel("Counting the events…", self)
        self.count_label.setObjectName("caseCount")
        note = QLabel(
            "The file holds the matching events, their workspace and team members, and the "
            "part of the hash chain needed to verify them, encrypted page by page (SQLCipher: "
            "AES-256 and an HMAC-SHA512 on every page) under a key derived from the passphrase "
            "(scrypt). Without the passphrase nobody can open "
            "it, including you: keep it apart from the file. Saving is recorded in the "
            "workspace's log as an export.",
            self,
        )
        note.setWordWrap(True)
        set_tone(note, "muted")
        form = QFormLayout()
        form.addRow("Events:", summary)
        form.addRow("", self.count_label)
        holder = QWidget(self)
        row.setContentsMargins(0, 0, 0, 0)
        holder.setLayout(row)
        form.addRow("File:", holder)
        form.addRow("Passphrase:", self.passphrase)
        form.addRow("Repeat passphrase:", self.confirm)
        self.add(form)
        self.add(note)
        for edit in (self.path, self.passphrase, self.confirm):
            self.describe(edit, "")
        self.setMinimumWidth(680)

    def show_count(self, count: int) -> None:
        noun = "event" if count == 1 else "events"
        self.count_label.setText(f"{count:,} {noun} will be saved in the case file.")

    def show_count_failed(self, problem: str) -> None:
        self.count_label.setText(f"The events could not be counted: {problem}")

    def _browse(self) -> None:
        chosen, _ = QFileDialog.getSaveFileName(
            self, "Save case file", self.path.text(), f"nvadmin case files (*{SUFFIX})"
        )
        if chosen:
            self.path.setText(chosen)

    def destination(self) -> Path:
        path = Path(self.path.text().strip()).expanduser()
        return path if path.suffix == SUFFIX else path.with_name(path.name + SUFFIX)

    def submit(self) -> None:
        if not self.path.text().strip():
            self.show_error("Choose where to save the case file.", self.path)
            return
        if not self.destination().parent.is_dir():
            self.show_error(f"Folder {self.destination().parent} does not exist.", self.path)
            return
        try:
            container.check_passphrase(self.passphrase.text())
        except UserError as error:
            self.show_error(str(error), self.passphrase)
            return
        if self.passphrase.text() != self.confirm.text():
            self.show_error("The two passphrases differ.", self.confirm)
            return
        self.accept()


def passphrase_prompt(parent: QWidget | None, path: Path, note: str = "") -> QInputDialog:
    """The passphrase prompt for opening the case file ``path``; its field is named for it.
    ``note`` (a wrong passphrase typed before) stands above the question."""
    prompt = QInputDialog(parent)
    prompt.setWindowTitle("Open case file")
    prompt.setLabelText(
        f"{note}\nPassphrase for {path.name}:" if note else f"Passphrase for {path.name}:"
    )
    prompt.setTextEchoMode(QLineEdit.EchoMode.Password)
    field = prompt.findChild(QLineEdit)
    if field is not None:
        field.setAccessibleName(f"Passphrase for {path.name}")
    return prompt


def ask_passphrase(parent: QWidget | None, path: Path) -> str | None:
    """The passphrase typed for ``path``, or None if the prompt was cancelled."""
    prompt = passphrase_prompt(parent, path)
    try:
        accepted = prompt.exec() == QDialog.DialogCode.Accepted
        return prompt.textValue() if accepted else None
    finally:
        prompt.deleteLater()


def describe_filter(
    event_filter: EventFilter,
    names: dict[int, str] | None = None,
    zone: tzinfo = UTC,
) -> str:
    """The filter as a person reads it: the clinics by name, then the search-bar words with
    dates in ``zone`` (named once)."""
    names = names or {}
    if event_filter.workspace_ids:
        where = ", ".join(names.get(i, f"workspace {i}") for i in event_filter.workspace_ids)
    else:
        where = "All workspaces"
    search = format_search(Search.from_filter(event_filter), zone).strip()
    zone_name = str(getattr(zone, "key", zone))
    return f"{where} — {search or 'every event'} (times in {zone_name})"


def _progress_dialog(text: str, parent: QWidget) -> QProgressDialog:
    dialog = QProgressDialog(text, "Cancel", 0, 0, parent)
    dialog.setWindowTitle("nvadmin")
    dialog.setMinimumDuration(400)
    dialog.setAutoClose(False)
    dialog.setAutoReset(False)
    dialog.setWindowModality(Qt.WindowModality.WindowModal)
    return dialog


def _wire(job: Job, dialog: QProgressDialog) -> None:
    label = dialog.labelText()

    def progressed(update: ProgressUpdate) -> None:
        if update.total:
            dialog.setRange(0, 1000)
            dialog.setValue(int(1000 * min(1.0, update.done / update.total)))
        if update.message:
            dialog.setLabelText(f"{label}\n{update.message}")

    job.progressed.connect(progressed)
    dialog.canceled.connect(job.cancel)
    job.finished.connect(dialog.deleteLater)
    job.finished.connect(dialog.close)


def install(host: FeatureHost) -> Compliance:
    return Compliance(host)


def _open_with_progress(path: Path, passphrase: str) -> OpenCase | str:
    """Decrypt on a worker thread while a progress dialog stays responsive; the case, or the
    one-line reason it could not be opened."""
    progress = QProgressDialog(f"Opening {path.name}…", "", 0, 0)
    progress.setWindowTitle("nvadmin")
    progress.setCancelButton(None)
    progress.setMinimumDuration(0)
    loop = QEventLoop()
    outcome: list[OpenCase | str] = []
    job = Job(lambda control: open_case_file(path, passphrase), name="open case file")
    job.succeeded.connect(outcome.append)
    job.failed.connect(outcome.append)
    job.finished.connect(loop.quit)
    progress.show()
    job.start()
    if job.running:
        loop.exec()
    progress.close()
    return outcome[0] if outcome else "the case file could not be opened"


def run_case_offline(context: Context, path: Path) -> int:
    """``nvadmin --case FILE``: ask for the passphrase and browse the case file, offline.

    No database is contacted: the reviewer works under the identity recorded in the case
    file by whoever made it, and nothing is written.
    """
    app = QApplication.instance() or QApplication([])
    app.setApplicationName("nvadmin")
    context.paths.create()
    try:
        container.read_header_of(path)  # a missing or foreign file is said before the passphrase
    except container.CaseFileError as error:
        print(f"nvadmin: {error}", file=sys.stderr)
        QMessageBox.warning(None, "Open case file", f"{str(error)[:1].upper()}{str(error)[1:]}.")
        return 1
    while True:
        passphrase = ask_passphrase(None, path)
        if passphrase is None:
            return 0
        outcome = _open_with_progress(path, passphrase)
        if isinstance(outcome, OpenCase):
            break
        QMessageBox.warning(None, "Open case file", outcome)
        if "passphrase" not in outcome:
            return 1
    window = open_case_window(outcome, context, outcome.creator)
    offline = OfflineLock(window, passphrase_check(passphrase))  # noqa: F841 (lives with the window)
    del passphrase
    window.raise_()
    return int(app.exec())  # type: ignore[union-attr]


class OfflineLock(QObject):
    """The idle lock of a case file opened on its own (``nvadmin --case``): after the
    default idle time without input, or on Account → Lock, the window clears every row and
    waits for the case file's passphrase; "Close case file" closes it instead."""

    def __init__(
        self, window: MainWindow, check: Callable[[str], None], timeout_ms: int | None = None
    ) -> None:
        from nvadmin.auth.policy import SecurityPolicy
        from nvadmin.ui.session import IdleWatcher

        super().__init__(window)
        self.window = window
        self.check = check
        self.screen: Any = None
        timeout_ms = timeout_ms or SecurityPolicy().idle_lock_minutes * 60_000
        minutes = max(1, round(timeout_ms / 60_000))
        idle_text = f"Locked after {minutes} minute(s) without input."
        self.watcher = IdleWatcher(timeout_ms, self)
        self.watcher.idle.connect(lambda: self.lock(idle_text))
        window.lock_requested.connect(lambda: self.lock("Locked on request."))
        self.watcher.start()

    def lock(self, reason: str) -> None:
        from nvadmin.ui.lock_screen import LockScreen

        if self.screen is not None:
            return
        self.window.set_locked(True)
        self.watcher.stop()
        screen = LockScreen(
            self.window.context, self.window.identity, reason, self.window, check=self.check
        )
        screen.unlocked.connect(self._unlocked)
        screen.sign_out_requested.connect(self.window.close)
        self.screen = screen
        screen.open()

    def _unlocked(self) -> None:
        self.screen = None
        self.window.set_locked(False)
        self.watcher.start()
