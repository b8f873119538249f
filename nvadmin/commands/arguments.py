"""The kinds of value the command line takes, each checked once, here.

Every option of a kind uses its type (``type=day``, ``type=zone``, ...), so a bad value is
refused by argparse before anything runs, with one line naming the option and the problem
(``nvadmin: --from: 9999-12-31 is outside the days nvadmin covers (1900-01-01 to
2999-12-31)``; see :class:`nvadmin.__main__.CommandLineParser`).

Building the parser imports only the standard library, so ``nvadmin --help`` stays quick; the
domain's limits are read when a value is checked.
"""

from __future__ import annotations

import argparse
import os
import re
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# The longest file name and path the common file systems take (bytes, as the OS counts).
NAME_MAX = 255
PATH_MAX = 4096
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_NUMBER = re.compile(r"[0-9]+")


def shown(text: str, limit: int = 60) -> str:
    """A value as quoted in a message: repr, cut short when long."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


def day(text: str) -> date:
    """``YYYY-MM-DD`` within the days nvadmin covers."""
    if not _DAY.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{shown(text)} is not a date (use YYYY-MM-DD)")
    try:
        value = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text} is not a date in the calendar") from None
    _check_day(value, text)
    return value


def when(text: str) -> date | datetime:
    """A day (``YYYY-MM-DD``) or an ISO instant with its UTC offset
    (``2025-03-01T09:30+01:00``), within the days nvadmin covers."""
    if _DAY.fullmatch(text):
        return day(text)
    try:
        instant = datetime.fromisoformat(text) if text.isascii() else None
    except ValueError:
        instant = None
    if instant is None:
        raise argparse.ArgumentTypeError(
            f"{shown(text)} is not a date or time (use YYYY-MM-DD or YYYY-MM-DDTHH:MM+00:00)"
        )
    if instant.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a UTC offset with a time, e.g. {text}+00:00")
    _check_day(instant.date(), text)
    return instant


def _check_day(value: date, text: str) -> None:
    from nvadmin.query.filters import FIRST_DAY, LAST_DAY, within_days

    if not within_days(value):
        raise argparse.ArgumentTypeError(
            f"{text} is outside the days nvadmin covers ({FIRST_DAY} to {LAST_DAY})"
        )


def zone(text: str) -> str:
    """An IANA time zone name (``Europe/Paris``)."""
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise argparse.ArgumentTypeError(
            f"unknown time zone {shown(text)} (use an IANA name such as Europe/Paris)"
        ) from None
    return text


def whole_number(text: str) -> int:
    """A whole number written in ASCII digits (its range is the command's to check)."""
    if not _NUMBER.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{shown(text)} is not a whole number")
    try:
        return int(text)
    except ValueError:  # more digits than Python converts
        raise argparse.ArgumentTypeError(f"{shown(text, 30)} is far too large") from None


def _path(text: str) -> Path:
    if not text:
        raise argparse.ArgumentTypeError("no file name given")
    path = Path(text).expanduser()
    encoded = os.fsencode(path)
    if len(encoded) > PATH_MAX:
        raise argparse.ArgumentTypeError(
            f"the path is too long ({len(encoded):,} bytes, at most {PATH_MAX:,})"
        )
    for part in path.parts:
        if len(os.fsencode(part)) > NAME_MAX:
            raise argparse.ArgumentTypeError(
                f"the name {shown(part, 40)} is too long "
                f"({len(os.fsencode(part)):,} bytes, at most {NAME_MAX})"
            )
    return path


def output_file(text: str) -> Path:
    """A file to write: a name the file system takes, in a folder that exists."""
    # A Path drops a trailing ``/`` or ``/.``: ``out/`` would become a file named ``out``.
    if text.endswith(("/", "/.")):
        raise argparse.ArgumentTypeError(f"{shown(text)} ends like a folder; name a file")
    path = _path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a folder, not a file")
    folder = path.absolute().parent
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(f"the folder {folder} does not exist")
    return path


def refuse_to_replace(option: str, path: Path, force: bool) -> None:
    """Refuse ``path`` as ``option``'s file to write when it exists, unless ``force``, and,
    even with ``force``, when it is not a regular file (a device, FIFO, link, ...: see
    :func:`nvadmin.files.atomic.not_a_regular_file`). Checked before anything runs."""
    from nvadmin.errors import UserError
    from nvadmin.files.atomic import not_a_regular_file

    if problem := not_a_regular_file(path):
        raise UserError(f"{option}: {problem}")
    if path.exists() and not force:
        raise UserError(f"{option}: {path} already exists (give --force to replace it)")


def input_file(text: str) -> Path:
    """A file to read, which exists."""
    path = _path(text)
    if not path.is_file():
        what = "a folder, not a file" if path.is_dir() else "not an existing file"
        raise argparse.ArgumentTypeError(f"{path} is {what}")
    return path


def file_format_option(parser: argparse.ArgumentParser) -> None:
    """``--format csv|jsonl``: the export's file format (:mod:`nvadmin.export.formats`)."""
    from nvadmin.export.formats import FileFormat

    parser.add_argument(
        "--format",
        choices=[f.value for f in FileFormat],
        default=FileFormat.CSV.value,
        help="csv (spreadsheets; the default) or jsonl (JSON Lines: one JSON object per "
        "event, for SIEM and BI imports)",
    )


def day_range_options(
    parser: argparse.ArgumentParser, last_day_help: str = "last day, included"
) -> None:
    """``--from`` / ``--to`` as whole days, both included (``first_day``, ``last_day``)."""
    parser.add_argument("--from", dest="first_day", type=day, metavar="YYYY-MM-DD")
    parser.add_argument("--to", dest="last_day", type=day, metavar="YYYY-MM-DD", help=last_day_help)


def instant_range_options(parser: argparse.ArgumentParser) -> None:
    """``--from`` / ``--to`` as days in the workspace's zone or ISO instants (``start``,
    ``end``; see :func:`nvadmin.commands.verify.parse_bound`)."""
    parser.add_argument(
        "--from",
        dest="start",
        type=when,
        metavar="WHEN",
        help="first day (YYYY-MM-DD, in the workspace's time zone) or an ISO instant with offset",
    )
    parser.add_argument(
        "--to",
        dest="end",
        type=when,
        metavar="WHEN",
        help="last day, included (YYYY-MM-DD), or an ISO instant with offset (excluded)",
    )
