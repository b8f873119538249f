"""The export form: the ticket ("workspace X, from D1 to D2") as a dialog.

It opens pre-filled from the browser (workspace, range, team members, categories, display
zone) and shows how many events match before anything starts; the count runs in a worker,
again after every change (debounced, newest request wins). The dialog only builds an
:class:`~nvadmin.export.service.ExportRequest`; the export panel runs it.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, available_timezones

import shiboken6
from PySide6.QtCore import QDate, QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QCompleter,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QWidget,
)
from sqlalchemy import Engine

from nvadmin.db.taxonomy import Category
from nvadmin.errors import UserError
from nvadmin.export import profiles
from nvadmin.export.columns import COLUMNS, DEFAULT_COLUMNS, resolve
from nvadmin.export.formats import FileFormat
from nvadmin.export.manifest import manifest_path_for
from nvadmin.export.service import ExportRequest, count_matching, profile_problem
from nvadmin.identity import Role, StaffIdentity
from nvadmin.query.filters import EventFilter, Term
from nvadmin.query.localtime import day_range, zone_info
from nvadmin.query.search import format_filter
from nvadmin.query.workspaces import WorkspaceInfo, list_workspaces
from nvadmin.ui.date_field import DateField
from nvadmin.ui.filter_bar import RANGE_PRESETS
from nvadmin.ui.form_dialog import FormDialog
from nvadmin.workers.jobs import Job

if TYPE_CHECKING:
    from nvadmin.db.routing import ServerPosition

log = logging.getLogger(__name__)

COUNT_DELAY_MS = 300
_UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_CHOSEN_DAYS = "chosen"


class FormProblem(UserError):
    """What keeps the form from describing an export, and the field to fix it in."""

    def __init__(self, message: str, field: QWidget | None = None) -> None:
        super().__init__(message)
        self.field = field


def _zone_names() -> list[str]:
    return sorted(z for z in available_timezones() if "/" in z and not z.startswith("Etc/"))


def _local_day(instant: datetime, zone: ZoneInfo) -> date:
    return instant.astimezone(zone).date()


def _is_midnight(instant: datetime, zone: ZoneInfo) -> bool:
    local = instant.astimezone(zone)
    return (local.hour, local.minute, local.second, local.microsecond) == (0, 0, 0, 0)


class MatchCounter(QObject):
    """How many events the form's filter matches, counted on a worker ``COUNT_DELAY_MS`` after
    the last change; a newer request outdates the running one.

    ``counted(int | None)`` (None: it could not be counted); ``said(text)``: the line to show.
    ``source()`` gives the filter, or None when the form cannot describe one yet.
    """

    counted = Signal(object)
    said = Signal(str)

    def __init__(
        self,
        engine: Engine,
        identity: StaffIdentity,
        source: Callable[[], EventFilter | None],
        parent: QObject,
        write_engine: Engine | None = None,
    ) -> None:
        super().__init__(parent)
        self._engine, self._identity, self._source = engine, identity, source
        self._write_engine = write_engine or engine  # records the view counting may need
        self._generation = 0
        self._job: Job | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(COUNT_DELAY_MS)
        self._timer.timeout.connect(self._count_now)

    def schedule(self) -> None:
        self._generation += 1
        if self._job is not None:
            self._job.cancel()
            self._job = None
        self.said.emit("Counting matching events…")
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
        if self._job is not None:
            self._job.cancel()

    def _count_now(self) -> None:
        event_filter = self._source()
        if event_filter is None:
            # The reason is the form's problem, shown once under the count.
            self.said.emit("Cannot count yet.")
            self.counted.emit(None)
            return
        generation = self._generation
        engine, identity, writer = self._engine, self._identity, self._write_engine
        job = Job(
            lambda control: count_matching(
                engine, identity, event_filter, control.token, write_engine=writer
            ),
            name="export row count",
        )
        job.succeeded.connect(lambda count: self._on_count(generation, count))
        job.failed.connect(lambda message: self._on_count_failed(generation, message))
        self._job = job
        job.start()

    def _on_count(self, generation: int, count: int) -> None:
        if generation != self._generation:
            return  # the form changed meanwhile: a newer count is on its way
        self._job = None
        noun = "event matches" if count == 1 else "events match"
        self.said.emit(f"{count:,} {noun} — all of them will be exported.")
        self.counted.emit(count)

    def _on_count_failed(self, generation: int, message: str) -> None:
        if generation != self._generation:
            return
        self._job = None
        self.said.emit(f"Could not count the events: {message}")
        self.counted.emit(None)


class ExportDialog(FormDialog):
    """Fill in the ticket, see the row count, get an :class:`ExportRequest` from
    :meth:`request` once accepted."""

    count_changed = Signal(object)  # int, or None while counting / after an error
    workspaces_loaded = Signal()

    def __init__(
        self,
        engine: Engine,
        identity: StaffIdentity,
        *,
        initial_filter: EventFilter | None = None,
        workspace: WorkspaceInfo | None = None,
        display_zone: str | None = None,
        folder: Path | None = None,
        parent: QWidget | None = None,
        read_position: Callable[[], ServerPosition | None] | None = None,
        write_engine: Engine | None = None,
    ) -> None:
        super().__init__(
            parent, title="Export activity to CSV", name="exportDialog", error_name="exportError"
        )
        self._read_position = read_position
        self._engine = engine
        self._identity = identity
        self._initial = initial_filter or EventFilter()
        self._initial_workspace_id = (
            workspace.id
            if workspace is not None
            else (self._initial.workspace_ids[0] if self._initial.workspace_ids else None)
        )
        self._display_zone = display_zone
        self._folder = folder or Path.home()
        self._name_edited = False
        self._start_tried = False
        self._accepted_request: ExportRequest | None = None
        self.last_count: int | None = None
        self.workspaces: list[WorkspaceInfo] = []

        self._build()
        self.counter = MatchCounter(
            engine, identity, self._filter_to_count, self, write_engine=write_engine
        )
        self.counter.said.connect(self.count_label.setText)
        self.counter.counted.connect(self._on_counted)
        self._prefill()
        self._connect()
        self._show_range_preset()
        QTimer.singleShot(0, self._load_workspaces)
        self.read_server_label: QLabel | None = None
        if read_position is not None:
            # With read replicas: which server the export will read and how far behind it is.
            self.read_server_label = QLabel("Read server: asking…", self)
            self.read_server_label.setObjectName("exportReadServer")
            self.read_server_label.setWordWrap(True)
            self.add(self.read_server_label)
            QTimer.singleShot(0, self._load_read_position)

    # -- building ------------------------------------------------------------------------------

    def _build(self) -> None:
        zones = ["UTC", *_zone_names()]
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)

        self.workspace_box = QComboBox(self)
        self.workspace_box.setPlaceholderText("Loading workspaces…")
        # As wide as the form: its size would otherwise be that of the placeholder, the
        # workspaces arriving later ("Harbor Pediatrics (harb").
        self.workspace_box.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        form.addRow("&Workspace:", self.workspace_box)

        self.range_preset_box = QComboBox(self)
        self.range_preset_box.addItem("Days chosen below", _CHOSEN_DAYS)
        for preset in RANGE_PRESETS:
            self.range_preset_box.addItem(preset.label, preset.key)
        self.range_preset_box.setToolTip("Whole days in the time zone of the dates")
        form.addRow("&Range:", self.range_preset_box)

        self.from_edit = DateField(self)
        self.to_edit = DateField(self)
        self.range_zone_box = self._zone_box(zones)
        dates = QHBoxLayout()
        dates.addWidget(self.from_edit)
        dates.addWidget(QLabel("to", self))
        dates.addWidget(self.to_edit)
        dates.addWidget(QLabel("(both days included) in", self))
        dates.addWidget(self.range_zone_box, 1)
        form.addRow("From:", dates)
        self.exact_range_box = QCheckBox(self)
        self.exact_range_box.hide()
        form.addRow("", self.exact_range_box)

        self.members_edit = QLineEdit(self)
        self.members_edit.setPlaceholderText("all team members, or e-mails separated by commas")
        form.addRow("Team &members:", self.members_edit)

        categories = QGridLayout()
        self.category_boxes: dict[Category, QCheckBox] = {}
        for i, category in enumerate(Category):
            box = QCheckBox(category.label, self)
            self.category_boxes[category] = box
            categories.addWidget(box, i // 3, i % 3)
        form.addRow("Categories:", categories)
        self.category_hint = QLabel("None ticked: every category.", self)
        self.category_hint.setEnabled(False)
        form.addRow("", self.category_hint)

        self.keep_other_box = QCheckBox(self)
        self.keep_other_box.setChecked(True)
        self.keep_other_box.hide()
        form.addRow("", self.keep_other_box)

        self.ticket_edit = QLineEdit(self)
        required = self._identity.role is Role.SUPPORT
        self.ticket_edit.setPlaceholderText(
            "required: the support ticket asking for this export"
            if required
            else "the request this export answers (optional)"
        )
        form.addRow("&Ticket id:" + (" *" if required else ""), self.ticket_edit)

        self.column_list = QListWidget(self)
        self.column_list.setMaximumHeight(150)
        for column in COLUMNS:
            item = QListWidgetItem(f"{column.label}  ({column.key})", self.column_list)
            item.setData(Qt.ItemDataRole.UserRole, column.key)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            checked = column.key in DEFAULT_COLUMNS
            item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
        form.addRow("&Columns:", self.column_list)

        self.time_zone_box = self._zone_box(zones)
        form.addRow("Timestamps &in:", self.time_zone_box)

        self.format_box = QComboBox(self)
        for file_format in FileFormat:
            self.format_box.addItem(file_format.label, file_format.value)
        self.format_box.setToolTip(
            "CSV for spreadsheets; JSON Lines (one JSON object per event) for SIEM and BI imports"
        )
        form.addRow("&Format:", self.format_box)

        self.profile_box = QComboBox(self)
        for profile in profiles.PROFILES:
            self.profile_box.addItem(profile.label, profile.key)
        self.profile_box.setCurrentIndex(self.profile_box.findData(profiles.DEFAULT.key))
        self.profile_box.setToolTip(
            "Excel: for people who open the file in a spreadsheet (the times become date-time "
            "cells). Data: for pandas, BI tools and scripts, and for checking event hashes."
        )
        form.addRow("CSV &profile:", self.profile_box)

        self.output_edit = QLineEdit(self)
        self.browse_button = QPushButton("&Browse…", self)
        # What a screen reader announces for fields whose label sits elsewhere on the line.
        for widget, name in (
            (self.workspace_box, "Workspace"),
            (self.range_preset_box, "Range"),
            (self.from_edit, "From date"),
            (self.to_edit, "To date, included"),
            (self.range_zone_box, "Time zone of the dates"),
            (self.members_edit, "Team members"),
            (self.ticket_edit, "Ticket id"),
            (self.column_list, "Columns"),
            (self.time_zone_box, "Time zone of the timestamps"),
            (self.profile_box, "CSV profile"),
            (self.format_box, "File format"),
            (self.output_edit, "Save as"),
        ):
            widget.setAccessibleName(name)
        output = QHBoxLayout()
        output.addWidget(self.output_edit, 1)
        output.addWidget(self.browse_button)
        form.addRow("Save as:", output)

        self.count_label = QLabel("Counting matching events…", self)
        self.count_label.setObjectName("exportCount")
        font = self.count_label.font()
        font.setBold(True)
        self.count_label.setFont(font)
        self.start_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.start_button.setText("&Start export")
        self.add(form)
        self.add(self.count_label)
        self.resize(720, self.sizeHint().height())
        # Enter in the Save-as box finishes the path, it does not start the export.
        self.output_edit.installEventFilter(self)

    def _zone_box(self, zones: list[str]) -> QComboBox:
        box = QComboBox(self)
        box.setEditable(True)
        box.addItems(zones)
        box.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        completer = QCompleter(zones, box)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        box.setCompleter(completer)
        return box

    def _connect(self) -> None:
        self.range_preset_box.activated.connect(self._on_range_preset)
        self.browse_button.clicked.connect(self._browse)
        self.format_box.currentIndexChanged.connect(self._on_format_changed)
        self.workspace_box.currentIndexChanged.connect(self._on_workspace_changed)
        for signal in (
            # The text, not only a new day: a text that is no day must not keep an old count.
            self.from_edit.textChanged,
            self.to_edit.textChanged,
            self.range_zone_box.currentTextChanged,
            self.members_edit.textChanged,
            self.exact_range_box.toggled,
            self.keep_other_box.toggled,
            *(box.toggled for box in self.category_boxes.values()),
        ):
            signal.connect(self._schedule_count)
        for signal in (
            self.from_edit.dateChanged,
            self.to_edit.dateChanged,
            self.ticket_edit.textChanged,
        ):
            signal.connect(self._suggest_name)
        self.exact_range_box.toggled.connect(self._on_exact_toggled)
        self.output_edit.textEdited.connect(self._on_name_edited)
        for signal in (
            self.from_edit.textChanged,
            self.to_edit.textChanged,
            self.range_zone_box.currentTextChanged,
        ):
            signal.connect(self._show_range_preset)
        # The range's problems show once the count (debounced) finds them or a day field is
        # left, not at every key typed; the others clear as soon as they are fixed.
        for signal in (
            self.from_edit.editingFinished,
            self.to_edit.editingFinished,
            self.exact_range_box.toggled,
            self.ticket_edit.textChanged,
            self.output_edit.textChanged,
            self.column_list.itemChanged,
            self.time_zone_box.currentTextChanged,
            self.profile_box.currentIndexChanged,
        ):
            signal.connect(self._refresh_problem)

    # -- pre-filling from the browser ----------------------------------------------------------

    def _prefill(self) -> None:
        f = self._initial
        zone_name = self._display_zone or "UTC"
        self._set_zone(self.range_zone_box, zone_name)
        self._set_zone(self.time_zone_box, zone_name)
        zone = ZoneInfo(zone_name)
        today = datetime.now(UTC).astimezone(zone).date()
        first = _local_day(f.start, zone) if f.start else today - timedelta(days=30)
        last = _local_day(f.end - timedelta(microseconds=1), zone) if f.end else today
        self.from_edit.setDate(QDate(first.year, first.month, first.day))
        self.to_edit.setDate(QDate(last.year, last.month, last.day))
        exact = (f.start is not None and not _is_midnight(f.start, zone)) or (
            f.end is not None and not _is_midnight(f.end, zone)
        )
        if exact and f.start is not None and f.end is not None:
            self.exact_range_box.setText(
                "Exactly the browser's range: "
                f"{f.start.astimezone(zone):%Y-%m-%d %H:%M:%S} to "
                f"{f.end.astimezone(zone):%Y-%m-%d %H:%M:%S} (end excluded)"
            )
            self.exact_range_box.setChecked(True)
            self.exact_range_box.show()
            self._on_exact_toggled(True)
        self.members_edit.setText(", ".join(f.values("user")))
        wanted = set(f.values("category"))
        for category, box in self.category_boxes.items():
            box.setChecked(category.value in wanted)
        others = EventFilter(
            terms=self._other_terms(), text=f.text.strip(), include_log_access=f.include_log_access
        )
        if others.terms or others.text or not others.include_log_access:
            self.keep_other_box.setText(
                "Also the browser's other filters: " + format_filter(others, zone)
            )
            self.keep_other_box.show()
        self._suggest_name()

    def _other_terms(self) -> tuple[Term, ...]:
        return tuple(
            t for t in self._initial.terms if not (t.field in ("user", "category") and not t.negate)
        )

    @staticmethod
    def _set_zone(box: QComboBox, zone: str) -> None:
        index = box.findText(zone)
        if index < 0:
            box.addItem(zone)
            index = box.count() - 1
        box.setCurrentIndex(index)

    def _on_exact_toggled(self, exact: bool) -> None:
        for widget in (self.range_preset_box, self.from_edit, self.to_edit):
            widget.setEnabled(not exact)

    # -- range presets -------------------------------------------------------------------------

    def _today(self) -> date:
        try:
            zone = zone_info(self.range_zone_box.currentText().strip())
        except UserError:
            zone = ZoneInfo("UTC")
        return datetime.now(UTC).astimezone(zone).date()

    def _on_range_preset(self, *_args: object) -> None:
        key = self.range_preset_box.currentData()
        preset = next((p for p in RANGE_PRESETS if p.key == key), None)
        if preset is None:
            self.from_edit.setFocus()
            return
        first, last = preset.dates(self._today())
        self.from_edit.setDate(QDate(first.year, first.month, first.day))
        self.to_edit.setDate(QDate(last.year, last.month, last.day))

    def _show_range_preset(self, *_args: object) -> None:
        """The preset the typed days are, or "Days chosen below"."""
        key = _CHOSEN_DAYS
        if self.from_edit.is_day() and self.to_edit.is_day():
            days = (self.from_edit.date().toPython(), self.to_edit.date().toPython())
            today = self._today()
            key = next((p.key for p in RANGE_PRESETS if p.dates(today) == days), _CHOSEN_DAYS)
        self.range_preset_box.setCurrentIndex(self.range_preset_box.findData(key))

    def _load_read_position(self) -> None:
        read_position = self._read_position
        assert read_position is not None
        job = Job(lambda _control: read_position(), name="export read server")
        job.succeeded.connect(self._on_read_position)
        job.failed.connect(lambda message: self._on_read_position(None, message))
        job.start()

    def _on_read_position(self, position: ServerPosition | None, error: str = "") -> None:
        if self.read_server_label is None or not shiboken6.isValid(self.read_server_label):
            return
        if position is None:
            self.read_server_label.setText(f"Read server: {error or 'the primary'}")
        else:
            self.read_server_label.setText(f"Read server: {position.lag_text}")

    # -- workspaces ----------------------------------------------------------------------------

    def _load_workspaces(self) -> None:
        engine, identity = self._engine, self._identity
        job = Job(lambda control: list_workspaces(engine, identity), name="export workspaces")
        job.succeeded.connect(self._on_workspaces)
        job.failed.connect(self._show_error)
        job.start()

    def _on_workspaces(self, workspaces: list[WorkspaceInfo]) -> None:
        self.workspaces = list(workspaces)
        self.workspace_box.blockSignals(True)
        self.workspace_box.clear()
        for workspace in self.workspaces:
            self.workspace_box.addItem(workspace.label, workspace.id)
        index = self.workspace_box.findData(self._initial_workspace_id)
        self.workspace_box.setCurrentIndex(max(index, 0) if self.workspaces else -1)
        self.workspace_box.blockSignals(False)
        if self._display_zone is None and self.current_workspace() is not None:
            self._on_workspace_changed()
        self._suggest_name()
        self._schedule_count()
        self.workspaces_loaded.emit()

    def current_workspace(self) -> WorkspaceInfo | None:
        workspace_id = self.workspace_box.currentData()
        return next((w for w in self.workspaces if w.id == workspace_id), None)

    def _on_workspace_changed(self, *_args: object) -> None:
        workspace = self.current_workspace()
        if workspace is not None:
            # The ticket's days are the clinic's days.
            self._set_zone(self.range_zone_box, workspace.timezone)
            self._set_zone(self.time_zone_box, workspace.timezone)
        self._suggest_name()
        self._schedule_count()

    # -- the filter and the request ------------------------------------------------------------

    def event_filter(self) -> EventFilter:
        """The filter the form describes; :class:`UserError` when it is incomplete."""
        workspace = self.current_workspace()
        if workspace is None:
            raise FormProblem("choose a workspace", self.workspace_box)
        zone = self.range_zone_box.currentText().strip()
        try:
            zone_info(zone)
        except UserError as error:
            raise FormProblem(str(error), self.range_zone_box) from None
        if self.exact_range_box.isVisible() and self.exact_range_box.isChecked():
            start, end = self._initial.start, self._initial.end
        else:
            for edit, which in ((self.from_edit, "first"), (self.to_edit, "last")):
                if not edit.is_day():
                    typed = edit.text().strip()
                    raise FormProblem(
                        f"“{typed}” is not a day: type the {which} day as YYYY-MM-DD"
                        if typed
                        else f"type the {which} day as YYYY-MM-DD",
                        edit,
                    )
            first: date = self.from_edit.date().toPython()  # type: ignore[assignment]
            last: date = self.to_edit.date().toPython()  # type: ignore[assignment]
            if last < first:
                raise FormProblem(
                    f"the range ends ({last}) before it starts ({first})", self.to_edit
                )
            start, end = day_range(first, last, zone)
        terms: list[Term] = []
        for email in self.members_edit.text().replace(";", ",").split(","):
            if email.strip():
                terms.append(Term("user", email.strip()))
        for category, box in self.category_boxes.items():
            if box.isChecked():
                terms.append(Term("category", category.value))
        text, include_log_access = "", True
        if self.keep_other_box.isVisible() and self.keep_other_box.isChecked():
            terms.extend(self._other_terms())
            text, include_log_access = self._initial.text, self._initial.include_log_access
        return EventFilter(
            workspace_ids=(workspace.id,),
            start=start,
            end=end,
            terms=tuple(terms),
            text=text,
            include_log_access=include_log_access,
        )

    def columns(self) -> tuple[str, ...]:
        keys = []
        for row in range(self.column_list.count()):
            item = self.column_list.item(row)
            if item.checkState() == Qt.CheckState.Checked:
                keys.append(str(item.data(Qt.ItemDataRole.UserRole)))
        return tuple(keys)

    def build_request(self, *, overwrite: bool = False) -> ExportRequest:
        event_filter = self.event_filter()
        ticket = self.ticket_edit.text().strip()
        if self._identity.role is Role.SUPPORT and not ticket:
            raise FormProblem("enter the ticket id of the export request", self.ticket_edit)
        columns = self.columns()
        if not columns:
            raise FormProblem("choose at least one column", self.column_list)
        time_zone = self.time_zone_box.currentText().strip()
        try:
            zone_info(time_zone)
        except UserError as error:
            raise FormProblem(str(error), self.time_zone_box) from None
        profile = profiles.by_key(str(self.profile_box.currentData()))
        problem = profile_problem(profile, resolve(columns))
        if problem and self.file_format() is FileFormat.CSV:
            raise FormProblem(problem, self.profile_box)
        output = self._output_path()
        return ExportRequest(
            event_filter=event_filter,
            output=output,
            time_zone=time_zone,
            range_zone=self.range_zone_box.currentText().strip(),
            columns=columns,
            profile=profile,
            ticket=ticket,
            overwrite=overwrite,
            file_format=self.file_format(),
        )

    def file_format(self) -> FileFormat:
        return FileFormat(str(self.format_box.currentData()))

    def _on_format_changed(self, *_args: object) -> None:
        """The profile is for CSV only; the title and the file name's suffix follow the format."""
        file_format = self.file_format()
        if self.windowTitle().startswith("Export activity to "):  # not a request's own title
            self.setWindowTitle(f"Export activity to {file_format.label}")
        self.profile_box.setEnabled(file_format is FileFormat.CSV)
        text = self.output_edit.text().strip()
        if text:
            self.output_edit.setText(str(_with_suffix(Path(text), file_format)))

    def _output_path(self) -> Path:
        path_text = self.output_edit.text().strip()
        if not path_text:
            raise FormProblem("choose where to save the file", self.output_edit)
        return _with_suffix(Path(path_text).expanduser(), self.file_format()).absolute()

    def request(self) -> ExportRequest | None:
        """The request the user started (None unless accepted)."""
        return self._accepted_request

    # -- row count -----------------------------------------------------------------------------

    def _schedule_count(self, *_args: object) -> None:
        self.last_count = None
        self.counter.schedule()

    def _filter_to_count(self) -> EventFilter | None:
        self._refresh_problem()
        try:
            return self.event_filter()
        except (UserError, ValueError):
            return None

    def _on_counted(self, count: int | None) -> None:
        self.last_count = count
        self.count_changed.emit(count)

    # -- file name -----------------------------------------------------------------------------

    def _on_name_edited(self, _text: str) -> None:
        self._name_edited = True

    def _suggest_name(self, *_args: object) -> None:
        if self._name_edited or not (self.from_edit.is_day() and self.to_edit.is_day()):
            return
        workspace = self.current_workspace()
        slug = workspace.slug if workspace else "activity"
        first = self.from_edit.date().toString("yyyy-MM-dd")
        last = self.to_edit.date().toString("yyyy-MM-dd")
        ticket = _UNSAFE_IN_NAME.sub("-", self.ticket_edit.text().strip()).strip("-")
        name = f"{slug}_{first}_{last}" + (f"_{ticket}" if ticket else "")
        name += self.file_format().suffix
        self.output_edit.setText(str(self._folder / name))

    def _browse(self) -> None:
        file_format = self.file_format()
        path, _filter = QFileDialog.getSaveFileName(
            self,
            "Save the export as",
            self.output_edit.text(),
            f"{file_format.label} files (*{file_format.suffix})",
        )
        if path:
            self._name_edited = True
            self.output_edit.setText(path)

    # -- start ---------------------------------------------------------------------------------

    def _show_error(self, message: str) -> None:
        self.show_error(_sentence(message))

    def problem(self) -> FormProblem | None:
        """What keeps the form from starting now (the range's problems even before Start is
        pressed; a missing ticket, column or file name once it has been)."""
        try:
            if self._start_tried:
                self.build_request()
            else:
                self.event_filter()
        except FormProblem as problem:
            return problem
        except (UserError, ValueError) as error:
            return FormProblem(str(error))
        return None

    def _refresh_problem(self, *_args: object) -> None:
        """Show the form's one current problem; clear it once it is fixed."""
        if not self.workspaces and not self._start_tried:
            return  # still loading: "choose a workspace" would be premature
        problem = self.problem()
        if problem is None:
            self.clear_error()
        else:
            self._show_error(str(problem))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            watched is self.output_edit
            and event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
        ):
            with contextlib.suppress(FormProblem):
                self._name_edited = True
                self.output_edit.setText(str(self._output_path()))
            return True
        return super().eventFilter(watched, event)

    def submit(self) -> None:
        """Start export: the request, once the form describes one and any file it would
        replace may go."""
        self._start_tried = True
        try:
            request = self.build_request()
        except FormProblem as problem:
            self._show_error(str(problem))
            if problem.field is not None and problem.field.isEnabled():
                problem.field.setFocus(Qt.FocusReason.OtherFocusReason)
                if isinstance(problem.field, QLineEdit):
                    problem.field.selectAll()
            return
        except (UserError, ValueError) as error:
            self._show_error(str(error))
            return
        existing = [p for p in (request.output, manifest_path_for(request.output)) if p.exists()]
        if existing:
            answer = QMessageBox.question(
                self,
                "Replace the file?",
                f"{existing[0]} already exists. Replace it?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No,
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
            request = self.build_request(overwrite=True)
        self._accepted_request = request
        self.accept()

    def done(self, result: int) -> None:
        self.counter.stop()
        super().done(result)


def _with_suffix(path: Path, file_format: FileFormat) -> Path:
    """``path`` ending in the format's suffix: another format's suffix is replaced, any other
    name gets it added (``oct.2025`` becomes ``oct.2025.csv``)."""
    if path.suffix.lower() == file_format.suffix:
        return path
    if path.suffix.lower() in {f.suffix for f in FileFormat}:
        return path.with_suffix(file_format.suffix)
    return path.with_name(path.name + file_format.suffix)


def _sentence(message: str) -> str:
    """A message as a sentence: capital first letter, full stop."""
    text = message.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?…" else text + "."
