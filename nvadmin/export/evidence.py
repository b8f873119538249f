"""What support sends and can prove later: a re-run of a manifest, and the delivery package.

* :func:`request_from_manifest` turns a delivered export's manifest back into the export that
  made it; run again while no event in the range was added, it writes a byte-identical file.
* :func:`package_export` puts the CSV, its manifest, the public key and a short README into an
  AES-256 encrypted ZIP (WinZip AE-2, the AES flavour 7-Zip and Windows 11's Explorer read),
  under a generated passphrase that is returned once, for a separate channel.

Nothing here touches Qt or a database.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nvadmin.errors import UserError
from nvadmin.export import manifest as manifests
from nvadmin.export.formats import FileFormat
from nvadmin.files.atomic import AtomicFile, ExportWriteError, describe_os_error, not_a_regular_file

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from nvadmin.export.service import ExportRequest

# No 0/O/o, 1/l/I: read aloud or typed from a phone without guessing.
PASSPHRASE_ALPHABET = "23456789abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"
PASSPHRASE_GROUPS = 6  # of 4 characters: 24 characters, about 139 bits
PUBLIC_KEY_NAME = "signing-key.pem"
README_NAME = "README.txt"


def request_from_manifest(
    manifest: Mapping[str, Any], output: Path, overwrite: bool = False
) -> ExportRequest:
    """The export a manifest describes (same filter, zones, columns, format, CSV profile,
    ticket), to ``output``. A field of the wrong shape is reported as damage, in one line."""
    from nvadmin.export import profiles
    from nvadmin.export.service import ExportRequest
    from nvadmin.query.filters import EventFilter

    try:
        file_format = FileFormat.of_manifest(manifest.get("file_format"))
        options = _part(manifest, file_format.value, dict, "an object")
        profile = profiles.DEFAULT  # JSON Lines has one form of its own
        if file_format is FileFormat.CSV:
            if "profile" not in options:
                raise UserError(
                    "the manifest was written before CSV profiles (its times have another "
                    "form); a new export cannot reproduce its file"
                )
            profile = profiles.by_key(str(options["profile"]))
        columns = _part(manifest, "columns", list, "a list of column names")
        if not all(isinstance(c, str) for c in columns):
            raise ValueError("its 'columns' are not all column names")
        return ExportRequest(
            event_filter=EventFilter.from_dict(_part(manifest, "filter", dict, "an object")),
            output=output,
            time_zone=str(manifest["time_zone"]),
            range_zone=str(manifest.get("range_time_zone") or manifest["time_zone"]),
            columns=tuple(columns),
            profile=profile,
            ticket=str(manifest.get("ticket") or ""),
            overwrite=overwrite,
            file_format=file_format,
        )
    except KeyError as error:
        raise UserError(f"the manifest is damaged: it has no {error}") from None
    except (TypeError, ValueError, AttributeError) as error:
        raise UserError(f"the manifest is damaged: {error}") from None


def _part(manifest: Mapping[str, Any], name: str, kind: type, what: str) -> Any:
    """The manifest's field ``name``, which must be a ``kind`` (ValueError: ``what`` it must
    be): a damaged field is named, not read as something else (a text letter by letter)."""
    value = manifest[name]
    if not isinstance(value, kind):
        raise ValueError(f"its {name!r} is not {what}")
    return value


def generate_passphrase() -> str:
    groups = (
        "".join(secrets.choice(PASSPHRASE_ALPHABET) for _ in range(4))
        for _ in range(PASSPHRASE_GROUPS)
    )
    return "-".join(groups)


@dataclass(frozen=True)
class Package:
    path: Path
    sha256: str
    passphrase: str  # shown once; never stored


def signer_key(
    manifest: Mapping[str, Any], keys: Mapping[str, Ed25519PublicKey]
) -> Ed25519PublicKey | None:
    """The public key that signed ``manifest`` among ``keys``; None when it is unsigned."""
    signature = manifest.get(manifests.SIGNATURE)
    if not isinstance(signature, dict) or signature.get("algorithm") is None:
        return None
    key = keys.get(str(signature.get("key_id")))
    if key is None:
        raise UserError(
            f"the manifest is signed by key {signature.get('fingerprint')}, whose public key "
            "this computer does not have (give it with --key)"
        )
    return key


def readme(manifest: Mapping[str, Any], csv_name: str, key: Ed25519PublicKey | None) -> str:
    from nvadmin.audit.checkpoints import fingerprint

    manifest_name = manifests.manifest_path_for(Path(csv_name)).name
    if key is None:
        signed = (
            "The manifest is NOT signed (it was made on a computer without nvadmin's signing "
            "key); only its SHA-256 can be checked."
        )
    else:
        signed = (
            f"The manifest is signed (Ed25519) with the key in {PUBLIC_KEY_NAME}.\n"
            f"Its fingerprint is {fingerprint(key)}: compare it with the one the sender "
            "published before trusting it."
        )
    try:
        kind = FileFormat.of_manifest(manifest.get("file_format")).label
    except ValueError:
        kind = str(manifest.get("file_format"))
    return f"""Activity Log export {csv_name}
