"""Desktop integration: Help menu (About, Show log folder), icons in light and dark
palettes, and the crash dialog for unexpected exceptions."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSize, QTimer, QUrl
from PySide6.QtGui import QColor, QDesktopServices, QGuiApplication, QIcon, QPalette
from PySide6.QtWidgets import QApplication

from nvadmin import __version__
from nvadmin import log as logsetup
from nvadmin.context import Context
from nvadmin.db.taxonomy import Category
from nvadmin.identity import Role, StaffIdentity
from nvadmin.ui import crash, desktop, icons
from nvadmin.ui.main_window import MainWindow

ADMIN = StaffIdentity(id=7, email="dana@nvadmin.example", display_name="Dana", role=Role.ADMIN)


@pytest.fixture
def context(sqlite_db_url: str) -> Iterator[Context]:
    ctx = Context.create(sqlite_db_url)
    yield ctx
    ctx.dispose()


@pytest.fixture
def window(qtbot, context: Context) -> MainWindow:  # type: ignore[no-untyped-def]
    win = MainWindow(context, ADMIN)
    qtbot.addWidget(win)
    win.show()
    return win


def dark_palette() -> QPalette:
    palette = QPalette()
    for role, colour in (
        (QPalette.ColorRole.Window, "#202124"),
        (QPalette.ColorRole.WindowText, "#e8eaed"),
        (QPalette.ColorRole.Base, "#17181a"),
        (QPalette.ColorRole.AlternateBase, "#242528"),
        (QPalette.ColorRole.Text, "#e8eaed"),
        (QPalette.ColorRole.Button, "#2b2c2f"),
        (QPalette.ColorRole.ButtonText, "#e8eaed"),
        (QPalette.ColorRole.Highlight, "#3d6fb4"),
        (QPalette.ColorRole.HighlightedText, "#ffffff"),
    ):
        palette.setColor(role, QColor(colour))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText, QColor("#7f8186"))
    return palette


@pytest.fixture
def dark(qapp: QApplication) -> Iterator[QPalette]:
    original = QApplication.palette()
    palette = dark_palette()
    QApplication.setPalette(palette)
    yield palette
    QApplication.setPalette(original)


def contrast(a: QColor, b: QColor) -> float:
    def luminance(c: QColor) -> float:
        def channel(v: float) -> float:
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

        return (
            0.2126 * channel(c.redF()) + 0.7152 * channel(c.greenF()) + 0.0722 * channel(c.blueF())
        )

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def ink(icon: QIcon, mode: QIcon.Mode = QIcon.Mode.Normal) -> QColor:
    """The colour of the icon's most opaque pixel (what the eye reads as its colour)."""
    image = icon.pixmap(QSize(32, 32), mode).toImage()
    best, colour = -1, QColor()
    for y in range(image.height()):
        for x in range(image.width()):
            pixel = image.pixelColor(x, y)
            if pixel.alpha() > best:
                best, colour = pixel.alpha(), pixel
    assert best > 200, "the icon drew nothing"
    return colour


# -- icons -------------------------------------------------------------------------------------


def test_action_icons_follow_the_palette_text_colour(qapp: QApplication, dark: QPalette) -> None:
    icon = icons.action_icon("refresh")
    on_dark = ink(icon)
    assert on_dark.lightness() > 180
    assert contrast(on_dark, dark.color(QPalette.ColorRole.Window)) > 7
    QApplication.setPalette(QPalette(QColor("#efefef")))  # a light palette, same icon object
    on_light = ink(icon)
    assert on_light.lightness() < 80
    assert contrast(on_light, QApplication.palette().color(QPalette.ColorRole.Window)) > 7


def test_disabled_icons_are_drawn_muted(qapp: QApplication, dark: QPalette) -> None:
    icon = icons.action_icon("export")
    normal, disabled = ink(icon), ink(icon, QIcon.Mode.Disabled)
    assert (
        disabled.name()
        == dark.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText).name()
    )
    assert disabled.lightness() < normal.lightness()


