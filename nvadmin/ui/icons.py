"""The application's icons, from the compiled resources (never from files on disk).

Action and category icons are monochrome SVGs drawn in black. They are recoloured when they
are painted, from the application palette of that moment: action icons take the palette's
text colour (so they read on a light or a dark window alike, and follow a theme switch while
the app runs); category icons take their category's colour, in a lighter shade on dark
palettes. Disabled and selected states use the palette's disabled and highlighted-text colours.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import (
    QColor,
    QGuiApplication,
    QIcon,
    QIconEngine,
    QImage,
    QPainter,
    QPalette,
    QPixmap,
)
from PySide6.QtSvg import QSvgRenderer

from nvadmin.db.taxonomy import Category
from nvadmin.ui.palette import ICON_CATEGORY_COLOURS, is_dark

APP_ICON = ":/app/nvadmin.svg"
APP_ICON_SIZES = (16, 22, 24, 32, 48, 64, 128, 256)

# Every action icon in resources/icons/actions (tests check the two lists agree).
ACTIONS: tuple[str, ...] = (
    "about",
    "cancel",
    "case-file",
    "columns",
    "copy",
    "export",
    "filter",
    "find",
    "go-to-time",
    "jump-end",
    "jump-start",
    "lock",
    "log-folder",
    "quit",
    "refresh",
    "report",
    "save-search",
    "settings",
    "sign-out",
    "staff",
    "verify",
)

CATEGORY_COLORS = ICON_CATEGORY_COLOURS

_registered = False


def ensure_resources() -> None:
    """Register the compiled resources with Qt (once; importing the module registers them)."""
    global _registered
    if not _registered:
        from nvadmin.ui._generated import resources_rc  # noqa: F401

        _registered = True


def category_color(category: Category, palette: QPalette | None = None) -> QColor:
    light, dark = CATEGORY_COLORS[category]
    return QColor(dark if is_dark(palette) else light)


ColorFor = Callable[[QPalette, QIcon.Mode], QColor | None]


class SvgIconEngine(QIconEngine):
    """Renders one SVG at any size; ``color_for`` (if given) tints every opaque pixel."""

    def __init__(self, path: str, color_for: ColorFor | None = None) -> None:
        super().__init__()
        self._path = path
        self._color_for = color_for
        self._renderer: QSvgRenderer | None = None
        self._cache: dict[tuple[int, int, int, int], QPixmap] = {}

    def _svg(self) -> QSvgRenderer:
        if self._renderer is None:
            ensure_resources()
            self._renderer = QSvgRenderer(self._path)
            if not self._renderer.isValid():
                raise FileNotFoundError(f"icon {self._path} is not in the compiled resources")
        return self._renderer

    def image(self, size: QSize, mode: QIcon.Mode = QIcon.Mode.Normal) -> QImage:
        color = self._color_for(QGuiApplication.palette(), mode) if self._color_for else None
        image = QImage(size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        self._svg().render(painter)
        if color is not None:
            # Keep the drawing's coverage (alpha), replace its colour.
            painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_SourceIn)
            painter.fillRect(image.rect(), color)
        painter.end()
        return image

    def pixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State) -> QPixmap:
        color = self._color_for(QGuiApplication.palette(), mode) if self._color_for else None
        key = (size.width(), size.height(), mode.value, color.rgba() if color else 0)
        cached = self._cache.get(key)
        if cached is None:
            if len(self._cache) > 64:
                self._cache.clear()
            cached = QPixmap.fromImage(self.image(size, mode))
            self._cache[key] = cached
        return cached

    def scaledPixmap(
        self, size: QSize, mode: QIcon.Mode, state: QIcon.State, scale: float
    ) -> QPixmap:
        pixmap = self.pixmap(size * scale, mode, state)
        pixmap.setDevicePixelRatio(scale)
        return pixmap

    def paint(self, painter: QPainter, rect: QRect, mode: QIcon.Mode, state: QIcon.State) -> None:
        scale = painter.device().devicePixelRatioF() if painter.device() else 1.0
        painter.drawPixmap(rect, self.scaledPixmap(rect.size(), mode, state, scale))

    def actualSize(self, size: QSize, mode: QIcon.Mode, state: QIcon.State) -> QSize:
        side = min(size.width(), size.height())
        return QSize(side, side)

    def availableSizes(  # type: ignore[override]  # PySide6's stub lacks the defaults
        self, mode: QIcon.Mode = QIcon.Mode.Normal, state: QIcon.State = QIcon.State.Off
    ) -> list[QSize]:
        return [QSize(s, s) for s in APP_ICON_SIZES]

    def clone(self) -> QIconEngine:
        return SvgIconEngine(self._path, self._color_for)

    def key(self) -> str:
        return "nvadmin-svg"


def _text_color(palette: QPalette, mode: QIcon.Mode) -> QColor:
    if mode == QIcon.Mode.Disabled:
        return palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText)
    if mode == QIcon.Mode.Selected:
        return palette.color(QPalette.ColorRole.HighlightedText)
    return palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.WindowText)


def _category_tint(category: Category) -> ColorFor:
    def color_for(palette: QPalette, mode: QIcon.Mode) -> QColor:
        if mode == QIcon.Mode.Normal or mode == QIcon.Mode.Active:
            return category_color(category, palette)
        return _text_color(palette, mode)

    return color_for


def app_icon() -> QIcon:
    return QIcon(SvgIconEngine(APP_ICON))


def action_icon(name: str) -> QIcon:
    if name not in ACTIONS:
        raise KeyError(f"no action icon named {name!r}")
    return QIcon(SvgIconEngine(f":/icons/actions/{name}.svg", _text_color))


def category_icon(category: Category) -> QIcon:
    return QIcon(
        SvgIconEngine(f":/icons/categories/{category.value}.svg", _category_tint(category))
    )
