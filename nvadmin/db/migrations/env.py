"""Alembic environment: always run by nvadmin with an open connection (see nvadmin.db.migrate)."""

from alembic import context

from nvadmin.db.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # ALTER TABLE is limited on SQLite: rebuild tables there, alter in place elsewhere.
    render_as_batch=connection.dialect.name == "sqlite",
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
