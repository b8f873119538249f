"""The version 1 ``.nvcase`` container (passphrase -> scrypt -> AES-256-GCM, in segments) and
what both versions share: the passphrase rules, the key derivation and the errors.

Version 2 (:mod:`nvadmin.casefile.encrypted`, written since) encrypts an SQLCipher database
page by page instead; version 1 files are still read, whole into memory. Version 1 layout::

    b"NVCASE\\x00\\x01"                 magic and container version
    u32 big-endian                      length of the header
    header                              UTF-8 JSON: KDF parameters and salt, cipher, nonce
                                        prefix, compression, a key check value and
                                        ``header_sha256``; no PHI
    { u32 length, ciphertext+tag }*     the payload in segments of SEGMENT_SIZE plaintext bytes

Each segment is sealed with AES-256-GCM under a 12-byte nonce (8 random bytes fixed per file,
then the segment number) and authenticated together with the header's SHA-256, its segment
number and a "last segment" flag (the STREAM construction of Hoang, Reyhanitabar, Rogaway and
Vizár). So a flipped byte anywhere, a header edit, swapped segments, a file cut at a segment
boundary, or bytes appended after the end all fail authentication: nothing is returned unless
the whole payload is exactly what was written.

The key check value (an HMAC of a constant under a separate subkey) lets the reader tell "wrong
passphrase" from "damaged file" without decrypting anything; it reveals nothing an attacker
could not get by running scrypt, which is what makes guessing expensive.

The header is checked whole *before* the key derivation runs: the KDF settings must be ones
nvadmin writes (:data:`KDF_SETTINGS`, so a doctored header cannot make opening cost minutes and
gigabytes), every field must have its exact form, and ``header_sha256`` (a plain SHA-256 of
the rest of the header) must match. A header at fault is reported as a damaged or altered
case file, never as a wrong passphrase. The checksum is no secret and proves nothing on its
own (the segments' authentication does); it only lets the reader name the fault. Files written
before it existed (no ``header_sha256``) still open.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from nvadmin.errors import UserError

MAGIC = b"NVCASE\x00\x01"
FORMAT = "nvadmin-case-file/1"
SEGMENT_SIZE = 1 << 20
# scrypt at N=2^17, r=8, p=1: 128 MiB of memory per guess (OWASP's recommended minimum).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 17, 8, 1
# The only (n, r, p) a reader accepts: the ones nvadmin has ever written. Anything else is a
# doctored header, refused before scrypt runs (n=2^20, r=16, p=4 would cost ~2 GiB and a
# minute per attempt).
KDF_SETTINGS = frozenset({(SCRYPT_N, SCRYPT_R, SCRYPT_P)})
SALT_BYTES, _PREFIX_BYTES, CHECK_BYTES = 16, 8, 32
_HEADER_CHECK = "header_sha256"
MIN_PASSPHRASE = 10
_TAG = 16
_MAX_HEADER = 64 * 1024
_CHECK = b"nvadmin-case-file key check"


class CaseFileError(UserError):
    """The case file cannot be opened; the message says why in one line."""


class WrongPassphrase(CaseFileError):
    pass


class AlteredHeader(CaseFileError):
    """The header is not one nvadmin writes: damage or a deliberate edit, not a passphrase."""

    def __init__(self, what: str) -> None:
        super().__init__(f"damaged or altered case file: {what}")


@dataclass(frozen=True)
class Keys:
    encryption: bytes
    check: bytes


def derive_keys(passphrase: str, salt: bytes, n: int, r: int, p: int) -> Keys:
    material = Scrypt(salt=salt, length=64, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))
    return Keys(material[:32], hmac.new(material[32:], _CHECK, hashlib.sha256).digest())


def check_passphrase(passphrase: str) -> None:
    if len(passphrase) < MIN_PASSPHRASE:
        raise UserError(
            f"choose a passphrase of at least {MIN_PASSPHRASE} characters (a few words work well)"
        )


def _aad(header_digest: bytes, index: int, last: bool) -> bytes:
    return header_digest + struct.pack(">QB", index, 1 if last else 0)


def _nonce(prefix: bytes, index: int) -> bytes:
    return prefix + struct.pack(">I", index)


def encrypt(
    payload: bytes | memoryview,
    passphrase: str,
    write: Callable[[bytes], None],
    *,
    progress: Callable[[int, int], None] | None = None,
    compression_level: int = 1,
) -> None:
    """Compress and encrypt ``payload``, handing the container's bytes to ``write``."""
    check_passphrase(passphrase)
    salt, prefix = os.urandom(SALT_BYTES), os.urandom(_PREFIX_BYTES)
    keys = derive_keys(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    fields: dict[str, Any] = {
        "format": FORMAT,
        "kdf": {
            "name": "scrypt",
            "n": SCRYPT_N,
            "r": SCRYPT_R,
            "p": SCRYPT_P,
            "salt": base64.b64encode(salt).decode("ascii"),
        },
        "cipher": "AES-256-GCM",
        "nonce_prefix": base64.b64encode(prefix).decode("ascii"),
        "segment_size": SEGMENT_SIZE,
        "compression": "zlib",
        "key_check": base64.b64encode(keys.check).decode("ascii"),
    }
    fields[_HEADER_CHECK] = _header_checksum(fields)
    header = json.dumps(fields, sort_keys=True).encode("utf-8")
    header_digest = hashlib.sha256(MAGIC + header).digest()
    write(MAGIC + struct.pack(">I", len(header)) + header)
    aead = AESGCM(keys.encryption)
    total = len(payload)
    index = 0
    for plain, last in _segments(_compressed(payload, compression_level)):
        sealed = aead.encrypt(_nonce(prefix, index), plain, _aad(header_digest, index, last))
        write(struct.pack(">I", len(sealed)) + sealed)
        index += 1
        if progress is not None:
            progress(min(total, index * SEGMENT_SIZE), total)
    if index >= 2**32:
        raise UserError("the case file is too large")


def _compressed(payload: bytes | memoryview, level: int) -> Iterator[bytes]:
    compressor = zlib.compressobj(level)
    view = memoryview(payload)
    for offset in range(0, len(view), 4 * SEGMENT_SIZE):
        chunk = compressor.compress(view[offset : offset + 4 * SEGMENT_SIZE])
        if chunk:
            yield chunk
    yield compressor.flush()


def _segments(chunks: Iterable[bytes]) -> Iterator[tuple[bytes, bool]]:
    """Re-cut a byte stream into SEGMENT_SIZE pieces, flagging the last one."""
    buffer = bytearray()
    pending: bytes | None = None
    for chunk in chunks:
        buffer += chunk
        while len(buffer) >= SEGMENT_SIZE:
            if pending is not None:
                yield pending, False
            pending = bytes(buffer[:SEGMENT_SIZE])
            del buffer[:SEGMENT_SIZE]
    if buffer:
        if pending is not None:
            yield pending, False
        yield bytes(buffer), True
    elif pending is not None:
        yield pending, True
    else:
        yield b"", True


@dataclass(frozen=True)
class Header:
    """A case file's header, checked field by field before any key is derived."""

    n: int
    r: int
    p: int
    salt: bytes
    nonce_prefix: bytes
    key_check: bytes


def _header_checksum(fields: dict[str, Any]) -> str:
    """SHA-256 of the header's other fields, as the writer encodes them."""
    rest = {k: v for k, v in fields.items() if k != _HEADER_CHECK}
    return hashlib.sha256(MAGIC + json.dumps(rest, sort_keys=True).encode("utf-8")).hexdigest()


def _decoded(text: Any, size: int, what: str) -> bytes:
    try:
        value = base64.b64decode(text, validate=True)
    except (ValueError, TypeError):
        raise AlteredHeader(f"its {what} is unreadable") from None
    if len(value) != size:
        raise AlteredHeader(f"its {what} has the wrong length")
    return value


def read_header(data: bytes | memoryview) -> tuple[Header, int]:
    """The checked header and the offset of the first segment. Raises :class:`AlteredHeader`
    for any header nvadmin would not have written; runs no key derivation."""
    if len(data) < len(MAGIC) + 4:
        raise CaseFileError("this file is too short to be a case file (truncated?)")
    if bytes(data[: len(MAGIC) - 1]) != MAGIC[:-1]:
        raise CaseFileError("this is not an nvadmin case file")
    if data[len(MAGIC) - 1] != MAGIC[-1]:
        raise CaseFileError("this case file was made by a newer nvadmin: upgrade to open it")
    (length,) = struct.unpack(">I", data[len(MAGIC) : len(MAGIC) + 4])
    start = len(MAGIC) + 4
    if length > _MAX_HEADER or start + length > len(data):
        raise CaseFileError("the case file is truncated or damaged (bad header)")
    try:
        fields = json.loads(bytes(data[start : start + length]))
    except ValueError:
        raise AlteredHeader("its header is unreadable") from None
    if not isinstance(fields, dict):
        raise AlteredHeader("its header is unreadable")
    if fields.get("format") != FORMAT:
        raise CaseFileError("this case file uses a format this nvadmin does not know")
    if _HEADER_CHECK in fields and fields[_HEADER_CHECK] != _header_checksum(fields):
        raise AlteredHeader("its header does not match its checksum")
    if fields.get("cipher") != "AES-256-GCM" or fields.get("compression") != "zlib":
        raise AlteredHeader("it names a cipher or compression nvadmin does not write")
    if fields.get("segment_size") != SEGMENT_SIZE:
        raise AlteredHeader("its segment size is not the one nvadmin writes")
    kdf, (n, r, p) = checked_kdf(fields)
    header = Header(
        n,
        r,
        p,
        _decoded(kdf.get("salt"), SALT_BYTES, "salt"),
        _decoded(fields.get("nonce_prefix"), _PREFIX_BYTES, "nonce"),
        _decoded(fields.get("key_check"), CHECK_BYTES, "key check"),
    )
    return header, start + length


def read_bytes(path: Path, limit: int = -1) -> bytes:
    """The case file's bytes (the first ``limit``), or a one-line reason it cannot be read."""
    try:
        with path.open("rb") as handle:
            return handle.read(limit)
    except FileNotFoundError:
        raise CaseFileError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise CaseFileError(f"{path} is a folder, not a case file") from None
    except OSError as error:
        raise CaseFileError(f"cannot read {path}: {error.strerror}") from None


def version_of(path: Path) -> int:
    """1 or 2: which format the case file at ``path`` claims (its header is not checked)."""
    start = read_bytes(path, len(MAGIC))
    return 1 if start[: len(MAGIC) - 1] == MAGIC[:-1] else 2


def read_header_of(path: Path) -> object:
    """The header of the case file at ``path``, read without the passphrase: a missing,
    unreadable, foreign or damaged file is reported before anyone is asked to type it."""
    if version_of(path) == 1:
        header, _start = read_header(read_bytes(path, len(MAGIC) + 4 + _MAX_HEADER))
        return header
    from nvadmin.casefile import encrypted  # imported here: it builds on this module

    return encrypted.read_header(path)


def decrypt(
    data: bytes | memoryview,
    passphrase: str,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> bytearray:
    """The payload of a container, or :class:`CaseFileError` saying what is wrong."""
    header, offset = read_header(data)
    keys = derive_keys(passphrase, header.salt, header.n, header.r, header.p)
    if not hmac.compare_digest(keys.check, header.key_check):
        raise WrongPassphrase("wrong passphrase for this case file")
    header_digest = hashlib.sha256(bytes(data[: len(MAGIC)]) + bytes(data[len(MAGIC) + 4 : offset]))
    header_digest_bytes = header_digest.digest()
    prefix = header.nonce_prefix
    aead = AESGCM(keys.encryption)
    decompressor = zlib.decompressobj()
    out = bytearray()
    index = 0
    total = len(data)
    view = memoryview(data)
    while True:
        if offset + 4 > total:
            raise CaseFileError("the case file is truncated: its end is missing")
        (length,) = struct.unpack(">I", view[offset : offset + 4])
        offset += 4
        if length < _TAG or offset + length > total:
            raise CaseFileError("the case file is truncated: its end is missing")
        last = offset + length == total
        try:
            plain = aead.decrypt(
                _nonce(prefix, index),
                view[offset : offset + length],
                _aad(header_digest_bytes, index, last),
            )
        except InvalidTag:
            if last:
                raise CaseFileError(
                    "the case file is truncated or was altered: its last part does not verify"
                ) from None
            raise CaseFileError(
                "the case file was altered or damaged: its content does not verify"
            ) from None
        offset += length
        index += 1
        try:
            out += decompressor.decompress(plain)
        except zlib.error:
            raise CaseFileError("the case file is damaged (bad compressed data)") from None
        if progress is not None:
            progress(offset, total)
        if last:
            break
    try:
        out += decompressor.flush()
    except zlib.error:
        raise CaseFileError("the case file is damaged (bad compressed data)") from None
    if not decompressor.eof:
        raise CaseFileError("the case file is truncated: its end is missing")
    return out


def checked_kdf(fields: dict[str, Any]) -> tuple[dict[str, Any], tuple[int, int, int]]:
    """A header's key derivation and its scrypt ``(n, r, p)``, refused unless nvadmin writes
    them (checked before the passphrase is tried: an edited header cannot make it slow or
    weak)."""
    kdf = fields.get("kdf")
    if not isinstance(kdf, dict) or kdf.get("name") != "scrypt":
        raise AlteredHeader("its key derivation is not the one nvadmin writes")
    settings = (kdf.get("n"), kdf.get("r"), kdf.get("p"))
    if not all(type(v) is int for v in settings) or settings not in KDF_SETTINGS:
        raise AlteredHeader(
            "its key derivation settings are not ones nvadmin writes (refused before trying "
            "the passphrase)"
        )
    n, r, p = (int(v) for v in settings)
    return kdf, (n, r, p)
