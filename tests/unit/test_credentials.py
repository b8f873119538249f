"""A5: keyring failures give a plain message within seconds; nothing reaches the disk."""

from __future__ import annotations

import threading
from pathlib import Path

import keyring
import keyring.backend
import keyring.backends.fail
import keyring.errors
import pytest

from nvadmin.auth.credentials import CredentialStore, KeyringState, KeyringUnavailable
from nvadmin.auth.profiles import ProfileStore, split_password
from tests.conftest import MemoryKeyring


class LockedKeyring(keyring.backend.KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.KeyringLocked("Failed to unlock the collection!")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.KeyringLocked("Failed to unlock the collection!")

    def delete_password(self, service: str, username: str) -> None:
        raise keyring.errors.KeyringLocked("Failed to unlock the collection!")


class HangingKeyring(keyring.backend.KeyringBackend):
    """Like a Secret Service waiting for an unlock prompt nobody answers."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.calls = 0

    def get_password(self, service: str, username: str) -> str | None:
        self.calls += 1
        self.release.wait(30)
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        self.calls += 1
        self.release.wait(30)

    def delete_password(self, service: str, username: str) -> None:
        self.release.wait(30)


def files_containing(root: Path, secret: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def test_available_keyring_stores_and_forgets(memory_keyring: MemoryKeyring) -> None:
    store = CredentialStore()
    assert store.probe().available
    store.set_database_password("prod", "s3cret-db-pw")
    store.set_remember_token("postgresql+psycopg://viewer@db/audit", "tok")
    assert store.database_password("prod") == "s3cret-db-pw"
    assert store.remember_token("postgresql+psycopg://viewer@db/audit") == "tok"
    store.forget_remember_token("postgresql+psycopg://viewer@db/audit")
    store.forget_remember_token("never-stored")  # forgetting twice is fine
    assert store.remember_token("postgresql+psycopg://viewer@db/audit") is None
    assert ("nvadmin", "database:prod") in memory_keyring.secrets


def test_no_keyring_is_reported_plainly(nvadmin_home: Path) -> None:
    keyring.set_keyring(keyring.backends.fail.Keyring())
    store = CredentialStore()
    status = store.probe()
    assert status.state is KeyringState.MISSING
    assert "No system keyring" in status.message and "Traceback" not in status.message
    with pytest.raises(KeyringUnavailable) as caught:
        store.set_database_password("prod", "s3cret-db-pw")
    assert caught.value.status.state is KeyringState.MISSING
    assert not files_containing(nvadmin_home.parent, "s3cret-db-pw")


def test_locked_keyring_is_reported_plainly(nvadmin_home: Path) -> None:
    keyring.set_keyring(LockedKeyring())
    store = CredentialStore()
    assert store.probe().state is KeyringState.LOCKED
    with pytest.raises(KeyringUnavailable) as caught:
        store.set_remember_token("db", "s3cret-token")
    assert "locked" in str(caught.value)
    assert not files_containing(nvadmin_home.parent, "s3cret-token")


def test_hanging_keyring_times_out_and_is_not_called_again(nvadmin_home: Path) -> None:
    backend = HangingKeyring()
    keyring.set_keyring(backend)
    store = CredentialStore(timeout=0.3)
    try:
        status = store.probe()
        assert status.state is KeyringState.TIMED_OUT
        assert "did not answer" in status.message
        with pytest.raises(KeyringUnavailable):
            store.set_database_password("prod", "s3cret-db-pw")
        assert backend.calls == 1  # gave up: no second stuck thread
    finally:
        backend.release.set()
    assert not files_containing(nvadmin_home.parent, "s3cret-db-pw")


def test_profiles_keep_url_but_never_password(nvadmin_home: Path) -> None:
    path = nvadmin_home / "config" / "connections.ini"
    store = ProfileStore(path)
    profile, password = store.save(
        "Production", "postgresql://viewer:s3cret-db-pw@db.internal/audit"
    )
    assert password == "s3cret-db-pw"
    assert "s3cret" not in path.read_text() and "viewer@db.internal/audit" in path.read_text()
    assert path.stat().st_mode & 0o077 == 0
    assert store.profiles() == [profile]
    assert "s3cret-db-pw" in profile.url_with_password("s3cret-db-pw")
    assert profile.url_with_password(None) == profile.url
    store.save("Local", "sqlite:////tmp/a.sqlite3")
    assert [p.name for p in store.profiles()] == ["Local", "Production"]
    store.remove("Local")
    assert [p.name for p in store.profiles()] == ["Production"]


def test_split_password_without_password() -> None:
    assert split_password("postgresql://viewer@db/audit") == (
        "postgresql+psycopg://viewer@db/audit",
        None,
    )
