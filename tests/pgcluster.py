"""A throwaway PostgreSQL cluster for tests and benchmarks.

`initdb`, `pg_ctl` and `postgres` refuse to run as root, so when running as root the cluster is
owned by and run as the ``postgres`` system user. The port is picked at random.

:func:`primary_and_standby` adds a streaming hot standby of the cluster (``pg_basebackup -R``),
for the read-replica tests; :class:`Server` stops and starts either of them.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_as_postgres() -> dict[str, Any]:
    if os.geteuid() != 0:
        return {}
    account = pwd.getpwnam("postgres")
    return {"user": account.pw_uid, "group": account.pw_gid}


_ENV = {**os.environ, "LC_ALL": "C.UTF-8"}


@dataclass
class Server:
    """One running server of the harness: stop it and start it again within a test."""

    data: Path
    port: int
    options: str
    log: Path

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/nvadmin"

    def stop(self) -> None:
        subprocess.run(
            ["pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop"],
            capture_output=True, env=_ENV, **_run_as_postgres(),
        )  # fmt: skip

    def start(self) -> None:
        subprocess.run(
            ["pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
             "-o", f"-p {self.port} {self.options}", "start"],
            check=True, capture_output=True, env=_ENV, **_run_as_postgres(),
        )  # fmt: skip


@contextlib.contextmanager
def cluster(
    extra_settings: dict[str, str] | None = None,
    *,
    hba_first: tuple[str, ...] = (),
    files: dict[str, bytes] | None = None,
) -> Iterator[str]:
    """Start a cluster and yield its ``postgresql+psycopg://`` URL; stop and delete it after.

    ``hba_first``: ``pg_hba.conf`` lines checked before the defaults (another sign-in method
    for some login); ``files``: written into the data folder, owner-only (certificates)."""
    with _cluster(extra_settings, hba_first=hba_first, files=files) as server:
        yield server.url


@contextlib.contextmanager
def _cluster(
    extra_settings: dict[str, str] | None = None,
    *,
    hba_first: tuple[str, ...] = (),
    files: dict[str, bytes] | None = None,
) -> Iterator[Server]:
    for tool in ("initdb", "pg_ctl", "psql"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is not on PATH: install the PostgreSQL server")
    as_postgres = _run_as_postgres()
    base = Path(tempfile.mkdtemp(prefix="nvadmin-pg-"))
    data, server_log = base / "data", base / "server.log"
    if as_postgres:
        os.chown(base, as_postgres["user"], -1)
    base.chmod(0o755)
    port = _free_port()
    settings = {
        "listen_addresses": "'127.0.0.1'",
        "unix_socket_directories": f"'{base}'",
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "max_connections": "100",
        "shared_buffers": "256MB",
        "max_wal_size": "4GB",
        **(extra_settings or {}),
    }
    options = " ".join(f"-c {k}={v}" for k, v in settings.items())
    env = {**os.environ, "LC_ALL": "C.UTF-8"}

    def run(args: list[str], **kwargs: Any) -> None:
        subprocess.run(args, check=True, capture_output=True, env=env, **kwargs)

    try:
        try:
            run(["initdb", "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                 "--no-sync", "--no-instructions"], **as_postgres)  # fmt: skip
            # The postgres superuser (the harness, tests acting as the database owner) needs
            # no password; every other login, such as a staff member's, must give its own.
            (data / "pg_hba.conf").write_text(
                "".join(f"{line}\n" for line in hba_first) + "local all postgres trust\n"
                "host all postgres 127.0.0.1/32 trust\n"
                "local all all scram-sha-256\n"
                "host all all 127.0.0.1/32 scram-sha-256\n"
            )
            for name, content in (files or {}).items():
                path = data / name
                path.write_bytes(content)
                path.chmod(0o600)
                if as_postgres:
                    os.chown(path, as_postgres["user"], as_postgres["group"])
            for attempt in range(3):
                try:
                    run(["pg_ctl", "-D", str(data), "-l", str(server_log), "-w", "-t", "60",
                         "-o", f"-p {port} {options}", "start"], **as_postgres)  # fmt: skip
                    break
                except subprocess.CalledProcessError:
                    # Another process (a parallel test worker's server) took the free port
                    # between our look and the server's bind: try another one.
                    log = server_log.read_text(errors="replace") if server_log.exists() else ""
                    if attempt == 2 or "already in use" not in log:
                        raise
                    port = _free_port()
            run(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-q",
                 "-c", "CREATE DATABASE nvadmin"])  # fmt: skip
        except (subprocess.CalledProcessError, OSError) as error:
            detail = (getattr(error, "stderr", None) or b"").decode(errors="replace")
            text = server_log.read_text(errors="replace") if server_log.exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {detail or error}\n{text}") from error
        yield Server(data, port, options, server_log)
    finally:
        subprocess.run(
            ["pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True, env=env, **as_postgres,
        )  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)


# The standby's own settings: a hot standby that answers queries while it replays, and that
# never cancels a long export because the primary vacuumed rows the export still reads.
STANDBY_SETTINGS = {"hot_standby": "on", "hot_standby_feedback": "on"}


@dataclass
class Pair:
    primary: Server
    standby: Server


@contextlib.contextmanager
def primary_and_standby() -> Iterator[Pair]:
    """A primary and its streaming hot standby (``pg_basebackup -R``, as the postgres user,
    on another free port); both stopped and deleted after. The primary's ``nvadmin`` database
    exists on both; every database created later on the primary appears on the standby."""
    primary_settings = {"wal_level": "replica", "max_wal_senders": "10", "wal_keep_size": "1GB"}
    replication = "host replication postgres 127.0.0.1/32 trust"
    with _cluster(primary_settings, hba_first=(replication,)) as primary:
        as_postgres = _run_as_postgres()
        base = Path(tempfile.mkdtemp(prefix="nvadmin-standby-"))
        if as_postgres:
            os.chown(base, as_postgres["user"], -1)
        base.chmod(0o755)
        data = base / "data"
        standby: Server | None = None
        try:
            try:
                subprocess.run(
                    ["pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
                     "-D", str(data), "-R", "-X", "stream", "-c", "fast", "--no-sync"],
                    check=True, capture_output=True, env=_ENV, **as_postgres,
                )  # fmt: skip
                settings = {
                    "listen_addresses": "'127.0.0.1'",
                    "unix_socket_directories": f"'{base}'",
                    "fsync": "off",
                    "max_connections": "100",
                    "shared_buffers": "128MB",
                    **STANDBY_SETTINGS,
                }
                options = " ".join(f"-c {k}={v}" for k, v in settings.items())
                for attempt in range(3):
                    standby = Server(data, _free_port(), options, base / "server.log")
                    try:
                        standby.start()
                        break
                    except subprocess.CalledProcessError:
                        seen = (
                            standby.log.read_text(errors="replace") if standby.log.exists() else ""
                        )
                        if attempt == 2 or "already in use" not in seen:
                            raise
            except (subprocess.CalledProcessError, OSError) as error:
                detail = (getattr(error, "stderr", None) or b"").decode(errors="replace")
                log_file = base / "server.log"
                text = log_file.read_text(errors="replace") if log_file.exists() else ""
                message = f"the standby did not start: {detail or error}\n{text}"
                raise RuntimeError(message) from error
            assert standby is not None
            yield Pair(primary, standby)
        finally:
            if standby is not None:
                standby.stop()
            shutil.rmtree(base, ignore_errors=True)
