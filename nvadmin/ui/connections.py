"""Switching database from the sign-in dialog: the embedded demo or a saved connection.

A saved connection (``nvadmin profile add``) keeps its URL without the password in
``connections.ini`` and the password in the keyring; when the keyring has none, it is asked
for here and used once, never stored. The new database is prepared exactly as at start-up
(migrated, partitions made); if that fails, the user is told why and stays on the database
they were on.
"""

from __future__ import annotations

import logging

from PySide6.QtWidgets import QInputDialog, QLineEdit, QWidget

from nvadmin.auth.credentials import CredentialStore, KeyringUnavailable
from nvadmin.auth.profiles import ConnectionProfile, ProfileStore
from nvadmin.context import Context
from nvadmin.db.engine import parse_url
from nvadmin.workers.jobs import JobControl

log = logging.getLogger(__name__)

EMBEDDED = ""  # the choice standing for the embedded default database


def profile_store(context: Context) -> ProfileStore:
    return ProfileStore(context.paths.config_dir / "connections.ini")


def choices(context: Context) -> list[tuple[str, str]]:
    """``(label, choice)`` for every database the dialog can switch to, the current one left
    out: the embedded default (choice ``""``) and each saved connection (its name)."""
    out: list[tuple[str, str]] = []
    if not context.is_default_database:
        out.append(("Embedded demo database (this computer)", EMBEDDED))
    for profile in profile_store(context).profiles():
        if profile.name != context.profile:
            out.append((f"{profile.name} — {profile.url}", profile.name))
    return out


def open_choice(
    context: Context, choice: str, store: CredentialStore, parent: QWidget | None = None
) -> Context | None:
    """The prepared context for ``choice``, or None (the user was told why, or cancelled)."""
    from nvadmin.ui.startup import prepare_database, show_fatal

    if choice == EMBEDDED:
        target = Context.embedded(context.paths)
    else:
        profile = profile_store(context).get(choice)
        if profile is None:
            show_fatal(f"There is no saved connection named {choice!r} any more.")
            return None
        url = _url_with_password(profile, store, parent)
        if url is None:
            return None
        target = Context(
            paths=context.paths,
            database_url=url,
            is_default_database=False,
            profile=choice,
            read_database_urls=profile.replicas,
        )
    if not prepare_database(target):
        target.dispose()
        return None
    log.info("switched database to %s", target.display_url)
    return target


def _url_with_password(
    profile: ConnectionProfile, store: CredentialStore, parent: QWidget | None
) -> str | None:
    from nvadmin.ui.startup import run_with_progress

    found: dict[str, str | None] = {}

    def read_keyring(_control: JobControl) -> None:
        # Off the GUI thread: a locked keyring may take seconds to answer (or time out).
        try:
            found["password"] = store.database_password(profile.name)
        except KeyringUnavailable as unavailable:
            log.info("no keyring for %s: %s", profile.name, unavailable)

    run_with_progress(
        "Opening the database", f"Reading the password of {profile.name}…", read_keyring
    )
    password = found.get("password")
    if password is None and parse_url(profile.url).get_backend_name() != "sqlite":
        text, ok = QInputDialog.getText(
            parent,
            "Database password",
            f"Password for {profile.name} ({profile.url}); it is used once, not stored:",
            QLineEdit.EchoMode.Password,
        )
        if not ok:
            return None
        password = text or None
    return profile.url_with_password(password)
