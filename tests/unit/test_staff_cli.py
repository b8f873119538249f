"""``nvadmin staff ...`` on a real database, as an operator would type it."""

from __future__ import annotations

import io

import pytest

from nvadmin.__main__ import main
from nvadmin.auth.signin import Authenticator
from nvadmin.db.engine import make_engine


def run(url: str, monkeypatch: pytest.MonkeyPatch, *argv: str, stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(["--database", url, "staff", *argv])


def test_staff_commands_end_to_end(
    sqlite_db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = sqlite_db_url
    assert run(url, monkeypatch, "list") == 0
    assert "no staff accounts yet" in capsys.readouterr().out
    assert (
        run(
            url,
            monkeypatch,
            "add",
            "boss@n.example",
            "--role",
            "admin",
            "--password-stdin",
            "--name",
            "Boss",
            stdin="first-admin-password\n",
        )
        == 0
    )
    assert (
        run(
            url,
            monkeypatch,
            "add",
            "ana@n.example",
            "--role",
            "support",
            "--password-stdin",
            "--totp",
            stdin="support-password\n",
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "added ana@n.example (support)" in out and "otpauth://totp/" in out
    engine = make_engine(url)
    auth = Authenticator(engine)
    for _ in range(5):
        with pytest.raises(Exception, match="Sign-in refused"):
            auth.sign_in("boss@n.example", "wrong-password")
    assert run(url, monkeypatch, "list") == 0
    listing = capsys.readouterr().out
    assert "boss@n.example" in listing and "locked until" in listing and "totp" in listing
    assert "first-admin-password" not in listing
    assert run(url, monkeypatch, "unlock", "boss@n.example") == 0
    assert auth.sign_in("boss@n.example", "first-admin-password")
    assert (
        run(
            url,
            monkeypatch,
            "reset-password",
            "boss@n.example",
            "--password-stdin",
            stdin="second-admin-password\n",
        )
        == 0
    )
    assert auth.sign_in("boss@n.example", "second-admin-password")
    assert run(url, monkeypatch, "disable", "ana@n.example") == 0
    assert run(url, monkeypatch, "list") == 0
    assert "disabled" in capsys.readouterr().out
    assert run(url, monkeypatch, "enable", "ana@n.example") == 0
    # the last admin cannot be disabled: one plain line, exit 1
    assert run(url, monkeypatch, "disable", "boss@n.example") == 1
    assert "only active admin" in capsys.readouterr().err
    assert run(url, monkeypatch, "policy", "--idle-lock-minutes", "5") == 0
    assert "after 5 min without input" in capsys.readouterr().out
    engine.dispose()


def test_short_password_is_refused_plainly(
    sqlite_db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(
        sqlite_db_url,
        monkeypatch,
        "add",
        "a@n.example",
        "--role",
        "admin",
        "--password-stdin",
        stdin="short\n",
    )
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("nvadmin: the password must have at least 12") and "Traceback" not in err
