"""View → Insights…: charts of the browser's current filter and the security flags of its
workspace and range, computed in background jobs (progress, cancel), clickable through to the
events in the main window, exportable (PNG/PDF, CSV), and logged as views of the log."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from html import escape
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QChildEvent,
    QEvent,
    QObject,
    QSize,
    Qt,
)
from PySide6.QtGui import (
    QAction,
    QImage,
    QKeyEvent,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)
from sqlalchemy import Engine

from nvadmin.analysis.flags.catalog import RULES
from nvadmin.analysis.flags.evaluation import evaluate, set_working_hours
from nvadmin.analysis.flags.report import Finding, FlagReport, to_csv
from nvadmin.analysis.flags.rule import Threshold
from nvadmin.analysis.insights import Bucket, Insights, compute
from nvadmin.audit import access_log
from nvadmin.db.taxonomy import LOG_VIEW
from nvadmin.files.atomic import write_file
from nvadmin.identity import Permission, StaffIdentity
from nvadmin.query.filters import EventFilter
from nvadmin.query.paging import EventCount
from nvadmin.query.search import Search, describe_scope, format_search
from nvadmin.ui.features import FeatureHost
from nvadmin.ui.insights_dashboard import ChartsDashboard, encode
from nvadmin.ui.insights_jobs import InsightsJobs
from nvadmin.ui.placement import fit_on_screen
from nvadmin.workers.jobs import Job, JobControl

log = logging.getLogger(__name__)

THRESHOLDS_KEY = "insights/thresholds"
BUCKET_CHOICES = (
    ("Automatic", None),
    ("Hours", Bucket.HOUR),
    ("Days", Bucket.DAY),
    ("Weeks", Bucket.WEEK),
)
FindingRole = Qt.ItemDataRole.UserRole + 1


class ThresholdsDialog(QDialog):
    """Every flag rule's thresholds (defaults shown) and the workspace's working hours."""

    def __init__(
        self,
        values: dict[str, dict[str, float]],
        hours: tuple[int, int] | None,
        workspace: str | None,
        may_change_hours: bool,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Flag thresholds")
        self.spins: dict[tuple[str, str], QDoubleSpinBox] = {}
        layout = QVBoxLayout(self)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        inner = QWidget()
        inner_layout = QVBoxLayout(inner)
        # The working hours are the workspace's, not a rule's: offered once, beside the first
        # rule that reads them.
        hours_offered = False
        for rule in RULES.values():
            box = QGroupBox(rule.title, inner)
            form = QFormLayout(box)
            if rule.uses_working_hours and not hours_offered:
                hours_offered = True
                if hours is None:
                    form.addRow(QLabel("Choose one workspace to see and change its working hours."))
                else:
                    self.open_spin = QSpinBox(box)
                    self.open_spin.setRange(0, 23)
                    self.open_spin.setValue(hours[0])
                    self.open_spin.setSuffix(":00")
                    self.close_spin = QSpinBox(box)
                    self.close_spin.setRange(1, 24)
                    self.close_spin.setValue(hours[1])
                    self.close_spin.setSuffix(":00")
                    for spin in (self.open_spin, self.close_spin):
                        spin.setEnabled(may_change_hours)
                    form.addRow(f"Working day starts ({workspace})", self.open_spin)
                    form.addRow("Working day ends", self.close_spin)
                    self.open_spin.setAccessibleName("Working day starts")
                    self.close_spin.setAccessibleName("Working day ends")
                    if not may_change_hours:
                        form.addRow(
                            QLabel("Only compliance staff and admins change working hours.")
                        )
            in_force = rule.values(values)  # a hand-edited setting is not trusted
            for t in rule.thresholds:
                threshold = QDoubleSpinBox(box)
                threshold.setDecimals(t.decimals)
                threshold.setRange(t.minimum, t.maximum)
                threshold.setValue(in_force[t.key])
                if t.unit:
                    threshold.setSuffix(f" {t.unit}")
                threshold.setToolTip(f"Default: {t.default:g}")
                form.addRow(f"{t.label} (default {t.default:g})", threshold)
                threshold.setAccessibleName(f"{rule.title}: {t.label}")
                self.spins[(rule.name, t.key)] = threshold
            inner_layout.addWidget(box)
        scroll.setWidget(inner)
        layout.addWidget(scroll)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok
            | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.RestoreDefaults,
            self,
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(
            self.restore_defaults
        )
        layout.addWidget(buttons)
        self.resize(520, 640)

    def restore_defaults(self) -> None:
        for (rule, key), spin in self.spins.items():
            spin.setValue(RULES[rule].threshold(key).default)

    def values(self) -> dict[str, dict[str, float]]:
        """Only the thresholds that differ from their defaults."""
        out: dict[str, dict[str, float]] = {}
        for (rule, key), spin in self.spins.items():
            default = RULES[rule].threshold(key).default
            if abs(spin.value() - default) > 1e-9:
                out.setdefault(rule, {})[key] = spin.value()
        return out

    def hours(self) -> tuple[int, int] | None:
        if not hasattr(self, "open_spin"):
            return None
        return self.open_spin.value(), self.close_spin.value()


def threshold_text(threshold: Threshold, value: float) -> str:
    """ "failed sign-ins 5", "within 10 min", "error rate 20 %": as the explanation says it."""
    if threshold.percent:
        return f"{threshold.label.lower()} {value * 100:g} %"
    unit = f" {threshold.unit}" if threshold.unit else ""
    return f"{threshold.label.lower()} {value:g}{unit}"


def events(count: int) -> str:
    """ "1 event", "2,000 events": the browser's own wording."""
    return EventCount(count, exact=True).label()


