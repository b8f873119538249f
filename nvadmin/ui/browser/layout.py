"""Where the browser's widgets sit: the workspace row, the filters, the error banner, then the
table beside its detail pane; Tab follows that reading order."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSplitter, QVBoxLayout, QWidget

from nvadmin.ui.palette import set_tone

if TYPE_CHECKING:
    from nvadmin.ui.main_window import MainWindow


def lay_out(window: MainWindow) -> QSplitter:
    """The window's central widget; returns the splitter between table and detail pane."""
    banner = window.banner
    banner.setObjectName("banner")
    set_tone(banner, "error-box")
    banner.setWordWrap(True)
    banner.hide()
    window.banner_retry.hide()

    top = QHBoxLayout()
    picker_label = QLabel("&Workspace:", window)
    picker_label.setBuddy(window.picker)  # Alt+W: the keyboard's way to the picker
    top.addWidget(picker_label)
    top.addWidget(window.picker)
    top.addWidget(window.presets_button)
    top.addWidget(window.saved_button)
    top.addStretch(1)
    banner_row = QHBoxLayout()
    banner_row.addWidget(banner, 1)
    banner_row.addWidget(window.banner_retry)

    splitter = QSplitter(Qt.Orientation.Horizontal, window)
    splitter.setObjectName("browserSplitter")
    splitter.addWidget(window.table)
    splitter.addWidget(window.detail)
    splitter.setStretchFactor(0, 3)
    splitter.setStretchFactor(1, 1)
    splitter.setSizes([1000, 340])

    central = QWidget(window)
    layout = QVBoxLayout(central)
    layout.setContentsMargins(6, 6, 6, 0)
    layout.addLayout(top)
    layout.addWidget(window.filter_bar)
    layout.addLayout(banner_row)
    layout.addWidget(splitter, 1)
    window.setCentralWidget(central)
    window.picker.setAccessibleName("Workspace")
    # Tab follows reading order: the top row, the filters, then the table and its pane.
    bar = window.filter_bar
    order: list[QWidget] = [
        window.picker,
        window.presets_button,
        window.saved_button,
        bar.search_edit,
        bar.range_box,
        bar.members_edit,
        bar.category_button,
        *bar.choice_boxes.values(),
        bar.from_date,
        bar.to_date,
        *bar.line_edits.values(),
        bar.text_edit,
        bar.log_access_box,
        window.banner_retry,
        window.table,
        window.detail.copy_button,
        window.detail.text,
    ]
    for before, after in itertools.pairwise(order):
        QWidget.setTabOrder(before, after)
    return splitter
