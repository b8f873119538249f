"""The insights charts as one dashboard: laid out together, filled from one computation,
drawn into a PNG or PDF with a line naming what they cover."""

from __future__ import annotations

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QMarginsF, QPoint, Qt, Signal
from PySide6.QtGui import QImage, QPageLayout, QPageSize, QPainter, QPdfWriter
from PySide6.QtWidgets import QGridLayout, QLabel, QWidget

from nvadmin.analysis.insights import Insights
from nvadmin.ui.insights_charts import (
    ActivityChart,
    ApiChart,
    HeatMap,
    InsightChart,
    MemberChart,
    SignInChart,
)

HEADER_HEIGHT = 56  # the line naming the filter, range and zone above the exported charts


class ChartsDashboard(QWidget):
    """``filter_requested(EventFilter)``: a bar, segment or cell of any chart was clicked."""

    filter_requested = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.activity = ActivityChart(self)
        self.sign_ins = SignInChart(self)
        self.members = MemberChart(self)
        self.api = ApiChart(self)
        self.heat = HeatMap(self)
        self.charts: list[InsightChart | HeatMap] = [
            self.activity,
            self.sign_ins,
            self.members,
            self.api,
            self.heat,
        ]
        self.empty_label = QLabel("", self)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        grid = QGridLayout(self)
        grid.addWidget(self.empty_label, 0, 0, 1, 2)
        grid.addWidget(self.activity, 1, 0, 1, 2)
        grid.addWidget(self.sign_ins, 2, 0)
        grid.addWidget(self.heat, 2, 1)
        grid.addWidget(self.members, 3, 0)
        grid.addWidget(self.api, 3, 1)
        grid.setRowStretch(1, 3)
        grid.setRowStretch(2, 2)
        grid.setRowStretch(3, 3)
        self.empty_label.hide()
        for chart in self.charts:
            chart.filter_requested.connect(self.filter_requested)

    def show_insights(self, insights: Insights) -> None:
        for chart in self.charts:
            chart.show_insights(insights)  # type: ignore[union-attr]
        self.empty_label.setText(
            "No events match this filter and range." if not insights.total else ""
        )
        self.empty_label.setVisible(not insights.total)

    def reset(self) -> None:
        """Nothing shown (the session locked)."""
        for chart in self.charts:
            if isinstance(chart, HeatMap):
                chart.show_insights(None)
            else:
                chart.reset()

    def render_with_header(self, header: str) -> QImage:
        """The charts under ``header`` (which names the filter, range and time zone)."""
        size = self.size()
        image = QImage(size.width(), size.height() + HEADER_HEIGHT, QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.white)
        painter = QPainter(image)
        painter.setPen(Qt.GlobalColor.black)
        font = painter.font()
        font.setPointSize(10)
        painter.setFont(font)
        painter.drawText(
            8, 4, size.width() - 16, HEADER_HEIGHT - 8, int(Qt.TextFlag.TextWordWrap), header
        )
        self.render(painter, QPoint(0, HEADER_HEIGHT))
        painter.end()
        return image


def encode(image: QImage, *, pdf: bool, title: str) -> bytes:
    """``image`` as PNG bytes, or as a landscape A4 PDF page titled ``title``."""
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if pdf:
        writer = QPdfWriter(buffer)
        writer.setTitle(title)
        writer.setPageSize(QPageSize(QPageSize.PageSizeId.A4))
        writer.setPageOrientation(QPageLayout.Orientation.Landscape)
        writer.setPageMargins(QMarginsF(10, 10, 10, 10), QPageLayout.Unit.Millimeter)
        writer.setResolution(150)
        painter = QPainter(writer)
        target = painter.viewport()
        scaled = image.size().scaled(target.size(), Qt.AspectRatioMode.KeepAspectRatio)
        painter.drawImage(
            target.x(),
            target.y(),
            image.scaled(
                scaled,
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            ),
        )
        painter.end()
    else:
        image.save(buffer, "PNG")  # type: ignore[call-overload]  # a QIODevice is accepted
    buffer.close()
    return bytes(data.data())
