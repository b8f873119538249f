"""The sign-in screen warns when a chain this computer verified was rolled back or deleted since
(one query of the chain heads; both backends)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nvadmin.audit.verify import verify_workspace
from nvadmin.audit.witness import ChainWitness
from nvadmin.context import Context
from nvadmin.paths import Paths
from tests.gui.test_sign_in import open_dialog
from tests.unit.test_verify import REVIEWER, chain
from tests.unit.test_verify_witness import delete_whole_log, truncate_and_rewind

CHAIN_WARNING = "no longer extends what this computer verified before"


@pytest.fixture
def context(db_url: str) -> Iterator[Context]:
    ctx = Context(Paths.from_environment(), db_url, is_default_database=False)
    yield ctx
    ctx.dispose()


@pytest.mark.parametrize("attack", ["rollback", "deletion"])
def test_sign_in_warns_when_a_verified_chain_no_longer_extends(
    qtbot,  # type: ignore[no-untyped-def]
    context: Context,
    attack: str,
) -> None:
    engine = context.engine
    ws = chain(engine, 10)
    witness = ChainWitness.for_database(context.paths.data_dir, context.database_url)
    assert verify_workspace(engine, REVIEWER, ws, witness=witness).intact
    before = open_dialog(qtbot, context)
    assert CHAIN_WARNING not in before.privilege_label.text()
    before.close()
    if attack == "rollback":
        truncate_and_rewind(engine, ws, keep=6)
    else:
        delete_whole_log(engine, ws)
    after = open_dialog(qtbot, context)
    assert after.privilege_label.isVisible()
    shown = after.privilege_label.text()
    assert "1 workspace's chain" in shown and CHAIN_WARNING in shown
    assert "riverside" not in shown  # nobody has signed in yet: no names
