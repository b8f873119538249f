"""``nvadmin verify`` / ``nvadmin checkpoint``: plain lines, exit 0 intact and 1 broken."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from sqlalchemy import text

from nvadmin.__main__ import main
from nvadmin.db.engine import make_engine
from tests.factories import add_workspace, draft, write


@pytest.fixture
def populated(sqlite_db_url: str) -> str:
    engine = make_engine(sqlite_db_url)
    ws = add_workspace(engine)
    write(engine, ws, [draft(i) for i in range(1500)])
    engine.dispose()
    return sqlite_db_url


def run(url: str, *argv: str) -> int:
    return main(["--database", url, *argv])


def test_intact_chain_exits_0_with_a_plain_line(
    populated: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(populated, "verify", "--workspace", "riverside", "--quiet") == 0
    assert "1,500 events verified, chain intact" in capsys.readouterr().out


def test_range_is_read_in_the_workspaces_zone(
    populated: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Events start 2025-03-03 09:00 UTC = 03:00 in Chicago, one a minute.
    assert (
        run(
            populated,
            "verify",
            "--workspace",
            "riverside",
            "--from",
            "2025-03-03",
            "--to",
            "2025-03-03",
            "--quiet",
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "events #1 to #1,260" in out and "1,260 events verified, chain intact" in out


def test_broken_chain_exits_1_and_names_the_link(
    populated: str, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = make_engine(populated)
    with engine.begin() as c:
        c.execute(text("DROP TRIGGER activity_events_no_delete"))
        c.execute(text("DELETE FROM activity_events WHERE seq = 700"))
    engine.dispose()
    assert run(populated, "verify", "--workspace", "riverside", "--quiet") == 1
    out = capsys.readouterr().out
    assert "chain broken at event #700: missing" in out
    assert "699 events verified before the break" in out


def test_checkpoint_key_and_signing(
    populated: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert run(populated, "checkpoint", "--workspace", "riverside") == 1
    assert "no checkpoint signing key" in capsys.readouterr().err
    assert run(populated, "checkpoint", "--create-key", "--workspace", "riverside", "--quiet") == 0
    out = capsys.readouterr().out
    assert "signed checkpoint at event #1,500" in out
    public = tmp_path / "signer.pem"
    assert run(populated, "checkpoint", "--export-public-key", str(public)) == 0
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert run(populated, "verify", "--workspace", "riverside", "--quiet") == 0
    assert "1 signed checkpoint checked" in capsys.readouterr().out


def test_bad_input_is_one_line(populated: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(populated, "verify", "--workspace", "riverside", "--from", "yesterday") == 1
    assert capsys.readouterr().err.strip() == (
        "nvadmin: --from: 'yesterday' is not a date or time "
        "(use YYYY-MM-DD or YYYY-MM-DDTHH:MM+00:00)"
    )


def test_independent_verification_says_so_and_finds_the_same_break(
    populated: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ("verify", "--workspace", "riverside", "--independent", "--quiet")
    assert run(populated, *argv) == 0
    out = capsys.readouterr().out
    assert "1,500 events verified, chain intact" in out
    assert "every event laid out and hashed by nvadmin itself from the stored values" in out
    engine = make_engine(populated)
    with engine.begin() as c:
        c.execute(text("DROP TRIGGER activity_events_no_update"))
        c.execute(text("UPDATE activity_events SET actor_name = 'Mallory' WHERE seq = 900"))
    engine.dispose()
    assert run(populated, *argv) == 1
    out = capsys.readouterr().out
    assert "chain broken at event #900" in out and "altered" in out
    assert "899 events verified before the break" in out


def test_the_public_key_replaces_a_file_only_with_force(
    populated: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """--export-public-key wrote over an existing file without a word."""
    assert run(populated, "checkpoint", "--create-key") == 0
    existing = tmp_path / "notes.txt"
    existing.write_text("keep me\n", encoding="utf-8")
    capsys.readouterr()
    assert run(populated, "checkpoint", "--export-public-key", str(existing)) == 1
    assert capsys.readouterr().err == (
        f"nvadmin: --export-public-key: {existing} already exists (give --force to replace it)\n"
    )
    assert existing.read_text(encoding="utf-8") == "keep me\n"
    assert run(populated, "checkpoint", "--export-public-key", str(existing), "--force") == 0
    assert existing.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")


def test_the_public_key_into_a_read_only_folder_is_one_line(
    populated: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """It showed Python's "[Errno 30] Read-only file system: ..."."""
    from nvadmin.files import atomic

    def read_only(*args: object) -> int:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    assert run(populated, "checkpoint", "--create-key") == 0
    capsys.readouterr()
    monkeypatch.setattr(atomic, "_open", read_only)
    folder = tmp_path / "keys"
    folder.mkdir()
    assert run(populated, "checkpoint", "--export-public-key", str(folder / "signer.pem")) == 1
    assert capsys.readouterr().err == f"nvadmin: {folder} is on a read-only file system\n"
    assert list(folder.iterdir()) == []