class _ViewRecord:
    """The one ``activity_log.view`` (purpose ``insights``) of a refresh, written before the
    charts or the flags read a row, whichever job asks first; the other waits for it, and
    neither reads when it could not be written. An offline case file has no log to write to."""

    def __init__(
        self,
        engine: Engine,
        read: Engine,
        identity: StaffIdentity,
        event_filter: EventFilter,
        read_only: bool,
    ) -> None:
        self._args = (engine, read, identity, event_filter)
        self._read_only = read_only
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        self._error: BaseException | None = None

    def opened(self) -> Engine:
        """The engine to read with, once the view is in the log."""
        engine, read, identity, event_filter = self._args
        if self._read_only:
            return read
        with self._lock:
            if self._error is not None:
                raise self._error
            if self._engine is None:
                try:
                    self._engine = access_log.recorded_view(
                        engine, read, identity, event_filter, "insights"
                    )
                except BaseException as error:
                    self._error = error
                    raise
            return self._engine


class InsightsWindow(QWidget):
    """Charts and flags for the main window's current filter."""

    def __init__(self, main: FeatureHost) -> None:
        super().__init__(main.widget(), Qt.WindowType.Window)
        self.main = main
        self.setObjectName("insightsWindow")
        self.setWindowTitle("Insights")
        self.insights: Insights | None = None
        self.report: FlagReport | None = None
        self.scope = ""
        self.zone = "UTC"
        self.workspace_label = ""
        self.jobs = InsightsJobs(self)

        self.header = QLabel(self)
        self.header.setWordWrap(True)
        self.header.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.bucket_box = QComboBox(self)
        for text, _bucket in BUCKET_CHOICES:
            self.bucket_box.addItem(text)
        self.bucket_box.setToolTip("Bar width of the time charts")
        self.refresh_button = QPushButton("Refresh from browser", self)
        self.thresholds_button = QPushButton("Thresholds…", self)
        self.export_charts_button = QPushButton("Export charts…", self)
        self.export_flags_button = QPushButton("Export flags (CSV)…", self)
        self.progress = QProgressBar(self)
        self.progress.setMaximumWidth(220)
        self.progress_label = QLabel(self)
        self.cancel_button = QPushButton("Cancel", self)

        self.dashboard = ChartsDashboard(self)
        d = self.dashboard
        self.activity, self.sign_ins, self.members, self.api, self.heat = (
            d.activity,
            d.sign_ins,
            d.members,
            d.api,
            d.heat,
        )
        self.charts = d.charts
        charts_scroll = QScrollArea(self)
        charts_scroll.setWidgetResizable(True)
        charts_scroll.setWidget(self.dashboard)

        self.flags_tree = QTreeWidget(self)
        self.flags_tree.setObjectName("flagsTree")
        self.flags_tree.setAccessibleName("Security flags and their findings")
        self.bucket_box.setAccessibleName("Bar width")
        self.flags_tree.setColumnCount(5)
        self.flags_tree.setHeaderLabels(
            ["Flag / subject", "Count / events", "Day", "Thresholds / detail", "Workspace"]
        )
        self.flags_tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.flags_tree.setColumnWidth(0, 330)
        self.flags_tree.setColumnWidth(1, 100)
        self.flags_tree.setColumnWidth(2, 95)
        self.flags_tree.setColumnWidth(3, 430)
        self.flags_tree.setAlternatingRowColors(True)
        self.explanation = QLabel(self)
        self.explanation.setWordWrap(True)
        self.explanation.setMinimumHeight(40)
        self.show_button = QPushButton("Show these events", self)
        self.show_button.setEnabled(False)
        self.flags_note = QLabel(self)
        self.flags_note.setObjectName("flagsNote")
        self.flags_note.setWordWrap(True)
        self.flags_note.hide()
        flags_page = QWidget(self)
        flags_layout = QVBoxLayout(flags_page)
        flags_layout.addWidget(self.flags_note)
        flags_layout.addWidget(self.flags_tree, 1)
        row = QHBoxLayout()
        row.addWidget(self.explanation, 1)
        row.addWidget(self.show_button)
        flags_layout.addLayout(row)

        self.tabs = QTabWidget(self)
        self.tabs.addTab(charts_scroll, "Charts")
        self.tabs.addTab(flags_page, "Flags")

        bar = QHBoxLayout()
        bar.addWidget(QLabel("Bars:", self))
        bar.addWidget(self.bucket_box)
        bar.addWidget(self.refresh_button)
        bar.addWidget(self.thresholds_button)
        bar.addStretch(1)
        bar.addWidget(self.export_charts_button)
        bar.addWidget(self.export_flags_button)
        # Progress on a line of its own: a long step name never widens the window.
        busy = QHBoxLayout()
        busy.addWidget(self.progress_label, 1)
        busy.addWidget(self.progress)
        busy.addWidget(self.cancel_button)
        self.progress_label.setSizePolicy(
            QSizePolicy.Policy.Ignored, self.progress_label.sizePolicy().verticalPolicy()
        )
        layout = QVBoxLayout(self)
        layout.addWidget(self.header)
        layout.addLayout(bar)
        layout.addLayout(busy)
        layout.addWidget(self.tabs, 1)

        self.dashboard.filter_requested.connect(self.show_events)
        self.refresh_button.clicked.connect(self.refresh)
        self.bucket_box.currentIndexChanged.connect(lambda _i: self.refresh(flags=False))
        self.thresholds_button.clicked.connect(self.edit_thresholds)
        self.export_charts_button.clicked.connect(self.ask_export_charts)
        self.export_flags_button.clicked.connect(self.ask_export_flags)
        self.cancel_button.clicked.connect(self.cancel)
        self.flags_tree.currentItemChanged.connect(self._on_flag_selected)
        self.flags_tree.itemActivated.connect(lambda item, _col: self.show_finding(item))
        self.show_button.clicked.connect(lambda: self.show_finding(self.flags_tree.currentItem()))
        self.jobs.busy_changed.connect(self._set_busy)
        self.jobs.progressed.connect(self._on_progress)
        self.jobs.problem.connect(lambda text, failed: self._message(text, error=failed))
        self._set_busy(False)
        fit_on_screen(self, QSize(1280, 900))

    # -- running --------------------------------------------------------------------------

    @property
    def read_only(self) -> bool:
        return self.main.context.read_only

    def thresholds(self) -> dict[str, dict[str, float]]:
        value = self.main.settings.json(THRESHOLDS_KEY, {})
        return value if isinstance(value, dict) else {}

    def refresh(self, *, flags: bool = True) -> None:
        """Recompute from the browser's current filter (charts, and flags unless told not)."""
        try:
            event_filter = self.main.current_filter()
        except Exception as error:  # a half-typed search: say so, keep the last result
            log.info("no usable browser filter for insights", exc_info=True)
            self._message(f"The browser's search cannot be used: {error}", error=True)
            return
        workspace = self.main.current_workspace()
        if event_filter.workspace_ids and workspace is not None:
            self.zone = workspace.timezone
            self.workspace_label = workspace.label
        else:
            self.zone = "UTC"
            self.workspace_label = (
                "all workspaces" if not event_filter.workspace_ids else "selected workspaces"
            )
        self.cancel()
        generation = self.jobs.outdate()
        engine, identity, zone = self.main.context.engine, self.main.identity, self.zone
        read = self.main.context.read_engine  # a standby when there is one; the view: engine
        read_only = self.read_only
        bucket = BUCKET_CHOICES[self.bucket_box.currentIndex()][1]

        view = _ViewRecord(engine, read, identity, event_filter, read_only)

        def charts(control: JobControl) -> Insights:
            return compute(
                view.opened(),
                identity,
                event_filter,
                zone,
                bucket=bucket,
                token=control.token,
                progress=control.progress,
            )

        self.jobs.start("charts", charts, generation, self._on_insights)
        if flags:
            thresholds = self.thresholds()

            def run_flags(control: JobControl) -> FlagReport:
                return evaluate(
                    view.opened(),
                    identity,
                    event_filter,
                    thresholds,
                    token=control.token,
                    progress=control.progress,
                )

            self.jobs.start("flags", run_flags, generation, self._on_report)
        self.header.setText(f"<b>{self.workspace_label}</b> — computing…")

    def cancel(self) -> None:
        self.jobs.cancel()

    def busy(self) -> bool:
        return self.jobs.busy()

    def _on_progress(self, percent: int, step: str) -> None:
        self.progress.setRange(0, 100)
        self.progress.setValue(percent)
        self.progress_label.setText(step)

    def _set_busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.progress_label.setVisible(busy)
        if busy:
            self.progress.setRange(0, 0)

    def _message(self, text: str, *, error: bool = False) -> None:
        self.main.show_message(text, error=error)
        self.progress_label.setText(text)
        self.progress_label.setVisible(True)

    # -- showing --------------------------------------------------------------------------

    def _on_insights(self, insights: Insights) -> None:
        self.insights = insights
        self.scope = describe_scope(insights.event_filter, insights.zone, self.workspace_label)
        self.header.setText(
            f"<b>{self.workspace_label}</b> — {events(insights.total)} — "
            + self.scope.split(" · ", 1)[-1]
            + f" · bars per {insights.bucket.value}"
        )
        self.dashboard.show_insights(insights)

    def _on_report(self, report: FlagReport) -> None:
        self.report = report
        tree = self.flags_tree
        tree.clear()
        total = 0
        for result in report.results:
            thresholds = ", ".join(
                threshold_text(t, result.values[t.key]) for t in result.rule.thresholds
            ) or ("working hours per workspace" if result.rule.uses_working_hours else "")
            parent = QTreeWidgetItem([result.rule.title, str(result.count), "", thresholds, ""])
            parent.setToolTip(0, result.explanation)
            parent.setData(0, FindingRole, result.explanation)
            font = parent.font(0)
            font.setBold(result.count > 0)
            parent.setFont(0, font)
            parent.setFont(1, font)
            tree.addTopLevelItem(parent)
            for finding in result.findings:
                child = QTreeWidgetItem(
                    [
                        finding.subject,
                        events(finding.events),
                        finding.day.isoformat(),
                        finding.detail,
                        finding.workspace,
                    ]
                )
                child.setData(0, FindingRole, finding)
                child.setToolTip(0, "Double-click to show these events in the browser")
                parent.addChild(child)
            parent.setExpanded(result.count > 0)
            total += result.count
        self.tabs.setTabText(1, f"Flags ({total})")
        f = report.event_filter
        narrowed = bool(f.terms or f.text.strip())
        self.flags_note.setVisible(narrowed)
        if narrowed:
            search = format_search(Search.from_filter(replace(f, start=None, end=None)))
            others = f"{report.hidden:,} other finding{'s' if report.hidden != 1 else ''}"
            self.flags_note.setText(
                f"Listing the findings with events that match the search <b>{escape(search)}</b>"
                f" — {others} in this range, not involving them. Rules always look at all of "
                "the workspace's activity."
            )

    def _on_flag_selected(self, item: QTreeWidgetItem | None, _previous: object = None) -> None:
        data = item.data(0, FindingRole) if item is not None else None
        if isinstance(data, Finding):
            rule = next(
                r for r in (self.report.results if self.report else []) if r.rule.name == data.rule
            )
            self.explanation.setText(f"{rule.explanation}\n{data.subject}: {data.detail}")
            self.show_button.setEnabled(True)
        else:
            self.explanation.setText(str(data or ""))
            self.show_button.setEnabled(False)

    def show_finding(self, item: QTreeWidgetItem | None) -> bool:
        data = item.data(0, FindingRole) if item is not None else None
        if not isinstance(data, Finding):
            return False
        self.show_events(data.event_filter)
        return True

    def show_events(self, event_filter: EventFilter) -> None:
        """Click-through: the browser shows exactly the clicked events."""
        self.main.apply_filter(event_filter)
        self.main.widget().raise_()
        self.main.widget().activateWindow()

    # -- thresholds -----------------------------------------------------------------------

    def edit_thresholds(self) -> None:
        workspace = self.main.current_workspace()
        hours = None
        if workspace is not None and self.report is not None:
            match = [w for w in self.report.workspaces if w.id == workspace.id]
            hours = (match[0].work_day_start, match[0].work_day_end) if match else None
        dialog = ThresholdsDialog(
            self.thresholds(),
            hours,
            workspace.name if workspace else None,
            self.main.identity.can(Permission.REPORTS) and not self.read_only,
            self,
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self._apply_thresholds(dialog, workspace, hours))
        dialog.open()
        self.thresholds_dialog = dialog

    def _apply_thresholds(
        self, dialog: ThresholdsDialog, workspace: Any, old: tuple[int, int] | None
    ) -> None:
        self.main.settings.set_json(THRESHOLDS_KEY, dialog.values())
        self.main.settings.sync()
        new = dialog.hours()
        if workspace is not None and new is not None and new != old:
            engine, identity = self.main.context.engine, self.main.identity
            job = Job(
                lambda _c: set_working_hours(engine, identity, workspace.id, *new),
                name="working hours",
                parent=self,
            )
            job.failed.connect(
                lambda m: self._message(f"Working hours not changed: {m}", error=True)
            )
            job.succeeded.connect(lambda _r: self.refresh())
            job.start()
        else:
            self.refresh()

    # -- exporting ------------------------------------------------------------------------

    def render_dashboard(self) -> QImage:
        """The charts with a header line naming the filter, range and time zone."""
        return self.dashboard.render_with_header(
            f"nvadmin insights — {self.scope}\nproduced by {self.main.identity.email}"
        )

    def export_charts(self, path: Path) -> None:
        """PNG or PDF (by suffix); the view is logged first, the file appears only after."""
        if self.insights is None:
            self._message("Nothing to export yet: wait for the charts.", error=True)
            return
        data = encode(
            self.render_dashboard(),
            pdf=path.suffix.lower() == ".pdf",
            title=f"nvadmin insights — {self.scope}",
        )
        self._export(path, data, self.insights.event_filter, "charts")

    def export_flags(self, path: Path) -> None:
        if self.report is None:
            self._message("Nothing to export yet: wait for the flags.", error=True)
            return
        scope = describe_scope(
            self.report.event_filter,
            self.zone,
            self.workspace_label,
        )
        data = to_csv(self.report, scope)
        self._export(path, data, self.report.event_filter, "flags")

    def _export(self, path: Path, data: bytes, event_filter: EventFilter, what: str) -> None:
        engine, identity = self.main.context.engine, self.main.identity

        read_only = self.read_only

        def work(_control: JobControl) -> Path:
            # The log says so before the file exists: no export without its view event.
            if not read_only:
                access_log.record(
                    engine,
                    identity,
                    LOG_VIEW,
                    event_filter,
                    {"purpose": "insights", "export": what, "file": path.name},
                )
            write_file(path, data)  # an ExportWriteError is a UserError: its message is shown
            return path

        job = Job(work, name=f"insights export {what}")
        job.succeeded.connect(self.jobs.alive(lambda p: self._message(f"Saved {p}")))
        job.failed.connect(self.jobs.alive(lambda m: self._message(f"Not saved: {m}", error=True)))
        self.export_job = job
        job.start()

    def ask_export_charts(self) -> None:
        name, _ = QFileDialog.getSaveFileName(
            self, "Export charts", "insights.png", "PNG image (*.png);;PDF document (*.pdf)"
        )
        if name:
            path = Path(name)
            if path.suffix.lower() not in (".png", ".pdf"):
                path = path.with_suffix(".png")
            self.export_charts(path)

    def ask_export_flags(self) -> None:
        name, _ = QFileDialog.getSaveFileName(self, "Export flags", "flags.csv", "CSV (*.csv)")
        if name:
            path = Path(name)
            self.export_flags(path if path.suffix else path.with_suffix(".csv"))

    # -- locking --------------------------------------------------------------------------

    def clear(self) -> None:
        """Forget everything shown (the session locked): nothing stays on screen."""
        self.cancel()
        self.jobs.outdate()
        self.insights = None
        self.report = None
        self.dashboard.reset()
        self.flags_tree.clear()
        self.header.setText("")
        self.explanation.setText("")
        self.hide()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        # A window of its own, not a dialog, so Qt gives it no Escape: it closes as they do.
        if event.matches(QKeySequence.StandardKey.Cancel):
            self.close()
            return
        super().keyPressEvent(event)

    def closeEvent(self, event: Any) -> None:
        self.cancel()
        super().closeEvent(event)


