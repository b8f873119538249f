"""A1: password storage and A3: TOTP window and replay."""

from __future__ import annotations

import re

import pytest

from nvadmin.auth import passwords, totp
from nvadmin.errors import UserError


def test_hash_is_argon2id_at_or_above_owasp_minimum() -> None:
    stored = passwords.hash_password("correct horse battery")
    match = re.match(r"^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$", stored)
    assert match, stored
    memory_kib, time_cost, _parallelism = map(int, match.groups())
    assert memory_kib >= passwords.OWASP_MIN_MEMORY_KIB == 19 * 1024
    assert time_cost >= passwords.OWASP_MIN_TIME_COST == 2
    assert "correct horse" not in stored
    assert passwords.verify_password(stored, "correct horse battery")
    assert not passwords.verify_password(stored, "correct horse battery!")
    assert not passwords.verify_password("not a hash", "correct horse battery")


def test_production_profile_is_rfc_9106_low_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    from argon2 import profiles

    # The suite hashes at the OWASP minimum for speed (conftest); check the real profile here.
    monkeypatch.setattr(passwords, "PARAMETERS", profiles.RFC_9106_LOW_MEMORY)
    passwords.hasher.cache_clear()
    stored = passwords.hash_password("correct horse battery")
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    passwords.hasher.cache_clear()


def test_weak_hash_is_flagged_for_upgrade() -> None:
    from argon2 import PasswordHasher

    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash("pw")
    assert passwords.needs_rehash(weak)
    assert not passwords.needs_rehash(passwords.hash_password("a long enough password"))


# Bytes that are not UTF-8, piped in (``printf '\\xff\\xfe'``), as Python reads them.
NOT_UTF8 = b"\xff\xfe".decode("utf-8", "surrogateescape")


@pytest.mark.parametrize("password", ["short", "           ", "x" * 300, NOT_UTF8 * 6])
def test_password_policy_rejects(password: str) -> None:
    with pytest.raises(UserError):
        passwords.check_policy(password)


def test_a_password_that_is_not_utf8_is_wrong_not_an_error() -> None:
    stored = passwords.hash_password("a long enough password")
    assert passwords.verify_password(stored, NOT_UTF8) is False
    assert passwords.verify_password(stored, "a long enough password") is True


def test_totp_accepts_current_and_neighbour_steps_only() -> None:
    secret = totp.new_secret()
    now = 1_800_000_015.0  # mid-step
    step = int(now // 30)
    for offset in (-1, 0, 1):
        code = totp.code_at(secret, now + offset * 30)
        assert totp.matching_step(secret, code, None, now) == step + offset
    for offset in (-3, -2, 2, 3):
        code = totp.code_at(secret, now + offset * 30)
        assert totp.matching_step(secret, code, None, now) is None
    assert totp.matching_step(secret, "abcdef", None, now) is None
    assert totp.matching_step(secret, "", None, now) is None


def test_totp_code_cannot_be_replayed() -> None:
    secret = totp.new_secret()
    now = 1_800_000_015.0
    code = totp.code_at(secret, now)
    used = totp.matching_step(secret, code, None, now)
    assert used is not None
    assert totp.matching_step(secret, code, used, now) is None
    # ...nor can the previous step's code once a newer one was used
    older = totp.code_at(secret, now - 30)
    assert totp.matching_step(secret, older, used, now) is None
    newer = totp.code_at(secret, now + 30)
    assert totp.matching_step(secret, newer, used, now) == used + 1


def test_provisioning_uri_names_issuer_and_account() -> None:
    uri = totp.provisioning_uri(totp.new_secret(), "ana@clinic.example")
    assert uri.startswith("otpauth://totp/")
    assert "issuer=nvadmin" in uri and "ana%40clinic.example" in uri
