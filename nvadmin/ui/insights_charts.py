"""The insights charts: QtCharts views over an :class:`Insights` result, and the hours-of-week
heat map. Each chart emits ``filter_requested(EventFilter)`` when a bar, segment or cell is
clicked; the filter is exactly the events that bar counts."""

from __future__ import annotations

from PySide6.QtCharts import (
    QBarCategoryAxis,
    QBarSet,
    QChart,
    QChartView,
    QHorizontalBarSeries,
    QHorizontalStackedBarSeries,
    QStackedBarSeries,
    QValueAxis,
)
from PySide6.QtCore import QMargins, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QCursor,
    QFont,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
)
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from nvadmin.audit.insights import WEEKDAYS, Insights
from nvadmin.audit.query import EventFilter
from nvadmin.audit.taxonomy import CATEGORY_LABELS, Category

# Colours a colour-blind reader can tell apart (Okabe-Ito), one per category.
CATEGORY_COLOURS = {
    Category.CHART_VIEWS.value: "#0072B2",
    Category.PATIENT_RECORDS.value: "#009E73",
    Category.SIGN_INS.value: "#56B4E9",
    Category.FAILED_SIGN_INS.value: "#D55E00",
    Category.API_USAGE.value: "#E69F00",
    Category.LOG_ACCESS.value: "#CC79A7",
    Category.STAFF_ACCOUNTS.value: "#999999",
}
SUCCEEDED, FAILED = "#009E73", "#D55E00"


def category_label(category: str) -> str:
    try:
        return CATEGORY_LABELS[Category(category)]
    except ValueError:
        return category


def status_colour(status: int | None) -> str:
    if status is None:
        return "#999999"
    if status < 300:
        return "#009E73" if status == 200 else "#56B4E9"
    if status < 500:
        return {429: "#E69F00", 401: "#F0E442", 404: "#CC79A7"}.get(status, "#D55E00")
    return "#B2182B"


class InsightChart(QChartView):
    """A chart view whose clicks become filters."""

    filter_requested = Signal(object)  # EventFilter

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        chart = QChart()
        chart.setTitle(title)
        chart.setAnimationOptions(QChart.AnimationOption.NoAnimation)
        chart.legend().setAlignment(Qt.AlignmentFlag.AlignBottom)
        chart.setMargins(QMargins(4, 4, 4, 4))
        super().__init__(chart, parent)
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setMinimumSize(QSize(340, 240))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.title = title

    def reset(self) -> None:
        chart = self.chart()
        chart.removeAllSeries()
        for axis in chart.axes():
            chart.removeAxis(axis)

    def _tip(self, text: str) -> None:
        QToolTip.showText(QCursor.pos(), text, self)

    @staticmethod
    def _value_axis(maximum: int) -> QValueAxis:
        axis = QValueAxis()
        axis.setLabelFormat("%d")
        axis.setRange(0, max(1, maximum))
        axis.applyNiceNumbers()
        return axis


class ActivityChart(InsightChart):
    """Events over time, stacked by category."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Activity over time, by category", parent)

    def show_insights(self, insights: Insights) -> None:
        self.reset()
        series = QStackedBarSeries()
        labels = [b.label(insights.bucket) for b in insights.buckets]
        for category, counts in insights.activity.items():
            bars = QBarSet(category_label(category))
            bars.setColor(QColor(CATEGORY_COLOURS.get(category, "#777777")))
            bars.setBorderColor(QColor(CATEGORY_COLOURS.get(category, "#777777")))
            bars.append([float(n) for n in counts])
            bars.clicked.connect(
                lambda i, c=category: self.filter_requested.emit(insights.filter_for_bucket(i, c))
            )
            bars.hovered.connect(
                lambda on, i, c=category, n=counts: (
                    self._tip(
                        f"{category_label(c)}, {labels[i]}: {n[i]:,} events — click to show them"
                    )
                    if on
                    else QToolTip.hideText()
                )
            )
            series.append(bars)
        series.setBarWidth(0.9)
        self.chart().addSeries(series)
        _attach_axes(self.chart(), series, labels, _stack_max(insights.activity.values()))
        self.chart().setTitle(f"Activity over time, by category (per {insights.bucket.value})")


class SignInChart(InsightChart):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Sign-in outcomes over time", parent)

    def show_insights(self, insights: Insights) -> None:
        self.reset()
        series = QStackedBarSeries()
        labels = [b.label(insights.bucket) for b in insights.buckets]
        for key, title, colour in (
            ("succeeded", "Signed in", SUCCEEDED),
            ("failed", "Failed sign-ins", FAILED),
        ):
            counts = insights.sign_ins[key]
            bars = QBarSet(title)
            bars.setColor(QColor(colour))
            bars.setBorderColor(QColor(colour))
            bars.append([float(n) for n in counts])
            bars.clicked.connect(
                lambda i, k=key: self.filter_requested.emit(insights.filter_for_sign_ins(i, k))
            )
            bars.hovered.connect(
                lambda on, i, t=title, n=counts: (
                    self._tip(f"{t}, {labels[i]}: {n[i]:,}") if on else QToolTip.hideText()
                )
            )
            series.append(bars)
        series.setBarWidth(0.9)
        self.chart().addSeries(series)
        _attach_axes(self.chart(), series, labels, _stack_max(insights.sign_ins.values()))
        self.chart().legend().setVisible(True)


class MemberChart(InsightChart):
    """Chart views per team member, busiest at the top."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Chart views per team member", parent)

    def show_insights(self, insights: Insights) -> None:
        self.reset()
        members = list(reversed(insights.members))  # the axis draws bottom-up
        series = QHorizontalBarSeries()
        bars = QBarSet("Chart views")
        bars.setColor(QColor(CATEGORY_COLOURS[Category.CHART_VIEWS.value]))
        bars.append([float(m.count) for m in members])
        bars.clicked.connect(
            lambda i: self.filter_requested.emit(insights.filter_for_member(members[i].email))
        )
        bars.hovered.connect(
            lambda on, i: (
                self._tip(
                    f"{members[i].name} <{members[i].email}>: {members[i].count:,} chart views"
                )
                if on
                else QToolTip.hideText()
            )
        )
        series.append(bars)
        series.setBarWidth(0.8)
        chart = self.chart()
        chart.addSeries(series)
        names = _unique([m.name or m.email for m in members])
        axis_y = QBarCategoryAxis()
        axis_y.append(names)
        chart.addAxis(axis_y, Qt.AlignmentFlag.AlignLeft)
        series.attachAxis(axis_y)
        axis_x = self._value_axis(max((m.count for m in members), default=0))
        chart.addAxis(axis_x, Qt.AlignmentFlag.AlignBottom)
        series.attachAxis(axis_x)
        chart.legend().setVisible(False)
        shown = len(insights.members)
        title = "Chart views per team member"
        if insights.members_count > shown:
            title += f" (top {shown} of {insights.members_count})"
        chart.setTitle(title)


