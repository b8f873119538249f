"""Connection profiles: a name and a database URL, kept in ``connections.ini`` beside the
settings. The URL is stored without its password; the password lives in the keyring
(:mod:`nvadmin.auth.credentials`) under the profile's name, or is asked for each time.

A profile may name hot standbys (``replicas``) the heavy reads go to. They are stored without
any password too: a standby replicates the primary's logins, so it is signed in to with the
primary's login and password.
"""

from __future__ import annotations

import configparser
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL

from nvadmin.db.engine import parse_url
from nvadmin.errors import UserError

_PREFIX = "profile "


@dataclass(frozen=True, slots=True)
class ConnectionProfile:
    name: str
    url: str  # never contains a password
    replicas: tuple[str, ...] = ()  # hot standbys for reads, never with a password

    def url_with_password(self, password: str | None) -> str:
        parsed = parse_url(self.url)
        if password:
            parsed = parsed.set(password=password)
        return parsed.render_as_string(hide_password=False)


def split_password(url: str) -> tuple[str, str | None]:
    """``(url without password, password or None)``."""
    parsed: URL = parse_url(url)
    password = parsed.password
    # URL.set(password=None) means "leave unchanged", so the URL is rebuilt without it.
    without = URL.create(
        parsed.drivername,
        username=parsed.username,
        host=parsed.host,
        port=parsed.port,
        database=parsed.database,
        query=parsed.query,
    )
    clean = without.render_as_string(hide_password=False)
    return clean, (str(password) if password is not None else None)


class ProfileStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> configparser.ConfigParser:
        parser = configparser.ConfigParser(interpolation=None)
        if self.path.exists():
            try:
                parser.read(self.path, encoding="utf-8")
            except configparser.Error as error:
                raise UserError(f"the connection list {self.path} is damaged: {error}") from None
        return parser

    def profiles(self) -> list[ConnectionProfile]:
        parser = self._read()
        found = []
        for section in parser.sections():
            if section.startswith(_PREFIX) and parser.has_option(section, "url"):
                replicas = tuple(parser.get(section, "replicas", fallback="").split())
                found.append(
                    ConnectionProfile(section[len(_PREFIX) :], parser.get(section, "url"), replicas)
                )
        return sorted(found, key=lambda p: p.name.lower())

    def get(self, name: str) -> ConnectionProfile | None:
        return next((p for p in self.profiles() if p.name == name), None)

    def save(
        self, name: str, url: str, replicas: tuple[str, ...] = ()
    ) -> tuple[ConnectionProfile, str | None]:
        """Store a profile; returns it and the password taken out of the URL (for the
        keyring), so the password never reaches the file. A replica's password, if given,
        must be the primary's (the standby replicates the login)."""
        name = name.strip()
        if not name or "]" in name or "\n" in name:
            raise UserError("a connection name must be one line without ']'")
        clean, password = split_password(url)
        clean_replicas = []
        for replica in replicas:
            if parse_url(replica).get_backend_name() != "postgresql" or (
                parse_url(clean).get_backend_name() != "postgresql"
            ):
                raise UserError("replicas are PostgreSQL hot standbys of a PostgreSQL database")
            replica_clean, replica_password = split_password(replica)
            if replica_password is not None:
                if password is not None and replica_password != password:
                    raise UserError(
                        "a replica signs in with the primary's login and password; "
                        "give the password once, in the primary's URL"
                    )
                password = replica_password
            clean_replicas.append(replica_clean)
        parser = self._read()
        section = _PREFIX + name
        if not parser.has_section(section):
            parser.add_section(section)
        parser.set(section, "url", clean)
        if clean_replicas:
            parser.set(section, "replicas", " ".join(clean_replicas))
        else:
            parser.remove_option(section, "replicas")
        self._write(parser)
        return ConnectionProfile(name, clean, tuple(clean_replicas)), password

    def remove(self, name: str) -> None:
        parser = self._read()
        if parser.remove_section(_PREFIX + name):
            self._write(parser)

    def _write(self, parser: configparser.ConfigParser) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle, temp = tempfile.mkstemp(prefix=".connections-", dir=self.path.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                parser.write(file)
                file.flush()
                os.fsync(file.fileno())
            os.chmod(temp, 0o600)
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
