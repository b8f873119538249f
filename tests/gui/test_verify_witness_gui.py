"""Verify integrity in the window remembers what it verified, and says so when the database's
chain is later rolled back or deleted (both backends)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt
from sqlalchemy import text

from nvadmin.context import Context
from nvadmin.db.engine import make_engine
from nvadmin.ui.verify_dialog import VerifyDialog
from tests.gui.test_compliance import open_window, seed
from tests.unit.test_verify import attacker


@pytest.fixture
def context(db_url: str) -> Iterator[Context]:
    ctx = Context.create(db_url)
    yield ctx
    ctx.dispose()


def press_verify(qtbot, dialog: VerifyDialog) -> None:  # type: ignore[no-untyped-def]
    dialog.results = []
    qtbot.waitUntil(dialog.verify_button.isEnabled)
    dialog.verify_button.setFocus()
    qtbot.keyClick(dialog.verify_button, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: bool(dialog.results))


def test_a_rollback_after_a_verification_is_reported_in_the_window(qtbot, context: Context) -> None:  # type: ignore[no-untyped-def]
    ws = seed(context.engine)
    window = open_window(qtbot, context)
    dialog = window.features.compliance.open_verify()
    press_verify(qtbot, dialog)
    assert "61 events verified, chain intact" in dialog.headline.text()
    assert (context.paths.data_dir / "chain-witness.json").exists()
    owner = make_engine(context.database_url)  # the attacker holds the owner's rights
    with attacker(owner) as c:
        c.execute(
            text("DELETE FROM activity_events WHERE workspace_id = :w AND seq > 50"), {"w": ws}
        )
        fifty = c.execute(
            text("SELECT hash FROM activity_events WHERE workspace_id = :w AND seq = 50"),
            {"w": ws},
        ).scalar_one()
        c.execute(
            text("UPDATE chain_heads SET last_seq = 50, last_hash = :h WHERE workspace_id = :w"),
            {"h": fifty, "w": ws},
        )
    owner.dispose()
    press_verify(qtbot, dialog)
    assert "Chain broken at event #51" in dialog.headline.text()
    details = dialog.details.toPlainText()
    assert "this computer's record (verified on" in details
    assert "61 events, only 50 are left" in details