@pytest.mark.parametrize("palette_kind", ["light", "dark"])
def test_category_icons_read_on_both_palettes(qapp: QApplication, palette_kind: str) -> None:
    original = QApplication.palette()
    palette = dark_palette() if palette_kind == "dark" else QPalette(QColor("#efefef"))
    QApplication.setPalette(palette)
    try:
        assert icons.is_dark() == (palette_kind == "dark")
        window = palette.color(QPalette.ColorRole.Window)
        base = palette.color(QPalette.ColorRole.Base)
        seen = set()
        for category in Category:
            colour = ink(icons.category_icon(category))
            assert contrast(colour, window) >= 3, (category, colour.name())
            assert contrast(colour, base) >= 3, (category, colour.name())
            seen.add(colour.name())
        assert len(seen) == len(Category), "two categories share a colour"
    finally:
        QApplication.setPalette(original)


def test_unknown_action_icon_is_refused() -> None:
    with pytest.raises(KeyError):
        icons.action_icon("no-such-icon")


def test_application_gets_the_icon_and_desktop_file_name(qapp: QApplication) -> None:
    desktop.prepare_application(qapp)
    assert not qapp.windowIcon().isNull()
    assert qapp.windowIcon().pixmap(64, 64).width() == 64
    assert QGuiApplication.desktopFileName() == "nvadmin"


# -- Help menu ---------------------------------------------------------------------------------


def help_action(window: MainWindow, name: str):  # type: ignore[no-untyped-def]
    found = [a for a in window.menus.help.actions() if a.objectName() == name]
    assert len(found) == 1
    return found[0]


def test_help_menu_has_about_and_log_folder_and_window_actions_get_icons(
    window: MainWindow,
) -> None:
    assert help_action(window, "aboutNvadmin").text() == "&About nvadmin…"
    assert help_action(window, "showLogFolder").text() == "Show &log folder"
    actions = window.window_actions
    for action in (actions.refresh, actions.find, actions.lock, actions.quit):
        assert not action.icon().isNull(), action.text()


def test_about_shows_version_database_and_licences(window: MainWindow, context: Context) -> None:
    dialog = window.features.desktop.about_dialog()
    title = dialog.findChild(type(dialog.database_label), "aboutTitle")
    assert __version__ in title.text()
    assert dialog.database_label.text() == context.display_url
    assert dialog.log_label.text() == str(context.paths.log_file)
    rows = {
        dialog.table.item(r, 0).text(): (
            dialog.table.item(r, 1).text(),
            dialog.table.item(r, 2).text(),
        )
        for r in range(dialog.table.rowCount())
    }
    assert rows["SQLAlchemy"][1] == "MIT"
    assert rows["Qt"][1] == "LGPL-3.0-only"
    assert "LGPL-3.0-only" in rows["PySide6_Essentials"][1]
    assert "psycopg" in rows and "Python" in rows
    assert all(licence for _version, licence in rows.values())
    assert "nvadmin" not in rows  # the app itself is in the title, not in its own list
    dialog.copy_to_clipboard()
    copied = QGuiApplication.clipboard().text()
    assert f"nvadmin {__version__}" in copied and context.display_url in copied
    dialog.deleteLater()


def test_about_hides_the_database_password(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    context = Context.create("postgresql://viewer:s3cret@db.example/audit")
    dialog = desktop.AboutDialog(context)
    qtbot.addWidget(dialog)
    assert "s3cret" not in dialog.database_label.text()
    assert "s3cret" not in dialog.summary()


def test_show_log_folder_opens_the_log_directory(
    window: MainWindow, context: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[QUrl] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url) or True)
    help_action(window, "showLogFolder").trigger()
    assert [u.toLocalFile() for u in opened] == [str(context.paths.log_dir)]
    assert context.paths.log_dir.is_dir()


