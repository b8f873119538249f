"""The encrypted ``.nvcase`` container: passphrase -> scrypt -> AES-256-GCM, in segments.

Layout::

    b"NVCASE\\x00\\x01"                 magic and container version
    u32 big-endian                      length of the header
    header                              UTF-8 JSON: KDF parameters and salt, cipher, nonce
                                        prefix, compression, a key check value; no PHI
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
MIN_PASSPHRASE = 10
_TAG = 16
_MAX_HEADER = 64 * 1024
_CHECK = b"nvadmin-case-file key check"


class CaseFileError(UserError):
    """The case file cannot be opened; the message says why in one line."""


class WrongPassphrase(CaseFileError):
    pass


@dataclass(frozen=True)
class _Keys:
    encryption: bytes
    check: bytes


def _derive(passphrase: str, salt: bytes, n: int, r: int, p: int) -> _Keys:
    material = Scrypt(salt=salt, length=64, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))
    return _Keys(material[:32], hmac.new(material[32:], _CHECK, hashlib.sha256).digest())


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
    salt, prefix = os.urandom(16), os.urandom(8)
    keys = _derive(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    header = json.dumps(
        {
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
        },
        sort_keys=True,
    ).encode("utf-8")
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


def read_header(data: bytes | memoryview) -> tuple[dict[str, Any], int]:
    """The parsed header and the offset of the first segment."""
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
        header = json.loads(bytes(data[start : start + length]))
        kdf = header["kdf"]
        n, r, p = int(kdf["n"]), int(kdf["r"]), int(kdf["p"])
        base64.b64decode(kdf["salt"], validate=True)
        base64.b64decode(header["nonce_prefix"], validate=True)
    except (ValueError, KeyError, TypeError):
        raise CaseFileError("the case file is damaged (unreadable header)") from None
    if header.get("format") != FORMAT or header.get("cipher") != "AES-256-GCM":
        raise CaseFileError("this case file uses a format this nvadmin does not know")
    # Bounds keep a doctored header from making the key derivation take all memory or forever.
    if not (1 << 14 <= n <= 1 << 20 and n & (n - 1) == 0 and 1 <= r <= 16 and 1 <= p <= 4):
        raise CaseFileError("the case file is damaged (implausible key derivation settings)")
    return header, start + length


def read_header_of(path: Path) -> dict[str, Any]:
    """The header of the case file at ``path``, read without the passphrase: a missing,
    unreadable or foreign file is reported before anyone is asked to type it."""
    try:
        with path.open("rb") as handle:
            head = handle.read(len(MAGIC) + 4 + _MAX_HEADER)
    except FileNotFoundError:
        raise CaseFileError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise CaseFileError(f"{path} is a folder, not a case file") from None
    except OSError as error:
        raise CaseFileError(f"cannot read {path}: {error.strerror}") from None
    header, _start = read_header(head)
    return header


def decrypt(
    data: bytes | memoryview,
    passphrase: str,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> bytearray:
    """The payload of a container, or :class:`CaseFileError` saying what is wrong."""
    header, offset = read_header(data)
    kdf = header["kdf"]
    salt = base64.b64decode(kdf["salt"])
    keys = _derive(passphrase, salt, int(kdf["n"]), int(kdf["r"]), int(kdf["p"]))
    try:
        expected_check = base64.b64decode(header["key_check"], validate=True)
    except (KeyError, ValueError):
        raise CaseFileError("the case file is damaged (unreadable header)") from None
    if not hmac.compare_digest(keys.check, expected_check):
        raise WrongPassphrase("wrong passphrase for this case file")
    header_digest = hashlib.sha256(bytes(data[: len(MAGIC)]) + bytes(data[len(MAGIC) + 4 : offset]))
    header_digest_bytes = header_digest.digest()
    prefix = base64.b64decode(header["nonce_prefix"])
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
