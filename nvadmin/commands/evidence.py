"""Export evidence on the command line, neither needing a database:

* ``nvadmin verify-export FILE.csv``: check a delivered export offline;
* ``nvadmin package-export FILE.csv --output ZIP``: the encrypted delivery package.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from nvadmin.commands import arguments

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from nvadmin.context import Context
    from nvadmin.export.evidence import Package


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "verify-export",
        help="check an export against its signed manifest, offline",
        description="Check FILE.csv (or FILE.jsonl) against FILE.csv.manifest.json (or "
        "FILE.jsonl.manifest.json) without any database: the "
        "manifest's signature against a trusted key, the file's SHA-256, and, when the export "
        "holds the chain columns, every row's hash and the links between consecutive events. "
        "Exit 0 when all holds, 1 otherwise, with one line saying what holds or where it fails.",
    )
    parser.add_argument("file", type=arguments.input_file, metavar="FILE.csv")
    parser.add_argument(
        "--manifest",
        type=arguments.input_file,
        metavar="M",
        help="the manifest (default: FILE.csv.manifest.json)",
    )
    parser.add_argument(
        "--key",
        type=arguments.input_file,
        metavar="PUBLIC.pem",
        help="the signer's public key (default: the keys trusted with `nvadmin checkpoint "
        "--trust`)",
    )
    parser.set_defaults(run=run_verify_export)

    package = subparsers.add_parser(
        "package-export",
        help="package an export for delivery: encrypted ZIP with its manifest, key and README",
        description="Write an AES-256 encrypted ZIP holding FILE.csv, its manifest, the "
        "signer's public key and a README on checking them. The passphrase is generated and "
        "printed once: send it by another channel than the package (a phone call, say).",
    )
    package.add_argument("file", type=arguments.input_file, metavar="FILE.csv")
    package.add_argument("--output", required=True, type=arguments.output_file, metavar="ZIP")
    package.add_argument(
        "--manifest",
        type=arguments.input_file,
        metavar="M",
        help="the manifest (default: FILE.csv.manifest.json)",
    )
    package.add_argument(
        "--key",
        type=arguments.input_file,
        metavar="PUBLIC.pem",
        help="the signer's public key (default: this computer's signing key or trusted keys)",
    )
    package.add_argument("--force", action="store_true", help="replace ZIP if it exists")
    package.set_defaults(run=run_package_export)


def keys_for(context: Context, key_file: Path | None) -> dict[str, Ed25519PublicKey]:
    """The given public key only, else the keys this computer trusts (its own included)."""
    from nvadmin.audit.checkpoints import KeyStore, key_id, load_public_pem

    if key_file is not None:
        key = load_public_pem(key_file.read_bytes())
        return {key_id(key): key}
    return KeyStore(context.paths.config_dir).trusted_keys()


def run_verify_export(context: Context, args: argparse.Namespace) -> int:
    from nvadmin.export.verify import verify_export

    trusted = keys_for(context, args.key)
    verdict = verify_export(args.file, args.manifest, trusted)
    print(verdict.line())
    return 0 if verdict.ok else 1


def run_package_export(context: Context, args: argparse.Namespace) -> int:
    from nvadmin.export.evidence import package_export

    package = package_export(
        args.file.absolute(),
        args.output.expanduser().absolute(),
        keys_for(context, args.key),
        manifest_path=args.manifest,
        overwrite=args.force,
    )
    print_package(package)
    return 0


def print_package(package: Package) -> None:
    print(f"package {package.path}")
    print(f"sha256 {package.sha256}")
    print(f"passphrase {package.passphrase}")
    print("The passphrase is shown only now: send it by another channel than the package.")
