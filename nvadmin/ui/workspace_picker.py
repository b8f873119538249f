"""The workspace picker: type any part of a workspace's name or slug to find it."""

from __future__ import annotations

from PySide6.QtCore import QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QComboBox, QCompleter, QWidget

from nvadmin.query.workspaces import WorkspaceInfo

ALL_WORKSPACES = "All workspaces"
_SEARCH_ROLE = Qt.ItemDataRole.UserRole + 10


class WorkspacePicker(QComboBox):
    """``workspace_changed`` carries a WorkspaceInfo, or None for all workspaces."""

    workspace_changed = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setEditable(True)
        self.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.setMinimumContentsLength(28)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        line = self.lineEdit()
        assert line is not None  # an editable combo box always has one
        line.setPlaceholderText("Type a workspace name or slug…")
        self.setToolTip("Workspace (type to search by name or slug)")
        self._items = QStandardItemModel(self)
        self.setModel(self._items)
        # Matching anywhere in "name slug", not only at the start of the visible label.
        self._proxy = QSortFilterProxyModel(self)
        self._proxy.setSourceModel(self._items)
        self._proxy.setFilterRole(_SEARCH_ROLE)
        self._proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer = QCompleter(self._proxy, self)
        completer.setCompletionMode(QCompleter.CompletionMode.UnfilteredPopupCompletion)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.activated[str].connect(self._on_completed)  # type: ignore[index]
        self.setCompleter(completer)
        line.textEdited.connect(self._proxy.setFilterFixedString)
        self._workspaces: list[WorkspaceInfo] = []
        self._allow_all = False
        self._current: WorkspaceInfo | None = None
        self._chosen = False
        self.activated.connect(self._on_activated)

    def set_workspaces(self, workspaces: list[WorkspaceInfo], *, allow_all: bool) -> None:
        self._workspaces = list(workspaces)
        self._allow_all = allow_all
        self.blockSignals(True)
        self._items.clear()
        if allow_all:
            item = QStandardItem(ALL_WORKSPACES)
            item.setData(None, Qt.ItemDataRole.UserRole)
            item.setData(ALL_WORKSPACES, _SEARCH_ROLE)
            self._items.appendRow(item)
        for workspace in workspaces:
            item = QStandardItem(workspace.label)
            item.setData(workspace.id, Qt.ItemDataRole.UserRole)
            item.setData(f"{workspace.name} {workspace.slug}", _SEARCH_ROLE)
            item.setToolTip(
                f"{workspace.name}\nslug: {workspace.slug}\ntime zone: {workspace.timezone}"
            )
            self._items.appendRow(item)
        self.blockSignals(False)
        self._show_current()

    @property
    def workspaces(self) -> list[WorkspaceInfo]:
        return list(self._workspaces)

    @property
    def allow_all(self) -> bool:
        return self._allow_all

    def current(self) -> WorkspaceInfo | None:
        return self._current

    def has_choice(self) -> bool:
        return self._chosen

    def workspace_by_id(self, workspace_id: int) -> WorkspaceInfo | None:
        return next((w for w in self._workspaces if w.id == workspace_id), None)

    def select(self, workspace: WorkspaceInfo | None, *, notify: bool = False) -> None:
        """Show ``workspace`` (None: all workspaces, which only admins may pick)."""
        if workspace is None and not self._allow_all:
            raise ValueError("only admins may pick all workspaces")
        changed = workspace != self._current or not self._chosen
        self._current = workspace
        self._chosen = True
        self._show_current()
        if notify and changed:
            self.workspace_changed.emit(workspace)

    def _show_current(self) -> None:
        self.blockSignals(True)
        if not self._chosen:
            self.setCurrentIndex(-1)
        else:
            wanted = None if self._current is None else self._current.id
            for row in range(self._items.rowCount()):
                if self._items.item(row).data(Qt.ItemDataRole.UserRole) == wanted:
                    self.setCurrentIndex(row)
                    break
        self.blockSignals(False)

    def _on_activated(self, row: int) -> None:
        item = self._items.item(row)
        if item is None:
            return
        workspace_id = item.data(Qt.ItemDataRole.UserRole)
        self.select(
            None if workspace_id is None else self.workspace_by_id(int(workspace_id)), notify=True
        )

    def _on_completed(self, label: str) -> None:
        for row in range(self._items.rowCount()):
            if self._items.item(row).text() == label:
                self._on_activated(row)
                return

    def focusOutEvent(self, event) -> None:  # type: ignore[no-untyped-def]
        # Half-typed text never stays in the box: it shows the workspace really in use.
        super().focusOutEvent(event)
        self._show_current()
