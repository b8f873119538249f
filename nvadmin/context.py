"""What every command and window needs: paths, the chosen database and its engines.

Built once by the entry point and passed down; importing this module does nothing, and
loads no database library: every command module names :class:`Context`, and ``nvadmin --help``
must not pay for SQLAlchemy (the engine functions are imported where they are called).

Which server each operation uses is decided here. :attr:`Context.engine` (also named
:attr:`Context.write_engine`) is the primary: everything that writes, and everything not
listed below, uses it. :attr:`Context.read_engine` is the first reachable hot standby named
with ``--read-database``/``NVADMIN_READ_DATABASE_URL`` or the saved connection's replicas
(else the primary, with a notice): browse pages, counts, insights, flags, reports, case-file
builds, exports and verification read through it, after their access event has been committed
through the write engine (:mod:`nvadmin.db.routing`). SQLite has no replicas.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nvadmin.paths import Paths

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.engine import URL

    from nvadmin.db.routing import ReadRoute, ServerPosition


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
    # Hot standbys the heavy reads go to (PostgreSQL only); URLs without a password: they
    # sign in with the primary's login, which the standbys replicate.
    read_database_urls: tuple[str, ...] = ()
    _read_route: ReadRoute | None = field(default=None, repr=False)
    _notice_listeners: list[Callable[[str], None]] = field(default_factory=list, repr=False)

    @classmethod
    def create(
        cls,
        database: str | None = None,
        environ: dict[str, str] | None = None,
        *,
        profile: str | None = None,
        read_databases: tuple[str, ...] = (),
    ) -> Context:
        env = os.environ if environ is None else environ
        paths = Paths.from_environment(dict(env))
        url = database or env.get("NVADMIN_DATABASE_URL")
        reads = read_databases or tuple(env.get("NVADMIN_READ_DATABASE_URL", "").split())
        if url:
            from nvadmin.db.engine import parse_url

            parse_url(url)  # reject a malformed URL before anything else happens
            return cls(
                paths=paths,
                database_url=url,
                is_default_database=False,
                profile=profile,
                read_database_urls=check_read_databases(url, reads),
            )
        if reads:
            from nvadmin.errors import UserError

            raise UserError("a read database (replica) needs a PostgreSQL --database or profile")
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
        """Use the staff login's engine from now on (None: keep the database's own); the
        standbys are read as the same login, joined to the same session."""
        if engine is not None:
            self._signed_in_engine = engine
            self.session_key = session_key
            if self._read_route is not None:
                self._read_route.dispose()
                self._read_route = None

    @property
    def write_engine(self) -> Engine:
        """The primary: every write (and every read not routed to a standby)."""
        return self.engine

    @property
    def has_replicas(self) -> bool:
        return bool(self.read_database_urls)

    @property
    def read_engine(self) -> Engine:
        """The first reachable standby, else the primary (with a notice); without replicas
        the primary itself. Only code that reads gets it."""
        route = self.read_route
        return route.engine if route is not None else self.engine

    @property
    def read_route(self) -> ReadRoute | None:
        if not self.read_database_urls:
            return None
        if self._read_route is None:
            from nvadmin.db.routing import ReadRoute

            primary = self.engine.url
            standbys = [_with_login(url, primary) for url in self.read_database_urls]
            prepare = None
            if self._signed_in_engine is not None and self.session_key is not None:
                from nvadmin.auth.server_signin import read_connection_joiner

                prepare = read_connection_joiner(self.session_key)
            self._read_route = ReadRoute(standbys, primary, on_notice=self._notice, prepare=prepare)
            if prepare is not None:
                from nvadmin.db.routing import current_lsn

                writer = self.engine
                self._read_route.fence = lambda: current_lsn(writer)
        return self._read_route

    def add_notice_listener(self, listener: Callable[[str], None]) -> None:
        """``listener(message)`` when reads fall back from a standby (or return to it);
        called on whichever thread opened the connection."""
        self._notice_listeners.append(listener)

    def _notice(self, message: str) -> None:
        for listener in list(self._notice_listeners):
            listener(message)

    def read_position(self) -> ServerPosition | None:
        """Which server reads go to and how far behind the primary it is (None without
        replicas)."""
        if self.read_route is None:
            return None
        from nvadmin.db.routing import server_position

        return server_position(self.read_engine, self.engine)

    @property
    def display_url(self) -> str:
        """The database URL with any password hidden, for titles, logs and manifests."""
        if self.label:
            return self.label
        from nvadmin.db.engine import parse_url

        return parse_url(self.database_url).render_as_string(hide_password=True)

    def dispose(self) -> None:
        """Close every connection; a staff login's session is over (sign in again)."""
        if self._read_route is not None:
            self._read_route.dispose()
            self._read_route = None
        if self._signed_in_engine is not None:
            self._signed_in_engine.dispose()
            self._signed_in_engine = None
            self.session_key = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def check_read_databases(primary: str, reads: tuple[str, ...]) -> tuple[str, ...]:
    """The replica URLs, checked: PostgreSQL, like the primary."""
    if not reads:
        return ()
    from nvadmin.db.engine import parse_url
    from nvadmin.errors import UserError

    if parse_url(primary).get_backend_name() != "postgresql":
        raise UserError("read databases (replicas) are for PostgreSQL; SQLite has none")
    for url in reads:
        if parse_url(url).get_backend_name() != "postgresql":
            raise UserError(f"a read database must be a PostgreSQL standby: {url!r}")
    return reads


def _with_login(url: str, primary: URL) -> URL:
    """A standby's URL signed in as the primary's login (roles and passwords replicate);
    a database name left out is the primary's."""
    from sqlalchemy.engine import URL

    from nvadmin.db.engine import parse_url

    standby = parse_url(url)
    return URL.create(
        primary.drivername,
        username=primary.username,
        password=primary.password,
        host=standby.host,
        port=standby.port,
        database=standby.database or primary.database,
        query=standby.query or primary.query,
    )
