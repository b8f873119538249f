"""Builds the application: Qt, the database (first-run demo included), sign-in, main window.

Wiring lives here and only here; the windows receive what they need.
"""

from __future__ import annotations

import argparse
import logging
import sys

from nvadmin.context import Context

log = logging.getLogger(__name__)

# The Qt-free modules the database check and the sign-in dialog use. PySide6's import hook reads
# the source of every module imported after PySide6 (to see whether it uses PySide6): imported
# first, these skip that read (SQLAlchemy's ORM, then Qt: 0.32 s of CPU; Qt first: 0.44 s).
# Only speed depends on this list; each module is imported again where it is used.
BEFORE_QT = (
    "nvadmin.db.migrate",
    "nvadmin.db.partitions",
    "nvadmin.auth.signin",
    "nvadmin.auth.accounts",
    "nvadmin.auth.credentials",
    "nvadmin.auth.db_roles",
    "nvadmin.demo.accounts",
    "nvadmin.auth.policy",
    "nvadmin.auth.profiles",
    "nvadmin.audit.witness",
)


def run_gui(context: Context, args: argparse.Namespace) -> int:
    import importlib

    for name in BEFORE_QT:
        importlib.import_module(name)
    from PySide6.QtWidgets import QApplication

    from nvadmin.ui.startup import prepare_database, show_fatal

    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv)
    app.setApplicationName("nvadmin")
    app.setOrganizationName("nvadmin")
    from nvadmin.ui import crash, desktop

    crash.install(context.paths.log_file)
    desktop.prepare_application(app)
    from nvadmin.ui import palette, settings

    palette.apply_theme(settings.desktop_text(context.paths.settings_file, settings.THEME))
    context.paths.create()
    if not prepare_database(context):
        return 1
    try:
        from nvadmin.ui.session import start_session
    except ImportError as error:  # pragma: no cover - broken installation
        log.exception("cannot load the main window")
        show_fatal(f"nvadmin is not installed correctly: {error}")
        return 1
    if not start_session(context):
        return 0
    return int(app.exec())
