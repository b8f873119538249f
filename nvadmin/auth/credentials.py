"""Secrets in the operating system's keyring, behind a small interface with explicit states.

Only two kinds of secret are kept: a database password per connection profile, and the
"remember me" token per database. Never a staff password, and never anything on disk: when
the keyring is missing, locked or does not answer, the caller gets a plain message and carries
on without the secret (no "remember me", password asked each time).

Every keyring call runs on its own daemon thread and is abandoned after ``timeout`` seconds:
a Secret Service waiting on an unlock prompt that nobody will answer must not freeze nvadmin.
After a timeout the store stops calling the keyring for the rest of the session instead of
piling up stuck threads.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

import keyring
import keyring.errors

from nvadmin.errors import UserError

log = logging.getLogger(__name__)

SERVICE = "nvadmin"
DEFAULT_TIMEOUT = 5.0

T = TypeVar("T")


class KeyringState(StrEnum):
    AVAILABLE = "available"
    MISSING = "missing"  # no keyring on this system (keyring's NoKeyringError)
    LOCKED = "locked"  # the collection is locked and was not unlocked
    TIMED_OUT = "timed_out"  # no answer within the timeout
    FAILED = "failed"  # any other keyring error


MESSAGES = {
    KeyringState.AVAILABLE: "The system keyring is available.",
    KeyringState.MISSING: (
        "No system keyring is available, so nvadmin cannot remember passwords or keep you "
        "signed in. Everything else works; you will be asked for passwords each time."
    ),
    KeyringState.LOCKED: (
        "The system keyring is locked, so nvadmin cannot remember passwords or keep you "
        "signed in. Unlock it (e.g. by signing in to your desktop) and restart nvadmin."
    ),
    KeyringState.TIMED_OUT: (
        "The system keyring did not answer in time, so nvadmin cannot remember passwords or "
        "keep you signed in this session. Everything else works."
    ),
    KeyringState.FAILED: (
        "The system keyring reported an error, so nvadmin cannot remember passwords or keep "
        "you signed in. Details are in the log file."
    ),
}


@dataclass(frozen=True, slots=True)
class KeyringStatus:
    state: KeyringState
    backend: str = ""

    @property
    def available(self) -> bool:
        return self.state is KeyringState.AVAILABLE

    @property
    def message(self) -> str:
        return MESSAGES[self.state]


class KeyringUnavailable(UserError):
    def __init__(self, status: KeyringStatus) -> None:
        super().__init__(status.message)
        self.status = status


def _state_of(error: BaseException) -> KeyringState:
    if isinstance(error, keyring.errors.NoKeyringError):
        return KeyringState.MISSING
    if isinstance(error, keyring.errors.KeyringLocked):
        return KeyringState.LOCKED
    text = str(error).lower()
    if "locked" in text or "unlock" in text or "dismissed" in text:
        return KeyringState.LOCKED
    return KeyringState.FAILED


class CredentialStore:
    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        self._gave_up: KeyringStatus | None = None

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        if self._gave_up is not None:
            raise KeyringUnavailable(self._gave_up)
        outcome: dict[str, object] = {}

        def run() -> None:
            try:
                outcome["value"] = fn()
            except BaseException as error:  # reported to the caller's thread below
                outcome["error"] = error

        worker = threading.Thread(target=run, name=f"keyring-{what}", daemon=True)
        worker.start()
        worker.join(self.timeout)
        if worker.is_alive():
            log.warning("keyring %s: no answer within %.1f s", what, self.timeout)
            self._gave_up = KeyringStatus(KeyringState.TIMED_OUT, self.backend_name())
            raise KeyringUnavailable(self._gave_up)
        if "error" in outcome:
            error = outcome["error"]
            assert isinstance(error, BaseException)
            status = KeyringStatus(_state_of(error), self.backend_name())
            log.info("keyring %s failed (%s): %r", what, status.state, error)
            if status.state is KeyringState.MISSING:
                self._gave_up = status  # it will not appear during this session
            raise KeyringUnavailable(status) from error
        return outcome.get("value")  # type: ignore[return-value]

    @staticmethod
    def backend_name() -> str:
        try:
            backend = keyring.get_keyring()
        except Exception:  # an unusable configuration is reported by the calls themselves
            return "unknown"
        return f"{type(backend).__module__}.{type(backend).__name__}"

    def probe(self) -> KeyringStatus:
        """Whether secrets can be stored now; never raises."""
        try:
            self._call("probe", lambda: keyring.get_password(SERVICE, "probe"))
        except KeyringUnavailable as unavailable:
            return unavailable.status
        return KeyringStatus(KeyringState.AVAILABLE, self.backend_name())

    # -- database passwords, per connection profile ------------------------------------

    def database_password(self, profile: str) -> str | None:
        return self._call("read", lambda: keyring.get_password(SERVICE, f"database:{profile}"))

    def set_database_password(self, profile: str, password: str) -> None:
        self._call("write", lambda: keyring.set_password(SERVICE, f"database:{profile}", password))

    def forget_database_password(self, profile: str) -> None:
        self._delete(f"database:{profile}")

    # -- remember-me token, per database -------------------------------------------------

    def remember_token(self, database: str) -> str | None:
        return self._call("read", lambda: keyring.get_password(SERVICE, f"remember:{database}"))

    def set_remember_token(self, database: str, token: str) -> None:
        self._call("write", lambda: keyring.set_password(SERVICE, f"remember:{database}", token))

    def forget_remember_token(self, database: str) -> None:
        self._delete(f"remember:{database}")

    def _delete(self, key: str) -> None:
        def delete() -> None:
            # Nothing stored means already forgotten.
            with contextlib.suppress(keyring.errors.PasswordDeleteError):
                keyring.delete_password(SERVICE, key)

        self._call("delete", delete)
