"""Desktop integration of the main window: Help → About nvadmin, Help → Show log folder, icons.

:func:`install` is listed in :mod:`nvadmin.ui.features`. :func:`prepare_application` gives the
QApplication its icon and desktop-file name (so task bars and Wayland compositors match the
window to ``nvadmin.desktop``).
"""

from __future__ import annotations

import importlib.metadata as metadata
import logging
import platform
import re
import sys
from dataclasses import dataclass

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from nvadmin.context import Context
from nvadmin.ui import icons
from nvadmin.ui.features import FeatureHost, WindowActions

log = logging.getLogger(__name__)


def window_action_icons(actions: WindowActions) -> tuple[tuple[QAction, str], ...]:
    """The browser's own actions and the name of each one's icon."""
    return (
        (actions.find, "find"),
        (actions.refresh, "refresh"),
        (actions.go_to_time, "go-to-time"),
        (actions.jump_start, "jump-start"),
        (actions.jump_end, "jump-end"),
        (actions.copy, "copy"),
        (actions.lock, "lock"),
        (actions.sign_out, "sign-out"),
        (actions.quit, "quit"),
        (actions.about, "about"),
    )


def prepare_application(app: QApplication) -> None:
    icons.ensure_resources()
    app.setWindowIcon(icons.app_icon())
    app.setDesktopFileName("nvadmin")


@dataclass(frozen=True)
class Component:
    name: str
    version: str
    licence: str


def _licence_of(dist: metadata.Distribution) -> str:
    meta = dist.metadata

    def field(name: str) -> str:
        values = meta.get_all(name) or []
        return str(values[0]).strip() if values else ""

    expression = field("License-Expression")
    if expression:
        return expression
    text = field("License")
    if text and len(text) < 60 and "\n" not in text:
        return text
    classifiers = [
        c.split("::")[-1].strip()
        for c in (meta.get_all("Classifier") or [])
        if c.startswith("License ::")
    ]
    return " / ".join(classifiers) or "see the package's licence file"


def bundled_components(root: str = "nvadmin") -> list[Component]:
    """Everything nvadmin runs on, with its licence: Python, Qt, and every Python
    distribution reachable from nvadmin's requirements (read from the installed metadata,
    which the packaged bundle carries too)."""
    from PySide6.QtCore import qVersion

    found: dict[str, Component] = {}

    def walk(name: str) -> None:
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in found:
            return
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            return  # an optional or other-platform requirement that is not installed
        found[key] = Component(str(dist.metadata["Name"]), dist.version, _licence_of(dist))
        for requirement in dist.requires or ():
            if "extra ==" in requirement and "binary" not in requirement:
                continue
            match = re.match(r"[A-Za-z0-9_.\-]+", requirement)
            if match:
                walk(match.group(0))

    walk(root)
    found.pop(root, None)
    extra = [
        Component("Python", platform.python_version(), "PSF-2.0"),
        Component("Qt", qVersion(), "LGPL-3.0-only"),
    ]
    if "psycopg-binary" in found:
        version = found["psycopg-binary"].version
        extra.append(Component("libpq (in psycopg-binary)", version, "PostgreSQL"))
    return extra + sorted(found.values(), key=lambda c: c.name.lower())


