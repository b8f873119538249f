"""The filter bar: a qualifier search bar and the widgets that edit the same search.

One :class:`~nvadmin.query.search.Search` is the state. A widget edits only its own part of it
(the rest, e.g. a precise ``after:`` time or an excluded value typed in the bar, is kept), and
the bar's text is rewritten from the state. Pressing Enter in the bar parses it and sets the
widgets; a malformed search is not run: the message says what is wrong and the offending text
is selected. Typing in the text fields is debounced so a query runs once the user pauses.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from PySide6.QtCore import QDate, QEvent, QObject, QSize, QStringListModel, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeyEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QCompleter,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QStyle,
    QStyleOptionToolButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from nvadmin.db.taxonomy import Category
from nvadmin.query.fields import SEARCHED, Widget
from nvadmin.query.filters import Term
from nvadmin.query.localtime import day_start
from nvadmin.query.search import PRESETS, Search, SearchError, format_search, parse
from nvadmin.query.workspaces import MemberInfo
from nvadmin.ui.date_field import DateField
from nvadmin.ui.palette import set_tone

log = logging.getLogger(__name__)

DEBOUNCE_MS = 400
# The example patient id every hint shows: the field registry's, the one its tests search for.
PATIENT_EXAMPLE = SEARCHED["patient"].example
_ANY_TIME = "any"
_CUSTOM = "custom"


@dataclass(frozen=True, slots=True)
class RangePreset:
    """A named range of whole days in the workspace's zone, counted from today.

    ``days(today)`` gives the first day and the last day included, or None for "up to now".
    The export form and the browser's range list both offer these, so a preset means the same
    days in both.
    """

    key: str
    label: str
    days: Callable[[date], tuple[date, date | None]]

    def dates(self, today: date) -> tuple[date, date]:
        """First and last day, both included ("up to now" ends today)."""
        first, last = self.days(today)
        return first, last or today

    def instants(self, now: datetime, zone: tzinfo) -> tuple[datetime, datetime | None]:
        """Start and exclusive end in UTC (None: up to now), days read in ``zone``."""
        first, last = self.days(now.astimezone(zone).date())
        end = None if last is None else day_start(last + timedelta(days=1), zone)
        return day_start(first, zone), end


def _previous_month(today: date) -> tuple[date, date | None]:
    last = today.replace(day=1) - timedelta(days=1)
    return last.replace(day=1), last


RANGE_PRESETS: tuple[RangePreset, ...] = (
    RangePreset("7-days", "Last 7 days", lambda today: (today - timedelta(days=6), None)),
    RangePreset("30-days", "Last 30 days", lambda today: (today - timedelta(days=29), None)),
    RangePreset("this-month", "This month", lambda today: (today.replace(day=1), None)),
    RangePreset("last-month", "Last month", _previous_month),
)
_PRESET_BY_KEY = {preset.key: preset for preset in RANGE_PRESETS}
# Hours are not whole days: the last 24 hours stay a rolling ``last:24h``.
_ROLLING = "24h"
# A choice list whose entries are longer than this opens wider than the box.
_LONG_CHOICE = 24
ALL_CATEGORIES = "All categories"


class _ListCompleter(QCompleter):
    """Completes the last comma-separated entry of a line edit (several team members)."""

    def pathFromIndex(self, index):  # type: ignore[no-untyped-def]
        widget = self.widget()
        typed = widget.text() if isinstance(widget, QLineEdit) else ""
        done = [p.strip() for p in typed.split(",")[:-1] if p.strip()]
        return ", ".join([*done, str(super().pathFromIndex(index))])

    def splitPath(self, path: str) -> list[str]:
        return [path.split(",")[-1].strip()]


class ChoicesButton(QToolButton):
    """A button that opens a menu of choices and names what is chosen, as wide as the widest
    of ``labels`` (the texts it may show) in its own font: choosing never cuts its text short
    nor moves the fields beside it. Other texts are shown only when :meth:`fits` says so.

    Its menu opens on a press; the style then draws an arrow in the right corner, for which
    QToolButton's own size hint leaves no room (the arrow sat on the text's last letter)."""

    def __init__(self, labels: Sequence[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.labels = tuple(labels)
        self.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)

    def fits(self, text: str) -> bool:
        """Whether ``text`` is shown whole at this button's width."""
        metrics = self.fontMetrics()
        return metrics.horizontalAdvance(text) <= max(map(metrics.horizontalAdvance, self.labels))

    def sizeHint(self) -> QSize:
        option = QStyleOptionToolButton()
        self.initStyleOption(option)
        metrics = self.fontMetrics()
        # As QToolButton sizes its text: a space either side; then the arrow beside it.
        text = max(metrics.horizontalAdvance(label) for label in self.labels)
        text += 2 * metrics.horizontalAdvance(" ")
        arrow = self.style().pixelMetric(QStyle.PixelMetric.PM_MenuButtonIndicator, option, self)
        contents = QSize(text + arrow, metrics.height())
        size = self.style().sizeFromContents(
            QStyle.ContentsType.CT_ToolButton, option, contents, self
        )
        return QSize(size.width(), super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()


class FilterBar(QWidget):
    """``search_requested(Search)``: run this search. ``search_failed(str)``: it is malformed."""

    search_requested = Signal(object)
    search_failed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._search = Search()
        self._zone: tzinfo = UTC
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self._emit)

        self.search_edit = QLineEdit(self)
        self.search_edit.setObjectName("search")
        self.search_edit.setClearButtonEnabled(True)
        self.search_edit.setPlaceholderText(
            "Search (Ctrl+F): user:alice@clinic.example action:chart.view "
            f"patient:{PATIENT_EXAMPLE} "
            "after:2025-03-01 before:2025-03-31 outcome:failure -category:api"
        )
        self.search_edit.returnPressed.connect(self.run_search_text)
        self.search_edit.installEventFilter(self)
        self.error_label = QLabel(self)
        self.error_label.setObjectName("searchError")
        set_tone(self.error_label, "error")
        self.error_label.setWordWrap(True)
        self.error_label.hide()

        self.range_box = QComboBox(self)
        self.range_box.addItem("Any time", _ANY_TIME)
        self.range_box.addItem(PRESETS[_ROLLING], _ROLLING)
        for preset in RANGE_PRESETS:
            self.range_box.addItem(preset.label, preset.key)
        self.range_box.addItem("Custom range", _CUSTOM)
        self.range_box.setToolTip("Time range, in the time zone shown in the table")
        self.range_box.activated.connect(self._on_range_preset)
        self.from_date = DateField(self)
        self.to_date = DateField(self)
        for edit, tip in (
            (self.from_date, "From the start of this day"),
            (self.to_date, "To the end of this day (the whole day is included)"),
        ):
            edit.setDate(QDate.currentDate())
            edit.setToolTip(tip)
            edit.dateChanged.connect(self._on_custom_range)
        self.members_edit = QLineEdit(self)
        self.members_edit.setPlaceholderText("Team members (e-mail, comma-separated)")
        self._member_model = QStringListModel(self)
        completer = _ListCompleter(self._member_model, self.members_edit)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.members_edit.setCompleter(completer)
        self.members_edit.textEdited.connect(self._on_members)
        completer.activated.connect(lambda _text: self._on_members(self.members_edit.text()))

        # Every text the box shows by itself: all, one category, or how many.
        category_labels = [
            ALL_CATEGORIES,
            *(category.label for category in Category),
            *(f"{n} categories" for n in range(2, len(Category) + 1)),
        ]
        self.category_button = ChoicesButton(category_labels, self)
        category_menu = QMenu(self.category_button)
        self.category_actions: dict[str, QAction] = {}
        for category in Category:
            action = category_menu.addAction(category.label)
            action.setCheckable(True)
            action.toggled.connect(self._on_categories)
            self.category_actions[category.value] = action
        self.category_button.setMenu(category_menu)
        # One list per field the registry gives a choice (action, outcome).
        self.choice_boxes: dict[str, QComboBox] = {}
        for key, spec in SEARCHED.items():
            if spec.widget is not Widget.CHOICE or spec.choices is None:
                continue
            box = QComboBox(self)
            box.addItem(spec.any_label, None)
            for label, value in spec.choices():
                box.addItem(label, value)
            box.setAccessibleName(spec.placeholder)
            box.activated.connect(lambda _index, key=key: self._on_choice(key))
            if max(len(label) for label, _ in spec.choices()) > _LONG_CHOICE:
                # A long list ("Viewed a chart (chart.view)") stays as wide as a short label;
                # its list opens as wide as the longest entry.
                box.setSizeAdjustPolicy(
                    QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
                )
                box.setMinimumContentsLength(18)
                box.view().setMinimumWidth(box.view().sizeHintForColumn(0) + 24)
            self.choice_boxes[key] = box
        # One box per field the registry gives a typed-value widget (patient id, IP address).
        self.line_edits: dict[str, QLineEdit] = {}
        for key, spec in SEARCHED.items():
            if spec.widget is not Widget.LINE:
                continue
            line = QLineEdit(self)
            line.setPlaceholderText(spec.placeholder)
            line.setAccessibleName(spec.placeholder)
            line.textEdited.connect(lambda t, key=key: self._on_single_term(key, t))
            self.line_edits[key] = line
        self.text_edit = QLineEdit(self)
        self.text_edit.setPlaceholderText("Text in details")
        self.text_edit.textEdited.connect(self._on_text)
        self.log_access_box = QCheckBox("Show log access", self)
        self.log_access_box.setChecked(True)
        self.log_access_box.setToolTip(
            "Show the Activity log access events (staff viewing or exporting this log)"
        )
        self.log_access_box.toggled.connect(self._on_log_access)
        for line in (*self.line_edits.values(), self.text_edit):
            line.setClearButtonEnabled(True)
            line.setMinimumWidth(_fits_placeholder(line))
        self.members_edit.setClearButtonEnabled(True)
        self.members_edit.setMinimumWidth(_fits_placeholder(self.members_edit, "Team members"))

        for widget, name in (
            (self.search_edit, "Search"),
            (self.range_box, "Time range"),
            (self.from_date, "From date"),
            (self.to_date, "To date, included"),
            (self.members_edit, "Team members"),
            (self.category_button, "Categories"),
            (self.text_edit, "Text in details"),
        ):
            widget.setAccessibleName(name)

        # Two rows, so the bar fits a 1280-pixel-wide window (800 with a custom range) with
        # every field readable: time range and who/what on the first line, a custom range's
        # days and the free-text fields on the second.
        when_who = QHBoxLayout()
        when_who.setContentsMargins(0, 0, 0, 0)
        when_who.addWidget(self.range_box)
        when_who.addWidget(self.members_edit, 1)
        when_who.addWidget(self.category_button)
        for box in self.choice_boxes.values():
            when_who.addWidget(box)
        details = QHBoxLayout()
        details.setContentsMargins(0, 0, 0, 0)
        # A custom range's days open at the start of the second line, under the range list.
        details.addWidget(self.from_date)
        details.addWidget(self.to_date)
        for line in self.line_edits.values():
            details.addWidget(line, 1)
        details.addWidget(self.text_edit, 2)
        details.addWidget(self.log_access_box)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.search_edit)
        layout.addWidget(self.error_label)
        layout.addLayout(when_who)
        layout.addLayout(details)
        self._show_widgets()

    # -- public ----------------------------------------------------------------------------

    def search(self) -> Search:
        return self._search

    def zone(self) -> tzinfo:
        return self._zone

    def set_zone(self, zone: tzinfo) -> None:
        """Dates typed or shown are read in ``zone`` (the zone the table shows)."""
        self._zone = zone
        self._show_widgets()
        self._show_text()

    def set_search(self, search: Search) -> None:
        """Show ``search`` in the bar and the widgets without running it."""
        self._debounce.stop()
        self._search = search
        self.clear_error()
        self._show_widgets()
        self._show_text()

    def set_member_suggestions(self, members: list[MemberInfo]) -> None:
        self._member_model.setStringList([m.email for m in members])

    def run_search_text(self) -> bool:
        """Parse the bar (Enter): show the error at its spot, or set the widgets and run."""
        text = self.search_edit.text()
        try:
            search = parse(text, self._zone)
        except SearchError as error:
            self.show_error(error)
            return False
        self._debounce.stop()
        self._search = search
        self.clear_error()
        self._show_widgets()
        self.search_requested.emit(search)
        return True

    def show_error(self, error: SearchError) -> None:
        text = self.search_edit.text()
        fragment = text[error.start : error.end]
        self.error_label.setText(
            f"{error} — at character {error.start + 1}: “{fragment}”. Nothing was run."
        )
        self.error_label.show()
        set_tone(self.search_edit, "error")
        self.search_edit.setFocus()
        self.search_edit.setSelection(error.start, error.end - error.start)
        self.search_failed.emit(str(error))

    def clear_error(self) -> None:
        self.error_label.hide()
        set_tone(self.search_edit, None)

    def has_error(self) -> bool:
        return not self.error_label.isHidden()

    def clear(self) -> None:
        """Esc in the search bar: no filters at all, run at once."""
        self.set_search(Search())
        self.search_requested.emit(self._search)

    def flush(self) -> None:
        """Run a pending debounced change now."""
        if self._debounce.isActive():
            self._debounce.stop()
            self._emit()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            watched is self.search_edit
            and event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and event.key() == Qt.Key.Key_Escape
        ):
            self.clear()
            return True
        return super().eventFilter(watched, event)

    # -- widgets -> state --------------------------------------------------------------------

    def _changed(self, search: Search, *, debounce: bool) -> None:
        self._search = search
        self.clear_error()
        self._show_text()
        if debounce:
            self._debounce.start()
        else:
            self._debounce.stop()
            self._emit()

    def _emit(self) -> None:
        self.search_requested.emit(self._search)

    def _replace_terms(self, field: str, values: list[str], search: Search | None = None) -> Search:
        search = search or self._search
        kept = tuple(t for t in search.terms if t.field != field or t.negate)
        return replace(search, terms=(*kept, *(Term(field, v) for v in values)))

    def _on_members(self, text: str) -> None:
        emails = [p.strip().lower() for p in text.split(",") if p.strip()]
        self._changed(self._replace_terms("user", emails), debounce=True)

    def _on_categories(self) -> None:
        chosen = [value for value, action in self.category_actions.items() if action.isChecked()]
        self._update_category_button()
        self._changed(self._replace_terms("category", chosen), debounce=True)

    def _on_choice(self, field: str) -> None:
        value = self.choice_boxes[field].currentData()
        if value == "*":
            return
        self._changed(self._replace_terms(field, [value] if value else []), debounce=False)

    def _on_single_term(self, field: str, text: str) -> None:
        value = text.strip()
        self._changed(self._replace_terms(field, [value] if value else []), debounce=True)

    def _on_text(self, text: str) -> None:
        self._changed(replace(self._search, text=text.strip()), debounce=True)

    def _on_log_access(self, checked: bool) -> None:
        self._changed(replace(self._search, include_log_access=checked), debounce=False)

    def _on_range_preset(self) -> None:
        key = self.range_box.currentData()
        if key == _ANY_TIME:
            search = replace(self._search, last=None, start=None, end=None)
        elif key == _CUSTOM:
            for edit in (self.from_date, self.to_date):
                if not edit.is_day():
                    edit.setDate(QDate.currentDate())
            first, last = self._custom_range()
            search = replace(self._search, last=None, start=first, end=last)
        elif key in _PRESET_BY_KEY:
            start, end = _PRESET_BY_KEY[key].instants(datetime.now(UTC), self._zone)
            search = replace(self._search, last=None, start=start, end=end)
        else:
            search = replace(self._search, last=key, start=None, end=None)
        self._show_date_edits(key == _CUSTOM)
        self._changed(search, debounce=False)

    def _on_custom_range(self) -> None:
        if self.range_box.currentData() != _CUSTOM:
            return
        if not (self.from_date.is_day() and self.to_date.is_day()):
            return  # still typing; a day field says itself when its text is no day
        if self.to_date.date() < self.from_date.date():
            # Said, not silently changed: the days typed stay as typed.
            self.error_label.setText(
                f"The range ends ({self.to_date.text()}) before it starts "
                f"({self.from_date.text()}). Nothing was run."
            )
            self.error_label.show()
            set_tone(self.to_date, "error")
            return
        set_tone(self.to_date, None)
        first, last = self._custom_range()
        self._changed(replace(self._search, last=None, start=first, end=last), debounce=True)

    def _custom_range(self) -> tuple[datetime, datetime]:
        """Start and (exclusive) end: the end date means the whole day, to the next midnight."""
        first = _to_date(self.from_date.date())
        last = _to_date(self.to_date.date())
        return day_start(first, self._zone), day_start(last + timedelta(days=1), self._zone)

    # -- state -> widgets ----------------------------------------------------------------------

    def _show_text(self) -> None:
        self.search_edit.setText(format_search(self._search, self._zone))

    def _show_widgets(self) -> None:
        s = self._search
        blockers = [
            self.range_box,
            self.from_date,
            self.to_date,
            *self.choice_boxes.values(),
            self.log_access_box,
            *self.category_actions.values(),
        ]
        for widget in blockers:
            widget.blockSignals(True)
        try:
            if s.last:
                index = self.range_box.findData(s.last)
                if index < 0:
                    self.range_box.addItem(f"Last {s.last}", s.last)
                    index = self.range_box.count() - 1
                self.range_box.setCurrentIndex(index)
                self._show_date_edits(False)
            elif s.start is None and s.end is None:
                self.range_box.setCurrentIndex(self.range_box.findData(_ANY_TIME))
                self._show_date_edits(False)
            elif (preset := self._preset_of(s.start, s.end)) is not None:
                self.range_box.setCurrentIndex(self.range_box.findData(preset.key))
                self._show_date_edits(False)
            else:
                self.range_box.setCurrentIndex(self.range_box.findData(_CUSTOM))
                if s.start is not None:
                    self.from_date.setDate(_qdate(s.start.astimezone(self._zone).date()))
                if s.end is not None:
                    # The end is exclusive: the last whole day shown is the one before it.
                    local_end = s.end.astimezone(self._zone)
                    day = local_end.date()
                    if local_end.time() == time(0):
                        day -= timedelta(days=1)
                    self.to_date.setDate(_qdate(day))
                self._show_date_edits(True)
            users = [t.value for t in s.terms if t.field == "user" and not t.negate]
            if self.members_edit.text() != ", ".join(users) and not self.members_edit.hasFocus():
                self.members_edit.setText(", ".join(users))
            elif not users:
                self.members_edit.setText("")
            categories = {t.value for t in s.terms if t.field == "category" and not t.negate}
            for value, action in self.category_actions.items():
                action.setChecked(value in categories)
            self._update_category_button()
            for field, box in self.choice_boxes.items():
                chosen = [t.value for t in s.terms if t.field == field and not t.negate]
                self._show_choice(box, chosen, SEARCHED[field].several_label)
            for field, edit in self.line_edits.items():
                values = [t.value for t in s.terms if t.field == field and not t.negate]
                if not edit.hasFocus():
                    edit.setText(values[0] if len(values) == 1 else ", ".join(values))
                edit.setEnabled(len(values) <= 1)
                edit.setToolTip(
                    "Several values: edit them in the search bar" if len(values) > 1 else ""
                )
            if not self.text_edit.hasFocus():
                self.text_edit.setText(s.text)
            self.log_access_box.setChecked(s.include_log_access)
        finally:
            for widget in blockers:
                widget.blockSignals(False)

    def _preset_of(self, start: datetime | None, end: datetime | None) -> RangePreset | None:
        """The preset whose days are exactly ``start``..``end`` today, if any."""
        now = datetime.now(UTC)
        return next((p for p in RANGE_PRESETS if p.instants(now, self._zone) == (start, end)), None)

    def _show_choice(self, box: QComboBox, values: list[str], several_label: str) -> None:
        several = box.findData("*")
        if len(values) > 1:
            if several < 0:
                box.addItem(several_label, "*")
                several = box.count() - 1
            box.setCurrentIndex(several)
            return
        if several >= 0:
            box.removeItem(several)
        index = box.findData(values[0]) if values else 0
        box.setCurrentIndex(max(0, index))

    def _show_date_edits(self, visible: bool) -> None:
        self.from_date.setVisible(visible)
        self.to_date.setVisible(visible)

    def _update_category_button(self) -> None:
        chosen = [a.text() for a in self.category_actions.values() if a.isChecked()]
        self.category_button.setText(self.category_text(chosen))
        self.category_button.setToolTip(
            ", ".join(chosen) if chosen else "Choose the categories to show"
        )

    def category_text(self, chosen: Sequence[str]) -> str:
        """What the category box says for the categories ``chosen``: their names when they
        fit the box, else how many (the tooltip names them)."""
        if not chosen:
            return ALL_CATEGORIES
        names = ", ".join(chosen)
        return names if self.category_button.fits(names) else f"{len(chosen)} categories"


def _fits_placeholder(edit: QLineEdit, text: str | None = None) -> int:
    """A width that shows ``text`` (the placeholder) whole, next to the clear button."""
    text = edit.placeholderText() if text is None else text
    return edit.fontMetrics().horizontalAdvance(text) + 2 * edit.fontMetrics().height() + 12


def _to_date(value: QDate) -> date:
    return date(value.year(), value.month(), value.day())


def _qdate(value: date) -> QDate:
    return QDate(value.year, value.month, value.day)
