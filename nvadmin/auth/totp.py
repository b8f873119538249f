"""Time-based one-time passwords (RFC 6238) as an optional second factor.

A code is accepted for the current 30-second step or one step either side (clock drift), and
never twice: the step of the last accepted code is stored and only later steps are accepted.
"""

from __future__ import annotations

import hmac
import time

import pyotp

STEP_SECONDS = 30
WINDOW_STEPS = 1
ISSUER = "nvadmin"


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads (as text or QR code)."""
    return pyotp.TOTP(secret, interval=STEP_SECONDS).provisioning_uri(
        name=email, issuer_name=ISSUER
    )


def code_at(secret: str, when: float) -> str:
    return pyotp.TOTP(secret, interval=STEP_SECONDS).at(int(when))


def matching_step(
    secret: str, code: str, last_step: int | None, now: float | None = None
) -> int | None:
    """The step the code belongs to, or None if it is wrong, too old/new, or already used."""
    code = code.strip().replace(" ", "")
    if not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, interval=STEP_SECONDS)
    current = int((time.time() if now is None else now) // STEP_SECONDS)
    for step in range(current - WINDOW_STEPS, current + WINDOW_STEPS + 1):
        if last_step is not None and step <= last_step:
            continue  # a code from this step (or an earlier one) was already used
        if hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
            return step
    return None
