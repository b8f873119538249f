"""A day typed as ``YYYY-MM-DD``: the day used is the day typed, never a neighbour of it.

``QDateEdit`` edits one section at a time: selecting everything and typing ``2025-01-01``
gives ``2026-01-01`` (the year section keeps a digit of the old year), and a typed ``-``
after a full year skips the month. Here the whole text is the day: it is read as an ISO date
once complete, a text that is not a day stays as typed and :meth:`DateField.date` is then
invalid, so the form can say what is wrong instead of using another day. Up/Down step a day;
the calendar (the field's button, or Alt+Down / F4) picks one with the mouse.
"""

from __future__ import annotations

import datetime as dt
from datetime import date

from PySide6.QtCore import QDate, QPoint, Qt, Signal
from PySide6.QtGui import QAction, QIcon, QKeyEvent
from PySide6.QtWidgets import (
    QCalendarWidget,
    QLineEdit,
    QMenu,
    QStyle,
    QWidget,
    QWidgetAction,
)

from nvadmin.ui.palette import set_tone

DAY_FORMAT = "yyyy-MM-dd"


def parse_day(text: str) -> QDate:
    """``text`` as a day (ISO 8601, ``2025-01-31`` or ``20250131``); invalid if it is none."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        return QDate()
    return QDate(day.year, day.month, day.day)


class DateField(QLineEdit):
    """``dateChanged(QDate)``: the text now is a day (another one than before)."""

    dateChanged = Signal(QDate)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._date = QDate()
        self.setPlaceholderText("YYYY-MM-DD")
        self.setMinimumWidth(self.fontMetrics().horizontalAdvance("0000-00-00") + 48)
        icon = QIcon.fromTheme("x-office-calendar")
        if icon.isNull():
            icon = self.style().standardIcon(QStyle.StandardPixmap.SP_ArrowDown)
        self.calendar_action = QAction(icon, "Choose the day in a calendar", self)
        self.addAction(self.calendar_action, QLineEdit.ActionPosition.TrailingPosition)
        self.calendar_action.triggered.connect(self.show_calendar)
        self.textChanged.connect(self._on_text)
        self.editingFinished.connect(self._show_validity)

    def date(self) -> QDate:
        """The day typed; an invalid ``QDate`` while the text is not (yet) a day."""
        return parse_day(self.text())  # from the text itself: right even with signals blocked

    def setDate(self, value: QDate | dt.date) -> None:
        """Show ``value`` (a ``QDate`` or a ``datetime.date``, as ``QDateEdit`` takes)."""
        text = value.isoformat() if isinstance(value, dt.date) else value.toString(DAY_FORMAT)
        self.setText(text)
        self._show_validity()

    def is_day(self) -> bool:
        return self.date().isValid()

    def _on_text(self, text: str) -> None:
        day = parse_day(text)
        if day.isValid():
            set_tone(self, None)
        if day == self._date:
            return
        self._date = day
        if day.isValid():
            self.dateChanged.emit(QDate(day))

    def _show_validity(self) -> None:
        set_tone(self, None if self.is_day() or not self.text().strip() else "error")

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        alt = bool(event.modifiers() & Qt.KeyboardModifier.AltModifier)
        if key == Qt.Key.Key_F4 or (alt and key == Qt.Key.Key_Down):
            self.show_calendar()
            return
        if key in (Qt.Key.Key_Up, Qt.Key.Key_Down) and self.is_day():
            self.setDate(self.date().addDays(1 if key == Qt.Key.Key_Up else -1))
            return
        super().keyPressEvent(event)

    def show_calendar(self) -> None:
        menu = QMenu(self)
        calendar = QCalendarWidget(menu)
        if self.is_day():
            calendar.setSelectedDate(self.date())
        holder = QWidgetAction(menu)
        holder.setDefaultWidget(calendar)
        menu.addAction(holder)

        def chosen(day: QDate) -> None:
            self.setDate(day)
            menu.close()

        calendar.clicked.connect(chosen)
        calendar.activated.connect(chosen)
        menu.popup(self.mapToGlobal(QPoint(0, self.height())))
        calendar.setFocus(Qt.FocusReason.PopupFocusReason)  # arrow keys move the day at once
