"""`uv run nvadmin` itself: the wiring in nvadmin/app.py up to the sign-in dialog."""

from __future__ import annotations

import argparse
import sys
import threading

import pytest
from PySide6.QtCore import QSettings

from nvadmin import app
from nvadmin.context import Context
from nvadmin.ui import palette, settings


def test_the_app_starts_with_this_desktops_theme(
    qtbot, sqlite_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    context = Context.create(sqlite_db_url)
    context.paths.create()
    QSettings(str(context.paths.settings_file), QSettings.Format.IniFormat).setValue(
        settings.THEME, "dark"
    )
    # run_gui installs the crash dialog's hooks for the process: put them back afterwards.
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    asked: list[Context] = []
    # The sign-in dialog is where a person takes over: closing it ends the app with 0.
    monkeypatch.setattr("nvadmin.ui.session.start_session", lambda ctx: asked.append(ctx) or False)
    try:
        assert app.run_gui(context, argparse.Namespace()) == 0
        assert asked == [context]
        assert palette.current_theme() is palette.Theme.DARK
    finally:
        palette.apply_theme(palette.Theme.SYSTEM)
        context.dispose()
