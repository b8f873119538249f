"""Checking a delivered export offline: ``nvadmin verify-export FILE.csv`` (or ``FILE.jsonl``).

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
   numbers are consecutive. A JSON Lines export is also counted line by line against the
   manifest's rows, with or without the chain columns, and a line that is not a JSON object
   is named.

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
from nvadmin.export.formats import FileFormat
from nvadmin.files.cells import restore

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
    return restore(text)  # the formula neutralising apostrophe


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


class _ChainWalk:
    """The rows' hashes, the links between consecutive events and the ends, row by row."""

    def __init__(self, name: str, verdict: Verdict) -> None:
        self.name = name
        self.verdict = verdict
        self.rows = self.links = 0
        self.previous: tuple[int, str] | None = None
        self.ends: dict[str, tuple[int, str]] = {}

    def step(self, line: int, ok: bool, seq: int, prev_hash: str, row_hash: str) -> bool:
        if not ok:
            self.verdict.fail(f"{self.name} line {line}: the row's hash does not match its cells")
            return False
        previous = self.previous
        if previous is not None and seq == previous[0] + 1:
            if prev_hash != previous[1]:
                self.verdict.fail(
                    f"{self.name} line {line}: event {seq} does not link to event {previous[0]}"
                )
                return False
            self.links += 1
        self.previous = (seq, row_hash)
        self.ends.setdefault("first", (seq, row_hash))
        self.ends["last"] = (seq, row_hash)
        self.rows += 1
        return True

    def finish(self, data: dict[str, Any], chain: dict[str, Any]) -> bool:
        rows, links, ends = self.rows, self.links, self.ends
        if rows != data.get("rows"):
            self.verdict.fail(f"{self.name} holds {rows:,} rows, the manifest {data.get('rows')}")
            return False
        for end, key in (("first", "first_event"), ("last", "last_event")):
            pinned = chain.get(key)
            found = ends.get(end)
            expected = (pinned["seq"], pinned["hash"]) if pinned else None
            if found != expected:
                self.verdict.fail(f"{self.name}: the {end} row is not the manifest's {end} event")
                return False
        self.verdict.holds.append(
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


def _check_rows(csv_path: Path, data: dict[str, Any], verdict: Verdict) -> bool:
    """Recompute row hashes and links; True when every row checked out."""
    try:
        file_format = FileFormat.of_manifest(data.get("file_format"))
    except ValueError:
        verdict.fail(f"the manifest names an unknown file format {data.get('file_format')!r}")
        return False
    if file_format is FileFormat.JSONL:
        return _check_jsonl_rows(csv_path, data, verdict)
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
        walk = _ChainWalk(csv_path.name, verdict)
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
            if not walk.step(start, ok, seq, prev_hash, row_hash):
                return False
    return walk.finish(data, chain)


def _jsonl_value(name: str, value: Any) -> Any:
    """A JSON Lines value back to the value the hash covers (values are written as stored)."""
    if value is None:
        return None
    if name == "seq":
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError("seq is not a number")
        return value
    if not isinstance(value, str):
        raise ValueError(f"{name} is not a string")
    if name == "actor_id":
        return int(value)
    if name == "occurred_at_utc":
        return utc_text(datetime.fromisoformat(value))
    return value


def _check_jsonl_rows(path: Path, data: dict[str, Any], verdict: Verdict) -> bool:
    """Every line a JSON object with the manifest's columns; counted against the manifest's
    rows; and, with the chain columns, each row's hash and links recomputed."""
    chain = data.get("chain")
    columns = [str(c) for c in data.get("columns") or []]
    missing = [c for c in CHAIN_COLUMNS if c not in columns]
    walk = _ChainWalk(path.name, verdict) if not missing and isinstance(chain, dict) else None
    order = [f for f in CHAINED_FIELDS if f != "workspace_id"]
    workspace_id = int(chain["workspace_id"]) if walk is not None and chain else 0
    rows = 0
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                record = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                record = None
            if not isinstance(record, dict) or not raw.endswith(b"\n"):
                verdict.fail(f"{path.name} line {number}: not one JSON object ended by a newline")
                return False
            if list(record) != columns:
                verdict.fail(f"{path.name} line {number}: its keys are not the manifest's columns")
                return False
            rows += 1
            if walk is None:
                continue
            try:
                values = [workspace_id] + [
                    _jsonl_value(
                        "occurred_at_utc" if f == "occurred_at" else f,
                        record["occurred_at_utc" if f == "occurred_at" else f],
                    )
                    for f in order
                ]
                seq, prev_hash, row_hash = int(record["seq"]), record["prev_hash"], record["hash"]
                ok = digest(bytes.fromhex(prev_hash), values).hex() == row_hash
            except (ValueError, TypeError):
                ok, seq, prev_hash, row_hash = False, -1, "", ""
            if not walk.step(number, ok, seq, prev_hash, row_hash):
                return False
    if walk is not None:
        return walk.finish(data, chain)  # type: ignore[arg-type]
    if rows != data.get("rows"):
        verdict.fail(f"{path.name} holds {rows:,} rows, the manifest {data.get('rows')}")
        return False
    verdict.holds.append(
        f"{rows:,} rows as the manifest says (no chain columns: hashes not recomputed)"
    )
    return False
