"""Window sizes and positions that fit the screen a window opens on.

A window asks for the size it would like; it gets at most what the screen's available area
(without panels) holds, and is placed inside that area, so no part of it opens off-screen.
"""

from __future__ import annotations

from PySide6.QtCore import QRect, QSize
from PySide6.QtGui import QGuiApplication, QScreen
from PySide6.QtWidgets import QWidget

# Room left for the window manager's title bar and borders, which Qt does not count.
FRAME_ALLOWANCE = QSize(16, 40)


def available_area(widget: QWidget) -> QRect:
    """The available area of the screen ``widget`` (or its parent) is on."""
    screen: QScreen | None = None
    for candidate in (widget, widget.parentWidget()):
        if candidate is not None and candidate.screen() is not None:
            screen = candidate.screen()
            break
    screen = screen or QGuiApplication.primaryScreen()
    return screen.availableGeometry()


def fit_on_screen(widget: QWidget, wanted: QSize) -> None:
    """Resize ``widget`` to ``wanted`` or less, and move it fully onto its screen."""
    area = available_area(widget)
    room = area.size() - FRAME_ALLOWANCE
    size = wanted.boundedTo(room).expandedTo(widget.minimumSizeHint().boundedTo(room))
    widget.resize(size)
    anchor = widget.parentWidget()
    if anchor is not None and anchor.isVisible():
        centre = anchor.frameGeometry().center()
    else:
        centre = area.center()
    frame = QRect(0, 0, size.width() + FRAME_ALLOWANCE.width(), size.height())
    frame.setHeight(size.height() + FRAME_ALLOWANCE.height())
    frame.moveCenter(centre)
    frame.moveLeft(max(area.left(), min(frame.left(), area.right() - frame.width() + 1)))
    frame.moveTop(max(area.top(), min(frame.top(), area.bottom() - frame.height() + 1)))
    widget.move(frame.topLeft())


def grow_to_fit(window: QWidget) -> None:
    """Make ``window`` wide and tall enough for its layout (never smaller).

    A dialog sized when it opened stays that size when a note, a message or a row appears
    later: its layout then squeezes every widget instead. Called on each layout request,
    the window grows to show them whole. Word-wrapped labels need more height the narrower
    they are, hence the height for this width rather than the size hint.
    """
    layout = window.layout()
    if layout is None or not window.isVisible():
        return  # before it is first shown, Qt sizes and places it itself
    # Never narrower than what its widgets need either (an explicit minimum width, as
    # dialogs set, keeps the layout from raising the minimum itself).
    width = max(window.width(), layout.totalMinimumSize().width())
    if layout.hasHeightForWidth():
        needed = layout.totalHeightForWidth(width)
    else:
        needed = layout.totalSizeHint().height()
    if window.height() < needed or window.width() < width:
        window.resize(width, max(needed, window.height()))
