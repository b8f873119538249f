"""The system keyring's state, found out off the GUI thread and told in plain words."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel, QWidget

from nvadmin.auth.credentials import CredentialStore, KeyringStatus
from nvadmin.ui.palette import set_tone
from nvadmin.workers.jobs import Job


class KeyringProbe(QObject):
    """Asks the keyring once whether it works; ``known`` carries the :class:`KeyringStatus`."""

    known = Signal(object)

    def __init__(self, store: CredentialStore, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.status: KeyringStatus | None = None

    def start(self) -> None:
        store = self.store
        job = Job(lambda control: store.probe(), name="keyring probe")
        job.succeeded.connect(self._on_status)
        job.start()

    def _on_status(self, status: KeyringStatus) -> None:
        self.status = status
        self.known.emit(status)


class KeyringNotice(QLabel):
    """A warning note shown only when the keyring cannot be used; hidden otherwise."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("keyringNotice")
        self.setWordWrap(True)
        set_tone(self, "warning-box")
        self.hide()

    def show_status(self, status: KeyringStatus) -> None:
        if status.available:
            self.hide()
            return
        self.setText(status.message)
        self.setToolTip(f"Keyring backend: {status.backend or 'none'}")
        self.show()
