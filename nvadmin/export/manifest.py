"""The evidence manifest written next to every export: ``<file>.manifest.json``.

It states what the file is (workspace, exact filter, time zone, inclusive start and end to the
second), how many rows it holds (counted in the same database snapshot the rows came from), its
SHA-256, who exported it for which ticket, with which nvadmin, and when. Anyone can later check
the file against it with ``sha256sum`` and a row count.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

FORMAT = "nvadmin-export-manifest/1"


def manifest_path_for(csv_path: Path) -> Path:
    return csv_path.with_name(csv_path.name + ".manifest.json")


def inclusive_bounds(start: datetime | None, end: datetime | None, zone: str) -> dict[str, Any]:
    """The range as people read it: first and last second included, in ``zone`` and UTC.

    The filter's end is exclusive (the instant after the last day); the last included second
    is the one just before it.
    """
    tz = ZoneInfo(zone)

    def shown(instant: datetime | None) -> tuple[str | None, str | None]:
        if instant is None:
            return None, None
        whole = instant.replace(microsecond=0)
        return whole.astimezone(tz).isoformat(), whole.astimezone(ZoneInfo("UTC")).isoformat()

    last = None
    if end is not None:
        last = end - timedelta(microseconds=1)
    start_local, start_utc = shown(start)
    end_local, end_utc = shown(last)
    return {
        "start": start_local,
        "end": end_local,
        "start_utc": start_utc,
        "end_utc": end_utc,
        "range_time_zone": zone,
        "end_exclusive_utc": end.astimezone(ZoneInfo("UTC")).isoformat() if end else None,
    }


def render(manifest: Mapping[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in chunks (for checking an export against its manifest)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def load(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path} is not an nvadmin export manifest")
    return data


# -- the signature ----------------------------------------------------------------------------
#
# The manifest is signed with the checkpoint signing key (:mod:`nvadmin.audit.checkpoints`).
# What is signed is the SHA-256 of each field's canonical JSON, listed in the signature itself:
# a verifier then says which field was changed, not only that something was.

SIGNATURE_TAG = b"nvadmin-export-manifest-v1\x00"
SIGNATURE = "signature"


def field_digests(manifest: Mapping[str, Any]) -> dict[str, str]:
    """``{field: SHA-256 of its canonical JSON}`` for every field but the signature."""
    from nvadmin.db.types import canonical_json

    return {
        key: hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()
        for key, value in manifest.items()
        if key != SIGNATURE
    }


def signed_message(digests: Mapping[str, str]) -> bytes:
    from nvadmin.db.types import canonical_json

    return SIGNATURE_TAG + canonical_json(dict(digests)).encode("utf-8")


def sign(manifest: dict[str, Any], key: Any | None, unsigned_reason: str) -> dict[str, Any]:
    """The manifest with its ``signature`` field: an Ed25519 signature by ``key`` (a
    :class:`~nvadmin.audit.checkpoints.SigningKey`), or, without a key, why it is unsigned."""
    from nvadmin.audit.checkpoints import fingerprint

    body = {k: v for k, v in manifest.items() if k != SIGNATURE}
    if key is None:
        return {**body, SIGNATURE: {"algorithm": None, "unsigned": unsigned_reason}}
    digests = field_digests(body)
    return {
        **body,
        SIGNATURE: {
            "algorithm": "Ed25519",
            "key_id": key.key_id,
            "fingerprint": fingerprint(key.public_key),
            "field_sha256": digests,
            "value": key.private_key.sign(signed_message(digests)).hex(),
        },
    }