Ticket: {manifest.get("ticket") or "-"}
Range: {manifest.get("start")} to {manifest.get("end")} (both included)
Rows: {manifest.get("rows")}

Files
  {csv_name}  the export ({kind})
  {manifest_name}  what it holds: filter, row count, SHA-256, chain evidence
  {PUBLIC_KEY_NAME if key is not None else "(no key)"}  the signer's public key

{signed}

How to check it
  With nvadmin (no database needed):
    nvadmin verify-export {csv_name} --key {PUBLIC_KEY_NAME}
  It prints one line saying what holds (exit 0) or where it fails (exit 1).

  Without nvadmin:
    sha256sum {csv_name}
  must print {manifest.get("sha256")}, the "sha256" in {manifest_name}.
"""


def package_export(
    csv_path: Path,
    output: Path,
    keys: Mapping[str, Ed25519PublicKey],
    manifest_path: Path | None = None,
    overwrite: bool = False,
) -> Package:
    """Write the encrypted delivery package ``output`` for an export and its manifest.

    The CSV must still have its manifest's SHA-256 (a changed file is refused, not sent).
    The ZIP is written as an export is (:class:`AtomicFile`: mode 0600, a temporary name,
    renamed when complete); a failed write is one line and leaves nothing."""
    import pyzipper

    from nvadmin.audit.checkpoints import public_pem

    manifest_path = manifest_path or manifests.manifest_path_for(csv_path)
    try:
        manifest = manifests.load(manifest_path)
    except (OSError, ValueError) as error:
        raise UserError(f"cannot read the manifest {manifest_path}: {error}") from None
    if manifests.file_sha256(csv_path) != manifest.get("sha256"):
        raise UserError(f"{csv_path} no longer has its manifest's SHA-256; not packaged")
    if problem := not_a_regular_file(output):
        raise UserError(problem)
    if output.exists() and not overwrite:
        raise UserError(f"{output} already exists (choose another name or allow replacing)")
    key = signer_key(manifest, keys)
    passphrase = generate_passphrase()
    with AtomicFile(output, hashed=False) as out:
        archive = pyzipper.AESZipFile(
            out.seekable_file(), "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES
        )
        try:
            archive.setpassword(passphrase.encode("ascii"))
            archive.setencryption(pyzipper.WZ_AES, nbits=256)
            archive.write(csv_path, csv_path.name)
            archive.write(manifest_path, manifests.manifest_path_for(Path(csv_path.name)).name)
            if key is not None:
                archive.writestr(PUBLIC_KEY_NAME, public_pem(key))
            archive.writestr(README_NAME, readme(manifest, csv_path.name, key))
            archive.close()
        except OSError as error:
            raise ExportWriteError(describe_os_error(error, output)) from error
        finally:
            # Failed, the archive is half written with its close still due: collected, it
            # would write again, fail again and have Python print that too. It is let go
            # (the temporary file goes when ``out`` ends).
            archive.fp = None
        out.publish()
    return Package(output, manifests.file_sha256(output), passphrase)
