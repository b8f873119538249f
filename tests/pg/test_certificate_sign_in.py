"""A site that signs staff in with client certificates (``pg_hba.conf`` method ``cert``): the
saved connection names the certificate, the server asks for no password, and nvadmin's
sign-in (the gate, the second factor, the session) works the same."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import text
from sqlalchemy.engine import make_url

from nvadmin.auth import accounts, db_roles
from nvadmin.auth.accounts import command_line_operator
from nvadmin.auth.server_signin import ServerAuthenticator
from nvadmin.db import migrate
from nvadmin.db.engine import make_engine
from nvadmin.identity import Role
from tests import pgcluster

pytestmark = pytest.mark.pg

LOGIN = "cert-user@n.example"


def _certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[str, ec.EllipticCurvePrivateKey]
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer[0])]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
    )
    if subject == issuer[0]:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    if subject == "127.0.0.1":
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            False,
        )
    return builder.sign(issuer[1], hashes.SHA256())


def _pem(value: x509.Certificate | ec.EllipticCurvePrivateKey) -> bytes:
    if isinstance(value, x509.Certificate):
        return value.public_bytes(serialization.Encoding.PEM)
    return value.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.fixture
def certificate_site(tmp_path: Path) -> Iterator[str]:
    """A cluster where LOGIN signs in with its client certificate only; the URL of the
    staff desktop's saved connection (no user, the certificate named in it)."""
    ca_key, server_key, client_key = (ec.generate_private_key(ec.SECP256R1()) for _ in "abc")
    ca = _certificate("nvadmin test CA", ca_key, ("nvadmin test CA", ca_key))
    server = _certificate("127.0.0.1", server_key, ("nvadmin test CA", ca_key))
    client = _certificate(LOGIN, client_key, ("nvadmin test CA", ca_key))
    for name, value in (("root.crt", ca), ("client.crt", client), ("client.key", client_key)):
        (tmp_path / name).write_bytes(_pem(value))
        (tmp_path / name).chmod(0o600)
    files = {"server.crt": _pem(server), "server.key": _pem(server_key), "ca.crt": _pem(ca)}
    settings = {
        "ssl": "on",
        "ssl_cert_file": "'server.crt'",
        "ssl_key_file": "'server.key'",
        "ssl_ca_file": "'ca.crt'",
    }
    hba = (f'hostssl all "{LOGIN}" 127.0.0.1/32 cert',)
    try:
        with pgcluster.cluster(settings, hba_first=hba, files=files) as url:
            owner = make_engine(url)
            migrate.upgrade(owner)
            db_roles.create_roles(owner)
            accounts.add_staff(
                owner, command_line_operator(), LOGIN, "unused-but-long-enough", Role.SUPPORT
            )
            owner.dispose()
            desktop = (
                make_url(url)
                ._replace(username=None)
                .update_query_dict(
                    {
                        "sslmode": "verify-ca",
                        "sslrootcert": str(tmp_path / "root.crt"),
                        "sslcert": str(tmp_path / "client.crt"),
                        "sslkey": str(tmp_path / "client.key"),
                    }
                )
            )
            yield desktop.render_as_string(hide_password=False)
    except RuntimeError as error:
        if os.environ.get("NVADMIN_REQUIRE_PG") == "1":
            pytest.fail(f"PostgreSQL is required here but could not start: {error}")
        pytest.skip(f"PostgreSQL not available: {error}")


def test_a_client_certificate_signs_in_without_a_password(certificate_site: str) -> None:
    session = ServerAuthenticator(make_url(certificate_site)).sign_in(LOGIN, "")
    assert session.identity.email == LOGIN and session.identity.role is Role.SUPPORT
    with session.engine.connect() as connection:
        assert connection.execute(text("SELECT current_user")).scalar() == LOGIN
        assert connection.execute(
            text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        ).scalar()
        assert connection.execute(text("SELECT count(*) FROM workspaces")).scalar()
    session.engine.dispose()


def test_the_sign_in_dialog_needs_no_password_for_a_certificate(
    qtbot, certificate_site: str
) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtCore import Qt

    from nvadmin.auth.credentials import CredentialStore
    from nvadmin.context import Context
    from nvadmin.paths import Paths
    from nvadmin.ui.sign_in import SignInDialog

    context = Context(Paths.from_environment(), certificate_site, is_default_database=False)
    try:
        dialog = SignInDialog(context, CredentialStore(timeout=2))
        qtbot.addWidget(dialog)
        dialog.show()
        qtbot.waitUntil(lambda: dialog.facts is not None and dialog.keyring_status is not None)
        qtbot.keyClicks(dialog.email_edit, LOGIN)
        qtbot.keyClick(dialog.email_edit, Qt.Key.Key_Tab)
        with qtbot.waitSignal(dialog.accepted):
            qtbot.keyClick(dialog.password_edit, Qt.Key.Key_Return)
        assert dialog.identity is not None and dialog.identity.email == LOGIN
        with context.engine.connect() as connection:
            assert connection.execute(text("SELECT current_user")).scalar() == LOGIN
    finally:
        context.dispose()
