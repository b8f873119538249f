"""Staff sign-in: password (Argon2id), optional TOTP, lockout, remember-me tokens.

Whatever goes wrong (unknown e-mail, wrong password or code, locked or disabled account) the
person sees the same message, and the work done takes about the same time: an unknown e-mail
still costs one Argon2 verification against a dummy hash, and a locked or disabled account's
password is still verified. The real reason goes only into the audit log
(``staff.sign_in_failed`` with ``failure_reason``), which is where an investigator needs it.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NoReturn

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from nvadmin.audit import server_events
from nvadmin.audit.access_log import record_staff_event, staff_draft
from nvadmin.auth import passwords, totp
from nvadmin.auth.policy import SecurityPolicy, load_policy
from nvadmin.db.models import RememberToken, Staff
from nvadmin.errors import UserError
from nvadmin.identity import Role, StaffIdentity

log = logging.getLogger(__name__)

SIGN_IN_REFUSED = (
    "Sign-in refused: the e-mail, password or code is wrong, or the account is locked "
    "or disabled. Ask an admin if this keeps happening."
)


class SignInRefused(UserError):
    """The one answer for every failed sign-in (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__(SIGN_IN_REFUSED)


class SecondFactorRequired(UserError):
    """The password was right and the account has TOTP: ask for the code and try again.

    Raised only after the password has been verified, so it tells nothing to someone who
    does not know the password.
    """

    def __init__(self) -> None:
        super().__init__("Enter the 6-digit code from your authenticator app.")


class Reason:
    UNKNOWN_ACCOUNT = "unknown_account"
    WRONG_PASSWORD = "wrong_password"
    WRONG_CODE = "wrong_code"
    ACCOUNT_LOCKED = "account_locked"
    ACCOUNT_DISABLED = "account_disabled"
    TOKEN_EXPIRED = "remember_token_expired"


@dataclass(frozen=True, slots=True)
class _Verdict:
    """What one locked check of a sign-in found (``reason`` None: the credentials are right)."""

    row: Staff | None
    reason: str | None
    needs_code: bool = False
    unchecked: bool = False  # refused before the password was checked
    step: int | None = None
    locked_until: datetime | None = None


NOT_CONVERTED = (
    "this PostgreSQL database does not have staff logins yet: its owner runs "
    "`nvadmin db roles` (then `nvadmin staff reset-password` for each account)"
)


@dataclass(frozen=True, slots=True)
class SignInResult:
    identity: StaffIdentity
    remember_token: str | None  # to be put in the keyring; None unless asked for
    # PostgreSQL: the engine connected as the staff login, and its session's key.
    engine: Engine | None = None
    session_key: str | None = None


def _identity(row: Staff) -> StaffIdentity:
    return StaffIdentity(row.id, row.email, row.display_name, Role(row.role))


def mask_address(text: str) -> str:
    """``a…@clinic.example`` for text typed as an e-mail that is no account's address: enough
    to see a pattern (one domain sprayed, a colleague's typo), never the whole text."""
    local, at, domain = text.strip().partition("@")
    if not at or not local or not domain or any(c.isspace() for c in text.strip()):
        return "(not an e-mail address)"
    return f"{local[0]}…@{domain[:200]}"


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class Authenticator:
    """Signs staff in against one audit database."""

    def __init__(
        self,
        engine: Engine,
        policy: SecurityPolicy | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._engine = engine
        self._policy = policy
        self._clock = clock

    @property
    def policy(self) -> SecurityPolicy:
        if self._policy is None:
            self._policy = load_policy(self._engine)
        return self._policy

    # -- password (+ code) ----------------------------------------------------------------

    def sign_in(
        self,
        email: str,
        password: str,
        code: str | None = None,
        *,
        remember: bool = False,
        purpose: str = "sign_in",
        proof: str | None = None,
    ) -> SignInResult:
        """Check the credentials; raise :class:`SignInRefused` or :class:`SecondFactorRequired`.

        ``purpose="unlock"`` resumes a locked session: the password is checked (and counted
        towards lockout) but not the second factor, which this session already passed (on
        PostgreSQL, ``proof`` is that session's key; for a sign-in it may be a remember-me
        token, which then stands in for the code).

        On PostgreSQL the staff member signs in as their own database login (see
        :mod:`nvadmin.auth.server_signin`) and the result carries the engine to use from now
        on; on SQLite the Argon2id accounts of the file are checked here.
        """
        if self._engine.dialect.name == "postgresql":
            return self._sign_in_on_server(email, password, code, remember, proof, purpose)
        now = self._clock()
        address = email.strip().lower()
        verdict = self._check(address, password, code, purpose, now)
        if verdict.unchecked:
            # Spend the time a check costs, after the row lock is released.
            passwords.burn_verification_time(password)
        if verdict.needs_code:
            raise SecondFactorRequired()
        if verdict.reason is not None:
            self._refuse(verdict.row, address, verdict.reason, purpose, verdict.locked_until)
        row = verdict.row
        assert row is not None
        token = self.issue_token(row.id) if remember else None
        identity = _identity(row)
        method = "password+totp" if verdict.step is not None else "password"
        record_staff_event(
            self._engine,
            staff_draft(identity, "staff.sign_in", {"method": method, "purpose": purpose}),
        )
        return SignInResult(identity, token)

    def _sign_in_on_server(
        self,
        email: str,
        password: str,
        code: str | None,
        remember: bool,
        proof: str | None,
        purpose: str,
    ) -> SignInResult:
        from nvadmin.auth.server_signin import ServerAuthenticator, uses_server_identity

        if not uses_server_identity(self._engine):
            raise UserError(NOT_CONVERTED)
        session = ServerAuthenticator(self._engine.url).sign_in(
            email, password, code, remember=remember, proof=proof, purpose=purpose
        )
        return SignInResult(
            session.identity, session.remember_token, session.engine, session.session_key
        )

    def _check(
        self, address: str, password: str, code: str | None, purpose: str, now: datetime
    ) -> _Verdict:
        """Check the credentials and count the outcome in one transaction that holds the
        account's row lock from the first read to the last write (PostgreSQL: the row lock
        of a no-op UPDATE; SQLite: the database write lock it takes). Concurrent attempts on
        one account are therefore checked one after another, each seeing the count the
        previous one left: exactly ``max_failed_sign_ins`` wrong guesses lock the account,
        whatever the concurrency, and none is checked while it is locked."""
        policy = self.policy
        with self._engine.begin() as connection:
            found = connection.execute(
                update(Staff)
                .where(Staff.email == address)
                .values(failed_attempts=Staff.failed_attempts)
                .returning(*Staff.__table__.c)
            ).first()
            if found is None:
                return _Verdict(None, Reason.UNKNOWN_ACCOUNT, unchecked=True)
            row = Staff(**found._mapping)
            if row.locked_until is not None and row.locked_until > now:
                # The lock is not extended by further attempts, so an attacker cannot keep a
                # colleague locked out for ever; each attempt is still in the audit log. The
                # password is not checked while locked (the same time is spent).
                return _Verdict(
                    row, Reason.ACCOUNT_LOCKED, unchecked=True, locked_until=row.locked_until
                )
            if row.disabled:
                return _Verdict(row, Reason.ACCOUNT_DISABLED, unchecked=True)
            # An expired lock is over: its failures no longer count.
            failures = 0 if row.locked_until is not None else row.failed_attempts
            reason: str | None = None
            step: int | None = None
            if not passwords.verify_password(row.password_hash, password):
                reason = Reason.WRONG_PASSWORD
            elif row.totp_secret is not None and purpose != "unlock":
                if not code:
                    return _Verdict(row, None, needs_code=True)
                step = totp.matching_step(
                    row.totp_secret, code, row.totp_last_step, now.timestamp()
                )
                if step is None:  # wrong, stale, or already used (replay)
                    reason = Reason.WRONG_CODE
            values: dict[str, object]
            if reason is not None:
                failures += 1
                locked_until = (
                    now + policy.lockout if failures >= policy.max_failed_sign_ins else None
                )
                values = {"failed_attempts": failures, "locked_until": locked_until}
            else:
                values = {"failed_attempts": 0, "locked_until": None}
                if step is not None:
                    values["totp_last_step"] = step
                if purpose != "unlock":
                    values["last_sign_in_at"] = now
                if passwords.needs_rehash(row.password_hash):
                    values["password_hash"] = passwords.hash_password(password)
            connection.execute(update(Staff).where(Staff.id == row.id).values(**values))
        return _Verdict(row, reason, step=step, locked_until=values.get("locked_until"))  # type: ignore[arg-type]

    def _refuse(
        self,
        row: Staff | None,
        email: str,
        reason: str,
        purpose: str,
        locked_until: datetime | None = None,
    ) -> NoReturn:
        identity = _identity(row) if row is not None else None
        details: dict[str, object] = {"purpose": purpose}
        if locked_until is not None:
            details["locked_until"] = locked_until.isoformat()
        # Text that is no account's address may be a password typed in the wrong field: it
        # is kept only masked, in the audit log and in the log file alike.
        shown = email if row is not None else mask_address(email)
        record_staff_event(
            self._engine,
            staff_draft(
                identity,
                "staff.sign_in_failed",
                details,
                email=shown or None,
                outcome="failure",
                failure_reason=reason,
            ),
        )
        log.info("staff sign-in refused for %s: %s", shown, reason)
        raise SignInRefused()

    # -- remember-me tokens ---------------------------------------------------------------

    def issue_token(self, staff_id: int) -> str:
        """A new random token; only its SHA-256 is stored, the token goes to the keyring."""
        token = secrets.token_urlsafe(32)
        now = self._clock()
        with Session(self._engine) as session, session.begin():
            session.add(
                RememberToken(
                    staff_id=staff_id,
                    token_hash=token_hash(token),
                    created_at=now,
                    expires_at=now + self.policy.remember,
                )
            )
        return token

    def sign_in_with_token(self, token: str) -> StaffIdentity | None:
        """The staff member a valid remember-me token belongs to, or None (expired, revoked,
        unknown, or the account is now disabled or locked)."""
        now = self._clock()
        digest = token_hash(token)
        with Session(self._engine) as session:
            found = session.execute(
                select(RememberToken, Staff)
                .join(Staff, Staff.id == RememberToken.staff_id)
                .where(RememberToken.token_hash == digest)
            ).first()
            if found is None:
                return None
            remembered, row = found
            session.expunge_all()
        reason = None
        if remembered.revoked_at is not None or remembered.expires_at <= now:
            reason = Reason.TOKEN_EXPIRED
        elif row.disabled:
            reason = Reason.ACCOUNT_DISABLED
        elif row.locked_until is not None and row.locked_until > now:
            reason = Reason.ACCOUNT_LOCKED
        identity = _identity(row)
        if reason is not None:
            record_staff_event(
                self._engine,
                staff_draft(
                    identity,
                    "staff.sign_in_failed",
                    {"method": "remember_token", "purpose": "sign_in"},
                    outcome="failure",
                    failure_reason=reason,
                ),
            )
            return None
        with self._engine.begin() as connection:
            connection.execute(update(Staff).where(Staff.id == row.id).values(last_sign_in_at=now))
        record_staff_event(
            self._engine,
            staff_draft(
                identity, "staff.sign_in", {"method": "remember_token", "purpose": "sign_in"}
            ),
        )
        return identity

    def revoke_token(self, token: str) -> None:
        if server_events.is_staff_login(self._engine):
            server_events.sign_out(self._engine, "explicit", token)  # ends the session too
            return
        with self._engine.begin() as connection:
            connection.execute(
                update(RememberToken)
                .where(
                    RememberToken.token_hash == token_hash(token),
                    RememberToken.revoked_at.is_(None),
                )
                .values(revoked_at=self._clock())
            )

    def revoke_all_tokens(self, staff_id: int) -> int:
        with self._engine.begin() as connection:
            result = connection.execute(
                update(RememberToken)
                .where(RememberToken.staff_id == staff_id, RememberToken.revoked_at.is_(None))
                .values(revoked_at=self._clock())
            )
            return int(result.rowcount)

    # -- session events -------------------------------------------------------------------

    def record_sign_out(self, identity: StaffIdentity, reason: str = "explicit") -> None:
        record_staff_event(
            self._engine, staff_draft(identity, "staff.sign_out", {"reason": reason})
        )

    def record_lock(self, identity: StaffIdentity, reason: str) -> None:
        record_staff_event(
            self._engine, staff_draft(identity, "staff.session_locked", {"reason": reason})
        )
