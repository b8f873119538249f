"""Features that add their menus, actions and docks to the main window.

Each module listed has ``install(window: MainWindow) -> None`` and uses only the window's
public API (context, identity, current_filter(), apply_filter(), menus, docks, show_message()).
Keeping the list here means the main window does not grow an import for every feature.
"""

from __future__ import annotations

import importlib
from typing import Any

FEATURES: tuple[str, ...] = (
    "nvadmin.ui.export_panel",
    "nvadmin.ui.compliance",
    "nvadmin.ui.desktop",
    "nvadmin.ui.insights",
    "nvadmin.ui.requests_dock",
)


def install_all(window: Any) -> None:
    for name in FEATURES:
        importlib.import_module(name).install(window)
