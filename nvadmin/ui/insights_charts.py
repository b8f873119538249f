"""The insights charts: QtCharts views over an :class:`Insights` result, and the hours-of-week
heat map. Each chart emits ``filter_requested(EventFilter)`` when a bar, segment or cell is
clicked; the filter is exactly the events that bar counts."""

from __future__ import annotations

import math

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
from PySide6.QtCore import QEvent, QMargins, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QCursor,
    QFont,
    QFontMetricsF,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QResizeEvent,
)
from PySide6.QtWidgets import QGraphicsSimpleTextItem, QSizePolicy, QToolTip, QWidget

from nvadmin.analysis.insights import WEEKDAYS, Insights
from nvadmin.db.taxonomy import CATEGORY_LABELS, Category
from nvadmin.query.filters import EventFilter
from nvadmin.query.paging import EventCount
from nvadmin.ui.palette import (
    CHART_CATEGORY_COLOURS,
    FAILED,
    SUCCEEDED,
    UNKNOWN,
    heat_colour,
    status_colour,
    tones,
)

CATEGORY_COLOURS = CHART_CATEGORY_COLOURS
# A bar's label is shortened to this many characters at most (the tooltip has it whole).
LABEL_CHARACTERS = 22
# Height given to each bar of the horizontal charts, so every name has a line of its own.
ROW_HEIGHT = 26  # a label's box is its line plus margins: less and Qt draws "…"
NO_DATA = "No data"
MIN_CHART_HEIGHT = 240


def category_label(category: str) -> str:
    try:
        return CATEGORY_LABELS[Category(category)]
    except ValueError:
        return category


def share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "—"


