"""The shape every form dialog shares: its fields, one error line under them and the buttons.

OK runs :meth:`FormDialog.submit`; a refusal is shown with :meth:`FormDialog.show_error`, in
the error tone of :mod:`nvadmin.ui.palette`, read out with the field it is about, and the form
stays open with everything typed.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QLayout, QVBoxLayout, QWidget

from nvadmin.ui.palette import set_tone
from nvadmin.ui.placement import grow_to_fit

OK_CANCEL = QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel


def error_label(parent: QWidget, name: str) -> QLabel:
    """A hidden, wrapping label in the error tone (one per form, or one per field)."""
    label = QLabel(parent)
    label.setObjectName(name)
    label.setWordWrap(True)
    set_tone(label, "error")
    label.hide()
    return label


class FormDialog(QDialog):
    """``body`` takes the dialog's fields; ``error`` and ``buttons`` follow them."""

    def __init__(
        self,
        parent: QWidget | None,
        *,
        title: str,
        name: str,
        error_name: str,
        buttons: QDialogButtonBox.StandardButton = OK_CANCEL,
    ) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.setWindowTitle(title)
        self.body = QVBoxLayout()
        self.body.setContentsMargins(0, 0, 0, 0)
        self.error = error_label(self, error_name)
        self.buttons = QDialogButtonBox(buttons, self)
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        self._described: dict[QWidget, str] = {}
        self._ordered = False
        layout = QVBoxLayout(self)
        layout.addLayout(self.body)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)

    def setVisible(self, visible: bool) -> None:
        if visible and not self._ordered:
            self._ordered = True
            self._buttons_last()
        super().setVisible(visible)

    def event(self, event: QEvent) -> bool:
        handled = super().event(event)
        if event.type() == QEvent.Type.LayoutRequest:
            grow_to_fit(self)  # an error line appearing never squeezes the fields
        return handled

    def _buttons_last(self) -> None:
        """Tab reads the fields first, then the buttons (made before the fields), and the
        keyboard starts in the first field: taken out and put back, the buttons go to the
        end of the focus chain."""
        layout = self.layout()
        if layout is None:
            return
        layout.removeWidget(self.buttons)
        self.buttons.setParent(None)  # type: ignore[call-overload]
        self.buttons.setParent(self)
        layout.addWidget(self.buttons)

    def add(self, part: QWidget | QLayout) -> None:
        """The next part of the form, above the error line."""
        if isinstance(part, QLayout):
            self.body.addLayout(part)
        else:
            self.body.addWidget(part)

    def describe(self, field: QWidget, description: str) -> None:
        """``field``'s accessible description when no error is about it."""
        self._described[field] = description
        field.setAccessibleDescription(description)

    def submit(self) -> None:
        """OK: check what was typed; accept, or :meth:`show_error`."""
        self.accept()

    def show_error(self, message: str, field: QWidget | None = None) -> None:
        """``message`` under the form; when it is about ``field``, read out with that field
        (not only shown red) and the field takes the keyboard."""
        self.clear_error()
        self.error.setText(message)
        self.error.show()
        if field is not None:
            usual = self._described.get(field, "")
            field.setAccessibleDescription(f"{message} {usual}".strip())
            field.setFocus()

    def clear_error(self) -> None:
        self.error.hide()
        self.error.clear()
        for field, description in self._described.items():
            field.setAccessibleDescription(description)

    def has_error(self) -> bool:
        return not self.error.isHidden()
