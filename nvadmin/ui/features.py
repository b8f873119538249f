"""Features that add their menus, actions and docks to the main window.

A feature's ``install(host: FeatureHost)`` may use only what :class:`FeatureHost` declares
(mypy checks both sides). Keeping the list here means the main window does not grow an import
for every feature.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDockWidget, QMainWindow, QMenu, QWidget

from nvadmin.context import Context
from nvadmin.identity import StaffIdentity
from nvadmin.query.filters import EventFilter
from nvadmin.query.paging import EventRow
from nvadmin.query.workspaces import WorkspaceInfo
from nvadmin.ui.browser.work import WorkSource
from nvadmin.ui.settings import UiSettings

if TYPE_CHECKING:
    from nvadmin.ui.compliance import Compliance
    from nvadmin.ui.desktop import DesktopFeature
    from nvadmin.ui.export_panel import ExportFeature
    from nvadmin.ui.insights import InsightsFeature
    from nvadmin.ui.requests_dock import RequestsFeature


@dataclass(frozen=True, slots=True)
class Menus:
    """The window's menu bar, in this order."""

    file: QMenu
    view: QMenu
    tools: QMenu
    account: QMenu
    help: QMenu


@dataclass(frozen=True, slots=True)
class WindowActions:
    """The browser's own actions (a feature may give them icons or place its own by them)."""

    find: QAction
    refresh: QAction
    go_to_time: QAction
    jump_start: QAction
    jump_end: QAction
    copy: QAction
    lock: QAction
    sign_out: QAction
    quit: QAction
    about: QAction


class FeatureHost(Protocol):
    """What a feature may use from the window it is installed in."""

    @property
    def context(self) -> Context: ...

    @property
    def identity(self) -> StaffIdentity: ...

    @property
    def settings(self) -> UiSettings: ...

    @property
    def menus(self) -> Menus: ...

    @property
    def window_actions(self) -> WindowActions: ...

    def widget(self) -> QMainWindow:
        """The window itself: parent of the feature's actions, docks and dialogs."""
        ...

    def current_filter(self) -> EventFilter: ...

    def apply_filter(self, event_filter: EventFilter) -> None: ...

    def current_workspace(self) -> WorkspaceInfo | None: ...

    def current_event(self) -> EventRow | None:
        """The event at the table's current row, if one is loaded there."""
        ...

    def workspace_names(self) -> dict[int, str]: ...

    def display_zone(self) -> ZoneInfo: ...

    def show_message(self, text: str, *, error: bool = False) -> None: ...

    def add_dock(self, dock: QDockWidget) -> None:
        """``dock`` at the bottom of the window, hidden until the feature shows it; View
        lists it and it leaves the screen while the session is locked."""
        ...

    def add_status_widget(self, widget: QWidget) -> None:
        """``widget`` first among the permanent widgets of the status bar."""
        ...

    def add_work_source(self, source: WorkSource) -> None: ...

    def on_lock_changed(self, follower: Callable[[bool], None]) -> None:
        """``follower(locked)`` each time the window locks or unlocks."""
        ...

    def on_lock_requested(self, follower: Callable[[], None]) -> None:
        """``follower()`` when the staff member asks to lock (Account → Lock)."""
        ...

    def changed_since_sign_in(self, reason: str) -> None:
        """A service refused because another admin demoted or disabled the signed-in account
        after sign-in (``accounts.ChangedSinceSignIn``; ``reason`` is its message): the window
        stops claiming the old role and offering staff management."""
        ...


@dataclass(slots=True)
class Features:
    """Every feature installed in one window."""

    export: ExportFeature
    compliance: Compliance
    desktop: DesktopFeature
    insights: InsightsFeature
    requests: RequestsFeature


def load_code() -> None:
    """Import the features' code ahead of their installation (it is loaded while the
    password is checked, so the window opens sooner)."""
    from nvadmin.ui import compliance, desktop, export_panel, insights, requests_dock  # noqa: F401


def install_all(host: FeatureHost) -> Features:
    from nvadmin.ui import compliance, desktop, export_panel, insights, requests_dock

    return Features(
        export=export_panel.install(host),
        compliance=compliance.install(host),
        desktop=desktop.install(host),
        insights=insights.install(host),
        requests=requests_dock.install(host),
    )
