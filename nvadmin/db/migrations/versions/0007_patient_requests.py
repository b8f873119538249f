"""Patient-scoped export requests: a request's filters may name patients.

A clinic asking for one patient's accesses (a patient's complaint, a right-of-access request)
gets an export of that patient's events only (``patient:`` in the search language), and the
Disclosures report can then account for each patient. Requests keep their filters as JSON
(``{"user": [...], "category": [...], "patient": [...]}``): nothing changes in the table.

On PostgreSQL ``nvadmin_receive_export_request`` (0005) refused any filter but ``user`` and
``category``; it now also takes ``patient``. The function is redefined from its own stored
definition with that one test (and its message) changed, so everything else in it, its
SECURITY DEFINER, its fixed search_path, its owner and its grants, stays exactly as 0005 made it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_KEYS = ("$k$('user', 'category')$k$", "$k$('user', 'category', 'patient')$k$")
_MESSAGE = (
    '$m${"user": [...], "category": [...]}$m$',
    '$m${"user": [...], "category": [...], "patient": [...]}$m$',
)


def _replace(keys: tuple[str, str], message: tuple[str, str]) -> str:
    return f"""
    DO $$
    DECLARE
        definition text;
    BEGIN
        SELECT pg_get_functiondef(p.oid) INTO definition
            FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE p.proname = 'nvadmin_receive_export_request'
              AND n.nspname = current_schema();
        IF definition IS NULL OR position({keys[0]} IN definition) = 0 THEN
            RAISE EXCEPTION 'nvadmin_receive_export_request is not the one this migration knows';
        END IF;
        EXECUTE replace(replace(definition, {keys[0]}, {keys[1]}), {message[0]}, {message[1]});
    END $$;
    """


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_replace(_KEYS, _MESSAGE))


def downgrade() -> None:  # pragma: no cover - nvadmin never downgrades an audit database
    raise NotImplementedError
