"""Every window fits a 1280x720 screen (logical pixels, so 200% scaling on a 2560x1440
screen too) with every field reachable and readable, and opens fully on its screen."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from datetime import date

import keyring
import keyring.backends.fail
import pytest
from PySide6.QtCore import QRect, QSize, Qt, QTimer
from PySide6.QtWidgets import QApplication, QLineEdit, QMenu, QPushButton, QStyle, QWidget

from nvadmin.auth import accounts
from nvadmin.auth.accounts import command_line_operator
from nvadmin.auth.credentials import CredentialStore
from nvadmin.context import Context
from nvadmin.db.taxonomy import Category
from nvadmin.demo.accounts import create_demo_accounts
from nvadmin.demo.seed import SeedPlan, seed
from nvadmin.identity import Role, StaffIdentity
from nvadmin.paths import Paths
from nvadmin.ui.export_dialog import ExportDialog
from nvadmin.ui.lock_screen import LockScreen
from nvadmin.ui.main_window import MainWindow
from nvadmin.ui.sign_in import SignInDialog
from tests.gui.windows import ADMIN
from tests.gui.windows import open_main_window as open_window

SCREEN = QSize(1280, 720)
CTRL = Qt.KeyboardModifier.ControlModifier


@pytest.fixture
def context(sqlite_db_url: str) -> Iterator[Context]:
    ctx = Context(Paths.from_environment(), sqlite_db_url, is_default_database=False)
    seed(ctx.engine, SeedPlan(workspaces=2, events=3_000, seed=5, end=date(2026, 11, 1)))
    yield ctx
    ctx.dispose()


def fits(widget: QWidget, screen: QSize = SCREEN) -> bool:
    hint = widget.minimumSizeHint().expandedTo(widget.minimumSize())
    return hint.width() <= screen.width() and hint.height() <= screen.height()


def choose_custom_range(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    box = window.filter_bar.range_box
    box.setFocus()
    qtbot.keyClick(box, Qt.Key.Key_End)  # "Custom range" is the last entry
    assert box.currentData() == "custom"
    assert window.filter_bar.from_date.isVisible()


def test_main_window_fits_1280x720_with_every_filter_reachable(qtbot, context) -> None:  # type: ignore[no-untyped-def]
    window = open_window(qtbot, context)
    assert fits(window), window.minimumSizeHint()
    choose_custom_range(qtbot, window)
    qtbot.waitUntil(lambda: not window.model.loading)
    assert fits(window), window.minimumSizeHint()
    # Even a 1600-pixel screen at 200% (800 logical pixels) holds it with a custom range.
    assert fits(window, QSize(800, 600)), window.minimumSizeHint()

    window.resize(SCREEN)
    qtbot.waitUntil(lambda: window.width() <= SCREEN.width())
    bar = window.filter_bar
    inside = window.rect()
    for widget in bar.findChildren(QWidget):
        if widget.isVisible() and widget.parentWidget() is bar:
            where = QRect(widget.mapTo(window, widget.rect().topLeft()), widget.size())
            assert inside.contains(where), (widget, where, inside)
    # Free-text fields show their whole placeholder, never "P…".
    for edit in (bar.line_edits["patient"], bar.line_edits["ip"], bar.text_edit, bar.members_edit):
        shown = edit.fontMetrics().horizontalAdvance(edit.placeholderText().split(" (")[0])
        assert edit.width() >= shown + 20, (edit.placeholderText(), edit.width())
    for widget in (window.detail, window.statusBar(), window.table):
        assert widget.isVisible() and window.rect().contains(
            QRect(widget.mapTo(window, widget.rect().topLeft()), widget.size())
        )


def test_the_category_box_shows_each_of_its_texts_whole(qtbot, context) -> None:  # type: ignore[no-untyped-def]
    """The category box was as wide as "All categories" with its menu arrow over the last
    letter, and grew by half when two categories were chosen. It is as wide as its widest
    text, keeps that width whatever is chosen, and names only what fits."""
    window = open_window(qtbot, context)
    window.resize(SCREEN)
    qtbot.waitUntil(lambda: window.width() <= SCREEN.width())
    bar = window.filter_bar
    button = bar.category_button
    metrics = button.fontMetrics()
    arrow = button.style().pixelMetric(QStyle.PixelMetric.PM_MenuButtonIndicator, None, button)

    def whole(text: str) -> bool:
        # The text, a space either side (as QToolButton gives it), and the arrow beside it.
        needed = metrics.horizontalAdvance(text) + 2 * metrics.horizontalAdvance(" ") + arrow
        return button.width() >= needed

    def in_window() -> bool:
        where = QRect(button.mapTo(window, button.rect().topLeft()), button.size())
        return window.rect().contains(where)

    assert button.text() == "All categories"
    assert whole(button.text()), button.width()
    width = button.width()

    # Its own menu, from the keyboard: Space opens it, Down and Enter tick "Chart views".
    def tick_first() -> None:
        qtbot.waitUntil(lambda: isinstance(QApplication.activePopupWidget(), QMenu))
        menu = QApplication.activePopupWidget()
        qtbot.keyClick(menu, Qt.Key.Key_Down)
        assert menu.activeAction().text() == Category.CHART_VIEWS.label
        qtbot.keyClick(menu, Qt.Key.Key_Return)

    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    button.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is button)
    QTimer.singleShot(0, tick_first)
    qtbot.keyClick(button, Qt.Key.Key_Space)  # returns once the menu has closed
    assert button.text() == Category.CHART_VIEWS.label
    assert whole(button.text()) and button.width() == width and in_window()
    window.activateWindow()  # the window manager's part once the menu has gone
    qtbot.waitUntil(lambda: QApplication.focusWidget() is button)

    # Typed in the search bar: the widest name, two long names, six categories.
    six = "category:chart category:records category:signin category:failed category:api"
    for typed, shown in (
        ("category:log", Category.LOG_ACCESS.label),
        ("category:staff", Category.STAFF_ACCOUNTS.label),  # a KeyError once
        ("category:log category:records", "2 categories"),
        (f"{six} category:log", "6 categories"),
        ("", "All categories"),
    ):
        edit = bar.search_edit
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_F, CTRL)
        qtbot.waitUntil(lambda e=edit: QApplication.focusWidget() is e)
        qtbot.keyClick(edit, Qt.Key.Key_A, CTRL)
        qtbot.keyClick(edit, Qt.Key.Key_Backspace)
        qtbot.keyClicks(edit, typed)
        qtbot.keyClick(edit, Qt.Key.Key_Return)
        assert button.text() == shown, typed
        assert whole(shown), (shown, button.width())
        assert button.width() == width and in_window(), shown
        assert button.toolTip().count(",") == max(0, typed.count("category:") - 1)
    qtbot.waitUntil(lambda: not window.model.loading)

    # Whatever is chosen, what the box says fits it.
    labels = [c.label for c in Category]
    for count in range(len(labels) + 1):
        for chosen in itertools.combinations(labels, count):
            text = bar.category_text(chosen)
            assert whole(text), (chosen, text, button.width())
    assert fits(window), window.minimumSizeHint()


def test_main_window_opens_on_screen(qtbot, context) -> None:  # type: ignore[no-untyped-def]
    window = open_window(qtbot, context)
    area = window.screen().availableGeometry()
    assert area.contains(window.frameGeometry()), (window.frameGeometry(), area)


def test_insights_window_fits_and_opens_on_screen(qtbot, context) -> None:  # type: ignore[no-untyped-def]
    window = open_window(qtbot, context)
    view = window.features.insights.open()
    qtbot.waitUntil(lambda: view.insights is not None)
    qtbot.waitUntil(lambda: not view.busy())
    assert fits(view), view.minimumSizeHint()
    area = view.screen().availableGeometry()
    assert area.contains(view.frameGeometry()), (view.frameGeometry(), area)


def test_export_form_fits(qtbot, context) -> None:  # type: ignore[no-untyped-def]
    window = open_window(qtbot, context)
    dialog = ExportDialog(context.engine, ADMIN, initial_filter=window.current_filter())
    qtbot.addWidget(dialog)
    dialog.show()
    assert fits(dialog), dialog.minimumSizeHint()
    assert dialog.height() <= SCREEN.height() and dialog.width() <= SCREEN.width()


def test_export_form_shows_whole_workspace_names(qtbot, context) -> None:  # type: ignore[no-untyped-def]
    # The workspaces arrive after the form opens, sized for "Loading workspaces…": the box
    # used to keep that width and show "Harbor Pediatrics (harb".
    window = open_window(qtbot, context)
    dialog = ExportDialog(context.engine, ADMIN, initial_filter=window.current_filter())
    qtbot.addWidget(dialog)
    dialog.show()
    box = dialog.workspace_box
    qtbot.waitUntil(lambda: box.count() > 0)
    for i in range(box.count()):
        label = box.itemText(i)
        assert box.width() >= box.fontMetrics().horizontalAdvance(label) + 30, (label, box.width())


class _SlowFailingKeyring(keyring.backends.fail.Keyring):
    """No keyring, and it takes until ``answer`` is set to say so."""

    def __init__(self) -> None:
        super().__init__()
        self.answer = threading.Event()

    def get_password(self, service: str, username: str) -> str | None:
        self.answer.wait(10)
        return super().get_password(service, username)


def test_sign_in_dialog_grows_for_what_arrives_after_it_opened(qtbot, context) -> None:  # type: ignore[no-untyped-def]
    slow = _SlowFailingKeyring()
    keyring.set_keyring(slow)
    create_demo_accounts(context.engine)
    dialog = SignInDialog(context, CredentialStore(timeout=5))
    qtbot.addWidget(dialog)
    dialog.show()
    # The demo accounts arrive first, the keyring's answer (a yellow notice) after them.
    qtbot.waitUntil(lambda: dialog.demo_box.isVisible())
    slow.answer.set()
    qtbot.waitUntil(lambda: dialog.keyring_notice.isVisible())
    assert fits(dialog)
    layout = dialog.layout()
    qtbot.waitUntil(lambda: dialog.height() >= layout.totalHeightForWidth(dialog.width()))
    for button in dialog.demo_box.findChildren(QPushButton):
        assert button.height() >= button.sizeHint().height(), button.text()
        assert button.width() >= button.sizeHint().width(), button.text()
    notice = dialog.keyring_notice
    assert notice.height() >= notice.heightForWidth(notice.width())


def test_lock_screen_is_tall_enough_after_a_refusal(qtbot, context) -> None:  # type: ignore[no-untyped-def]
    accounts.add_staff(
        context.engine, command_line_operator(), "ana@n.example", "quiet-river-stones", "admin"
    )
    ana = StaffIdentity(2, "ana@n.example", "Ana Admin", Role.ADMIN)
    screen = LockScreen(context, ana, "Locked after 15 minutes without activity.")
    qtbot.addWidget(screen)
    screen.show()
    assert fits(screen)
    assert screen.height() >= screen.minimumSizeHint().height()
    qtbot.keyClicks(screen.password_edit, "not-the-password")
    qtbot.keyClick(screen.password_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: screen.message.isVisible())
    layout = screen.layout()
    qtbot.waitUntil(lambda: screen.height() >= layout.totalHeightForWidth(screen.width()))
    for child in screen.findChildren(QLineEdit) + screen.findChildren(QPushButton):
        assert child.height() >= child.minimumSizeHint().height()


def test_the_time_column_shows_its_whole_title(qtbot, context) -> None:  # type: ignore[no-untyped-def]
    """The time column's title names the zone the times are shown in: "Time (America/Den" with
    the sort arrow over it hid the zone a reader needs (a long one shown here)."""
    from zoneinfo import ZoneInfo

    from nvadmin.query import fields
    from nvadmin.ui.activity_model import column_of

    window = open_window(qtbot, context)
    qtbot.waitUntil(lambda: not window.model.loading)
    window.model.set_display(ZoneInfo("America/Argentina/Buenos_Aires"), {})
    column = column_of(fields.TIME)
    title = window.model.headerData(column, Qt.Orientation.Horizontal)
    assert title == "Time (America/Argentina/Buenos_Aires)"
    metrics = window.table.horizontalHeader().fontMetrics()
    # the title, the sort arrow beside it and the section's margins
    assert (
        window.table.columnWidth(column) >= metrics.horizontalAdvance(title) + 2 * metrics.height()
    )
