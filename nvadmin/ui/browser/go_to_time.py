"""View → Go to time… (Ctrl+G)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from PySide6.QtCore import Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QFormLayout, QLabel, QLineEdit, QWidget

from nvadmin.query.localtime import parse_moment
from nvadmin.ui.form_dialog import FormDialog


class GoToTimeDialog(FormDialog):
    """Go to time: a text field that takes exactly what is typed or pasted
    (``2026-11-05 10:06:00``, ``2026-11-05 10:06``, ISO with ``T``, ``10:06`` for the day shown),
    read in the zone the table shows. A date-time spin box would put typed minutes into the
    seconds section; a wrong entry keeps the dialog open with the reason under the field."""

    chosen = Signal(object)  # a UTC datetime

    def __init__(self, shown: datetime, zone: ZoneInfo, parent: QWidget | None = None) -> None:
        super().__init__(
            parent, title="Go to time", name="goToTimeDialog", error_name="goToTimeError"
        )
        self.zone = zone
        self.day = shown.date()
        self.edit = QLineEdit(shown.strftime("%Y-%m-%d %H:%M:%S"), self)
        self.edit.setObjectName("goToTimeEdit")
        self.edit.setPlaceholderText("2026-11-05 10:06:00, or 10:06 for this day")
        self.edit.setAccessibleName(f"Date and time in {zone.key}")
        self.edit.setMinimumWidth(
            self.edit.fontMetrics().horizontalAdvance("2026-11-05T10:06:00.000000+00:00") + 16
        )
        self.edit.selectAll()
        hint = QLabel(
            f"Also 2026-11-05 10:06, ISO 8601 (2026-11-05T10:06:00Z), or a time alone such as "
            f"10:06 for {self.day:%Y-%m-%d}. Times are {zone.key} unless they carry an offset.",
            self,
        )
        hint.setWordWrap(True)
        hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.hint = hint.text()
        self.describe(self.edit, self.hint)
        self.edit.textEdited.connect(lambda _text: self.clear_error())
        form = QFormLayout()
        form.addRow(f"First event at or after ({zone.key}):", self.edit)
        form.addRow(hint)
        self.add(form)
        self.edit.setFocus()

    def moment(self) -> datetime:
        return parse_moment(self.edit.text(), self.zone, self.day)

    def submit(self) -> None:
        try:
            instant = self.moment()
        except ValueError as error:
            self.show_error(str(error), self.edit)
            return
        self.accept()
        self.chosen.emit(instant)
