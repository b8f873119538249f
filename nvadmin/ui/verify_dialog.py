"""Verify integrity: walk a workspace's chain (or a case file's segments) with progress and
cancel, and show "chain intact" or the first broken link in plain words."""

from __future__ import annotations

import logging
import time
from datetime import date

from PySide6.QtCore import QDate, Qt, Signal
from PySide6.QtGui import QFont, QGuiApplication
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)
from sqlalchemy import Engine

from nvadmin.audit.checkpoints import KeyStore
from nvadmin.audit.verify import Verification, sign_checkpoint, verify_workspace
from nvadmin.audit.witness import ChainWitness
from nvadmin.identity import StaffIdentity
from nvadmin.query.localtime import day_range
from nvadmin.query.workspaces import WorkspaceInfo, list_workspaces
from nvadmin.ui.date_field import DateField
from nvadmin.ui.palette import set_tone
from nvadmin.workers.cancel import ProgressUpdate
from nvadmin.workers.jobs import Job, JobControl

log = logging.getLogger(__name__)


class VerifyDialog(QDialog):
    finished_verifying = Signal(object)  # list[Verification]

    def __init__(
        self,
        engine: Engine,
        identity: StaffIdentity,
        keys: KeyStore,
        *,
        current: WorkspaceInfo | None = None,
        case: object | None = None,
        witness: ChainWitness | None = None,
        parent: QWidget | None = None,
        read_engine: Engine | None = None,
    ) -> None:
        super().__init__(parent)
        self.engine = engine  # signs checkpoints (the primary)
        self.read_engine = read_engine or engine  # verifies (a hot standby when there is one)
        self.identity = identity
        self.keys = keys
        self.case = case
        # This computer's record of the chains it verified (none for a case file).
        self.witness = witness if case is None else None
        self.job: Job | None = None
        self.results: list[Verification] = []
        self._started = 0.0
        self.setObjectName("verifyDialog")
        self.setWindowTitle("Verify integrity")
        self.resize(760, 520)

        form = QFormLayout()
        self.workspace = QComboBox(self)
        self.workspace.setObjectName("verifyWorkspace")
        self.whole = QRadioButton("Whole chain", self)
        self.ranged = QRadioButton("Only events between", self)
        self.whole.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.whole)
        group.addButton(self.ranged)
        today = date.today()
        # Typed days are the days used (a QDateEdit turned a typed 2025-01-01 into 2026-01-01).
        self.first = DateField(self)
        self.last = DateField(self)
        self.first.setAccessibleName("Only events from day, included")
        self.last.setAccessibleName("Only events to day, included")
        self.first.setDate(QDate(today.year, today.month, 1))
        self.last.setDate(QDate(today.year, today.month, today.day))
        for edit in (self.first, self.last):
            edit.setEnabled(False)
        self.ranged.toggled.connect(self.first.setEnabled)
        self.ranged.toggled.connect(self.last.setEnabled)
        span = QHBoxLayout()
        span.addWidget(self.ranged)
        span.addWidget(self.first)
        span.addWidget(QLabel("and", self))
        span.addWidget(self.last)
        span.addWidget(QLabel("(days included, workspace time)", self))
        span.addStretch(1)
        # verify --independent: for a database server not trusted to compute (the trust
        # model: docs/compliance.md, "What verification relies on").
        self.independent = QCheckBox(
            "Recompute every hash in nvadmin, &independent of the database's functions (slower)",
            self,
        )
        self.independent.setObjectName("verifyIndependent")
        self.independent.setToolTip(
            "By default the database lays out (on PostgreSQL also hashes) each event and "
            "nvadmin checks every number, link and signed checkpoint. Choose this when the "
            "database server itself is not trusted to compute: nvadmin then lays out and "
            "hashes every event from the stored values alone."
        )
        if case is None:
            form.addRow("Workspace:", self.workspace)
            form.addRow("Scope:", self.whole)
            form.addRow("", _wrap(span, self))
            form.addRow("Method:", self.independent)
        else:
            label = getattr(case, "label", "case file")
            form.addRow("Verifying:", QLabel(f"the chain segments carried in the {label}", self))
            # A case file is verified as carried: no workspace or range to choose.
            hidden = (
                self.workspace,
                self.whole,
                self.ranged,
                self.first,
                self.last,
                self.independent,
            )
            for widget in hidden:
                widget.hide()
            for index in range(span.count()):
                item = span.itemAt(index)
                shown = item.widget() if item is not None else None
                if shown is not None:
                    shown.hide()

        self.headline = QLabel("Not verified yet.", self)
        self.headline.setObjectName("verifyHeadline")
        self.headline.setWordWrap(True)
        self.progress = QProgressBar(self)
        self.progress.setObjectName("verifyProgress")
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.rate = QLabel("", self)
        self.details = QPlainTextEdit(self)
        self.details.setObjectName("verifyDetails")
        self.details.setReadOnly(True)
        self.details.setAccessibleName("Verification result")
        self.details.setFont(QFont("monospace"))
        self.details.setPlaceholderText(
            "The result appears here: how many events were checked, and where the chain is "
            "broken if it is."
        )

        self.verify_button = QPushButton("&Verify", self)
        self.verify_button.setObjectName("verifyButton")
        self.verify_button.setDefault(True)
        self.cancel_button = QPushButton("&Cancel", self)
        self.cancel_button.setEnabled(False)
        self.sign_button = QPushButton("&Sign checkpoint", self)
        self.sign_button.setToolTip(
            "Sign the newest event of an intact chain with this machine's checkpoint key, so "
            "that a later removal of events is detected"
        )
        self.sign_button.setEnabled(False)
        self.sign_button.setVisible(case is None and keys.signing_key_path.exists())
        self.copy_button = QPushButton("Cop&y result", self)
        self.copy_button.setEnabled(False)
        close = QPushButton("Close", self)
        self.verify_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.sign_button.clicked.connect(self.sign)
        self.copy_button.clicked.connect(self.copy_result)
        close.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.rate, 1)
        for button in (
            self.verify_button,
            self.cancel_button,
            self.sign_button,
            self.copy_button,
            close,
        ):
            buttons.addWidget(button)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.headline)
        layout.addWidget(self.progress)
        layout.addWidget(self.details, 1)
        layout.addLayout(buttons)

        if case is None:
            self._load_workspaces(current)

    # -- workspaces --------------------------------------------------------------------------

    def _load_workspaces(self, current: WorkspaceInfo | None) -> None:
        engine, identity = self.engine, self.identity
        self.verify_button.setEnabled(False)
        self._current = current
        job = Job(lambda control: list_workspaces(engine, identity), name="workspaces")
        job.succeeded.connect(self._fill)
        job.failed.connect(self._show_failure)
        job.start()

    def _fill(self, workspaces: list[WorkspaceInfo]) -> None:
        current = self._current
        for workspace in workspaces:
            self.workspace.addItem(workspace.label, workspace)
        if current is not None:
            index = self.workspace.findText(current.label)
            if index >= 0:
                self.workspace.setCurrentIndex(index)
        self.verify_button.setEnabled(self.workspace.count() > 0)

    def selected_workspace(self) -> WorkspaceInfo | None:
        data = self.workspace.currentData()
        return data if isinstance(data, WorkspaceInfo) else None

    # -- running -----------------------------------------------------------------------------

    def start(self) -> None:
        identity, trusted = self.identity, self.keys.trusted_keys()
        witness, untrusted = self.witness, self.keys.unusable_own_key()
        if self.case is not None:
            from nvadmin.casefile.reader import OpenCase, verify_case

            case = self.case
            assert isinstance(case, OpenCase)

            def work(control: JobControl) -> list[Verification]:
                return verify_case(
                    case, identity, trusted, progress=control.progress, cancel=control.token
                )

        else:
            workspace = self.selected_workspace()
            if workspace is None:
                return
            start = end = None
            if self.ranged.isChecked():
                if not (self.first.is_day() and self.last.is_day()):
                    self._show_failure("Give the days as YYYY-MM-DD.")
                    return
                first: date = self.first.date().toPython()  # type: ignore[assignment]
                last: date = self.last.date().toPython()  # type: ignore[assignment]
                if last < first:
                    self._show_failure("The last day is before the first day.")
                    return
                start, end = day_range(first, last, workspace.timezone)

            engine, independent = self.read_engine, self.independent.isChecked()
            writer = self.engine

            def work(control: JobControl) -> list[Verification]:
                return [
                    verify_workspace(
                        engine,
                        identity,
                        workspace.id,
                        start=start,
                        end=end,
                        trusted_keys=trusted,
                        untrusted_because=untrusted,
                        witness=witness,
                        progress=control.progress,
                        cancel=control.token,
                        independent=independent,
                        write_engine=writer,
                    )
                ]

        self._run(work, "Verifying…")

    def _run(self, work, text: str) -> None:  # type: ignore[no-untyped-def]
        # No Qt parent: a job must outlive a dialog closed (and deleted) while it runs.
        job = Job(work, name="verify integrity")
        job.progressed.connect(self._on_progress)
        job.succeeded.connect(self._on_done)
        job.failed.connect(self._show_failure)
        job.cancelled.connect(self._on_cancelled)
        job.finished.connect(self._on_finished)
        self.job = job
        self._started = time.monotonic()
        set_tone(self.headline, None)
        self.headline.setText(text)
        self.details.clear()
        self.details.setAccessibleDescription("")
        self.progress.setRange(0, 0)
        self.progress.show()
        self.verify_button.setEnabled(False)
        self.sign_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        job.start()

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.cancel_button.setEnabled(False)
            self.headline.setText("Cancelling…")

    def _on_progress(self, update: ProgressUpdate) -> None:
        if update.total:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * min(1.0, update.done / update.total)))
            self.progress.setFormat(f"{update.done:,} of {update.total:,} events")
        elapsed = max(time.monotonic() - self._started, 1e-6)
        self.rate.setText(f"{update.done / elapsed:,.0f} events/s")

    def _on_done(self, results: list[Verification]) -> None:
        self.results = results
        intact = all(r.intact for r in results)
        verified = sum(r.events_verified for r in results)
        if intact and all(r.empty for r in results):
            set_tone(self.headline, "no-chain")
            self.headline.setText("No events recorded yet: this workspace has no chain")
        elif intact:
            set_tone(self.headline, "intact")
            self.headline.setText(f"✔ {verified:,} events verified, chain intact")
            manifest = getattr(self.case, "manifest", None) or {}
            carried = int(manifest.get("events", 0))
            if carried and carried != verified:
                # Each event's hash covers the one before it, back to the chain's start.
                spans = ", ".join(f"#{r.first_seq:,} to #{r.last_seq:,}" for r in results)
                self.headline.setText(
                    f"{self.headline.text()}\nThe case file holds {carried:,} events; to "
                    f"prove them unaltered the hash chain is checked from its start "
                    f"(events {spans}), so the chain links carried before and between them "
                    "are verified too."
                )
        else:
            broken = next(r for r in results if not r.intact)
            assert broken.broken is not None
            set_tone(self.headline, "broken")
            self.headline.setText(
                f"✘ Chain broken at {broken.broken.where} "
                f"({broken.workspace_slug}): {broken.broken.kind}"
            )
        lines: list[str] = []
        for result in results:
            lines.extend(result.lines())
            lines.append(f"({result.seconds:.1f} s)" if result.seconds else "")
        self.details.setPlainText("\n".join(lines).strip())
        # Read out with the result, in words (the headline's colour only repeats them).
        self.details.setAccessibleDescription(self.headline.text())
        self.copy_button.setEnabled(True)
        self.sign_button.setEnabled(
            intact and self.case is None and not self.ranged.isChecked() and verified > 0
        )
        self.finished_verifying.emit(results)

    def _on_cancelled(self) -> None:
        set_tone(self.headline, None)
        self.headline.setText("Verification cancelled: nothing was concluded.")

    def _on_finished(self) -> None:
        self.job = None
        self.progress.hide()
        self.cancel_button.setEnabled(False)
        self.verify_button.setEnabled(True)

    def _show_failure(self, message: str) -> None:
        # Failures come as clauses ("the case file was altered…"); the headline is a sentence.
        message = message[:1].upper() + message[1:]
        set_tone(self.headline, "broken")
        self.headline.setText(message)
        self.details.setAccessibleDescription(message)

    def sign(self) -> None:
        workspace = self.selected_workspace()
        if workspace is None:
            return
        engine, identity, keys, witness = self.engine, self.identity, self.keys, self.witness

        def work(control: JobControl) -> list[Verification]:
            key = keys.require_signing_key()
            result, checkpoint = sign_checkpoint(
                engine,
                identity,
                workspace.id,
                key,
                trusted_keys=keys.trusted_keys(),
                witness=witness,
                progress=control.progress,
                cancel=control.token,
            )
            if checkpoint is not None:
                result.notes.append(
                    f"signed a checkpoint at event #{checkpoint.seq:,} with key {checkpoint.key_id}"
                )
            return [result]

        self._run(work, "Verifying, then signing…")

    def copy_result(self) -> None:
        QGuiApplication.clipboard().setText(
            self.headline.text() + "\n" + self.details.toPlainText()
        )

    def closeEvent(self, event) -> None:  # type: ignore[no-untyped-def]
        if self.job is not None:
            self.job.cancel()
        super().closeEvent(event)


def _wrap(layout: QHBoxLayout, parent: QWidget) -> QWidget:
    holder = QWidget(parent)
    layout.setContentsMargins(0, 0, 0, 0)
    holder.setLayout(layout)
    return holder


__all__ = ["Qt", "VerifyDialog"]