def test_show_log_folder_without_a_file_manager_copies_the_path(
    window: MainWindow, context: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: False)
    help_action(window, "showLogFolder").trigger()
    assert QGuiApplication.clipboard().text() == str(context.paths.log_dir)
    assert str(context.paths.log_dir) in window.statusBar().currentMessage()


# -- crash dialog ------------------------------------------------------------------------------


@pytest.fixture
def reporter(qapp: QApplication, context: Context) -> Iterator[crash.CrashReporter]:
    logsetup.configure(context.paths.log_file)
    installed = crash.install(context.paths.log_file)
    yield installed
    installed.uninstall()
    for handler in logging.getLogger().handlers:
        handler.close()
    logging.getLogger().handlers[:] = []


def answer_crash_dialog(qtbot, reporter: crash.CrashReporter, seen: list) -> None:  # type: ignore[no-untyped-def]
    """Wait for the modal dialog, record what it shows, copy the details, press Continue."""

    def check() -> None:
        dialog = reporter.last_dialog
        if dialog is None or not dialog.isVisible():
            QTimer.singleShot(20, check)
            return
        dialog.copy_button.click()
        seen.append(
            (
                dialog.summary_label.text(),
                dialog.log_label.text(),
                QGuiApplication.clipboard().text(),
                dialog.copy_button.text(),
            )
        )
        dialog.continue_button.click()

    QTimer.singleShot(0, check)


@pytest.mark.qt_no_exception_capture
def test_exception_in_a_slot_shows_the_dialog_and_is_logged(
    qtbot, reporter: crash.CrashReporter, context: Context
) -> None:
    def broken_slot() -> None:
        raise ValueError("connect to postgresql://viewer:s3cret@db.example/audit failed")

    seen: list = []
    answer_crash_dialog(qtbot, reporter, seen)
    QTimer.singleShot(0, broken_slot)
    qtbot.waitUntil(lambda: len(seen) == 1)
    summary, log_text, details, button = seen[0]
    assert summary.startswith("ValueError: connect to postgresql://viewer:***@db.example")
    assert str(context.paths.log_file) in log_text
    assert "Traceback" in details and "broken_slot" in details and __version__ in details
    assert "s3cret" not in details
    assert button == "Copied"
    for handler in logging.getLogger().handlers:
        handler.flush()
    logged = context.paths.log_file.read_text()
    assert "unexpected error in MainThread" in logged and "broken_slot" in logged


@pytest.mark.qt_no_exception_capture
def test_exception_in_a_worker_thread_reaches_the_gui_thread(
    qtbot, reporter: crash.CrashReporter
) -> None:
    shown_on: list[bool] = []
    reporter.reported.connect(
        lambda _report: shown_on.append(threading.current_thread() is threading.main_thread())
    )

    def worker() -> None:
        raise RuntimeError("worker fell over")

    seen: list = []
    answer_crash_dialog(qtbot, reporter, seen)
    thread = threading.Thread(target=worker, name="export worker")
    thread.start()
    thread.join()
    qtbot.waitUntil(lambda: len(seen) == 1)
    assert seen[0][0] == "RuntimeError: worker fell over"
    assert "thread: export worker" in seen[0][2]


@pytest.mark.qt_no_exception_capture
def test_a_storm_of_errors_shows_a_bounded_number_of_dialogs(
    qtbot, reporter: crash.CrashReporter
) -> None:
    def close_when_open() -> None:
        dialog = reporter.last_dialog
        if dialog is not None and dialog.isVisible():
            dialog.accept()
        QTimer.singleShot(10, close_when_open)

    def fail(i: int) -> None:
        try:
            raise OSError(f"disk trouble {i}")
        except OSError as error:
            reporter.excepthook(type(error), error, error.__traceback__)

    QTimer.singleShot(0, close_when_open)
    # Ten at once (a fault on every repaint): one dialog, every error logged and counted.
    for i in range(10):
        fail(i)
    qtbot.waitUntil(lambda: reporter.errors_reported == 10)
    assert reporter.dialogs_shown == 1
    # One after another: a dialog each time, up to the limit; then only the log.
    for i in range(10, 16):
        fail(i)
        qtbot.waitUntil(lambda i=i: reporter.errors_reported == i + 1)
    assert reporter.dialogs_shown == crash.MAX_DIALOGS


