"""The browser's remembered state belongs to one staff account: the next person to sign in
on the same computer never opens on the last one's search, saved searches or workspace."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication

from nvadmin.auth import accounts
from nvadmin.auth.accounts import command_line_operator
from nvadmin.auth.signin import Authenticator
from nvadmin.context import Context
from nvadmin.paths import Paths
from nvadmin.query.filters import Term
from nvadmin.ui.main_window import MainWindow
from nvadmin.ui.session import Session
from nvadmin.ui.settings import account_group
from tests.factories import add_workspace, draft, write
from tests.gui.windows import open_session_window

PASSWORD = "quiet-river-stones"
CTRL = Qt.KeyboardModifier.ControlModifier


@pytest.fixture
def context(sqlite_db_url: str) -> Iterator[Context]:
    ctx = Context(Paths.from_environment(), sqlite_db_url, is_default_database=False)
    riverside = add_workspace(ctx.engine)
    hillside = add_workspace(ctx.engine, "hillside", "Hillside Pediatrics", "Europe/Berlin")
    write(ctx.engine, riverside, [draft(i, patient_id="P-4471") for i in range(20)])
    write(ctx.engine, hillside, [draft(i) for i in range(5)])
    operator = command_line_operator()
    accounts.add_staff(ctx.engine, operator, "carla@n.example", PASSWORD, "compliance")
    accounts.add_staff(ctx.engine, operator, "dana@n.example", PASSWORD, "admin")
    yield ctx
    ctx.dispose()


def sign_in(qtbot, session: Session, email: str) -> MainWindow:  # type: ignore[no-untyped-def]
    identity = Authenticator(session.context.engine).sign_in(email, PASSWORD).identity
    return open_session_window(qtbot, session, identity, owned=False)


def sign_out(qtbot, session: Session) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(session.signed_out):
        session.sign_out()


def search_by_keys(qtbot, window: MainWindow, text: str) -> None:  # type: ignore[no-untyped-def]
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_F, CTRL)
    edit = window.filter_bar.search_edit
    qtbot.waitUntil(lambda: QApplication.focusWidget() is edit)
    qtbot.keyClicks(edit, text)
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not window.model.loading)


def test_the_next_user_does_not_see_the_last_users_search(
    qtbot, context: Context, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    session = Session(context, idle_timeout_ms=600_000)
    monkeypatch.setattr(session, "_sign_in_again", lambda: None)

    carla = sign_in(qtbot, session, "carla@n.example")
    riverside = next(w for w in carla.picker.workspaces if w.slug == "riverside")
    carla.picker.select(riverside, notify=True)
    qtbot.waitUntil(lambda: not carla.model.loading)
    search_by_keys(qtbot, carla, "patient:P-4471")
    assert carla.current_filter().terms == (Term("patient", "P-4471"),)
    carla.save_search("Patient under investigation")
    sign_out(qtbot, session)

    dana = sign_in(qtbot, session, "dana@n.example")
    assert dana.filter_bar.search_edit.text() == ""
    assert dana.current_filter().terms == ()
    assert dana.saved_searches.all() == []
    assert dana.current_workspace() is None or dana.current_workspace().slug != "riverside"
    sign_out(qtbot, session)
    stored = QSettings(str(context.paths.settings_file), QSettings.Format.IniFormat)
    stored.beginGroup(account_group("dana@n.example"))
    assert stored.allKeys() and all("P-4471" not in str(stored.value(k)) for k in stored.allKeys())

    carla = sign_in(qtbot, session, "carla@n.example")  # her own state comes back
    assert carla.current_workspace().slug == "riverside"
    assert carla.current_filter().terms == (Term("patient", "P-4471"),)
    assert [s.name for s in carla.saved_searches.all()] == ["Patient under investigation"]
    sign_out(qtbot, session)


def test_settings_shared_by_earlier_versions_are_not_handed_to_anyone(
    qtbot, context: Context, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    settings_file = context.paths.settings_file
    settings_file.parent.mkdir(parents=True, exist_ok=True)
    old = QSettings(str(settings_file), QSettings.Format.IniFormat)
    old.setValue("browser/search", "patient:P-4471")
    old.sync()
    session = Session(context, idle_timeout_ms=600_000)
    monkeypatch.setattr(session, "_sign_in_again", lambda: None)
    dana = sign_in(qtbot, session, "dana@n.example")
    assert dana.filter_bar.search_edit.text() == ""
    sign_out(qtbot, session)
    assert "P-4471" not in settings_file.read_text(encoding="utf-8")


def test_lock_takes_the_exports_list_off_the_screen(
    qtbot, context: Context, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    session = Session(context, idle_timeout_ms=600_000)
    monkeypatch.setattr(session, "_sign_in_again", lambda: None)
    dana = sign_in(qtbot, session, "dana@n.example")
    dock = dana.features.export.dock
    dock.show()
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_L, CTRL)
    qtbot.waitUntil(lambda: session.locked)
    assert not dock.isVisible() and dana.filter_bar.isHidden()
    screen = session.lock_screen
    assert screen is not None
    screen.password_edit.setFocus()
    qtbot.keyClicks(screen.password_edit, PASSWORD)
    qtbot.keyClick(screen.password_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not session.locked)
    assert dock.isVisible()
    sign_out(qtbot, session)
