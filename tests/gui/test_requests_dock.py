"""The Requests dock with real keys: a request received on the command line appears in the
queue, is fulfilled from the window with the keyboard only, and ends delivered with its
evidence (on PostgreSQL as the support member's own login)."""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QThreadPool
from PySide6.QtGui import Qt as GuiQt
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import QApplication, QLabel
from sqlalchemy import select

from nvadmin.__main__ import main
from nvadmin.context import Context
from nvadmin.db.models import ActivityEvent, TeamMember
from nvadmin.export import requests
from nvadmin.export.manifest import file_sha256
from nvadmin.export.requests import Status
from nvadmin.identity import Role, StaffIdentity
from nvadmin.ui.main_window import MainWindow
from nvadmin.ui.requests_dock import RequestsModel
from tests.factories import add_member, add_workspace, draft, sign_in_as, write

SUPPORT = StaffIdentity(8, "sam@nvadmin.example", "Sam Support", Role.SUPPORT)
ADMIN = StaffIdentity(9, "dana@nvadmin.example", "Dana Admin", Role.ADMIN)


@pytest.fixture
def context(db_url: str) -> Iterator[Context]:
    ctx = Context.create(db_url)
    ws = add_workspace(ctx.engine)
    add_member(ctx.engine, ws, "olga@riverside.example", "Olga Owens", "practice_admin")
    add_member(ctx.engine, ws, "phil@riverside.example", "Phil Park", "physician")
    with ctx.engine.begin() as connection:
        connection.execute(
            TeamMember.__table__.update().values(created_at=datetime(2024, 1, 1, tzinfo=UTC))
        )
    write(ctx.engine, ws, [draft(i) for i in range(12)])
    yield ctx
    ctx.dispose()