def test_crash_dialog_quit_button_ends_the_application(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    try:
        raise KeyError("x")
    except KeyError as error:
        report = crash.build_report(
            KeyError, error, error.__traceback__, tmp_path / "nvadmin.log", "MainThread"
        )
    dialog = crash.CrashDialog(report)
    qtbot.addWidget(dialog)
    dialog.show()
    assert not dialog.details_view.isVisible()
    dialog.details_button.click()
    assert dialog.details_view.isVisible()
    assert "KeyError" in dialog.details_view.toPlainText()
    exits: list[int] = []
    app = QApplication.instance()
    original_exit = app.exit
    try:
        app.exit = exits.append  # type: ignore[method-assign]
        dialog.quit_button.click()
    finally:
        app.exit = original_exit  # type: ignore[method-assign]
    assert exits == [1]
    assert not dialog.isVisible()


# -- single-window restore ---------------------------------------------------------------------


def test_window_size_position_and_splitter_come_back_after_quit(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    first = MainWindow(context, ADMIN)
    qtbot.addWidget(first)
    first.show()
    qtbot.waitUntil(lambda: first.state.loaded and not first.model.loading)
    # The offscreen test screen is 800x800; the window's minimum width is wider than that,
    # so only the height is free to change here without the screen clamping it.
    first.resize(first.minimumSizeHint().width(), 650)
    first.splitter.setSizes([800, 250])
    size, sizes = first.size(), first.splitter.sizes()
    first.close()  # File > Quit and the window's close button end up here

    second = MainWindow(context, ADMIN)
    qtbot.addWidget(second)
    second.show()
    qtbot.waitUntil(lambda: second.state.loaded and not second.model.loading)
    assert second.size() == size
    assert all(abs(a - b) <= 16 for a, b in zip(second.splitter.sizes(), sizes, strict=True))


def test_layout_is_kept_when_signing_out(
    qtbot, sqlite_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from nvadmin.auth import accounts
    from nvadmin.auth.accounts import command_line_operator
    from nvadmin.auth.signin import Authenticator
    from nvadmin.ui.session import Session

    context = Context.create(sqlite_db_url)
    accounts.add_staff(
        context.engine, command_line_operator(), "ana@n.example", "pw-long-1234", "admin"
    )
    session = Session(context, idle_timeout_ms=600_000)
    session.identity = (
        Authenticator(context.engine).sign_in("ana@n.example", "pw-long-1234").identity
    )
    session.open_window()
    window = session.window
    qtbot.waitUntil(lambda: window.state.loaded and not window.model.loading)
    window.resize(window.minimumSizeHint().width(), 610)
    window.splitter.setSizes([900, 200])
    qtbot.wait(100)  # let the layout settle, as it has long before anyone signs out
    size, sizes = window.size(), window.splitter.sizes()
    identity = session.identity
    monkeypatch.setattr(session, "_sign_in_again", lambda: None)
    with qtbot.waitSignal(session.signed_out):
        window.window_actions.sign_out.trigger()

    again = MainWindow(context, identity)  # the same person signs in again: their layout
    qtbot.addWidget(again)
    again.show()
    qtbot.waitUntil(lambda: again.state.loaded and not again.model.loading)
    assert again.size() == size
    # Within a few pixels: the detail pane's minimum width changes with the event it shows.
    assert all(abs(a - b) <= 16 for a, b in zip(again.splitter.sizes(), sizes, strict=True)), (
        again.splitter.sizes(),
        sizes,
    )
    context.dispose()
