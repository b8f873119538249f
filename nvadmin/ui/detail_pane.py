"""The detail pane: every field of the selected event, details JSON pretty-printed, copyable."""

from __future__ import annotations

import contextlib
import json
from datetime import tzinfo
from typing import NamedTuple

from PySide6.QtGui import (
    QFontDatabase,
    QGuiApplication,
    QTextBlockFormat,
    QTextCursor,
    QTextOption,
)
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from nvadmin.db.taxonomy import action_label
from nvadmin.query.fields import View, detail_lines
from nvadmin.query.paging import EventRow


class Description(NamedTuple):
    """An event as text, and where its parts are (for laying it out)."""

    text: str
    fields: int  # the first lines: one field each, its name padded to ``value_column``
    value_column: int  # where every field's value starts, in characters


def describe(event: EventRow, zone: tzinfo, workspace_name: str | None = None) -> Description:
    """One field per line, values aligned, then the details JSON, indented."""
    names = {event.workspace_id: workspace_name} if workspace_name else None
    lines = detail_lines(event, View(zone, names))
    width = max(len(name) for name, _ in lines)
    text = "\n".join(f"{name + ':':<{width + 1}} {value}" for name, value in lines)
    details = event.details
    if details:
        with contextlib.suppress(ValueError):
            details = json.dumps(json.loads(details), indent=2, ensure_ascii=False, sort_keys=True)
        text += "\n\nDetails:\n" + details
    else:
        text += "\n\nDetails: (none)"
    return Description(text, len(lines), width + 2)


def describe_event(event: EventRow, zone: tzinfo, workspace_name: str | None = None) -> str:
    """The event as plain text: one field per line, then the details JSON, indented."""
    return describe(event, zone, workspace_name).text


class DetailPane(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel("No event selected", self)
        self.title.setObjectName("detailTitle")
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        # A long title wraps instead of widening the pane (its width is the user's choice).
        self.title.setWordWrap(True)
        self.title.setMinimumWidth(1)
        self.copy_button = QPushButton("Copy", self)
        self.copy_button.setToolTip("Copy every field of this event")
        self.copy_button.clicked.connect(self.copy)
        self.copy_button.setEnabled(False)
        # A QTextEdit, not a QPlainTextEdit: only it lays out the hanging indent below.
        self.text = QTextEdit(self)
        self.text.setReadOnly(True)
        self.text.setAcceptRichText(False)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setPlaceholderText("Select an event to see all of its fields.")
        # Values wrap inside the pane, whatever its width: between words, and inside a word
        # (a hash, a user agent) only when it is longer than a line.
        self.text.setLineWrapMode(QTextEdit.LineWrapMode.WidgetWidth)
        self.text.setWordWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        self.text.setAccessibleName("Event details")
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.copy_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.text)
        self.shown: EventRow | None = None  # not `event`: that is QWidget's handler

    def show_event(
        self, event: EventRow | None, zone: tzinfo, workspace_name: str | None = None
    ) -> None:
        self.shown = event
        if event is None:
            self.clear()
            return
        self.title.setText(f"{action_label(event.action)} — {event.actor_name}")
        description = describe(event, zone, workspace_name)
        self.text.setPlainText(description.text)
        self._hang_values(description)
        self.copy_button.setEnabled(True)

    def _hang_values(self, description: Description) -> None:
        """A field's wrapped value continues under its first line, not under the names, so
        the names stay a column of their own (the text itself, and what Copy takes, keeps
        one line per field)."""
        indent = self.text.fontMetrics().horizontalAdvance(" " * description.value_column)
        hanging = QTextBlockFormat()
        hanging.setLeftMargin(indent)
        hanging.setTextIndent(-indent)
        cursor = QTextCursor(self.text.document())
        for _ in range(description.fields):
            cursor.mergeBlockFormat(hanging)
            cursor.movePosition(QTextCursor.MoveOperation.NextBlock)

    def clear(self) -> None:
        self.shown = None
        self.title.setText("No event selected")
        self.text.clear()
        self.copy_button.setEnabled(False)

    def copy(self) -> None:
        selected = self.text.textCursor().selectedText()
        QGuiApplication.clipboard().setText(
            selected.replace("\u2029", "\n") if selected else self.text.toPlainText()
        )
