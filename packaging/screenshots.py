"""Screenshots of the desktop integration in a light and a dark palette.

    xvfb-run -a -s "-screen 0 1600x1000x24" uv run python packaging/screenshots.py

Writes docs/screenshots/light-*.png, dark-*.png, about.png and crash-dialog.png from a
temporary demo database (4 clinics, 6,000 events). Both palettes use the Fusion style so
the only difference is the palette, as on a desktop switching between light and dark mode.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
sys.path.insert(0, str(ROOT))


def dark_palette():  # type: ignore[no-untyped-def]
    from PySide6.QtGui import QColor, QPalette

    palette = QPalette()
    colours = {
        QPalette.ColorRole.Window: "#202124",
        QPalette.ColorRole.WindowText: "#e8eaed",
        QPalette.ColorRole.Base: "#17181a",
        QPalette.ColorRole.AlternateBase: "#232427",
        QPalette.ColorRole.ToolTipBase: "#2b2c2f",
        QPalette.ColorRole.ToolTipText: "#e8eaed",
        QPalette.ColorRole.PlaceholderText: "#8a8d91",
        QPalette.ColorRole.Text: "#e8eaed",
        QPalette.ColorRole.Button: "#2b2c2f",
        QPalette.ColorRole.ButtonText: "#e8eaed",
        QPalette.ColorRole.BrightText: "#ff6b6b",
        QPalette.ColorRole.Highlight: "#3d6fb4",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: "#8ab4f8",
        QPalette.ColorRole.Light: "#3a3b3e",
        QPalette.ColorRole.Midlight: "#313235",
        QPalette.ColorRole.Mid: "#2a2b2e",
        QPalette.ColorRole.Dark: "#141517",
        QPalette.ColorRole.Shadow: "#000000",
    }
    for role, colour in colours.items():
        palette.setColor(role, QColor(colour))
    for role in (
        QPalette.ColorRole.WindowText,
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
    ):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#7f8186"))
    return palette


def icon_sheet(parent=None):  # type: ignore[no-untyped-def]
    """Every action and category icon with its name, normal and disabled."""
    from PySide6.QtWidgets import QGridLayout, QLabel, QWidget

    from nvadmin.db.taxonomy import Category
    from nvadmin.ui import icons

    sheet = QWidget(parent)
    sheet.setAutoFillBackground(True)
    grid = QGridLayout(sheet)
    grid.addWidget(QLabel("<b>Actions</b>", sheet), 0, 0, 1, 6)
    for index, name in enumerate(icons.ACTIONS):
        row, col = 1 + index // 3, (index % 3) * 2
        picture = QLabel(sheet)
        icon = icons.action_icon(name)
        picture.setPixmap(icon.pixmap(24, 24))
        grid.addWidget(picture, row, col)
        grid.addWidget(QLabel(name, sheet), row, col + 1)
    base = 2 + len(icons.ACTIONS) // 3
    grid.addWidget(QLabel("<b>Event categories</b>", sheet), base, 0, 1, 6)
    for index, category in enumerate(Category):
        row, col = base + 1 + index // 3, (index % 3) * 2
        picture = QLabel(sheet)
        picture.setPixmap(icons.category_icon(category).pixmap(24, 24))
        grid.addWidget(picture, row, col)
        grid.addWidget(QLabel(category.label, sheet), row, col + 1)
    disabled = QLabel(sheet)
    disabled.setEnabled(False)
    grid.addWidget(QLabel("<b>Disabled</b>", sheet), base + 4, 0, 1, 6)
    for index, name in enumerate(("export", "lock", "refresh")):
        picture = QLabel(sheet)
        picture.setPixmap(
            icons.action_icon(name).pixmap(24, 24, icons.QIcon.Mode.Disabled)  # type: ignore[attr-defined]
        )
        grid.addWidget(picture, base + 5, index * 2)
        grid.addWidget(QLabel(f"{name} (disabled)", sheet), base + 5, index * 2 + 1)
    sheet.resize(560, sheet.sizeHint().height())
    return sheet


def main() -> int:
    home = Path(tempfile.mkdtemp(prefix="nvadmin-shots-"))
    os.environ["NVADMIN_HOME"] = str(home)
    os.environ.pop("NVADMIN_DATABASE_URL", None)
    import keyring
    import keyring.backends.fail

    keyring.set_keyring(keyring.backends.fail.Keyring())

    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from nvadmin.auth.credentials import CredentialStore
    from nvadmin.auth.signin import Authenticator
    from nvadmin.context import Context
    from nvadmin.db import migrate
    from nvadmin.demo.seed import SeedPlan, seed_demo
    from nvadmin.ui import crash, desktop
    from nvadmin.ui.main_window import MainWindow
    from nvadmin.ui.sign_in import SignInDialog

    app = QApplication([sys.argv[0]])
    app.setStyle("Fusion")
    desktop.prepare_application(app)
    context = Context.create()
    context.paths.create()
    migrate.upgrade(context.engine)
    seed_demo(context.engine, SeedPlan(workspaces=4, events=6_000, days=30))
    identity = (
        Authenticator(context.engine)
        .sign_in("admin@demo.nvadmin.example", "admin-demo-2025")
        .identity
    )
    light = app.palette()
    OUT.mkdir(parents=True, exist_ok=True)

    def wait(ms: int) -> None:
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    def wait_rows(window: MainWindow) -> None:
        for _ in range(300):
            if window.model.rowCount() and not window.model.loading:
                return
            wait(50)
        raise SystemExit("rows did not load")

    for name, palette in (("light", light), ("dark", dark_palette())):
        app.setPalette(palette)
        window = MainWindow(context, identity)
        window.resize(1500, 880)
        window.show()
        wait_rows(window)
        window.table.selectRow(3)
        wait(300)
        window.grab().save(str(OUT / f"{name}-main-window.png"))
        menu = window.menus.help
        menu.popup(window.mapToGlobal(window.rect().topLeft()))
        wait(200)
        menu.grab().save(str(OUT / f"{name}-help-menu.png"))
        menu.hide()
        view = window.menus.view
        view.popup(window.mapToGlobal(window.rect().topLeft()))
        wait(200)
        view.grab().save(str(OUT / f"{name}-view-menu.png"))
        view.hide()
        sheet = icon_sheet()
        sheet.show()
        wait(100)
        sheet.grab().save(str(OUT / f"{name}-icons.png"))
        sheet.close()
        if name == "light":
            about = window.desktop_feature.about_dialog()
            about.resize(680, 640)
            about.show()
            wait(200)
            about.grab().save(str(OUT / "about.png"))
            about.close()
        else:
            about = window.desktop_feature.about_dialog()
            about.resize(680, 640)
            about.show()
            wait(200)
            about.grab().save(str(OUT / "dark-about.png"))
            about.close()
        window.close()
        wait(200)
        sign_in = SignInDialog(context, CredentialStore())
        sign_in.show()
        for _ in range(100):
            if sign_in.facts is not None and sign_in.keyring_status is not None:
                break
            wait(50)
        wait(200)
        sign_in.grab().save(str(OUT / f"{name}-sign-in.png"))
        sign_in.close()

    app.setPalette(light)
    try:
        raise ConnectionError(
            "server closed the connection unexpectedly (postgresql://viewer:***@db.example/audit)"
        )
    except ConnectionError as error:
        report = crash.build_report(
            ConnectionError, error, error.__traceback__, context.paths.log_file, "MainThread"
        )
    dialog = crash.CrashDialog(report)
    dialog.show()
    wait(100)
    dialog.grab().save(str(OUT / "crash-dialog.png"))
    dialog.toggle_details()
    wait(100)
    dialog.grab().save(str(OUT / "crash-dialog-details.png"))
    dialog.close()
    context.dispose()
    print(f"screenshots in {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
