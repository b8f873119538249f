"""``nvadmin verify-export FILE.csv``: check a delivered export offline (no database)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from nvadmin.commands import arguments

if TYPE_CHECKING:
    from nvadmin.context import Context


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "verify-export",
        help="check an export against its signed manifest, offline",
        description="Check FILE.csv against FILE.csv.manifest.json without any database: the "
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


def run_verify_export(context: Context, args: argparse.Namespace) -> int:
    from nvadmin.audit.checkpoints import KeyStore, key_id, load_public_pem
    from nvadmin.export.verify import verify_export

    if args.key is not None:
        key = load_public_pem(args.key.read_bytes())
        trusted = {key_id(key): key}
    else:
        trusted = KeyStore(context.paths.config_dir).trusted_keys()
    verdict = verify_export(args.file, args.manifest, trusted)
    print(verdict.line())
    return 0 if verdict.ok else 1
