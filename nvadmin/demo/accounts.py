"""Demo staff accounts for the generated demo database (and only for it).

Their passwords are public (the sign-in dialog shows them), so they are created only in a
database marked ``demo = 1``, and the sign-in dialog lists them only when that mark is present.
"""

from __future__ import annotations

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from nvadmin.auth import accounts
from nvadmin.db.models import Meta
from nvadmin.identity import Role, StaffIdentity

DEMO_ACCOUNTS: tuple[tuple[str, str, Role, str], ...] = (
    ("support@demo.nvadmin.example", "support-demo-2025", Role.SUPPORT, "Sam Support (demo)"),
    (
        "compliance@demo.nvadmin.example",
        "compliance-demo-2025",
        Role.COMPLIANCE,
        "Casey Compliance (demo)",
    ),
    ("admin@demo.nvadmin.example", "admin-demo-2025", Role.ADMIN, "Alex Admin (demo)"),
)

_DEMO_SETUP = StaffIdentity(0, "demo-setup@nvadmin.invalid", "demo database setup", Role.ADMIN)


def create_demo_accounts(engine: Engine) -> list[tuple[str, str, str]]:
    """Create the three demo accounts, mark the database as a demo, and return
    ``[(email, password, role), ...]``."""
    with Session(engine) as session, session.begin():
        session.merge(Meta(key="demo", value="1"))
    created = []
    for email, password, role, name in DEMO_ACCOUNTS:
        accounts.add_staff(engine, _DEMO_SETUP, email, password, role, name)
        created.append((email, password, role.value))
    return created


def is_demo_database(engine: Engine) -> bool:
    with Session(engine) as session:
        value = session.execute(select(Meta.value).where(Meta.key == "demo")).scalar()
    return value == "1"


def demo_accounts(engine: Engine) -> list[tuple[str, str, str]]:
    """The demo accounts to show on the sign-in dialog; empty unless this is the demo database."""
    if not is_demo_database(engine):
        return []
    return [(email, password, role.value) for email, password, role, _ in DEMO_ACCOUNTS]
