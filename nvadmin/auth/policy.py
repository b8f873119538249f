"""Sign-in and session rules, set per audit database so every nvadmin using it agrees.

Stored as ``nvadmin_meta`` rows (``security.*``); missing rows mean the defaults below, which
follow HIPAA's automatic-logoff safeguard and OWASP's lockout advice.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from nvadmin.db.models import Meta
from nvadmin.errors import UserError

_KEYS = {
    "max_failed_sign_ins": "security.max_failed_sign_ins",
    "lockout_minutes": "security.lockout_minutes",
    "idle_lock_minutes": "security.idle_lock_minutes",
    "remember_hours": "security.remember_hours",
}
# Upper bounds keep a typo from turning the idle lock (or remember-me) into "never".
_LIMITS = {
    "max_failed_sign_ins": (1, 100),
    "lockout_minutes": (1, 24 * 60),
    "idle_lock_minutes": (1, 120),
    "remember_hours": (1, 12),
}


@dataclass(frozen=True, slots=True)
class SecurityPolicy:
    max_failed_sign_ins: int = 5
    lockout_minutes: int = 15
    idle_lock_minutes: int = 15
    remember_hours: int = 12

    @property
    def lockout(self) -> timedelta:
        return timedelta(minutes=self.lockout_minutes)

    @property
    def idle_lock(self) -> timedelta:
        return timedelta(minutes=self.idle_lock_minutes)

    @property
    def remember(self) -> timedelta:
        return timedelta(hours=self.remember_hours)

    def with_values(self, **values: int) -> SecurityPolicy:
        for name, value in values.items():
            low, high = _LIMITS[name]
            if not low <= value <= high:
                raise UserError(f"{name.replace('_', ' ')} must be between {low} and {high}")
        return replace(self, **values)


def load_policy(engine: Engine) -> SecurityPolicy:
    with Session(engine) as session:
        rows = dict(
            session.execute(
                select(Meta.key, Meta.value).where(Meta.key.in_(list(_KEYS.values())))
            ).all()
        )
    values: dict[str, int] = {}
    for name, key in _KEYS.items():
        if key in rows:
            try:
                values[name] = int(rows[key])
            except ValueError:
                continue  # a damaged value falls back to the default rather than locking out
    try:
        return SecurityPolicy().with_values(**values)
    except UserError:
        return SecurityPolicy()


def save_policy(engine: Engine, policy: SecurityPolicy) -> None:
    with Session(engine) as session, session.begin():
        for name, key in _KEYS.items():
            session.merge(Meta(key=key, value=str(getattr(policy, name))))
