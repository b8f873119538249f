"""Nobody holds a log or an account shut from outside a transaction, or from the gate.

Found by trying a staff login, and the public ``nvadmin_gate`` login, with psql
(``tests/pg/test_insider_tricks.py``):

* **A writer lock held by a session, not a transaction.** 0010 ends a desktop login's
  session that sits on a workspace's writer lock with a transaction open longer than
  ``security.writer_hold_seconds``. ``SELECT pg_advisory_lock(<CHAIN_LOCK>, <workspace>)`` in
  autocommit holds the same lock with no transaction at all (``xact_start`` is NULL): the
  holder was never ended, so one idle connection of the *public gate login* stopped every
  sign-in (the staff workspace's chain) until it disconnected. Advisory locks are anyone's to
  take. Now a holder is also sitting once the waiter has itself waited
  ``writer_hold_seconds`` on it, whatever its transaction's age (one short statement after
  another keeps that young; 0010 caught it only because the activity view is read once per
  transaction), and an idle holder's age counts from when it went idle.
* **An account held shut.** ``BEGIN; SELECT nvadmin_sign_in_attempt('victim@…');`` (the gate
  may call it for any address) locked the victim's staff row and left it locked: the
  victim's sign-in, the gate's other attempts and an admin's unlock waited for as long as the
  transaction stayed open. Every function that locks a staff row now first takes that
  account's writer lock (:data:`ACCOUNT_LOCK`, the account's id) through
  ``nvadmin_take_writer_lock``, so a session sitting on it is ended as on a workspace's log.
* **Housekeeping held shut.** The gate's clean-up of day-old attempts and the sessions'
  clean-up of ended connections deleted rows every other caller also deletes: a transaction
  holding those deletions open stopped every sign-in. Each now skips rows another
  transaction holds (``FOR UPDATE SKIP LOCKED``); the next caller deletes them.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from alembic import op

from nvadmin.db.migrations import revision_module

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

ACCOUNT_LOCK = 0x6E764143  # "nvAC": pg_advisory_xact_lock(class, staff id)


def _lock_account(where: str) -> str:
    """Take the writer lock of the staff account ``where`` names (none if no such row)."""
    return (
        f"PERFORM nvadmin_take_writer_lock({ACCOUNT_LOCK}, locked.id,\n"
        "        format('the account of %s', locked.email))\n"
        f"        FROM staff locked WHERE {where};\n    "
    )


def _writer_lock() -> str:
    held = revision_module("0010_held_logs.py")
    return revision_module("0009_recorded_reads.py")._edited(
        held.SQL,
        "nvadmin_take_writer_lock",
        (
            ("    holder record;\n", "    holder record;\n    seen_pid integer;\n"
             "    seen_at timestamptz;\n"),
            (
                "SELECT a.pid, a.usename, a.xact_start INTO holder",
                "SELECT a.pid, a.usename,\n"
                "               coalesce(a.xact_start, a.state_change, a.backend_start)"
                " AS xact_start\n"
                "        INTO holder",
            ),
            (
                "          AND l.pid <> pg_backend_pid();\n",
                "          AND l.pid <> pg_backend_pid();\n"
                "        -- Held for as long as this writer has waited on it, whatever the age\n"
                "        -- of the holder's transaction (a session-level lock has none).\n"
                "        IF FOUND AND holder.pid IS DISTINCT FROM seen_pid THEN\n"
                "            seen_pid := holder.pid;\n"
                "            seen_at := clock_timestamp();\n"
                "        END IF;\n",
            ),
            (
                "IF FOUND AND holder.xact_start < clock_timestamp() - hold\n",
                "IF FOUND AND (holder.xact_start < clock_timestamp() - hold\n"
                "                     OR seen_at < clock_timestamp() - hold)\n",
            ),
        ),
    )  # fmt: skip


def _functions() -> list[str]:
    identity = revision_module("0003_server_identity.py")
    recorded = revision_module("0009_recorded_reads.py")
    edited = recorded._edited
    return [
        edited(
            identity.SQL,
            "nvadmin_sign_in_attempt",
            (
                (
                    "DELETE FROM staff_sign_in_attempts WHERE created_at < now() - interval "
                    "'1 day';",
                    "DELETE FROM staff_sign_in_attempts WHERE token_hash IN (\n"
                    "        SELECT o.token_hash FROM staff_sign_in_attempts o\n"
                    "        WHERE o.created_at < now() - interval '1 day'\n"
                    "        FOR UPDATE SKIP LOCKED);",
                ),
                (
                    "SELECT * INTO account FROM staff WHERE email = address FOR UPDATE;",
                    _lock_account("locked.email = address")
                    + "SELECT * INTO account FROM staff WHERE email = address FOR UPDATE;",
                ),
            ),
        ),
        edited(
            identity.SQL,
            "nvadmin_sign_in_failed",
            (
                (
                    "PERFORM 1 FROM staff WHERE id = attempt.staff_id FOR UPDATE;",
                    _lock_account("locked.id = attempt.staff_id")
                    + "PERFORM 1 FROM staff WHERE id = attempt.staff_id FOR UPDATE;",
                ),
            ),
        ),
        edited(
            recorded._sign_in(identity.SQL),
            "nvadmin_sign_in",
            (
                (
                    "SELECT * INTO account FROM staff s WHERE s.email = session_user FOR UPDATE;",
                    _lock_account("locked.email = session_user")
                    + "SELECT * INTO account FROM staff s WHERE s.email = session_user "
                    "FOR UPDATE;",
                ),
            ),
        ),
        edited(
            recorded._manage_staff(identity.SQL),
            "nvadmin_manage_staff",
            (
                (
                    "SELECT * INTO target FROM staff WHERE email = address FOR UPDATE;",
                    _lock_account("locked.email = address")
                    + "    SELECT * INTO target FROM staff WHERE email = address FOR UPDATE;",
                ),
            ),
        ),
        edited(
            identity.SQL,
            "nvadmin_join_session",
            (
                (
                    "DELETE FROM staff_session_backends b\n"
                    "        WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity a\n"
                    "                          WHERE a.pid = b.pid AND a.backend_start = "
                    "b.backend_start);",
                    "DELETE FROM staff_session_backends b\n"
                    "        WHERE (b.pid, b.backend_start) IN (\n"
                    "            SELECT o.pid, o.backend_start FROM staff_session_backends o\n"
                    "            WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity a\n"
                    "                              WHERE a.pid = o.pid\n"
                    "                                AND a.backend_start = o.backend_start)\n"
                    "            FOR UPDATE SKIP LOCKED);",
                ),
            ),
        ),
    ]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_writer_lock())
    for function in _functions():
        op.execute(function)
    # As 0003: every nvadmin function resolves names in this schema only (a replaced
    # function loses its settings, so all are set again).
    op.execute(revision_module("0003_server_identity.py").SEARCH_PATH)


def downgrade() -> None:  # pragma: no cover - nvadmin never downgrades an audit database
    raise NotImplementedError
