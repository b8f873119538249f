"""The insights window over seeded demo data: charts and flags computed in jobs, clicks that
filter the browser to exactly the clicked events, exports that state their scope and are
logged, thresholds, cancel, and the lock screen clearing it all."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from PySide6.QtCharts import QAbstractBarSeries
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication, QDialogButtonBox
from sqlalchemy import Engine, func, select

from nvadmin.analysis.flags.catalog import RULES
from nvadmin.context import Context
from nvadmin.db.models import ActivityEvent, Meta, Workspace
from nvadmin.demo.seed import SeedPlan, seed
from nvadmin.identity import Role, StaffIdentity
from nvadmin.query.filters import EventFilter, where_clause
from nvadmin.ui.insights import FindingRole, InsightsWindow, ThresholdsDialog
from nvadmin.ui.main_window import MainWindow
from tests.factories import sign_in_as

ADMIN = StaffIdentity(1, "dana@nvadmin.example", "Dana Admin", Role.ADMIN)
END = date(2026, 11, 1)


@pytest.fixture
def context(db_url: str) -> Iterator[Context]:
    ctx = Context.create(db_url)
    # One clinic just large enough for every planted case.
    seed(ctx.engine, SeedPlan(workspaces=1, events=9_000, seed=3, end=END))
    yield ctx
    ctx.dispose()


def sql_count(engine: Engine, f: EventFilter) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count()).select_from(ActivityEvent).where(where_clause(f))
            ).scalar_one()
        )


def views(engine: Engine, purpose: str = "insights") -> list[str]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(ActivityEvent.details).where(ActivityEvent.action == "activity_log.view")
        ).all()
    return [r[0] for r in rows if f'"purpose":"{purpose}"' in r[0]]


def clinic(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                select(Workspace.id).where(Workspace.is_system.is_(False))
            ).scalar_one()
        )


def last_month(ws: int) -> EventFilter:
    end = datetime.combine(END, datetime.min.time(), UTC)
    return EventFilter(workspace_ids=(ws,), start=end - timedelta(days=30), end=end)


def open_insights(qtbot, context: Context) -> tuple[MainWindow, InsightsWindow]:  # type: ignore[no-untyped-def]
    window = MainWindow(context, sign_in_as(context, ADMIN))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.state.loaded)
    window.apply_filter(last_month(clinic(context.engine)))
    qtbot.waitUntil(lambda: not window.model.loading)
    view = window.features.insights.open()
    qtbot.waitUntil(lambda: view.insights is not None and view.report is not None)
    qtbot.waitUntil(lambda: not view.busy())
    return window, view


def bar_series(chart) -> QAbstractBarSeries:  # type: ignore[no-untyped-def]
    return next(s for s in chart.chart().series() if isinstance(s, QAbstractBarSeries))


def test_charts_flags_and_click_through(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    engine = context.engine
    window, view = open_insights(qtbot, context)
    insights = view.insights
    assert insights is not None and insights.total == sql_count(engine, last_month(clinic(engine)))
    assert any("insights" in a.text().lower() for a in window.menus.view.actions())
    assert len(views(engine)) == 1  # producing the view is logged once
    assert insights.zone in view.header.text() and "America/" in insights.zone

    # A click on a stacked bar segment: the browser shows exactly those events.
    series = bar_series(view.activity)
    bars = series.barSets()[0]
    busiest = max(range(bars.count()), key=bars.at)
    bars.clicked.emit(busiest)
    category = next(iter(insights.activity))
    expected = insights.filter_for_bucket(busiest, category)
    assert window.current_filter() == expected
    qtbot.waitUntil(lambda: not window.model.loading)
    assert sql_count(engine, expected) == int(bars.at(busiest))

    # A real mouse click on the busiest member's bar.
    chart = view.members.chart()
    member_series = bar_series(view.members)
    top = len(insights.members) - 1  # drawn bottom-up: the busiest is the last category
    value = member_series.barSets()[0].at(top)
    scene_point = chart.mapToPosition(QPointF(value / 2, top), member_series)
    point = view.members.mapFromScene(scene_point)
    view.tabs.setCurrentIndex(0)
    qtbot.waitExposed(view)
    qtbot.mouseClick(view.members.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(point))
    qtbot.waitUntil(
        lambda: window.current_filter() == insights.filter_for_member(insights.members[0].email),
    )
    assert sql_count(engine, window.current_filter()) == insights.members[0].count

    # API status segment and sign-in outcome.
    api_series = bar_series(view.api)
    for bar_set in api_series.barSets():
        if bar_set.label() == "429" and bar_set.at(0):
            bar_set.clicked.emit(0)
            assert sql_count(engine, window.current_filter()) == int(bar_set.at(0))
    failed = bar_series(view.sign_ins).barSets()[1]
    day = max(range(failed.count()), key=failed.at)
    failed.clicked.emit(day)
    assert sql_count(engine, window.current_filter()) == int(failed.at(day)) > 0

    # A heat map cell: that weekday and hour, every week of the range, read in the zone.
    grid = insights.heat()
    cell = max(((d, h) for d in range(7) for h in range(24)), key=lambda c: grid[c[0]][c[1]])
    centre = view.heat.cell_rect(*cell).center()
    qtbot.mouseClick(view.heat, Qt.MouseButton.LeftButton, pos=centre.toPoint())
    assert window.current_filter() == insights.filter_for_cell(*cell)
    assert sql_count(engine, window.current_filter()) == grid[cell[0]][cell[1]] > 0
    weekday = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[cell[0]]
    assert f"weekday:{weekday} hour:{cell[1]}" in window.filter_bar.search_edit.text()
    # From the keyboard: arrows move, Enter shows the cell (here: one hour later).
    view.heat.setFocus()
    qtbot.keyClick(view.heat, Qt.Key.Key_Right)
    qtbot.keyClick(view.heat, Qt.Key.Key_Return)
    later = (cell[0], (cell[1] + 1) % 24)
    assert window.current_filter() == insights.filter_for_cell(*later)
    assert sql_count(engine, window.current_filter()) == grid[later[0]][later[1]]

    # Flags: one top-level row per rule, each planted case listed, "show these events".
    tree = view.flags_tree
    assert tree.topLevelItemCount() == len(RULES)
    counts = {
        tree.topLevelItem(i).text(0): int(tree.topLevelItem(i).text(1)) for i in range(len(RULES))
    }
    assert counts["Burst of failed sign-ins for one account"] == 1
    item = tree.topLevelItem(0).child(0)
    tree.setCurrentItem(item)
    assert view.show_button.isEnabled() and "within" in view.explanation.text()
    qtbot.mouseClick(view.show_button, Qt.MouseButton.LeftButton)
    finding = item.data(0, Qt.ItemDataRole.UserRole + 1)
    assert window.current_filter() == finding.event_filter
    assert sql_count(engine, finding.event_filter) == finding.events


def test_every_rule_lists_its_planted_cases_and_enter_shows_their_events(
    qtbot, context: Context
) -> None:  # type: ignore[no-untyped-def]
    """Every rule of the catalog has its row, in the catalog's order, listing exactly the demo
    cases planted for it; Enter on a case sets the browser to exactly its events. Nothing here
    names a rule: a rule added later is covered as it is."""
    engine = context.engine
    window, view = open_insights(qtbot, context)
    with engine.connect() as connection:
        planted = json.loads(
            connection.execute(select(Meta.value).where(Meta.key == "demo_planted")).scalar_one()
        )
    tree = view.flags_tree
    rows = [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]
    assert [row.text(0) for row in rows] == [rule.title for rule in RULES.values()]
    view.tabs.setCurrentIndex(1)
    qtbot.waitExposed(view)
    for rule, row in zip(RULES.values(), rows, strict=True):
        cases = {(p["subject"], p["day"]) for p in planted if p["flag"] == rule.name}
        listed = [(row.child(i).text(0), row.child(i).text(2)) for i in range(row.childCount())]
        assert set(listed) == cases and len(listed) == int(row.text(1)) == len(cases) > 0, rule
        target = row.child(0)
        qtbot.keyClick(tree, Qt.Key.Key_Home)
        for _ in range(200):
            if tree.currentItem() is target:
                break
            qtbot.keyClick(tree, Qt.Key.Key_Down)
        assert tree.currentItem() is target
        assert view.explanation.text().startswith(row.toolTip(0) + "\n" + target.text(0))
        qtbot.keyClick(tree, Qt.Key.Key_Return)
        finding = target.data(0, FindingRole)
        assert finding.rule == rule.name
        assert window.current_filter() == finding.event_filter
        assert sql_count(engine, finding.event_filter) == finding.events > 0


def test_exports_state_their_scope_and_are_logged(qtbot, context: Context, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    engine = context.engine
    _window, view = open_insights(qtbot, context)
    before = len(views(engine))
    for name in ("charts.png", "charts.pdf"):
        view.export_charts(tmp_path / name)
        qtbot.waitUntil(lambda n=name: (tmp_path / n).exists())
    view.export_flags(tmp_path / "flags.csv")
    qtbot.waitUntil(lambda: (tmp_path / "flags.csv").exists())
    image = QImage(str(tmp_path / "charts.png"))
    assert image.width() > 600 and image.height() > 400
    assert (tmp_path / "charts.pdf").read_bytes().startswith(b"%PDF")
    assert (tmp_path / "charts.png").stat().st_mode & 0o777 == 0o600
    text = (tmp_path / "flags.csv").read_bytes().decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["flag"] for r in rows} >= {"failed_sign_in_burst", "new_ip", "api_spike"}
    assert all("time zone America/" in r["scope"] for r in rows)
    assert all(r["time_zone"].startswith("America/") for r in rows if r["subject"])
    logged = views(engine)
    assert len(logged) == before + 3
    assert sum('"export":"flags"' in d for d in logged) == 1
    assert sum('"export":"charts"' in d for d in logged) == 2


def test_thresholds_are_shown_changed_and_kept(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    window, view = open_insights(qtbot, context)
    view.edit_thresholds()
    dialog: ThresholdsDialog = view.thresholds_dialog
    spin = dialog.spins[("failed_sign_in_burst", "failures")]
    assert spin.value() == 5
    assert dialog.hours() == (7, 19)
    spin.setValue(9)
    dialog.button_box = dialog.findChild(QDialogButtonBox)
    dialog.button_box.button(QDialogButtonBox.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: not view.busy() and view.report is not None)
    qtbot.waitUntil(
        lambda: view.report is not None and view.report.results[0].values["failures"] == 9,
    )
    assert view.report.results[0].count == 0
    assert window.settings.json("insights/thresholds", {}) == {
        "failed_sign_in_burst": {"failures": 9.0}
    }
    assert "9 or more" in view.flags_tree.topLevelItem(0).toolTip(0)


def test_cancel_and_lock(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    window, view = open_insights(qtbot, context)
    view.refresh()
    assert view.busy()
    view.cancel()
    qtbot.waitUntil(lambda: not view.busy())
    assert not view.cancel_button.isVisible()
    view.refresh()
    qtbot.waitUntil(lambda: not view.busy())
    from nvadmin.ui.lock_screen import LockScreen

    screen = LockScreen(context, ADMIN, "Locked on request.", window)
    screen.open()
    qtbot.waitUntil(lambda: view.insights is None and not view.isVisible())
    assert view.flags_tree.topLevelItemCount() == 0
    screen.close()


def test_working_hours_are_changed_from_the_thresholds_dialog(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    _window, view = open_insights(qtbot, context)
    after_hours = next(r for r in view.report.results if r.rule.name == "after_hours")
    assert after_hours.count == 4  # three nights and the 21:30 takeover
    view.edit_thresholds()
    dialog: ThresholdsDialog = view.thresholds_dialog
    dialog.open_spin.setValue(0)
    dialog.close_spin.setValue(24)
    dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok).click()

    def recomputed() -> bool:
        report = view.report
        if report is None or view.busy():
            return False
        return report.workspaces[0].work_day_end == 24

    qtbot.waitUntil(recomputed)
    after_hours = next(r for r in view.report.results if r.rule.name == "after_hours")
    assert after_hours.count == 0
    assert "00:00-24:00" in after_hours.explanation
    with context.engine.connect() as connection:
        hours = connection.execute(
            select(Workspace.work_day_start, Workspace.work_day_end).where(
                Workspace.id == clinic(context.engine)
            )
        ).one()
    assert tuple(hours) == (0, 24)


def test_closing_the_window_under_a_running_job_is_harmless(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    from nvadmin.workers.jobs import running_jobs

    window, view = open_insights(qtbot, context)
    view.refresh()
    assert view.busy()
    view.deleteLater()
    window.features.insights.view = None
    qtbot.waitUntil(lambda: not [j for j in running_jobs() if j.name.startswith("insights")])
    again = window.features.insights.open()
    qtbot.waitUntil(lambda: again.insights is not None and not again.busy())


def test_flag_counts_read_naturally_and_escape_closes_the_window(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    _window, view = open_insights(qtbot, context)
    tree = view.flags_tree
    findings = [
        row.child(i) for row in map(tree.topLevelItem, range(tree.topLevelItemCount()))
        for i in range(row.childCount())
    ]  # fmt: skip
    counts = {item.data(0, FindingRole).events: item.text(1) for item in findings}
    assert counts.get(1) == "1 event", counts  # a planted case of a single event
    assert all(text == f"{n:,} events" for n, text in counts.items() if n != 1), counts
    view.tabs.setCurrentIndex(1)
    view.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is view)
    tree.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is tree)
    qtbot.keyClick(tree, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not view.isVisible())


def test_thresholds_edited_by_hand_in_the_settings_file_give_the_defaults(
    qtbot, context: Context
) -> None:  # type: ignore[no-untyped-def]
    """Text, null, NaN or a rule set to a number in the settings file: the flags are computed
    with the defaults and the Thresholds dialog opens showing them."""
    window = MainWindow(context, sign_in_as(context, ADMIN))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.state.loaded)
    window.settings.set_json(
        "insights/thresholds",
        {
            "failed_sign_in_burst": {"failures": "many", "minutes": None},
            "chart_view_spike": {"multiplier": float("nan")},
            "new_ip": 3,
        },
    )
    window.apply_filter(last_month(clinic(context.engine)))
    qtbot.waitUntil(lambda: not window.model.loading)
    view = window.features.insights.open()
    qtbot.waitUntil(lambda: view.insights is not None and not view.busy())
    assert view.report is not None
    results = {r.rule.name: r for r in view.report.results}
    assert results["failed_sign_in_burst"].values == {"failures": 5, "minutes": 10}
    assert results["failed_sign_in_burst"].count == 1
    assert results["chart_view_spike"].values["multiplier"] == 3
    view.edit_thresholds()
    dialog: ThresholdsDialog = view.thresholds_dialog
    assert dialog.spins[("failed_sign_in_burst", "failures")].value() == 5
    assert dialog.spins[("chart_view_spike", "multiplier")].value() == 3
    dialog.reject()


def test_a_percentage_threshold_reads_as_in_its_explanation(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    _window, view = open_insights(qtbot, context)
    tree = view.flags_tree
    row = next(
        tree.topLevelItem(i)
        for i in range(tree.topLevelItemCount())
        if tree.topLevelItem(i).text(0) == RULES["api_spike"].title
    )
    assert "error rate 20 %" in row.text(3), row.text(3)
    assert "20 % or more failed" in row.toolTip(0)


def test_the_view_is_in_the_log_before_the_charts_or_flags_read_it(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    """Viewing the log is an entry in it, written before a row is read, once per refresh for
    the charts and the flags together: over a range open at its end (as "Any time" is) the
    charts count their own view, as the browser counts its own."""
    engine = context.engine
    window = MainWindow(context, sign_in_as(context, ADMIN))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.state.loaded)
    ws = clinic(engine)
    start = datetime.combine(END, datetime.min.time(), UTC) - timedelta(days=30)
    window.apply_filter(EventFilter(workspace_ids=(ws,), start=start))
    qtbot.waitUntil(lambda: not window.model.loading)
    view = window.features.insights.open()
    qtbot.waitUntil(lambda: view.insights is not None and view.report is not None)
    qtbot.waitUntil(lambda: not view.busy())
    assert len(views(engine)) == 1
    insights = view.insights
    assert insights is not None
    everything = EventFilter(workspace_ids=(ws,), start=start)
    assert insights.total == sql_count(engine, everything)
    assert sum(insights.activity.get("activity_log_access", [])) >= 1
