"""Checking a delivered export offline: ``nvadmin verify-export FILE.csv``.

Needs only the CSV, its manifest and a trusted public key (no database):

1. the manifest's signature (Ed25519, the checkpoint signing key) verifies with a trusted key,
   and every field still has the digest that was signed (a changed field is named);
2. the file's SHA-256 and size are the manifest's;
3. when the export holds the chain columns (``seq``, ``hash``, ``prev_hash`` and every field
   the hash covers; only the data profile writes times to the microsecond the hash covers,
   see :mod:`nvadmin.export.profiles`), each row's hash is recomputed from its cells with
   the chain's canonical hashing, rows whose sequence numbers follow each other must link
   (``prev_hash`` equal to the previous row's ``hash``), and the first and last rows are the
   manifest's. A filtered export is not contiguous: links are checked only where sequence
   numbers are consecutive.

Nothing here touches Qt or a database.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from nvadmin.audit import checkpoints
from nvadmin.audit.chain import CHAINED_FIELDS, digest, utc_text
from nvadmin.export import manifest as manifests
from nvadmin.export import profiles
from nvadmin.export.columns import FORMULA_STARTS

# Chained fields that are NOT NULL in the event table: an empty cell is an empty text there.
_REQUIRED_TEXT = frozenset({"actor_type", "actor_name", "action", "category", "outcome"})
_NUMBERS = frozenset({"seq", "actor_id"})
# The cells a row's hash is recomputed from (workspace_id comes from the manifest).
CHAIN_COLUMNS: tuple[str, ...] = (
    *(f for f in CHAINED_FIELDS if f not in ("workspace_id", "occurred_at")),
    "occurred_at_utc",
    "prev_hash",
    "hash",
)


@dataclass
class Verdict:
    ok: bool = True
    holds: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def fail(self, text: str) -> None:
        self.ok = False
        self.failures.append(text)

    def line(self) -> str:
        if self.ok:
            return "OK: " + "; ".join(self.holds)
        text = "FAILED: " + "; ".join(self.failures)
        if self.holds:
            text += " (holds: " + "; ".join(self.holds) + ")"
        return text


def verify_export(
    csv_path: Path, manifest_path: Path | None, trusted: Mapping[str, Ed25519PublicKey]
) -> Verdict:
    verdict = Verdict()
    manifest_path = manifest_path or manifests.manifest_path_for(csv_path)
    try:
        raw = manifest_path.read_bytes()
        data = json.loads(raw.decode("utf-8"))
    except OSError as error:
        verdict.fail(f"cannot read the manifest {manifest_path}: {error.strerror}")
        return verdict
    except UnicodeDecodeError as error:
        verdict.fail(f"manifest {manifest_path.name} is not UTF-8 (byte {error.start})")
        return verdict
    except json.JSONDecodeError as error:
        verdict.fail(
            f"manifest {manifest_path.name} is not valid JSON "
            f"(line {error.lineno}, column {error.colno}: {error.msg})"
        )
        return verdict
    if not isinstance(data, dict) or data.get("format") != manifests.FORMAT:
        verdict.fail(f"{manifest_path.name} is not an nvadmin export manifest")
        return verdict
    _check_signature(data, trusted, verdict, manifest_path.name)
    if not csv_path.is_file():
        verdict.fail(f"{csv_path} does not exist")
        return verdict
    sha = manifests.file_sha256(csv_path)
    size = csv_path.stat().st_size
    sha_ok = sha == data.get("sha256") and size == data.get("bytes")
    rows_checked = _check_rows(csv_path, data, verdict)
    if sha_ok:
        verdict.holds.append(f"{csv_path.name} has the manifest's SHA-256 ({size:,} bytes)")
    elif rows_checked:
        verdict.fail(
            f"{csv_path.name} does not have the manifest's SHA-256 (its rows' hashes all match "
            "their cells: the change is outside the hashed cells, e.g. header or quoting)"
        )
    elif not any(f.startswith(csv_path.name) for f in verdict.failures):
        verdict.fail(
            f"{csv_path.name} does not have the manifest's SHA-256 ({sha[:16]}..., "
            f"{size:,} bytes; manifest: {str(data.get('sha256'))[:16]}..., "
            f"{data.get('bytes')} bytes)"
        )
    return verdict


def _check_signature(
    data: dict[str, Any], trusted: Mapping[str, Ed25519PublicKey], verdict: Verdict, name: str
) -> None:
    signature = data.get(manifests.SIGNATURE)
    if not isinstance(signature, dict) or signature.get("algorithm") is None:
        reason = signature.get("unsigned") if isinstance(signature, dict) else None
        verdict.fail(f"manifest is unsigned ({reason or 'no signature field'})")
        return
    signed = signature.get("field_sha256")
    if not isinstance(signed, dict):
        verdict.fail("manifest signature has no field digests")
        return
    now = manifests.field_digests(data)
    changed = sorted(k for k in set(now) | set(signed) if now.get(k) != signed.get(k))
    if changed:
        verdict.fail(f"manifest {name} was changed after signing: field(s) {', '.join(changed)}")
        return
    key_id = str(signature.get("key_id"))
    key = trusted.get(key_id)
    if key is None:
        verdict.fail(
            f"manifest is signed by key {signature.get('fingerprint') or key_id}, "
            "which is not a trusted key"
        )
        return
    try:
        key.verify(bytes.fromhex(str(signature.get("value"))), manifests.signed_message(signed))
    except (InvalidSignature, ValueError):
        verdict.fail(f"manifest {name}: the signature does not verify (signature field changed)")
        return
    verdict.holds.append(f"manifest signed by trusted key {checkpoints.fingerprint(key)}")
    chain = data.get("chain")
    if isinstance(chain, dict) and chain.get("newest_checkpoint"):
        _check_checkpoint(chain["workspace_id"], chain["newest_checkpoint"], trusted, verdict)


def _check_checkpoint(
    workspace_id: int,
    checkpoint: dict[str, Any],
    trusted: Mapping[str, Ed25519PublicKey],
    verdict: Verdict,
) -> None:
    key = trusted.get(str(checkpoint.get("key_id")))
    if key is None:
        verdict.holds.append("the checkpoint's key is not trusted here (not checked)")
        return
    message = checkpoints.checkpoint_message(
        workspace_id,
        int(checkpoint["seq"]),
        bytes.fromhex(checkpoint["hash"]),
        datetime.fromisoformat(checkpoint["signed_at"]),
    )
    try:
        key.verify(bytes.fromhex(checkpoint["signature"]), message)
    except (InvalidSignature, ValueError):
        verdict.fail("the manifest's checkpoint signature does not verify")
        return
    verdict.holds.append(f"checkpoint at event {checkpoint['seq']:,} verifies")


def cell_value(name: str, text: str) -> Any:
    """A cell back to the value the hash covers."""
    if text == "":
        return "" if name in _REQUIRED_TEXT else None
    if name in _NUMBERS:
        return int(text)
    if name == "occurred_at_utc":
        return utc_text(datetime.fromisoformat(text))
    if text[0] == "'" and len(text) > 1 and text[1] in FORMULA_STARTS:
        return text[1:]  # the formula neutralising apostrophe
    return text


# Empty optional cells that may be empty texts rather than missing values, tried both ways.
_MOST_AMBIGUOUS = 12


def _hashes_to(prev_hash: bytes, values: list[Any], row_hash: str) -> bool:
    """Whether the row's cells hash to ``row_hash``. A CSV writes a missing value and an empty
    text alike; an empty optional cell is read as missing, and when that does not match, each
    combination with empty texts instead is tried (rare: empty texts are seldom stored)."""
    if digest(prev_hash, values).hex() == row_hash:
        return True
    empty = [i for i, v in enumerate(values) if v is None]
    if len(empty) > _MOST_AMBIGUOUS:
        empty = empty[:_MOST_AMBIGUOUS]
    for mask in range(1, 1 << len(empty)):
        trial = list(values)
        for bit, i in enumerate(empty):
            if mask >> bit & 1:
                trial[i] = ""
        if digest(prev_hash, trial).hex() == row_hash:
            return True
    return False


def _check_rows(csv_path: Path, data: dict[str, Any], verdict: Verdict) -> bool:
    """Recompute row hashes and links; True when every row checked out."""
    chain = data.get("chain")
    encoding = "utf-8-sig"
    with csv_path.open(encoding=encoding, newline="", errors="replace") as handle:
        reader = csv.reader(handle)
        header = next(reader, None) or []
        if "hash" not in header:
            verdict.holds.append("no hash column: rows not recomputed")
            return False
        missing = [c for c in CHAIN_COLUMNS if c not in header]
        if missing or not isinstance(chain, dict):
            verdict.holds.append(
                "rows not recomputed (the export lacks " + ", ".join(missing or ["chain"]) + ")"
            )
            return False
        csv_options = data.get("csv")
        profile = profiles.BY_KEY.get(
            str(csv_options.get("profile")) if isinstance(csv_options, dict) else ""
        )
        if profile is not None and not profile.microseconds:
            verdict.holds.append(
                f"rows not recomputed (the {profile.key} profile writes times to the second; "
                "a row's hash covers its time to the microsecond)"
            )
            return False
        at = {name: header.index(name) for name in CHAIN_COLUMNS}
        workspace_id = int(chain["workspace_id"])
        order = [f for f in CHAINED_FIELDS if f != "workspace_id"]
        rows = links = 0
        previous: tuple[int, str] | None = None
        ends: dict[str, tuple[int, str]] = {}
        line = reader.line_num
        for cells in reader:
            start, line = line + 1, reader.line_num
            try:
                seq = int(cells[at["seq"]])
                values = [workspace_id] + [
                    cell_value(
                        "occurred_at_utc" if f == "occurred_at" else f,
                        cells[at["occurred_at_utc" if f == "occurred_at" else f]],
                    )
                    for f in order
                ]
                prev_hash, row_hash = cells[at["prev_hash"]], cells[at["hash"]]
                ok = _hashes_to(bytes.fromhex(prev_hash), values, row_hash)
            except (ValueError, IndexError):
                ok = False
                seq, prev_hash, row_hash = -1, "", ""
            if not ok:
                verdict.fail(
                    f"{csv_path.name} line {start}: the row's hash does not match its cells"
                )
                return False
            if previous is not None and seq == previous[0] + 1:
                if prev_hash != previous[1]:
                    verdict.fail(
                        f"{csv_path.name} line {start}: event {seq} does not link to event "
                        f"{previous[0]}"
                    )
                    return False
                links += 1
            previous = (seq, row_hash)
            ends.setdefault("first", (seq, row_hash))
            ends["last"] = (seq, row_hash)
            rows += 1
    if rows != data.get("rows"):
        verdict.fail(f"{csv_path.name} holds {rows:,} rows, the manifest {data.get('rows')}")
        return False
    for end, key in (("first", "first_event"), ("last", "last_event")):
        pinned = chain.get(key)
        found = ends.get(end)
        expected = (pinned["seq"], pinned["hash"]) if pinned else None
        if found != expected:
            verdict.fail(f"{csv_path.name}: the {end} row is not the manifest's {end} event")
            return False
    verdict.holds.append(
        f"{rows:,} row hashes match their cells, {links:,} consecutive links chain"
        + (
            ""
            if links == max(rows - 1, 0)
            else " (not contiguous: links checked where sequence numbers are consecutive)"
        )
        + (
            f", first and last events {ends['first'][0]:,} and {ends['last'][0]:,} as pinned"
            if ends
            else ""
        )
    )
    return True
