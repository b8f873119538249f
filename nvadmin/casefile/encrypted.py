"""The v2 ``.nvcase`` format: an SQLCipher database, encrypted page by page, and a trailer.

Layout::

    SQLCipher 4 database                whole 4096-byte pages, each encrypted with AES-256-CBC
                                        under the raw key and authenticated by HMAC-SHA512
                                        over its ciphertext, IV and page number
    header                              UTF-8 JSON: format, KDF parameters and salt, cipher
                                        settings, a key check value, the database's length and
                                        ``header_sha256``; no PHI
    u32 big-endian                      length of the header
    b"NVCASE\\x00\\x02"                   magic and container version, at the very end

The key is the first half of scrypt(passphrase, salt) (N=2^17, r=8, p=1, as in version 1) and
is handed to SQLCipher raw (``PRAGMA key = "x'...'"``), so SQLCipher's own PBKDF2 does not
run; the second half keys the key check value, which tells a wrong passphrase from a damaged
file before any page is read.

The plaintext database never exists whole: SQLite reads and writes one page at a time and
SQLCipher encrypts or decrypts it on the way, so building a case file and browsing one hold a
bounded page cache in memory whatever the size, and nothing is written in plaintext (no
journal, temporary storage in memory). SQLite stops at the database's own length, written
inside its encrypted first page, so the trailer after it is never read as a page; the stock
``sqlcipher`` shell opens the file with the raw key and ``PRAGMA cipher_compatibility = 4``.

As in version 1, the trailer is checked whole before the key derivation runs (only the KDF
and cipher settings nvadmin writes, exact field forms, the checksum, and the file's length),
and a trailer at fault is reported as a damaged or altered case file, never as a wrong
passphrase. Every page is authenticated as SQLite reads it: a changed, swapped or replaced
page is refused instead of shown (:data:`PAGE_FAILURE`), and offline verification reads every
page of the database (``PRAGMA quick_check``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

import sqlcipher3

from nvadmin.casefile import container
from nvadmin.casefile.container import (
    CHECK_BYTES,
    SALT_BYTES,
    SCRYPT_N,
    SCRYPT_P,
    SCRYPT_R,
    AlteredHeader,
    CaseFileError,
    Keys,
    WrongPassphrase,
)

MAGIC = b"NVCASE\x00\x02"
FORMAT = "nvadmin-case-file/2"
CIPHER = "SQLCipher 4: AES-256-CBC, HMAC-SHA512 per page, 4096-byte pages"
PAGE_SIZE = 4096
# Spelled out rather than left to SQLCipher's defaults (which have changed between major
# versions): these are the ``cipher_compatibility = 4`` settings, and :data:`CIPHER` names them.
CIPHER_PRAGMAS = (
    f"PRAGMA cipher_page_size = {PAGE_SIZE}",
    "PRAGMA cipher_use_hmac = ON",
    "PRAGMA cipher_hmac_algorithm = HMAC_SHA512",
    "PRAGMA cipher_kdf_algorithm = PBKDF2_HMAC_SHA512",
    "PRAGMA kdf_iter = 256000",
    "PRAGMA cipher_plaintext_header_size = 0",
)
_HEADER_CHECK = "header_sha256"
_TAIL = 4 + len(MAGIC)
_MAX_HEADER = 64 * 1024
PAGE_FAILURE = (
    "the case file was altered or damaged: a part of it does not verify (its pages are "
    "authenticated and one was changed)"
)

DatabaseError: type[Exception] = sqlcipher3.DatabaseError


class EncryptedConnection(Protocol):
    """What nvadmin uses of an SQLCipher connection (the module ships no type hints)."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...
    def executemany(self, sql: str, parameters: Any, /) -> Any: ...
    def close(self) -> None: ...
    def discard(self) -> None: ...
    def create_function(self, name: str, narg: int, function: Callable[..., Any], /) -> None: ...
    @property
    def total_changes(self) -> int: ...


class KeptConnection(sqlcipher3.Connection):  # type: ignore[misc]
    """The builder's only connection: engines over it may be disposed, :meth:`discard`
    really closes it."""

    def close(self) -> None:
        """Kept open: see :meth:`discard`."""

    def discard(self) -> None:
        sqlcipher3.Connection.close(self)


@dataclass(frozen=True)
class Header:
    """A v2 case file's trailer, checked field by field before any key is derived."""

    n: int
    r: int
    p: int
    salt: bytes
    key_check: bytes
    database_bytes: int


