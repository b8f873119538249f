"""``nvadmin verify`` and ``nvadmin checkpoint``: prove a workspace's log was not altered.

``verify`` exits 0 when the chain is intact and 1 when it is not, so it can run from cron or
a CI job and alert on failure. ``checkpoint`` signs the newest event of a verified chain (see
:mod:`nvadmin.audit.checkpoints` for where the key lives and how reviewers trust it).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from nvadmin.commands import arguments
from nvadmin.errors import UserError

if TYPE_CHECKING:
    from nvadmin.context import Context


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "verify",
        help="verify a workspace's hash chain (exit 0 intact, 1 broken)",
        description="Walk a workspace's hash chain, whole or a time range, and report either "
        "'N events verified, chain intact' or the first broken link.",
    )
    parser.add_argument("--workspace", required=True, metavar="SLUG")
    arguments.instant_range_options(parser)
    parser.add_argument(
        "--trusted-key",
        action="append",
        default=[],
        type=arguments.input_file,
        metavar="FILE",
        help="also trust checkpoints signed by this public key (PEM); may be repeated",
    )
    parser.add_argument(
        "--forget-record",
        action="store_true",
        help="first forget what this computer remembers of this database's chains (only "
        "after the database was deliberately rebuilt: the record is what catches a rollback)",
    )
    parser.add_argument(
        "--independent",
        action="store_true",
        help="lay out and hash every event in nvadmin itself, asking the database only for "
        "the stored values (slower; by default PostgreSQL recomputes the hashes with its "
        "built-in sha256 and nvadmin checks the links)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.set_defaults(run=run_verify)

    sign = subparsers.add_parser(
        "checkpoint",
        help="sign checkpoints of verified chains; manage the signing and trusted keys",
        description="Verify a workspace's chain and sign its newest event with this machine's "
        "Ed25519 key, so that a later removal of events is detected.",
    )
    target = sign.add_mutually_exclusive_group()
    target.add_argument("--workspace", metavar="SLUG", help="sign this workspace's chain")
    target.add_argument("--all", action="store_true", help="sign every workspace's chain")
    sign.add_argument("--create-key", action="store_true", help="create the signing key")
    sign.add_argument(
        "--export-public-key",
        type=arguments.output_file,
        metavar="FILE",
        help="write the public key (PEM)",
    )
    sign.add_argument(
        "--force", action="store_true", help="replace the --export-public-key file if it exists"
    )
    sign.add_argument("--fingerprint", action="store_true", help="print the key's fingerprint")
    sign.add_argument(
        "--trust",
        type=arguments.input_file,
        metavar="FILE",
        help="trust a public key received from a signer",
    )
    sign.add_argument("--quiet", action="store_true", help="no progress on stderr")
    sign.set_defaults(run=run_checkpoint)


def parse_bound(value: date | datetime, zone: str, *, is_end: bool) -> datetime:
    """A bound given as :func:`arguments.when`: a day in the workspace's zone (an end day is
    included) or an aware instant."""
    from nvadmin.query.localtime import day_range

    if isinstance(value, datetime):
        return value.astimezone(UTC)
    start, end = day_range(value, value, zone)
    return end if is_end else start


def _progress(quiet: bool, label: str):  # type: ignore[no-untyped-def]
    from nvadmin.commands.seed import TerminalProgress
    from nvadmin.workers.cancel import ProgressReporter, no_progress

    if quiet:
        return no_progress, lambda: None
    bar = TerminalProgress(label)
    reporter = ProgressReporter(lambda update: bar(update.done, update.total, update.message))

    def close() -> None:
        reporter.finish()
        bar.close()

    return reporter, close


def run_verify(context: Context, args: argparse.Namespace) -> int:
    from nvadmin.audit.checkpoints import KeyStore, load_public_pem
    from nvadmin.audit.verify import verify_workspace
    from nvadmin.audit.witness import ChainWitness, WitnessError
    from nvadmin.auth.accounts import command_line_operator
    from nvadmin.auth.server_signin import require_operator_login
    from nvadmin.db import migrate
    from nvadmin.query import workspaces

    migrate.require_head(context.engine)
    require_operator_login(context.engine, "verify")
    store = KeyStore(context.paths.config_dir)
    trusted = store.trusted_keys()
    for path in args.trusted_key:
        try:
            key = load_public_pem(path.read_bytes())
        except OSError as error:
            raise UserError(f"cannot read {path}: {error.strerror}") from None
        from nvadmin.audit.checkpoints import key_id

        trusted[key_id(key)] = key
    zone = workspaces.by_slug(context.engine, args.workspace).timezone
    start = parse_bound(args.start, zone, is_end=False) if args.start else None
    end = parse_bound(args.end, zone, is_end=True) if args.end else None
    if start and end and start >= end:
        raise UserError("the range ends before it starts")
    witness = ChainWitness.for_database(context.paths.data_dir, context.database_url)
    if args.forget_record and witness is not None:
        try:
            forgotten = witness.store.forget(witness.database)
        except WitnessError as error:
            witness.store.set_aside()
            forgotten = 0
            print(f"the record was not usable ({error}); set aside", file=sys.stderr)
        print(f"forgot this computer's record of {forgotten:,} chains in this database")
    progress, close = _progress(args.quiet, "verifying")
    try:
        result = verify_workspace(
            context.read_engine,
            command_line_operator(),
            args.workspace,
            start=start,
            end=end,
            trusted_keys=trusted,
            untrusted_because=store.unusable_own_key(),
            witness=witness,
            progress=progress,
            independent=args.independent,
            write_engine=context.write_engine,
        )
    finally:
        close()
    for line in result.lines():
        print(line)
    rate = result.events_verified / result.seconds if result.seconds else 0
    print(f"({result.seconds:.1f} s, {rate:,.0f} events/s)", file=sys.stderr)
    # A workspace with no chain at all is a finding, not a pass: a deleted log looks the same.
    return 0 if result.intact and not result.empty else 1


def run_checkpoint(context: Context, args: argparse.Namespace) -> int:
    from nvadmin.audit.checkpoints import KeyStore, fingerprint, public_pem
    from nvadmin.audit.verify import sign_checkpoint
    from nvadmin.audit.witness import ChainWitness
    from nvadmin.auth.accounts import command_line_operator
    from nvadmin.files.atomic import write_file
    from nvadmin.query import workspaces

    if args.export_public_key:
        arguments.refuse_to_replace("--export-public-key", args.export_public_key, args.force)
    store = KeyStore(context.paths.config_dir)
    did_something = False
    if args.create_key:
        key = store.create_signing_key()
        print(f"created signing key {store.signing_key_path}")
        print(f"fingerprint: {fingerprint(key.public_key)}")
        did_something = True
    if args.trust:
        try:
            trusted = store.trust(args.trust.read_bytes())
        except OSError as error:
            raise UserError(f"cannot read {args.trust}: {error.strerror}") from None
        print(f"now trusting checkpoint key {fingerprint(trusted)}")
        did_something = True
    if args.export_public_key or args.fingerprint:
        key = store.require_signing_key()
        if args.export_public_key:
            write_file(args.export_public_key, public_pem(key.public_key))
            print(f"public key written to {args.export_public_key}")
        print(f"fingerprint: {fingerprint(key.public_key)}")
        did_something = True
    if not (args.workspace or args.all):
        if not did_something:
            raise UserError("say which chain to sign: --workspace SLUG or --all")
        return 0
    from nvadmin.auth.server_signin import require_operator_login
    from nvadmin.db import migrate

    migrate.require_head(context.engine)
    require_operator_login(context.engine, "checkpoint")
    key = store.require_signing_key()
    if args.workspace:
        slugs = [workspaces.by_slug(context.engine, args.workspace).slug]
    else:
        slugs = sorted(w.slug for w in workspaces.all_workspaces(context.engine))
    if not slugs:
        raise UserError("this database has no workspaces yet")
    failed = 0
    witness = ChainWitness.for_database(context.paths.data_dir, context.database_url)
    for slug in slugs:
        progress, close = _progress(args.quiet, f"verifying {slug}")
        try:
            result, checkpoint = sign_checkpoint(
                context.engine,
                command_line_operator(),
                slug,
                key,
                trusted_keys=store.trusted_keys(),
                witness=witness,
                progress=progress,
            )
        finally:
            close()
        if checkpoint is not None:
            print(
                f"{slug}: {result.events_verified:,} events verified, chain intact; signed "
                f"checkpoint at event #{checkpoint.seq:,} with key {key.key_id}"
            )
        elif result.intact:
            print(f"{slug}: no events yet, nothing to sign")
        else:
            failed += 1
            for line in result.lines():
                print(line)
            print(f"{slug}: NOT signed: the chain is broken")
    return 1 if failed else 0