def add_by_command_line(db_url: str, monkeypatch: pytest.MonkeyPatch, *extra: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code = main(["--database", db_url, "requests", "add", "--workspace", "riverside",
                 "--from", "2025-03-01", "--to", "2025-03-31", *extra])  # fmt: skip
    assert code == 0


def open_window(qtbot, context: Context, identity: StaffIdentity = SUPPORT) -> MainWindow:  # type: ignore[no-untyped-def]
    window = MainWindow(context, sign_in_as(context, identity))
    qtbot.addWidget(window)
    window.resize(1280, 720)
    window.show()
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    qtbot.waitUntil(lambda: window.state.loaded)
    qtbot.waitUntil(lambda: not window.model.loading)
    return window


def test_fulfilled_from_the_queue_with_keys_only(  # type: ignore[no-untyped-def]
    qtbot, context: Context, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = context.engine  # before sign-in: the database owner, for checking afterwards
    add_by_command_line(db_url, monkeypatch, "--requester", "olga@riverside.example",
                        "--ticket", "SUP-200", "--purpose", "complaint review",
                        "--recipient", "Olga Owens")  # fmt: skip
    add_by_command_line(db_url, monkeypatch, "--requester", "stranger@elsewhere.example",
                        "--ticket", "SUP-201")  # fmt: skip
    request_id = requests.find_request(owner, "SUP-200").id
    window = open_window(qtbot, context)
    feature = window.features.requests
    panel = feature.panel
    assert feature.dock.isVisible()  # support's home screen
    qtbot.waitUntil(lambda: panel.model.rowCount() == 2)
    feature.last_folder = tmp_path

    # Ctrl+Shift+R puts the keyboard in the queue; Down/Up choose, Enter opens the form
    qtbot.keyClick(window.table, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier
                   | Qt.KeyboardModifier.ShiftModifier)  # fmt: skip
    qtbot.waitUntil(lambda: panel.table.hasFocus())
    # both are due about the same time: the earlier one first, selected
    assert panel.current() is not None and panel.current().ticket == "SUP-200"
    assert panel.fulfil_button.isEnabled()
    qtbot.keyClick(panel.table, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: getattr(feature, "dialog", None) is not None)
    dialog = feature.dialog
    qtbot.waitUntil(lambda: dialog.isVisible() and dialog.last_count == 12)
    assert dialog.ticket_edit.text() == "SUP-200" and not dialog.ticket_edit.isEnabled()
    assert dialog.from_edit.date().toPython().isoformat() == "2025-03-01"
    qtbot.keyClick(dialog.focusWidget() or dialog, Qt.Key.Key_Return)  # Start
    qtbot.waitUntil(
        lambda: requests.get_request(owner, request_id).status is Status.EXPORTED,
    )
    qtbot.waitUntil(
        lambda: panel.current() is not None and panel.current().status is Status.EXPORTED,
    )
    # the form has closed: the window takes the keyboard back (as a window manager gives
    # it; offscreen has none), Ctrl+Shift+R the queue
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    ctrl_shift = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    qtbot.keyClick(QApplication.focusWidget() or window, Qt.Key.Key_R, ctrl_shift)
    qtbot.waitUntil(lambda: panel.table.hasFocus())
    qtbot.keyClick(panel.table, Qt.Key.Key_D, Qt.KeyboardModifier.AltModifier)  # delivered
    qtbot.waitUntil(
        lambda: requests.get_request(owner, request_id).status is Status.DELIVERED,
    )
    view = requests.get_request(owner, request_id)
    assert view.export_path and view.manifest_path and view.export_rows == 12
    assert view.export_sha256 == file_sha256(Path(view.export_path))
    assert view.manifest_sha256 == file_sha256(Path(view.manifest_path))
    assert Path(view.export_path).parent == tmp_path
    with owner.connect() as connection:
        actions = list(
            connection.execute(
                select(ActivityEvent.action)
                .where(ActivityEvent.resource_type == "export_request")
                .order_by(ActivityEvent.seq)
            ).scalars()
        )
    assert actions[-2:] == [
        "activity_log.export_request.exported",
        "activity_log.export_request.delivered",
    ]
    # now the open request comes first; the one whose requester is not a clinic admin cannot
    # be opened for export: Enter says why instead
    qtbot.waitUntil(lambda: panel.model.views[0].ticket == "SUP-201")
    qtbot.keyClick(panel.table, Qt.Key.Key_Up)
    assert panel.current() is not None and panel.current().ticket == "SUP-201"
    assert not panel.fulfil_button.isEnabled() and not panel.override_button.isEnabled()
    qtbot.keyClick(panel.table, Qt.Key.Key_Return)
    assert "not a team member of this workspace" in window.banner.text()
    assert "admin overrides the check" in window.banner.text()
    window.close()


def test_queue_model_is_sound_and_marks_overdue_rows(  # type: ignore[no-untyped-def]
    qtmodeltester, context: Context, monkeypatch: pytest.MonkeyPatch, db_url: str
) -> None:
    add_by_command_line(db_url, monkeypatch, "--requester", "olga@riverside.example",
                        "--ticket", "LATE", "--received", "2026-01-05T09:00-06:00")  # fmt: skip
    add_by_command_line(db_url, monkeypatch, "--requester", "olga@riverside.example",
                        "--ticket", "FRESH")  # fmt: skip
    model = RequestsModel()
    model.set_requests(requests.list_requests(context.engine))
    qtmodeltester.check(model)
    assert model.rowCount() == 2
    assert model.index(0, 1).data() == "LATE"
    assert str(model.index(0, 0).data()).startswith("overdue by")
    assert model.index(0, 0).data(Qt.ItemDataRole.FontRole).bold()
    assert str(model.index(1, 0).data()).startswith("due in")


def test_an_admin_overrides_the_check_with_a_reason_typed_in_the_dialog(  # type: ignore[no-untyped-def]
    qtbot, context: Context, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = context.engine
    add_by_command_line(db_url, monkeypatch, "--requester", "phil@riverside.example",
                        "--ticket", "SUP-300")  # fmt: skip
    request_id = requests.find_request(owner, "SUP-300").id
    window = open_window(qtbot, context, ADMIN)
    feature = window.features.requests
    assert not feature.dock.isVisible()  # not an admin's home screen: View → Requests queue
    ctrl_shift = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    qtbot.keyClick(QApplication.focusWidget() or window, Qt.Key.Key_R, ctrl_shift)
    panel = feature.panel
    qtbot.waitUntil(lambda: panel.model.rowCount() == 1)
    qtbot.waitUntil(lambda: panel.table.hasFocus())
    assert panel.override_button.isEnabled() and not panel.fulfil_button.isEnabled()

    qtbot.keyClick(panel.table, Qt.Key.Key_O, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: panel.reason_dialog is not None)
    box = panel.reason_dialog
    qtbot.waitUntil(lambda: box.isVisible() and box.focusWidget() is not None)
    assert "not an admin role" in box.labelText()
    qtbot.keyClicks(box.focusWidget(), "owner confirmed by phone")
    qtbot.keyClick(box.focusWidget(), Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: requests.get_request(owner, request_id).status is Status.VERIFIED)
    view = requests.get_request(owner, request_id)
    assert view.override_reason == "owner confirmed by phone"
    qtbot.waitUntil(lambda: panel.fulfil_button.isEnabled())
    window.close()


def test_disclosures_as_pdf_from_the_command_line(  # type: ignore[no-untyped-def]
    qtbot, context: Context, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_by_command_line(db_url, monkeypatch, "--requester", "olga@riverside.example",
                        "--ticket", "SUP-400", "--recipient", "Olga Owens")  # fmt: skip
    request_id = requests.find_request(context.engine, "SUP-400").id
    from nvadmin.auth.accounts import command_line_operator

    requests.fulfil(context.engine, command_line_operator(), request_id, tmp_path)
    requests.move(context.engine, command_line_operator(), request_id, requests.Operation.DELIVER)
    pdf = tmp_path / "disclosures.pdf"
    code = main(["--database", db_url, "requests", "disclosures", "--workspace", "riverside",
                 "--pdf", str(pdf)])  # fmt: skip
    assert code == 0
    assert pdf.read_bytes().startswith(b"%PDF")
    assert oct(pdf.stat().st_mode & 0o777) == "0o600"


def test_packaged_and_delivered_with_keys_only_passphrase_shown_once(  # type: ignore[no-untyped-def]
    qtbot, context: Context, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyzipper

    from nvadmin.audit.checkpoints import KeyStore
    from nvadmin.auth.accounts import command_line_operator

    owner = context.engine
    KeyStore(context.paths.config_dir).create_signing_key()
    add_by_command_line(db_url, monkeypatch, "--requester", "olga@riverside.example",
                        "--ticket", "SUP-500", "--recipient", "Olga Owens")  # fmt: skip
    request_id = requests.find_request(owner, "SUP-500").id
    exported = requests.fulfil(owner, command_line_operator(), request_id, tmp_path)
    window = open_window(qtbot, context)
    panel = window.features.requests.panel
    ctrl_shift = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    qtbot.keyClick(QApplication.focusWidget() or window, Qt.Key.Key_R, ctrl_shift)
    qtbot.waitUntil(lambda: panel.table.hasFocus())
    qtbot.waitUntil(lambda: panel.current() is not None and panel.package_button.isEnabled())

    qtbot.keyClick(panel.table, Qt.Key.Key_P, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: panel.passphrase_dialog is not None)
    dialog = panel.passphrase_dialog
    qtbot.waitUntil(lambda: dialog.isVisible() and dialog.focusWidget() is dialog.passphrase)
    passphrase = dialog.passphrase.text()
    assert dialog.passphrase.isReadOnly() and dialog.passphrase.selectedText() == passphrase
    texts = " ".join(label.text() for label in dialog.findChildren(QLabel))
    assert "shown only now" in texts and "another channel" in texts
    qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_Tab)
    assert dialog.focusWidget() is dialog.copy_button
    qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_Space)  # Copy
    assert QApplication.clipboard().text() == passphrase
    qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: panel.passphrase_dialog is None)

    view = requests.get_request(owner, request_id)
    assert view.status is Status.DELIVERED
    package = Path(exported.export_path or "").with_suffix(".zip")
    assert view.package_path == str(package)
    assert view.package_sha256 == file_sha256(package)
    with owner.connect() as connection:
        delivered = connection.execute(
            select(ActivityEvent.details).where(
                ActivityEvent.action == "activity_log.export_request.delivered"
            )
        ).scalar_one()
    assert json.loads(delivered)["package_sha256"] == view.package_sha256
    assert passphrase not in delivered
    with pyzipper.AESZipFile(package) as archive:
        archive.setpassword(passphrase.encode())
        assert (
            archive.read(Path(exported.export_path or "").name)
            == Path(exported.export_path or "").read_bytes()
        )
    # delivered leaves the Open queue: Alt+S, End shows All, the detail pane has the hash
    window.activateWindow()  # as a window manager gives it back; offscreen has none
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    qtbot.keyClick(QApplication.focusWidget() or window, Qt.Key.Key_R, ctrl_shift)
    qtbot.waitUntil(lambda: panel.table.hasFocus())
    qtbot.keyClick(panel.table, Qt.Key.Key_S, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: panel.status_box.hasFocus())
    qtbot.keyClick(panel.status_box, Qt.Key.Key_End)
    qtbot.waitUntil(lambda: panel.current() is not None and bool(panel.current().package_sha256))
    assert view.package_sha256 in panel.detail.text()
    window.close()


def shown(label: QLabel) -> str:
    """What a label puts on screen: its text, or the text its markup renders to."""
    text = label.text()
    rich = label.textFormat() == Qt.TextFormat.RichText or (
        label.textFormat() == Qt.TextFormat.AutoText and GuiQt.mightBeRichText(text)
    )
    if not rich:
        # A label with a buddy takes "&x" for its Alt+X and shows "&&" as "&".
        return re.sub(r"&(.)", r"\1", text) if label.buddy() is not None else text
    document = QTextDocument()
    document.setHtml(text)
    return document.toPlainText()


def test_a_ticket_id_with_markup_reads_as_typed(  # type: ignore[no-untyped-def]
    qtbot, context: Context, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket = "HD-<b>77</b>&amp;"
    add_by_command_line(db_url, monkeypatch, "--requester", "olga@riverside.example",
                        "--ticket", ticket)  # fmt: skip
    window = open_window(qtbot, context)
    panel = window.features.requests.panel
    ctrl_shift = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    qtbot.keyClick(QApplication.focusWidget() or window, Qt.Key.Key_R, ctrl_shift)
    qtbot.waitUntil(lambda: panel.table.hasFocus() and panel.current() is not None)
    qtbot.keyClick(panel.table, Qt.Key.Key_R, Qt.KeyboardModifier.AltModifier)  # Reject…
    qtbot.waitUntil(lambda: panel.reason_dialog is not None and panel.reason_dialog.isVisible())
    box = panel.reason_dialog
    labels = [shown(label) for label in box.findChildren(QLabel) if label.text()]
    assert any(f"({ticket})" in text for text in labels), labels
    qtbot.keyClick(box.focusWidget(), Qt.Key.Key_Escape)
    # fulfilling it: the queue's status line names the ticket as typed too
    feature = window.features.requests
    feature.last_folder = tmp_path
    qtbot.keyClick(panel.table, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: getattr(feature, "dialog", None) is not None)
    dialog = feature.dialog
    qtbot.waitUntil(lambda: dialog.isVisible() and dialog.last_count == 12)
    qtbot.keyClick(dialog.focusWidget() or dialog, Qt.Key.Key_Return)  # Start
    assert shown(panel.status_label).startswith(f"Exporting request 1 ({ticket})")
    qtbot.waitUntil(lambda: not panel.jobs)
    window.close()


def fulfil_form(qtbot, window):  # type: ignore[no-untyped-def]
    """Ctrl+Shift+R to the queue, Return on its request: the export form, its 12 rows counted."""
    feature = window.features.requests
    panel = feature.panel
    ctrl_shift = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    qtbot.keyClick(QApplication.focusWidget() or window, Qt.Key.Key_R, ctrl_shift)
    qtbot.waitUntil(lambda: panel.table.hasFocus() and panel.current() is not None)
    qtbot.keyClick(panel.table, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: getattr(feature, "dialog", None) is not None)
    dialog = feature.dialog
    qtbot.waitUntil(lambda: dialog.isVisible() and dialog.last_count == 12)
    return dialog


def test_a_request_rejected_by_someone_else_while_the_form_is_open(  # type: ignore[no-untyped-def]
    qtbot, context: Context, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two people at once: the export is refused, the queue stops saying "Exporting…" and
    shows the request as it now is (gone from the open requests)."""
    from nvadmin.auth.accounts import command_line_operator

    owner = context.engine
    add_by_command_line(db_url, monkeypatch, "--requester", "olga@riverside.example",
                        "--ticket", "SUP-600")  # fmt: skip
    request_id = requests.find_request(owner, "SUP-600").id
    window = open_window(qtbot, context)
    feature = window.features.requests
    panel = feature.panel
    feature.last_folder = tmp_path
    dialog = fulfil_form(qtbot, window)
    # meanwhile a reviewer in another session rejects it
    requests.move(owner, command_line_operator(), request_id, requests.Operation.REJECT,
                  "not the clinic's request")  # fmt: skip
    qtbot.keyClick(dialog.focusWidget() or dialog, Qt.Key.Key_Return)  # Start
    qtbot.waitUntil(lambda: "only a verified request is exported" in window.banner.text())
    qtbot.waitUntil(lambda: not panel.jobs)
    assert not panel.status_label.text().startswith("Exporting")
    assert panel.model.row_of(request_id) is None
    assert requests.get_request(owner, request_id).status is Status.REJECTED
    assert not list(tmp_path.glob("*.csv"))
    window.close()


def test_a_running_fulfilment_is_cancelled_from_the_queue(  # type: ignore[no-untyped-def]
    qtbot, context: Context, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = context.engine
    add_by_command_line(db_url, monkeypatch, "--requester", "olga@riverside.example",
                        "--ticket", "SUP-700")  # fmt: skip
    request_id = requests.find_request(owner, "SUP-700").id
    window = open_window(qtbot, context)
    feature = window.features.requests
    panel = feature.panel
    folder = tmp_path / "exports"
    folder.mkdir()
    feature.last_folder = folder
    dialog = fulfil_form(qtbot, window)
    # Every worker thread busy: the export waits its turn, so it is surely still running
    # when the keys cancel it (a 12-row export would otherwise end before any key).
    gate = threading.Event()
    pool = QThreadPool.globalInstance()
    for _ in range(pool.maxThreadCount()):
        pool.start(gate.wait)
    try:
        qtbot.keyClick(dialog.focusWidget() or dialog, Qt.Key.Key_Return)  # Start
        qtbot.waitUntil(lambda: request_id in panel.exports)
        window.activateWindow()  # as a window manager gives it back; offscreen has none
        qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
        assert panel.table.hasFocus()  # back in the queue the form was opened from
        assert not panel.fulfil_button.isEnabled()  # not a second export of the same request
        qtbot.keyClick(panel.table, Qt.Key.Key_Return)
        assert "being exported already" in window.banner.text()
        job = panel.exports[request_id]
        qtbot.keyClick(panel.table, Qt.Key.Key_X, Qt.KeyboardModifier.AltModifier)
        qtbot.waitUntil(lambda: job.token.cancelled)  # a mnemonic clicks a moment later
    finally:
        gate.set()
    qtbot.waitUntil(lambda: not panel.exports and not panel.jobs)
    assert requests.get_request(owner, request_id).status is Status.VERIFIED
    assert not list(folder.iterdir())  # nothing half-written left behind
    assert not panel.status_label.text().startswith(("Exporting", "Cancelling"))
    assert not panel.cancel_export_button.isVisible()
    assert "export cancelled" in window.statusBar().currentMessage()
    window.close()


def test_marking_delivered_what_someone_else_delivered_shows_it_as_it_now_is(  # type: ignore[no-untyped-def]
    qtbot, context: Context, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nvadmin.auth.accounts import command_line_operator

    owner = context.engine
    add_by_command_line(db_url, monkeypatch, "--requester", "olga@riverside.example",
                        "--ticket", "SUP-800")  # fmt: skip
    request_id = requests.find_request(owner, "SUP-800").id
    requests.fulfil(owner, command_line_operator(), request_id, tmp_path)
    window = open_window(qtbot, context)
    panel = window.features.requests.panel
    ctrl_shift = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    qtbot.keyClick(QApplication.focusWidget() or window, Qt.Key.Key_R, ctrl_shift)
    # the queue loaded, and no load still under way (one reading after the delivery below
    # would show it delivered before the keys act on it)
    qtbot.waitUntil(
        lambda: panel.table.hasFocus() and panel.deliver_button.isEnabled() and not panel.jobs
    )
    # another session delivers it first
    requests.move(owner, command_line_operator(), request_id, requests.Operation.DELIVER)
    qtbot.keyClick(panel.table, Qt.Key.Key_D, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: "it cannot be delivered" in window.banner.text())
    # the queue read again: delivered, no longer an open request
    qtbot.waitUntil(
        lambda: panel.model.row_of(request_id) is None and not panel.deliver_button.isEnabled()
    )
    window.close()