def is_v2(tail: bytes) -> bool:
    return tail.endswith(MAGIC)


def _checksum(fields: dict[str, Any]) -> str:
    rest = {k: v for k, v in fields.items() if k != _HEADER_CHECK}
    return hashlib.sha256(MAGIC + json.dumps(rest, sort_keys=True).encode("utf-8")).hexdigest()


def new_header(passphrase: str) -> tuple[Keys, dict[str, Any]]:
    """Fresh keys for a new case file and the header fields that let them be derived again
    (the database's length is added when it is known)."""
    salt = os.urandom(SALT_BYTES)
    keys = container.derive_keys(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    fields: dict[str, Any] = {
        "format": FORMAT,
        "kdf": {
            "name": "scrypt",
            "n": SCRYPT_N,
            "r": SCRYPT_R,
            "p": SCRYPT_P,
            "salt": base64.b64encode(salt).decode("ascii"),
        },
        "cipher": CIPHER,
        "key_check": base64.b64encode(keys.check).decode("ascii"),
    }
    return keys, fields


def trailer(fields: dict[str, Any], database_bytes: int) -> bytes:
    """The bytes that follow a finished database of ``database_bytes`` bytes."""
    fields = {**fields, "database_bytes": database_bytes}
    fields[_HEADER_CHECK] = _checksum(fields)
    header = json.dumps(fields, sort_keys=True).encode("utf-8")
    return header + struct.pack(">I", len(header)) + MAGIC


def _decoded(text: Any, size: int, what: str) -> bytes:
    try:
        value = base64.b64decode(text, validate=True)
    except (ValueError, TypeError):
        raise AlteredHeader(f"its {what} is unreadable") from None
    if len(value) != size:
        raise AlteredHeader(f"its {what} has the wrong length")
    return value


def read_header(path: Path) -> Header:
    """The checked trailer of the v2 case file at ``path``; runs no key derivation."""
    try:
        size = path.stat().st_size
    except OSError:
        size = 0
    if size == 0 and path.is_file():
        raise CaseFileError("the file is empty: it is not a case file")
    tail = read_tail(path, min(size, _TAIL + _MAX_HEADER))
    if tail[-len(MAGIC) : -1] == MAGIC[:-1] and tail[-1] > MAGIC[-1]:
        raise CaseFileError("this case file was made by a newer nvadmin: upgrade to open it")
    if not is_v2(tail):
        raise CaseFileError("this is not an nvadmin case file, or its end is missing (truncated?)")
    (length,) = struct.unpack(">I", tail[-_TAIL : -len(MAGIC)])
    if length > _MAX_HEADER or length + _TAIL > len(tail):
        raise CaseFileError("the case file is truncated or damaged (bad header)")
    try:
        fields = json.loads(tail[-_TAIL - length : -_TAIL])
    except ValueError:
        raise AlteredHeader("its header is unreadable") from None
    if not isinstance(fields, dict):
        raise AlteredHeader("its header is unreadable")
    if fields.get("format") != FORMAT:
        raise CaseFileError("this case file uses a format this nvadmin does not know")
    if fields.get(_HEADER_CHECK) != _checksum(fields):
        raise AlteredHeader("its header does not match its checksum")
    if fields.get("cipher") != CIPHER:
        raise AlteredHeader("it names a cipher nvadmin does not write")
    kdf, (n, r, p) = container.checked_kdf(fields)
    database_bytes = fields.get("database_bytes")
    if type(database_bytes) is not int or database_bytes <= 0 or database_bytes % PAGE_SIZE:
        raise AlteredHeader("its database length is not one nvadmin writes")
    if database_bytes + length + _TAIL != size:
        raise CaseFileError(
            "the case file is truncated or was altered: its length is not the one it was "
            "written with"
        )
    return Header(
        n,
        r,
        p,
        _decoded(kdf.get("salt"), SALT_BYTES, "salt"),
        _decoded(fields.get("key_check"), CHECK_BYTES, "key check"),
        database_bytes,
    )


def read_tail(path: Path, count: int) -> bytes:
    """The last ``count`` bytes of ``path``, or a one-line reason it cannot be read."""
    container.read_bytes(
        path, 0
    )  # a missing file, a folder or no permission is said as for version 1
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - count))
        return handle.read(count)