def elide(label: str, limit: int = LABEL_CHARACTERS) -> str:
    """Shorten a label at a word boundary where possible: "Dr. Maximilian Oberst…"."""
    if len(label) <= limit:
        return label
    cut = label[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip() + "…"


class InsightChart(QChartView):
    """A chart view whose clicks become filters, coloured from the palette's tones, saying
    "No data" when its result is empty and turning its time labels upright when they would
    not fit side by side."""

    filter_requested = Signal(object)  # EventFilter

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        chart = QChart()
        chart.setTitle(title)
        chart.setAnimationOptions(QChart.AnimationOption.NoAnimation)
        chart.legend().setAlignment(Qt.AlignmentFlag.AlignBottom)
        chart.setMargins(QMargins(4, 4, 4, 4))
        super().__init__(chart, parent)
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setMinimumSize(QSize(340, MIN_CHART_HEIGHT))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAccessibleName(title)
        self.title = title
        self.insights: Insights | None = None
        self.tips: list[str] = []  # what hovering each bar says, for the accessible description
        self.empty_text = QGraphicsSimpleTextItem(NO_DATA)
        font = QFont(self.font())
        font.setPointSizeF(font.pointSizeF() * 1.3)
        self.empty_text.setFont(font)
        self.scene().addItem(self.empty_text)
        self.empty_text.hide()
        self._time_axis: QBarCategoryAxis | None = None
        self._time_labels: list[str] = []
        self._paint_chart()

    def show_insights(self, insights: Insights) -> None:
        self.insights = insights
        self.reset()
        self.tips = []
        if self.is_empty(insights):
            self._show_empty()
        else:
            self.empty_text.hide()
            self.draw(insights)
        self._paint_chart()
        self.setAccessibleDescription(self.describe())

    def is_empty(self, insights: Insights) -> bool:
        return insights.total == 0

    def draw(self, insights: Insights) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        """The chart in words, for screen readers: its title and every bar's tooltip."""
        title = self.chart().title()
        if not self.tips:
            return f"{title}: {NO_DATA.lower()}"
        return f"{title}. " + "; ".join(self.tips)

    def reset(self) -> None:
        chart = self.chart()
        chart.removeAllSeries()
        for axis in chart.axes():
            chart.removeAxis(axis)
        self._time_axis = None
        self._time_labels = []

    def _show_empty(self) -> None:
        self.empty_text.show()
        self.chart().legend().setVisible(False)
        self._place_empty_text()

    def _place_empty_text(self) -> None:
        area = self.chart().plotArea()
        if area.isEmpty():
            area = QRectF(self.chart().rect())
        box = self.empty_text.boundingRect()
        self.empty_text.setPos(
            area.center().x() - box.width() / 2, area.center().y() - box.height() / 2
        )

    def _tip(self, text: str) -> None:
        QToolTip.showText(QCursor.pos(), text, self)

    def _bars(self, title: str, colour: str, counts: list[int], tips: list[str]) -> QBarSet:
        """One stacked series' bars, each with its tooltip (kept for :meth:`describe`)."""
        bars = QBarSet(title)
        bars.setColor(QColor(colour))
        bars.setBorderColor(QColor(colour))
        bars.append([float(n) for n in counts])
        self.tips.extend(t for t, n in zip(tips, counts, strict=True) if n)
        bars.hovered.connect(lambda on, i: self._tip(tips[i]) if on else QToolTip.hideText())
        return bars

    def _paint_chart(self) -> None:
        """Background, title, legend and axes in the current theme's chart tones."""
        t = tones()
        chart = self.chart()
        text, grid = QColor(t.chart_text), QColor(t.chart_grid)
        chart.setBackgroundBrush(QBrush(QColor(t.chart_background)))
        chart.setBackgroundPen(QPen(grid))
        chart.setTitleBrush(QBrush(text))
        chart.legend().setLabelColor(text)
        for axis in chart.axes():
            axis.setLabelsColor(text)
            axis.setLinePenColor(grid)
            axis.setGridLineColor(grid)
        self.empty_text.setBrush(QBrush(text))
        self.setBackgroundBrush(QBrush(QColor(t.chart_background)))

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self._paint_chart()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit_time_labels()
        if self.empty_text.isVisible():
            self._place_empty_text()

    def _fit_time_labels(self) -> None:
        """Side by side when every label fits its bar's width, upright otherwise; with more
        bars than upright labels fit, every n-th bar is labelled (its tooltip names each)."""
        axis = self._time_axis
        if axis is None or not self._time_labels:
            return
        labels = self._time_labels
        metrics = QFontMetricsF(axis.labelsFont())
        widest = max(metrics.horizontalAdvance(label) for label in labels)
        room = max(1.0, self.chart().plotArea().width() or self.width() * 0.85) / len(labels)
        angle = 0 if widest + 6 <= room else -90
        step = 1 if angle == 0 else max(1, math.ceil((metrics.height() + 2) / room))
        # Category labels must be distinct: the unlabelled bars get distinct invisible ones.
        shown = [label if i % step == 0 else "\u200b" * (i + 1) for i, label in enumerate(labels)]
        if axis.labelsAngle() != angle:
            axis.setLabelsAngle(angle)
        # Qt gives a bottom axis about a quarter of the chart's height for its labels.
        tall_enough = MIN_CHART_HEIGHT if angle == 0 else int(4 * (widest + 14))
        if self.minimumHeight() != max(MIN_CHART_HEIGHT, tall_enough):
            self.setMinimumHeight(max(MIN_CHART_HEIGHT, tall_enough))
        if axis.categories() != shown:
            axis.setCategories(shown)

    @staticmethod
    def _value_axis(maximum: int) -> QValueAxis:
        axis = QValueAxis()
        axis.setLabelFormat("%d")
        axis.setRange(0, max(1, maximum))
        axis.applyNiceNumbers()
        return axis

    def _attach_time_axes(self, series: QStackedBarSeries, labels: list[str], top: int) -> None:
        chart = self.chart()
        axis_x = QBarCategoryAxis()
        self._time_labels = _unique(labels)
        axis_x.append(self._time_labels)
        chart.addAxis(axis_x, Qt.AlignmentFlag.AlignBottom)
        series.attachAxis(axis_x)
        axis_y = self._value_axis(top)
        chart.addAxis(axis_y, Qt.AlignmentFlag.AlignLeft)
        series.attachAxis(axis_y)
        self._time_axis = axis_x
        self._fit_time_labels()


class ActivityChart(InsightChart):
    """Events over time, stacked by category."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Activity over time, by category", parent)

    def draw(self, insights: Insights) -> None:
        series = QStackedBarSeries()
        labels = [b.label(insights.bucket) for b in insights.buckets]
        totals = [sum(column) for column in zip(*insights.activity.values(), strict=True)]
        for category, counts in insights.activity.items():
            tips = [
                f"{category_label(category)}, {labels[i]}: {EventCount(n, exact=True).label()} "
                f"({share(n, totals[i])} of that {insights.bucket.value}) — click to show them"
                for i, n in enumerate(counts)
            ]
            bars = self._bars(
                category_label(category), CATEGORY_COLOURS.get(category, UNKNOWN), counts, tips
            )
            bars.clicked.connect(
                lambda i, c=category: self.filter_requested.emit(insights.filter_for_bucket(i, c))
            )
            series.append(bars)
        series.setBarWidth(0.9)
        self.chart().addSeries(series)
        self._attach_time_axes(series, labels, _stack_max(insights.activity.values()))
        self.chart().legend().setVisible(True)
        self.chart().setTitle(f"Activity over time, by category (per {insights.bucket.value})")


class SignInChart(InsightChart):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Sign-in outcomes over time", parent)

    def is_empty(self, insights: Insights) -> bool:
        return not any(any(counts) for counts in insights.sign_ins.values())

    def draw(self, insights: Insights) -> None:
        series = QStackedBarSeries()
        labels = [b.label(insights.bucket) for b in insights.buckets]
        totals = [sum(column) for column in zip(*insights.sign_ins.values(), strict=True)]
        for key, title, colour in (
            ("succeeded", "Signed in", SUCCEEDED),
            ("failed", "Failed sign-ins", FAILED),
        ):
            counts = insights.sign_ins[key]
            tips = [
                f"{title}, {labels[i]}: {n:,} ({share(n, totals[i])} of that "
                f"{insights.bucket.value}'s sign-ins)"
                for i, n in enumerate(counts)
            ]
            bars = self._bars(title, colour, counts, tips)
            bars.clicked.connect(
                lambda i, k=key: self.filter_requested.emit(insights.filter_for_sign_ins(i, k))
            )
            series.append(bars)
        series.setBarWidth(0.9)
        self.chart().addSeries(series)
        self._attach_time_axes(series, labels, _stack_max(insights.sign_ins.values()))
        self.chart().legend().setVisible(True)


class _RankedChart(InsightChart):
    """Horizontal bars, one named row each: tall enough that every name has its line."""

    def _fit_rows(self, rows: int) -> None:
        self.setMinimumHeight(max(MIN_CHART_HEIGHT, 110 + rows * ROW_HEIGHT))
        self.updateGeometry()


class MemberChart(_RankedChart):
    """Chart views per team member, busiest at the top."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Chart views per team member", parent)

    def is_empty(self, insights: Insights) -> bool:
        return not insights.members

    def draw(self, insights: Insights) -> None:
        members = list(reversed(insights.members))  # the axis draws bottom-up
        series = QHorizontalBarSeries()
        bars = QBarSet("Chart views")
        bars.setColor(QColor(CATEGORY_COLOURS[Category.CHART_VIEWS.value]))
        bars.append([float(m.count) for m in members])
        bars.clicked.connect(
            lambda i: self.filter_requested.emit(insights.filter_for_member(members[i].email))
        )
        whole = insights.members_total
        tips = [
            f"{m.name} <{m.email}>: {m.count:,} chart views "
            f"({share(m.count, whole)} of all {whole:,}) — click to show them"
            for m in members
        ]
        self.tips = list(reversed(tips))
        bars.hovered.connect(lambda on, i: self._tip(tips[i]) if on else QToolTip.hideText())
        series.append(bars)
        series.setBarWidth(0.8)
        chart = self.chart()
        chart.addSeries(series)
        names = _unique([elide(m.name or m.email) for m in members])
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
        self._fit_rows(len(members))


