"""The detail pane: every field of the selected event, details JSON pretty-printed, copyable."""

from __future__ import annotations

import contextlib
import json
from datetime import tzinfo

from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from nvadmin.db.taxonomy import action_label
from nvadmin.query.fields import View, detail_lines
from nvadmin.query.paging import EventRow


def describe_event(event: EventRow, zone: tzinfo, workspace_name: str | None = None) -> str:
    """The event as plain text: one field per line, then the details JSON, indented."""
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
    return text


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
        self.text = QPlainTextEdit(self)
        self.text.setReadOnly(True)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setPlaceholderText("Select an event to see all of its fields.")
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
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
        self.text.setPlainText(describe_event(event, zone, workspace_name))
        self.copy_button.setEnabled(True)

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
