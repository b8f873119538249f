"""The accounting of disclosures from the Requests dock: which workspace (and, for one patient's
accounting, which patient), produced in the background, shown in the app's report view, which
prints it and saves it as PDF or CSV (:mod:`nvadmin.ui.report_view`, :mod:`nvadmin.pdf`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QComboBox, QDialogButtonBox, QFormLayout, QLabel, QLineEdit, QWidget
from sqlalchemy import Engine

from nvadmin.analysis.reports import ExportRecorder, Report
from nvadmin.export import requests
from nvadmin.identity import StaffIdentity
from nvadmin.query.filters import EventFilter, Term
from nvadmin.query.workspaces import WorkspaceInfo, list_workspaces
from nvadmin.ui.filter_bar import PATIENT_EXAMPLE
from nvadmin.ui.form_dialog import FormDialog
from nvadmin.ui.report_view import ReportView
from nvadmin.workers.jobs import Job


class DisclosuresDialog(FormDialog):
    """Asks for the workspace and, optionally, the patient; produces the report in the
    background and opens it in a :class:`ReportView`."""

    produced = Signal(object)  # the ReportView opened

    def __init__(
        self,
        engine: Callable[[], Engine],
        identity: StaffIdentity,
        *,
        workspace_slug: str | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(
            parent,
            title="Accounting of disclosures",
            name="disclosuresDialog",
            error_name="disclosuresError",
        )
        self._engine = engine
        self._identity = identity
        self._wanted_slug = workspace_slug
        self.jobs: list[Job] = []
        self.report_view: ReportView | None = None
        self._workspace_ids: dict[str, int] = {}
        form = QFormLayout()
        self.workspace_box = QComboBox(self)
        self.workspace_box.setPlaceholderText("Loading workspaces…")
        self.workspace_box.setAccessibleName("Workspace")
        form.addRow("&Workspace:", self.workspace_box)
        self.patient_edit = QLineEdit(self)
        self.patient_edit.setPlaceholderText(
            f"optional: one patient's accounting, e.g. {PATIENT_EXAMPLE}"
        )
        self.patient_edit.setAccessibleName("Patient id (optional)")
        form.addRow("&Patient:", self.patient_edit)
        hint = QLabel(
            "Every delivered export of the workspace; with a patient, every delivered export "
            "that held that patient's events (requests naming the patient and wider exports "
            "alike).",
            self,
        )
        hint.setWordWrap(True)
        hint.setEnabled(False)
        form.addRow("", hint)
        self.add(form)
        self.produce_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.produce_button.setText("Produce &report")
        self.resize(560, self.sizeHint().height())
        QTimer.singleShot(0, self._load_workspaces)

    def _keep(self, job: Job) -> None:
        self.jobs.append(job)
        job.finished.connect(lambda: self.jobs.remove(job) if job in self.jobs else None)

    def _load_workspaces(self) -> None:
        engine, identity = self._engine(), self._identity
        job = Job(lambda _control: list_workspaces(engine, identity), name="workspaces")
        job.succeeded.connect(self._on_workspaces)
        job.failed.connect(self.show_error)
        self._keep(job)
        job.start()

    def _on_workspaces(self, workspaces: list[WorkspaceInfo]) -> None:
        self.workspace_box.clear()
        for workspace in workspaces:
            if not workspace.is_system:
                self.workspace_box.addItem(workspace.label, workspace.slug)
                self._workspace_ids[workspace.slug] = workspace.id
        index = self.workspace_box.findData(self._wanted_slug)
        self.workspace_box.setCurrentIndex(max(index, 0) if self.workspace_box.count() else -1)

    def submit(self) -> None:
        slug = self.workspace_box.currentData()
        if not slug:
            self.show_error("Choose a workspace.", self.workspace_box)
            return
        patient = self.patient_edit.text().strip() or None
        engine, identity = self._engine(), self._identity
        # Producing the accounting records a view of the log (requests.disclosures); saving
        # or printing it is an export of the events it shows, on record like any report's.
        patient_terms = (Term("patient", patient),) if patient else ()
        shown = EventFilter(workspace_ids=(self._workspace_ids[str(slug)],), terms=patient_terms)

        def work(_control: object) -> Report:
            report = requests.disclosures(engine, identity, str(slug), patient=patient)
            return replace(
                requests.disclosure_report(report, identity),
                event_filter=shown,
                recorder=ExportRecorder(engine, identity),
            )

        job = Job(work, name="disclosures")
        job.succeeded.connect(self._on_produced)
        job.failed.connect(self._on_failed)
        self.produce_button.setEnabled(False)
        self.clear_error()
        self._keep(job)
        job.start()

    def _on_failed(self, message: str) -> None:
        self.produce_button.setEnabled(True)
        self.show_error(message[:1].upper() + message[1:], self.patient_edit)

    def _on_produced(self, report: Report) -> None:
        self.produce_button.setEnabled(True)
        view = ReportView(report, self.parentWidget())
        view.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        view.destroyed.connect(lambda: setattr(self, "report_view", None))
        self.report_view = view
        self.accept()
        view.show()
        self.produced.emit(view)
