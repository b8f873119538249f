"""Every colour the application chooses itself, for a light and a dark window, in one place.

Widgets never write a colour: they name a *tone* (``set_tone(label, "error")``) and the
application style sheet built here colours it; charts and painted widgets ask
:func:`tones` when they draw. View → Theme switches between the system palette, a light one
and a dark one (:func:`apply_theme`); everything follows at once, because the style sheet is
the application's and painted widgets repaint on the palette change.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QWidget

from nvadmin.db.taxonomy import Category


class Theme(StrEnum):
    SYSTEM = "system"
    LIGHT = "light"
    DARK = "dark"

    @property
    def label(self) -> str:
        return {"system": "&System", "light": "&Light", "dark": "&Dark"}[self.value]


@dataclass(frozen=True, slots=True)
class Tones:
    """The colours of one theme (CSS colour names, usable in style sheets and QColor)."""

    error_text: str
    error_background: str
    error_border: str
    warning_text: str
    warning_background: str
    warning_border: str
    success_text: str
    info_text: str
    muted_text: str
    badge_text: str
    badge_background: str
    chart_background: str
    chart_text: str
    chart_grid: str
    heat_empty: str  # an hour with no events
    heat_full: str  # the busiest hour
    focus: str


LIGHT_TONES = Tones(
    error_text="#a40000",
    error_background="#fdecea",
    error_border="#f5c2bd",
    warning_text="#5c4400",
    warning_background="#fff4ce",
    warning_border="#f0d77b",
    success_text="#1b6e20",
    info_text="#1a4d8f",
    muted_text="#555555",
    badge_text="#ffffff",
    badge_background="#5a3e9b",
    chart_background="#ffffff",
    chart_text="#222222",
    chart_grid="#d9d9d9",
    heat_empty="#ffffff",
    heat_full="#1a5cb3",
    focus="#d55e00",
)

DARK_TONES = Tones(
    error_text="#ff8a80",
    error_background="#3b1d1b",
    error_border="#8a3b34",
    warning_text="#f5d87a",
    warning_background="#3a3220",
    warning_border="#7a6427",
    success_text="#81c995",
    info_text="#8ab4f8",
    muted_text="#a8abb0",
    badge_text="#ffffff",
    badge_background="#6f52b5",
    chart_background="#26272a",
    chart_text="#e8eaed",
    chart_grid="#45474c",
    heat_empty="#2f3034",
    heat_full="#8ab4f8",
    focus="#ffab70",
)

# Category icons: (on a light window, on a dark window); each keeps at least 3:1 contrast
# with the window colour of its theme.
ICON_CATEGORY_COLOURS: dict[Category, tuple[str, str]] = {
    Category.CHART_VIEWS: ("#1f6fb5", "#6cb4f0"),
    Category.PATIENT_RECORDS: ("#13805f", "#4fd1a5"),
    Category.SIGN_INS: ("#4f5b66", "#b8c4cf"),
    Category.FAILED_SIGN_INS: ("#c0262d", "#ff7b7f"),
    Category.API_USAGE: ("#7a44b8", "#c39af0"),
    Category.LOG_ACCESS: ("#a35a00", "#f2b45e"),
    Category.STAFF_ACCOUNTS: ("#5b5f1a", "#d2d67a"),
}

# Bar colours a colour-blind reader can tell apart (Okabe-Ito), readable on both themes.
CHART_CATEGORY_COLOURS: dict[str, str] = {
    Category.CHART_VIEWS.value: "#0072B2",
    Category.PATIENT_RECORDS.value: "#009E73",
    Category.SIGN_INS.value: "#56B4E9",
    Category.FAILED_SIGN_INS.value: "#D55E00",
    Category.API_USAGE.value: "#E69F00",
    Category.LOG_ACCESS.value: "#CC79A7",
    Category.STAFF_ACCOUNTS.value: "#999999",
}
SUCCEEDED, FAILED, UNKNOWN = "#009E73", "#D55E00", "#999999"
STATUS_COLOURS = {200: "#009E73", 429: "#E69F00", 401: "#F0E442", 404: "#CC79A7"}
OTHER_SUCCESS, OTHER_CLIENT_ERROR, SERVER_ERROR = "#56B4E9", "#D55E00", "#B2182B"

# The palettes behind View → Theme → Light / Dark (System keeps what the desktop gives).
_PALETTES: dict[Theme, dict[QPalette.ColorRole, str]] = {
    Theme.LIGHT: {
        QPalette.ColorRole.Window: "#efefef",
        QPalette.ColorRole.WindowText: "#1f1f1f",
        QPalette.ColorRole.Base: "#ffffff",
        QPalette.ColorRole.AlternateBase: "#f5f5f5",
        QPalette.ColorRole.Text: "#1f1f1f",
        QPalette.ColorRole.Button: "#efefef",
        QPalette.ColorRole.ButtonText: "#1f1f1f",
        QPalette.ColorRole.Highlight: "#308cc6",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.ToolTipBase: "#ffffdc",
        QPalette.ColorRole.ToolTipText: "#1f1f1f",
        QPalette.ColorRole.PlaceholderText: "#6b6b6b",
        QPalette.ColorRole.Link: "#0b57d0",
    },
    Theme.DARK: {
        QPalette.ColorRole.Window: "#202124",
        QPalette.ColorRole.WindowText: "#e8eaed",
        QPalette.ColorRole.Base: "#17181a",
        QPalette.ColorRole.AlternateBase: "#242528",
        QPalette.ColorRole.Text: "#e8eaed",
        QPalette.ColorRole.Button: "#2b2c2f",
        QPalette.ColorRole.ButtonText: "#e8eaed",
        QPalette.ColorRole.Highlight: "#3d6fb4",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.ToolTipBase: "#2b2c2f",
        QPalette.ColorRole.ToolTipText: "#e8eaed",
        QPalette.ColorRole.PlaceholderText: "#9aa0a6",
        QPalette.ColorRole.Link: "#8ab4f8",
    },
}
_DISABLED_TEXT = {Theme.LIGHT: "#9a9a9a", Theme.DARK: "#7f8186"}

_system_palette: QPalette | None = None
_theme = Theme.SYSTEM


def is_dark(palette: QPalette | None = None) -> bool:
    palette = palette or QGuiApplication.palette()
    window = palette.color(QPalette.ColorRole.Window)
    text = palette.color(QPalette.ColorRole.WindowText)
    return window.lightness() < text.lightness()


def tones(palette: QPalette | None = None) -> Tones:
    return DARK_TONES if is_dark(palette) else LIGHT_TONES


def theme_palette(theme: Theme) -> QPalette:
    """The palette View → Theme gives for ``theme`` (System: the desktop's own)."""
    if theme is Theme.SYSTEM:
        return QPalette(_system_palette) if _system_palette is not None else QPalette()
    palette = QPalette()
    for role, value in _PALETTES[theme].items():
        palette.setColor(role, QColor(value))
    for role in (
        QPalette.ColorRole.WindowText,
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
    ):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(_DISABLED_TEXT[theme]))
    return palette