class AboutDialog(QDialog):
    def __init__(self, context: Context, parent: QWidget | None = None) -> None:
        from nvadmin import __version__

        super().__init__(parent)
        self.setObjectName("aboutDialog")
        self.setWindowTitle("About nvadmin")
        self.setMinimumSize(620, 560)

        logo = QLabel(self)
        logo.setPixmap(icons.app_icon().pixmap(72, 72))
        logo.setAlignment(Qt.AlignmentFlag.AlignTop)
        title = QLabel(
            f"<h2 style='margin:0'>nvadmin {__version__}</h2>"
            "<p>Administration console for the workspace Activity Log.</p>",
            self,
        )
        title.setObjectName("aboutTitle")
        heading = QHBoxLayout()
        heading.addWidget(logo)
        heading.addWidget(title, 1)

        facts = QFormLayout()
        self.database_label = self._selectable(context.display_url)
        self.database_label.setObjectName("aboutDatabase")
        facts.addRow("Database:", self.database_label)
        if context.read_only:
            facts.addRow("", QLabel("Opened read-only (case file).", self))
        self.log_label = self._selectable(str(context.paths.log_file))
        self.log_label.setObjectName("aboutLogFile")
        facts.addRow("Log file:", self.log_label)
        facts.addRow("Settings:", self._selectable(str(context.paths.settings_file)))
        frozen = "self-contained bundle" if getattr(sys, "frozen", False) else "Python environment"
        facts.addRow(
            "Running on:",
            QLabel(f"{platform.system()} {platform.machine()}, {frozen}", self),
        )

        self.components = bundled_components()
        self.table = QTableWidget(len(self.components), 3, self)
        self.table.setObjectName("aboutLicences")
        self.table.setHorizontalHeaderLabels(["Component", "Version", "Licence"])
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        for row, component in enumerate(self.components):
            for column, text in enumerate((component.name, component.version, component.licence)):
                self.table.setItem(row, column, QTableWidgetItem(text))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        licences_note = QLabel(
            "nvadmin is licensed under the LGPL-3.0. Qt and PySide6 are used under the "
            "LGPL-3.0; their libraries ship as separate, replaceable files. The licence texts "
            "of every component are included with the installation.",
            self,
        )
        licences_note.setWordWrap(True)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        copy = buttons.addButton("Copy", QDialogButtonBox.ButtonRole.ActionRole)
        copy.setToolTip("Copy the version, database and components, e.g. for a support ticket")
        copy.clicked.connect(self.copy_to_clipboard)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(heading)
        layout.addLayout(facts)
        layout.addWidget(QLabel("<b>Bundled components</b>", self))
        layout.addWidget(self.table, 1)
        layout.addWidget(licences_note)
        layout.addWidget(buttons)
        self._summary = "\n".join(
            [
                f"nvadmin {__version__}",
                f"database: {context.display_url}",
                f"log file: {context.paths.log_file}",
                f"system: {platform.platform()} ({frozen})",
                *(f"{c.name} {c.version} ({c.licence})" for c in self.components),
            ]
        )

    def _selectable(self, text: str) -> QLabel:
        label = QLabel(text, self)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        label.setWordWrap(True)
        return label

    def summary(self) -> str:
        return self._summary

    def copy_to_clipboard(self) -> None:
        QGuiApplication.clipboard().setText(self._summary)


class DesktopFeature:
    """Help → Show log folder, About nvadmin…, and the icons of the window's own actions."""

    def __init__(self, host: FeatureHost) -> None:
        self.host = host
        window = host.widget()
        menu = host.menus.help
        menu.addSeparator()
        self.log_folder_action = QAction(
            icons.action_icon("log-folder"), "Show &log folder", window
        )
        self.log_folder_action.setObjectName("showLogFolder")
        self.log_folder_action.setStatusTip(str(host.context.paths.log_dir))
        self.log_folder_action.triggered.connect(self.show_log_folder)
        menu.addAction(self.log_folder_action)
        self.about_action = QAction(icons.action_icon("about"), "&About nvadmin…", window)
        self.about_action.setObjectName("aboutNvadmin")
        self.about_action.setMenuRole(QAction.MenuRole.AboutRole)
        self.about_action.triggered.connect(self.show_about)
        menu.addAction(self.about_action)
        for action, name in window_action_icons(host.window_actions):
            if action.icon().isNull():
                action.setIcon(icons.action_icon(name))

    def show_log_folder(self) -> bool:
        folder = self.host.context.paths.log_dir
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            self.host.show_message(f"Cannot create the log folder {folder}: {error}", error=True)
            return False
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))):
            # No file manager (e.g. a minimal desktop): at least give the path.
            QGuiApplication.clipboard().setText(str(folder))
            self.host.show_message(
                f"No file manager could open the log folder; its path was copied: {folder}"
            )
            return False
        return True

    def about_dialog(self) -> AboutDialog:
        return AboutDialog(self.host.context, self.host.widget())

    def show_about(self) -> None:
        self.about_dialog().exec()


def install(host: FeatureHost) -> DesktopFeature:
    return DesktopFeature(host)
