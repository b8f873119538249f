"""Schema migrations shipped inside the package, run programmatically."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import ResolutionError
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, inspect
from sqlalchemy.exc import SQLAlchemyError

from nvadmin.db.engine import translate
from nvadmin.errors import SchemaError

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The database's schema revision (``None`` for an empty database).

    Raises :class:`SchemaError` when the database is at a revision this nvadmin does not know
    (made by a newer version) or holds unrelated tables.
    """
    try:
        with engine.connect() as connection:
            revision = MigrationContext.configure(connection).get_current_revision()
            tables = set(inspect(connection).get_table_names())
    except SQLAlchemyError as error:
        raise translate(error) from error
    if revision is None:
        if tables - {"alembic_version"}:
            raise SchemaError("this database holds other tables and is not an nvadmin database")
        return None
    try:
        ScriptDirectory.from_config(_config()).get_revision(revision)
    except (ResolutionError, CommandError):
        raise SchemaError(
            f"the database schema ({revision}) is newer than this nvadmin "
            f"(which knows up to {head_revision()}): upgrade nvadmin"
        ) from None
    return revision


def upgrade(engine: Engine) -> bool:
    """Bring the schema to head; returns True when anything was applied. Safe to run twice."""
    if current_revision(engine) == head_revision():
        return False
    log.info("upgrading database schema to %s", head_revision())
    try:
        with engine.begin() as connection:
            command.upgrade(_config(connection), "head")
    except SQLAlchemyError as error:
        raise translate(error) from error
    return True


def require_head(engine: Engine) -> None:
    revision = current_revision(engine)
    if revision != head_revision():
        raise SchemaError(
            "the database schema is not up to date: run `nvadmin db upgrade`"
            if revision
            else "the database is empty: run `nvadmin db upgrade` first"
        )