def unlock(header: Header, passphrase: str) -> Keys:
    """The keys of a case file, or :class:`WrongPassphrase`."""
    keys = container.derive_keys(passphrase, header.salt, header.n, header.r, header.p)
    if not hmac.compare_digest(keys.check, header.key_check):
        raise WrongPassphrase("wrong passphrase for this case file")
    return keys


def raw_key(key: bytes) -> str:
    """``key`` as SQLCipher takes 32 bytes as the key itself, with no PBKDF2 (a blob
    literal), for ``PRAGMA key`` and ``ATTACH ... KEY``."""
    return f"x'{key.hex()}'"


def _keyed(connection: EncryptedConnection, key: bytes) -> EncryptedConnection:
    # SQLCipher would print its own lines on stderr for a page that fails its check ("ERROR
    # CORE sqlcipher_page_cipher: hmac check failed ..."), beside nvadmin's one-line message
    # (PAGE_FAILURE) that says what it means. The level is the process's, set on each
    # connection before it reads a page.
    connection.execute("PRAGMA cipher_log_level = NONE")
    connection.execute(f'PRAGMA key = "{raw_key(key)}"')
    for pragma in CIPHER_PRAGMAS:
        connection.execute(pragma)
    # Sorting, temporary tables and indexes under construction stay in memory: SQLCipher does
    # not encrypt temporary files.
    connection.execute("PRAGMA temp_store = MEMORY")
    return connection


def create(path: Path, key: bytes, *, cache_kib: int) -> EncryptedConnection:
    """An encrypted database at ``path`` for one writer: new (an existing empty file), or one
    being built (:mod:`nvadmin.casefile.copier`'s child process).

    No journal is kept (a half-built case file is deleted, never rolled back), so nothing but
    the encrypted database itself is ever written.
    """
    connection = cast(
        EncryptedConnection,
        sqlcipher3.connect(
            str(path),
            check_same_thread=False,
            isolation_level=None,
            factory=KeptConnection,
            uri=True,  # the copier attaches a source read-only (``file:...?mode=ro``)
        ),
    )
    _keyed(connection, key)
    # ``main.`` throughout: these settings are the case database's alone, never those of the
    # source the copier attaches (which other programs go on using meanwhile).
    connection.execute(f"PRAGMA main.cache_size = -{int(cache_kib)}")
    connection.execute("PRAGMA main.locking_mode = EXCLUSIVE")
    connection.execute("PRAGMA main.journal_mode = OFF")
    connection.execute("PRAGMA main.synchronous = OFF")  # the finished file is fsynced whole
    return connection


def opener(path: Path, key: bytes) -> Callable[[], EncryptedConnection]:
    """A function making read-only connections to the finished case file at ``path``."""
    uri = path.resolve().as_uri() + "?mode=ro&immutable=1"

    def connect() -> EncryptedConnection:
        connection = cast(
            EncryptedConnection,
            sqlcipher3.connect(uri, uri=True, check_same_thread=False, isolation_level=None),
        )
        try:
            _keyed(connection, key)
            # Read-only for real: SQLite refuses any write, whatever code tries one.
            connection.execute("PRAGMA query_only = ON")
        except BaseException:
            connection.close()
            raise
        return connection

    return connect


def is_page_failure(error: Exception) -> bool:
    """Whether ``error`` is SQLCipher refusing a page that does not verify."""
    code = getattr(error, "sqlite_errorcode", None)
    # SQLITE_CORRUPT (11) and SQLITE_NOTADB (26): SQLCipher's answer to a page that fails its
    # HMAC. (A wrong key never gets here: the key check value is tested first.)
    return code in (11, 26) or "not a database" in str(error) or "malformed" in str(error)


def helper_main(job: dict[str, Any]) -> int:
    """A helper's job (:mod:`nvadmin.workers.helper`): every page of the finished case file
    ``job["case_file"]`` authenticated (``PRAGMA quick_check`` reads them all); its answer,
    the problems found, ``["ok"]`` when there are none."""
    from nvadmin.workers import helper

    connection = opener(Path(job["case_file"]), bytes.fromhex(job["key"]))()
    try:
        problems = [str(row[0]) for row in connection.execute("PRAGMA quick_check")]
    except DatabaseError as error:
        if not is_page_failure(error):
            raise
        problems = [PAGE_FAILURE]
    finally:
        connection.close()
    helper.answer({"problems": problems})
    return 0
