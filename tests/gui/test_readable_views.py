"""Charts name their bars and say "No data" when empty; the table and detail pane show
labels, not slugs, and no field twice; View → Theme switches every colour the app chooses."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from PySide6.QtCharts import QAbstractBarSeries, QBarCategoryAxis
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QFontMetricsF, QImage, QPalette
from PySide6.QtWidgets import QApplication

from nvadmin.context import Context
from nvadmin.demo.seed import SeedPlan, seed
from nvadmin.query import fields
from nvadmin.query.filters import EventFilter
from nvadmin.ui import settings as keys
from nvadmin.ui.activity_model import COLUMNS, WIDTH_SAMPLES, column_of
from nvadmin.ui.insights_charts import InsightChart
from nvadmin.ui.main_window import MainWindow
from tests.gui.windows import open_main_window as open_window

END = date(2026, 11, 1)
COLUMNS_KEYS = [f.key for f in COLUMNS]


@pytest.fixture
def context(sqlite_db_url: str) -> Iterator[Context]:
    ctx = Context.create(sqlite_db_url)
    # Enough clinics and staff that more than 20 team members view charts.
    seed(ctx.engine, SeedPlan(workspaces=5, events=15_000, seed=3, end=END))
    yield ctx
    ctx.dispose()


@pytest.fixture
def restore_theme(qapp: QApplication) -> Iterator[None]:
    from nvadmin.ui import palette
    from nvadmin.ui.palette import Theme

    original = QApplication.palette()
    yield
    palette.apply_theme(Theme.SYSTEM)
    QApplication.setPalette(original)


def open_insights(qtbot, window: MainWindow, f: EventFilter):  # type: ignore[no-untyped-def]
    window.apply_filter(f)
    qtbot.waitUntil(lambda: not window.model.loading)
    view = window.features.insights.open()
    qtbot.waitUntil(lambda: view.insights is not None)
    qtbot.waitUntil(lambda: not view.busy())
    view.resize(1240, 680)
    qtbot.waitExposed(view)
    return view


def category_axis(chart: InsightChart) -> QBarCategoryAxis:
    return next(a for a in chart.chart().axes() if isinstance(a, QBarCategoryAxis))


def room_per_label(chart: InsightChart) -> tuple[float, float, float]:
    """(room for each label along the axis, room across it, the font's line height)."""
    axis = category_axis(chart)
    area = chart.chart().plotArea()
    line = QFontMetricsF(axis.labelsFont()).height()
    if axis.alignment() == Qt.AlignmentFlag.AlignLeft:  # names down the left edge
        return area.height() / axis.count(), area.left(), line
    return area.width() / axis.count(), chart.chart().rect().bottom() - area.bottom(), line


def widest(axis: QBarCategoryAxis) -> float:
    metrics = QFontMetricsF(axis.labelsFont())
    return max(metrics.horizontalAdvance(label) for label in axis.categories())


def last_month(context: Context) -> EventFilter:
    window_end = datetime.combine(END, datetime.min.time(), UTC)
    return EventFilter(workspace_ids=(), start=window_end - timedelta(days=60), end=window_end)


def test_member_and_week_labels_are_readable_and_bars_have_tooltips(qtbot, context) -> None:  # type: ignore[no-untyped-def]
    window = open_window(qtbot, context)
    view = open_insights(qtbot, window, last_month(context))
    insights = view.insights
    assert insights.members_count > len(insights.members) == 20
    view.tabs.setCurrentIndex(0)
    scroll = view.tabs.widget(0)
    scroll.ensureWidgetVisible(view.members)
    qtbot.waitUntil(lambda: view.members.isVisible())
    # Qt draws "…" for a label with less room than its text: every name has a line of its
    # own, and room beside the bars for the longest (shortened) name.
    names = category_axis(view.members)
    along, across, line = room_per_label(view.members)
    assert along >= line + 8, (along, line)  # a label's box has margins round its line
    assert across >= widest(names), (across, widest(names))
    assert all(len(label) <= 23 for label in names.categories())
    for member in insights.members:
        shown = [label.rstrip("…") for label in names.categories()]
        assert any((member.name or member.email).startswith(label) for label in shown)

    # Week labels side by side when they fit, upright otherwise: never "w…".
    weeks = category_axis(view.sign_ins)
    along, across, line = room_per_label(view.sign_ins)
    labelled = [c for c in weeks.categories() if c.strip("\u200b")]
    step = weeks.count() / len(labelled)
    assert labelled[0] == view.insights.buckets[0].label(view.insights.bucket)
    if weeks.labelsAngle() == 0:
        assert along >= widest(weeks), (along, widest(weeks))
    else:
        assert along * step >= line and across >= widest(weeks) + 8, (along, across, step)

    # Hovering the busiest member's bar: name, count and share of all chart views.
    chart = view.members.chart()
    series = next(s for s in chart.series() if isinstance(s, QAbstractBarSeries))
    top = len(insights.members) - 1
    value = series.barSets()[0].at(top)
    point = view.members.mapFromScene(chart.mapToPosition(QPointF(value / 2, top), series))
    busiest = insights.members[0]
    share = f"{100 * busiest.count / insights.members_total:.1f}%"
    tip = view.members.tips[0]
    assert busiest.name in tip and f"{busiest.count:,}" in tip and share in tip
    assert point.x() > 0  # the bar the tooltip belongs to is on screen
    assert busiest.name in view.members.accessibleDescription()


def test_empty_charts_say_no_data_instead_of_zero_ticks(qtbot, context) -> None:  # type: ignore[no-untyped-def]
    window = open_window(qtbot, context)
    long_ago = datetime(2001, 1, 1, tzinfo=UTC)
    nothing = EventFilter(workspace_ids=(), start=long_ago, end=long_ago + timedelta(days=7))
    view = open_insights(qtbot, window, nothing)
    assert view.insights.total == 0
    for chart in (view.activity, view.sign_ins, view.members, view.api):
        assert chart.chart().axes() == [], chart.title  # no "0 0 0 0 1" ticks
        empty = getattr(chart, "empty_text", None)
        assert empty is not None and empty.isVisible() and empty.text() == "No data"
        assert "no data" in chart.accessibleDescription().lower()
    image = QImage(view.heat.size(), QImage.Format.Format_ARGB32)
    view.heat.render(image)
    assert not image.isNull()


def test_table_shows_labels_and_fits_the_columns_that_matter(qtbot, context) -> None:  # type: ignore[no-untyped-def]
    window = open_window(qtbot, context)
    window.resize(1280, 720)
    window.filter_bar.search_edit.setFocus()
    qtbot.keyClicks(window.filter_bar.search_edit, "category:failed")
    qtbot.keyClick(window.filter_bar.search_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not window.model.loading and window.model.rowCount() > 0)
    model, table = window.model, window.table
    roles = {model.data(model.index(r, column_of(fields.ROLE))) for r in range(model.rowCount())}
    assert roles and not any("_" in role for role in roles), roles
    assert any(role[:1].isupper() for role in roles if role)
    outcome = model.data(model.index(0, column_of(fields.OUTCOME)))
    assert outcome.startswith("failure: ") and "_" not in outcome
    # Outcome (with its reason) and IP address are on screen without scrolling sideways.
    columns = [column_of(f) for f in (fields.OUTCOME, fields.IP, fields.PATIENT, fields.ROLE)]
    assert not any(table.isColumnHidden(column) for column in columns)

    def beyond() -> list[tuple[int, int, int]]:
        """(column, its right edge, the viewport's width) of each column not whole on screen."""
        viewport = table.viewport().width()
        ends = [(c, table.columnViewportPosition(c) + table.columnWidth(c)) for c in columns]
        return [(c, right, viewport) for c, right in ends if right > viewport]

    # Once the window has laid itself out at its new size (the rows' scroll bar included).
    qtbot.waitUntil(lambda: not beyond())


def test_all_workspaces_then_one_workspace(qtbot, context) -> None:  # type: ignore[no-untyped-def]
    window = open_window(qtbot, context)
    one = window.current_workspace()
    window.apply_filter(EventFilter(workspace_ids=()))  # All workspaces
    qtbot.waitUntil(lambda: not window.model.loading and window.model.rowCount() > 0)
    assert not window.table.isColumnHidden(column_of(fields.WORKSPACE))
    window.table.setFocus()
    qtbot.keyClick(window.table, Qt.Key.Key_Down)
    qtbot.waitUntil(lambda: window.detail.shown is not None)
    text = window.detail.text.toPlainText()
    assert text.count("Time (UTC)") == 1, text
    window.apply_filter(EventFilter(workspace_ids=(one.id,)))
    qtbot.waitUntil(lambda: not window.model.loading)
    assert window.table.isColumnHidden(column_of(fields.WORKSPACE))


def test_view_theme_switches_charts_and_notes_and_is_remembered(
    qtbot, context, restore_theme
) -> None:  # type: ignore[no-untyped-def]
    from nvadmin.ui import palette
    from nvadmin.ui.palette import Theme

    window = open_window(qtbot, context)
    view = open_insights(qtbot, window, last_month(context))
    window.menus.view.setFocus()
    window.theme_actions[Theme.DARK].trigger()
    assert palette.is_dark(QApplication.palette())
    background = view.activity.chart().backgroundBrush().color()
    assert background.lightness() < 80, background.name()
    image = QImage(view.heat.size(), QImage.Format.Format_ARGB32)
    view.heat.render(image)
    corner = QColor(image.pixel(2, 2))
    assert corner.lightness() < 80, corner.name()
    from nvadmin.ui.keyring_status import KeyringNotice

    notice = KeyringNotice(window)
    notice.setText("No system keyring")
    notice.show()
    notice.resize(300, 40)
    shot = notice.grab().toImage()
    inside = QColor(shot.pixel(8, 8))
    assert inside.lightness() < 100, inside.name()  # not the bright yellow
    assert window.settings.desktop_text(keys.THEME) == "dark"

    window.theme_actions[Theme.LIGHT].trigger()
    assert not palette.is_dark(QApplication.palette())
    assert view.activity.chart().backgroundBrush().color().lightness() > 200
    assert QColor(notice.grab().toImage().pixel(8, 8)).lightness() > 150
    assert window.settings.desktop_text(keys.THEME) == "light"
    assert QApplication.palette().color(QPalette.ColorRole.Window).lightness() > 200


@pytest.mark.parametrize("size", [(1280, 720), (1264, 680), (1920, 1080)])
def test_columns_end_clear_of_the_rows_scroll_bar(qtbot, context, size) -> None:  # type: ignore[no-untyped-def]
    """At 1280x720 (and the window's size inside a window manager's frame there) and larger,
    every column but the stretched last one is whole, never under the rows' scroll bar, its
    text inside it; the last column is readable or wholly past the edge, never a sliver
    of cut-off text against the scroll bar."""
    from PySide6.QtWidgets import QStyle

    window = open_window(qtbot, context)
    window.resize(*size)
    table, model = window.table, window.model
    qtbot.waitUntil(lambda: table.verticalScrollBar().isVisible())
    header = table.horizontalHeader()
    shown = [header.logicalIndex(v) for v in range(header.count())]
    shown = [c for c in shown if not header.isSectionHidden(c)]
    whole, last = shown[:-1], shown[-1]
    assert column_of(fields.IP) in whole
    metrics = table.fontMetrics()
    margin = table.style().pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, table) + 1
    ip = column_of(fields.IP)
    ips = [str(model.data(model.index(r, ip)) or "") for r in range(model.rowCount())]
    last_title = str(model.headerData(last, Qt.Orientation.Horizontal))

    def clipped() -> list[tuple[str, int, int]]:
        """(what, where it ends, where it may end at most) of each thing cut short."""
        viewport = table.viewport().width()
        bad = []
        for column in whole:
            right = table.columnViewportPosition(column) + table.columnWidth(column)
            if right > viewport:
                bad.append((COLUMNS_KEYS[column], right, viewport))
        text_end = margin + max(metrics.horizontalAdvance(text) for text in ips)
        if text_end + margin > table.columnWidth(ip):
            bad.append(("ip text", text_end, table.columnWidth(ip)))
        sliver = viewport - table.columnViewportPosition(last)
        if 0 < sliver < metrics.horizontalAdvance(last_title) + 2 * margin:
            bad.append(("a sliver of " + COLUMNS_KEYS[last], sliver, 0))
        return bad

    qtbot.waitUntil(lambda: table.viewport().width() < size[0] * 0.8 and not clipped())
    if size[0] > 1280:  # room enough: no column is made narrower than it is by default
        member = column_of(fields.NAME)
        default = metrics.horizontalAdvance(WIDTH_SAMPLES[member]) + metrics.height()
        assert table.columnWidth(member) >= default
