"""The credential store against a real Secret Service (gnome-keyring on a private D-Bus
session), not an in-memory stand-in: what users of a Linux desktop actually have.

Needs `dbus-run-session` and `gnome-keyring-daemon` (Debian: dbus, gnome-keyring; .ci/run
installs them). Without them the test is skipped locally; NVADMIN_REQUIRE_PG=1 (CI) makes
their absence a failure, like a missing PostgreSQL.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import keyring
from nvadmin.auth.credentials import CredentialStore, KeyringState
keyring.set_keyring(keyring.core.load_keyring("keyring.backends.SecretService.Keyring"))
store = CredentialStore(timeout=10)
status = store.probe()
assert status.state is KeyringState.AVAILABLE, status
store.set_database_password("audit", "correct-horse-battery-staple")
assert CredentialStore(timeout=10).database_password("audit") == "correct-horse-battery-staple"
store.forget_database_password("audit")
assert store.database_password("audit") is None
store.set_database_password("kept", "correct-horse-battery-staple")
print("ok")
"""


def test_database_password_round_trip_through_gnome_keyring(tmp_path: Path) -> None:
    tools = ("dbus-run-session", "gnome-keyring-daemon")
    if not all(shutil.which(tool) for tool in tools):
        if os.environ.get("NVADMIN_REQUIRE_PG") == "1":
            pytest.fail("dbus-run-session and gnome-keyring-daemon are required in CI")
        pytest.skip("no Secret Service available (install dbus and gnome-keyring)")
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "HOME": str(home),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "XDG_RUNTIME_DIR": str(tmp_path),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
    }
    (tmp_path / "check.py").write_text(SCRIPT)
    shell = (
        "printf unlock-pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null "
        f"&& {sys.executable} {tmp_path / 'check.py'}"
    )
    result = subprocess.run(
        ["dbus-run-session", "--", "sh", "-c", shell],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), (
        result.stdout + result.stderr
    )
    # The keyring keeps the secret encrypted: it appears in no file in plain text.
    assert list(home.rglob("*.keyring")), "gnome-keyring stored nothing on disk"
    for path in home.rglob("*"):
        if path.is_file():
            assert b"correct-horse-battery-staple" not in path.read_bytes(), path
