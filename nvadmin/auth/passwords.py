"""Staff password hashing with Argon2id.

Parameters are RFC 9106's "low memory" profile (m = 64 MiB, t = 3, p = 4), above OWASP's
minimum for Argon2id (m = 19 MiB, t = 2, p = 1). A hash made with weaker parameters (an older
nvadmin, or a hand-made account) is upgraded the next time its owner signs in.
"""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher, Type, profiles
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from nvadmin.errors import UserError

PARAMETERS = profiles.RFC_9106_LOW_MEMORY
# OWASP Password Storage Cheat Sheet, Argon2id minimum.
OWASP_MIN_MEMORY_KIB = 19 * 1024
OWASP_MIN_TIME_COST = 2

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256


@cache
def hasher() -> PasswordHasher:
    assert PARAMETERS.type is Type.ID
    return PasswordHasher.from_parameters(PARAMETERS)


def typed_password(text: str) -> str:
    """The password in a one-line field, without the line break a paste may bring along.

    A password copied from a password manager or a terminal often ends in a line break. No
    one-line field can type it, and ``--password-stdin`` reads a line without its ending, so
    kept it would make the password one that nobody can give again (and at sign-in it would
    be a wrong guess, counted towards lockout). Only the line ending goes; spaces stay.
    """
    return text.removesuffix("\n").removesuffix("\r")


def check_policy(password: str) -> None:
    """NIST SP 800-63B: length is what matters; no composition rules, no silent truncation."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UserError(f"the password must have at most {MAX_PASSWORD_LENGTH} characters")
    if password.strip() == "":
        raise UserError("the password must not be blank")
    if "\n" in password or "\r" in password:
        # It could be set here but never typed: one-line fields and --password-stdin end there.
        raise UserError("the password must be one line: it holds a line break")
    if not _is_text(password):
        raise UserError("the password must be text: it holds bytes that are not UTF-8")


def hash_password(password: str) -> str:
    return hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    # Bytes that are not UTF-8 (piped in) arrive as lone surrogates. Encoded as they are,
    # they are bytes no hash of a text password matches: such an attempt is a wrong password
    # like any other (counted and recorded), not an encoding error.
    secret = password.encode("utf-8", "surrogatepass")
    try:
        return hasher().verify(password_hash, secret)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _is_text(password: str) -> bool:
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def needs_rehash(password_hash: str) -> bool:
    try:
        return hasher().check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@cache
def _dummy_hash() -> str:
    return hash_password("nvadmin-dummy-password-for-unknown-accounts")


def burn_verification_time(password: str) -> None:
    """Spend the time of one real verification, for an unknown or unusable account, so that the
    answer's timing does not tell whether an e-mail belongs to a staff member."""
    verify_password(_dummy_hash(), password)