def parse_theme(value: str | None) -> Theme:
    try:
        return Theme(value or Theme.SYSTEM.value)
    except ValueError:
        return Theme.SYSTEM


def current_theme() -> Theme:
    return _theme


def apply_theme(theme: Theme | str | None) -> Theme:
    """Switch the whole application to ``theme``; returns the theme applied."""
    global _system_palette, _theme
    chosen = theme if isinstance(theme, Theme) else parse_theme(theme)
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        return chosen
    if _system_palette is None:
        _system_palette = QPalette(app.palette())
    app.setPalette(theme_palette(chosen))
    app.setStyleSheet(style_sheet(tones(app.palette())))
    _theme = chosen
    return chosen


def style_sheet(t: Tones) -> str:
    """The application style sheet: colours for widgets that name a tone."""
    return "\n".join(
        (
            f'QLabel[tone="error"] {{ color: {t.error_text}; }}',
            f'QLabel[tone="success"] {{ color: {t.success_text}; }}',
            f'QLabel[tone="info"] {{ color: {t.info_text}; padding: 4px; }}',
            f'QLabel[tone="muted"] {{ color: {t.muted_text}; }}',
            f'QLabel[tone="error-box"] {{ background: {t.error_background}; '
            f"color: {t.error_text}; padding: 6px; border: 1px solid {t.error_border}; "
            "border-radius: 3px; }",
            f'QLabel[tone="warning-box"] {{ background: {t.warning_background}; '
            f"color: {t.warning_text}; padding: 6px; border: 1px solid {t.warning_border}; "
            "border-radius: 3px; }",
            f'QLabel[tone="badge"] {{ background: {t.badge_background}; color: {t.badge_text}; '
            "border-radius: 3px; font-weight: bold; }",
            f'QLabel[tone="intact"] {{ color: {t.success_text}; font-weight: bold; '
            "font-size: 15pt; }",
            f'QLabel[tone="broken"] {{ color: {t.error_text}; font-weight: bold; '
            "font-size: 15pt; }",
            f'QLabel[tone="no-chain"] {{ color: {t.warning_text}; font-weight: bold; '
            "font-size: 15pt; }",
            f'QLineEdit[tone="error"] {{ border: 2px solid {t.error_text}; }}',
        )
    )


def ensure_style_sheet() -> None:
    """Install the tone style sheet once, when no theme was applied yet (tests, tools)."""
    app = QApplication.instance()
    if isinstance(app, QApplication) and not app.styleSheet():
        app.setStyleSheet(style_sheet(tones(app.palette())))


def set_tone(widget: QWidget, tone: str | None) -> None:
    """Colour ``widget`` with a tone of the style sheet (None: the palette's own colours)."""
    ensure_style_sheet()
    if widget.property("tone") == tone:
        return
    widget.setProperty("tone", tone)
    style = widget.style()
    style.unpolish(widget)
    style.polish(widget)
    widget.update()


def error_brush() -> QColor:
    """The text colour of a failure in a table cell."""
    return QColor(tones().error_text)


def heat_colour(share: float, non_zero: bool) -> QColor:
    """From the empty colour (0) to the full colour (1); a non-zero hour is never empty."""
    t = tones()
    empty, full = QColor(t.heat_empty), QColor(t.heat_full)
    amount = share**0.6 if share > 0 else 0.0
    if non_zero:
        amount = max(amount, 0.08)

    def mix(a: int, b: int) -> int:
        return round(a + (b - a) * amount)

    return QColor(
        mix(empty.red(), full.red()),
        mix(empty.green(), full.green()),
        mix(empty.blue(), full.blue()),
    )


def status_colour(status: int | None) -> str:
    """An API request's HTTP status in the API chart."""
    if status is None:
        return UNKNOWN
    if status < 300:
        return STATUS_COLOURS.get(status, OTHER_SUCCESS)
    if status < 500:
        return STATUS_COLOURS.get(status, OTHER_CLIENT_ERROR)
    return SERVER_ERROR