class ApiChart(_RankedChart):
    """API requests per client, stacked by HTTP status."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("API usage by client and status", parent)

    def is_empty(self, insights: Insights) -> bool:
        return not insights.api

    def draw(self, insights: Insights) -> None:
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
            tips = [
                f"{u.client}: {n:,} requests "
                + (f"answered {status} " if status is not None else "with no status recorded ")
                + f"({share(n, u.total)} of its {u.total:,}; {u.errors:,} errors in all)"
                for u, n in zip(clients, counts, strict=True)
            ]
            self.tips.extend(t for t, n in zip(tips, counts, strict=True) if n)
            bars.hovered.connect(
                lambda on, i, tips=tips: self._tip(tips[i]) if on else QToolTip.hideText()
            )
            series.append(bars)
        series.setBarWidth(0.7)
        chart = self.chart()
        chart.addSeries(series)
        axis_y = QBarCategoryAxis()
        axis_y.append(_unique([elide(u.client) for u in clients]))
        chart.addAxis(axis_y, Qt.AlignmentFlag.AlignLeft)
        series.attachAxis(axis_y)
        axis_x = self._value_axis(max((u.total for u in clients), default=0))
        chart.addAxis(axis_x, Qt.AlignmentFlag.AlignBottom)
        series.attachAxis(axis_x)
        chart.legend().setVisible(bool(statuses))
        self._fit_rows(len(clients))


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
        self.setAccessibleName(self.title)

    def show_insights(self, insights: Insights | None) -> None:
        self.insights = insights
        self.grid = insights.heat() if insights else [[0] * 24 for _ in range(7)]
        self.setAccessibleDescription(self.summary())
        self.update()

    def summary(self) -> str:
        """The map in words: the busiest hours first (arrow keys read each cell)."""
        cells = sorted(
            ((self.grid[d][h], d, h) for d in range(7) for h in range(24) if self.grid[d][h]),
            reverse=True,
        )
        if not cells:
            return f"{self.title}: {NO_DATA.lower()}"
        busiest = "; ".join(self._describe(d, h) for _n, d, h in cells[:5])
        return f"{self.title}. Busiest: {busiest}. Arrow keys move from cell to cell."

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
        t = tones()
        text, muted = QColor(t.chart_text), QColor(t.muted_text)
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(t.chart_background))
        painter.setPen(text)
        title_font = QFont(self.font())
        title_font.setBold(True)
        painter.setFont(title_font)
        zone = f" ({self.insights.zone})" if self.insights else ""
        painter.drawText(
            QRectF(0, 4, self.width(), 20), Qt.AlignmentFlag.AlignHCenter, self.title + zone
        )
        painter.setFont(self.font())
        top = max((max(row) for row in self.grid), default=0)
        if self.insights is not None and top == 0:
            painter.setPen(text)
            painter.drawText(QRectF(self.rect()), Qt.AlignmentFlag.AlignCenter, NO_DATA)
            painter.end()
            return
        for weekday in range(7):
            label_rect = self.cell_rect(weekday, 0).adjusted(-self.LEFT, 0, 0, 0)
            label_rect.setWidth(self.LEFT - 6)
            painter.setPen(muted)
            painter.drawText(
                label_rect,
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                WEEKDAYS[weekday],
            )
            for hour in range(24):
                value = self.grid[weekday][hour]
                colour = heat_colour(value / top if top else 0.0, bool(value))
                rect = self.cell_rect(weekday, hour)
                painter.fillRect(rect.adjusted(0.5, 0.5, -0.5, -0.5), colour)
        if self.hasFocus():
            painter.setPen(QPen(QColor(t.focus), 2))
            painter.drawRect(self.cell_rect(*self.current).adjusted(1, 1, -1, -1))
        painter.setPen(QPen(muted))
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
            f"{EventCount(self.grid[weekday][hour], exact=True).label()}"
        )

    def request_cell(self, weekday: int, hour: int) -> EventFilter | None:
        """Show the events of one cell: that weekday and hour, every week of the range."""
        if self.insights is None:
            return None
        f = self.insights.filter_for_cell(weekday, hour)
        self.filter_requested.emit(f)
        return f