class ApiChart(InsightChart):
    """API requests per client, stacked by HTTP status."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("API usage by client and status", parent)

    def show_insights(self, insights: Insights) -> None:
        self.reset()
        clients = list(reversed(insights.api))
        statuses = sorted({s for u in clients for s in u.statuses}, key=lambda s: (s is None, s))
        series = QHorizontalStackedBarSeries()
        for status in statuses:
            bars = QBarSet(str(status) if status is not None else "unknown")
            bars.setColor(QColor(status_colour(status)))
            bars.setBorderColor(QColor(status_colour(status)))
            counts = [u.statuses.get(status, 0) for u in clients]
            bars.append([float(n) for n in counts])
            bars.clicked.connect(
                lambda i, s=status: self.filter_requested.emit(
                    insights.filter_for_status(clients[i].client, s)
                )
            )
            bars.hovered.connect(
                lambda on, i, s=status, n=counts: (
                    self._tip(
                        f"{clients[i].client}: {n[i]:,} requests "
                        + (f"answered {s} " if s is not None else "with no status recorded ")
                        + f"({clients[i].errors:,} errors of {clients[i].total:,} in all)"
                    )
                    if on
                    else QToolTip.hideText()
                )
            )
            series.append(bars)
        series.setBarWidth(0.7)
        chart = self.chart()
        chart.addSeries(series)
        axis_y = QBarCategoryAxis()
        axis_y.append(_unique([u.client for u in clients]))
        chart.addAxis(axis_y, Qt.AlignmentFlag.AlignLeft)
        series.attachAxis(axis_y)
        axis_x = self._value_axis(max((u.total for u in clients), default=0))
        chart.addAxis(axis_x, Qt.AlignmentFlag.AlignBottom)
        series.attachAxis(axis_x)
        chart.legend().setVisible(bool(statuses))


def _unique(labels: list[str]) -> list[str]:
    """Category axes need distinct labels: two members with one name get their number."""
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return out


def _stack_max(series: object) -> int:
    columns = [list(s) for s in series]  # type: ignore[attr-defined]
    if not columns:
        return 0
    return max((sum(values) for values in zip(*columns, strict=True)), default=0)


def _attach_axes(chart: QChart, series: QStackedBarSeries, labels: list[str], top: int) -> None:
    axis_x = QBarCategoryAxis()
    axis_x.append(_unique(labels))
    if len(labels) > 14:
        axis_x.setLabelsAngle(-90)
        font = QFont(axis_x.labelsFont())
        font.setPointSizeF(max(6.0, font.pointSizeF() - 2))
        axis_x.setLabelsFont(font)
    chart.addAxis(axis_x, Qt.AlignmentFlag.AlignBottom)
    series.attachAxis(axis_x)
    axis_y = InsightChart._value_axis(top)
    chart.addAxis(axis_y, Qt.AlignmentFlag.AlignLeft)
    series.attachAxis(axis_y)


class HeatMap(QWidget):
    """Busiest hours of the week: 7 rows x 24 columns, darker is busier. Clicking a cell (or
    Enter on the cell chosen with the arrow keys) shows its events: that weekday and hour,
    every week of the range."""

    filter_requested = Signal(object)  # EventFilter

    LEFT, TOP, BOTTOM = 44, 30, 22

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = "Busiest hours of the week"
        self.insights: Insights | None = None
        self.grid = [[0] * 24 for _ in range(7)]
        self.current = (0, 9)  # the cell the keyboard is on
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(QSize(340, 220))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def show_insights(self, insights: Insights | None) -> None:
        self.insights = insights
        self.grid = insights.heat() if insights else [[0] * 24 for _ in range(7)]
        self.update()

    def cell_rect(self, weekday: int, hour: int) -> QRectF:
        width = (self.width() - self.LEFT - 8) / 24
        height = (self.height() - self.TOP - self.BOTTOM) / 7
        return QRectF(self.LEFT + hour * width, self.TOP + weekday * height, width, height)

    def cell_at(self, point: QPointF) -> tuple[int, int] | None:
        for weekday in range(7):
            for hour in range(24):
                if self.cell_rect(weekday, hour).contains(point):
                    return weekday, hour
        return None

    def paintEvent(self, _event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("white"))
        painter.setPen(QColor("#222222"))
        title_font = QFont(self.font())
        title_font.setBold(True)
        painter.setFont(title_font)
        zone = f" ({self.insights.zone})" if self.insights else ""
        painter.drawText(
            QRectF(0, 4, self.width(), 20), Qt.AlignmentFlag.AlignHCenter, self.title + zone
        )
        painter.setFont(self.font())
        top = max((max(row) for row in self.grid), default=0)
        for weekday in range(7):
            label_rect = self.cell_rect(weekday, 0).adjusted(-self.LEFT, 0, 0, 0)
            label_rect.setWidth(self.LEFT - 6)
            painter.setPen(QColor("#444444"))
            painter.drawText(
                label_rect,
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                WEEKDAYS[weekday],
            )
            for hour in range(24):
                value = self.grid[weekday][hour]
                share = value / top if top else 0.0
                # White to dark blue; a non-zero cell is never pure white.
                colour = QColor.fromRgbF(
                    1 - 0.9 * share**0.6 - (0.05 if value else 0),
                    1 - 0.65 * share**0.6 - (0.03 if value else 0),
                    1 - 0.3 * share**0.6,
                )
                rect = self.cell_rect(weekday, hour)
                painter.fillRect(rect.adjusted(0.5, 0.5, -0.5, -0.5), colour)
        if self.hasFocus():
            painter.setPen(QPen(QColor("#d55e00"), 2))
            painter.drawRect(self.cell_rect(*self.current).adjusted(1, 1, -1, -1))
        painter.setPen(QPen(QColor("#444444")))
        for hour in range(0, 24, 3):
            rect = self.cell_rect(6, hour)
            painter.drawText(
                QRectF(rect.left(), rect.bottom() + 2, rect.width() * 3, self.BOTTOM - 4),
                Qt.AlignmentFlag.AlignLeft,
                f"{hour:02d}:00",
            )
        painter.end()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        cell = self.cell_at(event.position())
        if cell is None:
            QToolTip.hideText()
            return
        weekday, hour = cell
        value = self.grid[weekday][hour]
        QToolTip.showText(
            event.globalPosition().toPoint(),
            self._describe(weekday, hour) + (" — click to show them" if value else ""),
            self,
        )

    def mousePressEvent(self, event: QMouseEvent) -> None:
        cell = self.cell_at(event.position())
        if cell is not None:
            self.current = cell
            self.update()
            self.request_cell(*cell)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        moves = {
            int(Qt.Key.Key_Left): (0, -1),
            int(Qt.Key.Key_Right): (0, 1),
            int(Qt.Key.Key_Up): (-1, 0),
            int(Qt.Key.Key_Down): (1, 0),
        }
        key = int(event.key())  # any key code, not only those Qt.Key names
        if key in moves:
            d_day, d_hour = moves[key]
            self.current = ((self.current[0] + d_day) % 7, (self.current[1] + d_hour) % 24)
            self.update()
            weekday, hour = self.current
            self.setToolTip(self._describe(weekday, hour))
            self.setAccessibleDescription(self._describe(weekday, hour))
            return
        if key in (int(Qt.Key.Key_Return), int(Qt.Key.Key_Enter), int(Qt.Key.Key_Space)):
            self.request_cell(*self.current)
            return
        super().keyPressEvent(event)

    def _describe(self, weekday: int, hour: int) -> str:
        return (
            f"{WEEKDAYS[weekday]} {hour:02d}:00-{hour + 1:02d}:00: "
            f"{self.grid[weekday][hour]:,} events"
        )

    def request_cell(self, weekday: int, hour: int) -> EventFilter | None:
        """Show the events of one cell: that weekday and hour, every week of the range."""
        if self.insights is None:
            return None
        f = self.insights.filter_for_cell(weekday, hour)
        self.filter_requested.emit(f)
        return f
