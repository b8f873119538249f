"""What every command and window needs: paths, the chosen database and its engine.

Built once by the entry point and passed down; importing this module does nothing, and
loads no database library: every command module names :class:`Context`, and ``nvadmin --help``
must not pay for SQLAlchemy (the engine functions are imported where they are called).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nvadmin.paths import Paths

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.engine import URL


@dataclass
class Context:
    paths: Paths
    database_url: str
    is_default_database: bool
    _engine: Engine | None = field(default=None, repr=False)
    # An opened case file: an in-memory database nothing may write to, not even view events.
    read_only: bool = False
    label: str | None = None
    profile: str | None = None  # the saved connection this database was opened from
    # PostgreSQL with staff logins: once signed in, everything goes through the staff
    # member's own login (see nvadmin.auth.server_signin); the session key unlocks the window.
    _signed_in_engine: Engine | None = field(default=None, repr=False)
    session_key: str | None = field(default=None, repr=False)

    @classmethod
    def create(
        cls,
        database: str | None = None,
        environ: dict[str, str] | None = None,
        *,
        profile: str | None = None,
    ) -> Context:
        env = os.environ if environ is None else environ
        paths = Paths.from_environment(dict(env))
        url = database or env.get("NVADMIN_DATABASE_URL")
        if url:
            from nvadmin.db.engine import parse_url

            parse_url(url)  # reject a malformed URL before anything else happens
            return cls(paths=paths, database_url=url, is_default_database=False, profile=profile)
        return cls.embedded(paths)

    @classmethod
    def embedded(cls, paths: Paths) -> Context:
        """The embedded default: local SQLite in the data folder (the demo on first run)."""
        from nvadmin.db.engine import sqlite_url

        return cls(
            paths=paths,
            database_url=sqlite_url(paths.default_database),
            is_default_database=True,
        )

    @property
    def engine(self) -> Engine:
        if self._signed_in_engine is not None:
            return self._signed_in_engine
        if self._engine is None:
            from nvadmin.db.engine import make_engine

            self._engine = make_engine(self._before_sign_in_url())
        return self._engine

    def _before_sign_in_url(self) -> URL:
        """A PostgreSQL URL naming no user means a staff desktop: until someone signs in it
        connects as the gate login, which can only check schema and sign-in attempts."""
        from nvadmin.auth import db_roles
        from nvadmin.db.engine import parse_url

        url = parse_url(self.database_url)
        if url.get_backend_name() == "postgresql" and not url.username:
            url = url.set(username=db_roles.GATE, password=db_roles.GATE_PASSWORD)
        return url

    @property
    def before_sign_in_is_gate(self) -> bool:
        from nvadmin.auth import db_roles

        return self._before_sign_in_url().username == db_roles.GATE

    def signed_in(self, engine: Engine | None, session_key: str | None) -> None:
        """Use the staff login's engine from now on (None: keep the database's own)."""
        if engine is not None:
            self._signed_in_engine = engine
            self.session_key = session_key

    @property
    def display_url(self) -> str:
        """The database URL with any password hidden, for titles, logs and manifests."""
        if self.label:
            return self.label
        from nvadmin.db.engine import parse_url

        return parse_url(self.database_url).render_as_string(hide_password=True)

    def dispose(self) -> None:
        """Close every connection; a staff login's session is over (sign in again)."""
        if self._signed_in_engine is not None:
            self._signed_in_engine.dispose()
            self._signed_in_engine = None
            self.session_key = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