class _LockWatcher(QObject):
    """Clears the insights when the session's lock screen appears over the main window."""

    def __init__(self, window: QWidget, feature: InsightsFeature) -> None:
        super().__init__(window)
        self.feature = feature

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ChildPolished:
            from nvadmin.ui.lock_screen import LockScreen

            if (
                isinstance(event, QChildEvent)
                and isinstance(event.child(), LockScreen)
                and self.feature.view is not None
            ):
                self.feature.view.clear()
        return False


class InsightsFeature:
    """View → Insights… (Ctrl+Shift+I); the insights are cleared when a lock screen appears."""

    def __init__(self, host: FeatureHost) -> None:
        self.host = host
        self.view: InsightsWindow | None = None
        menu = host.menus.view
        menu.addSeparator()
        self.action = QAction("&Insights…", host.widget())
        self.action.setShortcut(QKeySequence("Ctrl+Shift+I"))
        self.action.setStatusTip("Charts and security flags for the current filter")
        self.action.triggered.connect(self.open)
        menu.addAction(self.action)
        self.watcher = _LockWatcher(host.widget(), self)
        host.widget().installEventFilter(self.watcher)

    def open(self) -> InsightsWindow:
        if self.view is None:
            self.view = InsightsWindow(self.host)
        self.view.show()
        self.view.raise_()
        self.view.refresh()
        return self.view


def install(host: FeatureHost) -> InsightsFeature:
    """View → Insights… (Ctrl+Shift+I)."""
    return InsightsFeature(host)
