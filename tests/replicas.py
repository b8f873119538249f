"""Helpers of the read-replica tests (the fixtures are in tests/conftest.py)."""

from __future__ import annotations

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from nvadmin.db import routing
from nvadmin.db.engine import make_engine

EMAIL = "rita@nvadmin.example"
PASSWORD = "standby-reads-as-the-same-login"
EVENTS = 25


def port_of(url: str) -> int:
    port = make_url(url).port
    assert port is not None
    return port


def answering(engine: Engine) -> tuple[bool, int]:
    """(in recovery, port) of the server a connection of ``engine`` reaches."""
    with engine.connect() as connection:
        row = connection.execute(text("SELECT pg_is_in_recovery(), inet_server_port()")).one()
    return bool(row[0]), int(row[1])


def count_events(url: str, action: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    text("SELECT count(*) FROM activity_events WHERE action = :a"), {"a": action}
                ).scalar_one()
            )
    finally:
        engine.dispose()


def caught_up(primary_url: str, standby_url: str) -> None:
    primary, standby = make_engine(primary_url), make_engine(standby_url)
    try:
        assert routing.wait_for_replay(standby, routing.current_lsn(primary), timeout=60)
    finally:
        primary.dispose()
        standby.dispose()
