"""Parts of the sign-in dialog that stand on their own: the first-run page that creates the
first administrator, and the demo accounts offered on the demo database."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)


class FirstAdminPage(QWidget):
    """E-mail, name and password (twice) of the first administrator; ``create_requested``
    when the button is pressed."""

    create_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        intro = QLabel(
            "This database has no staff accounts yet. Create the first administrator; "
            "there is no default password. Further accounts are added in Account ▸ Staff… "
            "or with <tt>nvadmin staff add</tt>.",
            self,
        )
        intro.setWordWrap(True)
        form = QFormLayout()
        self.email = QLineEdit(self)
        self.email.setObjectName("adminEmail")
        self.name = QLineEdit(self)
        self.password = QLineEdit(self)
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText("at least 12 characters")
        self.repeat = QLineEdit(self)
        self.repeat.setEchoMode(QLineEdit.EchoMode.Password)
        form.addRow("E-mail:", self.email)
        form.addRow("Name:", self.name)
        form.addRow("Password:", self.password)
        form.addRow("Repeat:", self.repeat)
        self.create_button = QPushButton("Create administrator and sign in", self)
        # Made the default button only when this page is shown (one default per dialog).
        self.create_button.setAutoDefault(False)
        self.create_button.clicked.connect(self.create_requested)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 6, 0, 0)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.create_button, 0, Qt.AlignmentFlag.AlignRight)


class DemoAccounts(QGroupBox):
    """One button per demo account (shown only for the demo database); ``chosen(email,
    password)`` when one is pressed."""

    chosen = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Demo accounts (shown only for the demo database)", parent)
        self.setObjectName("demoAccounts")
        self._layout = QVBoxLayout(self)
        self.hide()

    def show_accounts(self, accounts: list[tuple[str, str, str]]) -> None:
        """``accounts`` as (e-mail, password, role); none: the box stays hidden."""
        if not accounts:
            return
        for email, password, role in accounts:
            button = QPushButton(f"{role.capitalize()}:  {email}  /  {password}", self)
            button.setToolTip(f"Fill in the {role} demo account")
            button.setAutoDefault(False)
            button.setProperty("demoRole", role)
            button.clicked.connect(
                lambda _checked=False, e=email, p=password: self.chosen.emit(e, p)
            )
            self._layout.addWidget(button)
        self.show()
