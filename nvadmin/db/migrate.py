"""Schema migrations shipped inside the package, run programmatically.

Every start and every command checks that the database is at this nvadmin's schema; that check
does not load Alembic (nor Mako and Pygments with it): the shipped revisions are read from the
migration files' ``revision`` / ``down_revision`` lines and the database's from its
``alembic_version`` table. Alembic runs only when there is something to upgrade, and answers
for any history the quick reading does not understand.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from nvadmin.db.engine import translate
from nvadmin.errors import SchemaError

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
_REVISION = re.compile(r"""^revision(?:\s*:\s*str)?\s*=\s*["']([^"']+)["']\s*$""", re.M)
_DOWN_REVISION = re.compile(
    r"""^down_revision(?:\s*:[^=]+)?\s*=\s*(?:None|["']([^"']+)["'])\s*$""", re.M
)


@dataclass(frozen=True, slots=True)
class History:
    """The schema revisions this nvadmin ships, and the newest of them."""

    head: str
    revisions: frozenset[str]


def _config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def history_from_alembic() -> History:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_config())
    head = script.get_current_head()
    assert head is not None
    return History(head, frozenset(r.revision for r in script.walk_revisions()))


@cache
def history() -> History:
    """Read from the migration files; Alembic's own reading for anything but one straight line
    of revisions (a branch, a merge, a file written differently)."""
    down_of: dict[str, str | None] = {}
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        source = path.read_text(encoding="utf-8")
        revision, down = _REVISION.findall(source), _DOWN_REVISION.findall(source)
        if len(revision) != 1 or len(down) != 1 or revision[0] in down_of:
            return history_from_alembic()
        down_of[revision[0]] = down[0] or None
    heads = set(down_of) - set(down_of.values())
    roots = [r for r, down in down_of.items() if down is None]
    if len(heads) != 1 or len(roots) != 1 or not set(down_of.values()) - {None} <= set(down_of):
        return history_from_alembic()
    return History(heads.pop(), frozenset(down_of))


def head_revision() -> str:
    return history().head


def current_revision(engine: Engine) -> str | None:
    """The database's schema revision (``None`` for an empty database).

    Raises :class:`SchemaError` when the database is at a revision this nvadmin does not know
    (made by a newer version) or holds unrelated tables.
    """
    try:
        with engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
            recorded = (
                list(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
                if "alembic_version" in tables
                else []
            )
    except SQLAlchemyError as error:
        raise translate(error) from error
    if not recorded:
        if tables - {"alembic_version"}:
            raise SchemaError("this database holds other tables and is not an nvadmin database")
        return None
    if len(recorded) > 1:
        raise SchemaError(
            f"the database records several schema revisions ({', '.join(sorted(recorded))}); "
            "nvadmin's schema has one line of revisions"
        )
    revision = str(recorded[0])
    if revision not in history().revisions:
        raise SchemaError(
            f"the database schema ({revision}) is newer than this nvadmin "
            f"(which knows up to {head_revision()}): upgrade nvadmin"
        )
    return revision


def upgrade(engine: Engine) -> bool:
    """Bring the schema to head; returns True when anything was applied. Safe to run twice."""
    if current_revision(engine) == head_revision():
        return False
    from alembic import command

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
