"""Hostile values on the command line: each is refused in one line that names its option.

The cases are what a fuzz run of every option with the Big List of Naughty Strings found
(``uv run python -m tests.cli_fuzz``): dates and instants past the calendar's ends reached
the unexpected-error handler (``nvadmin: date value out of range``), bad zones and over-long
file names were echoed bare, and one ``--events`` value grew the process to 20.9 GB.
"""

from __future__ import annotations

import io
import os
import resource
import socket
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from nvadmin.__main__ import main
from nvadmin.auth.accounts import add_staff, command_line_operator
from tests.factories import add_workspace, draft, write

PASSWORD = "Correct horse battery staple 42!"
LONG_NAME = "x" * 300
ZALGO = "Ṱ̺̺̕o͞ ̷i̲̬͇̪͙n̝̗͕v̟̜̘̦͟o̶̙̰̠kè͚̮̺̪̹̱̤ ̖t̝͕̳̣̻̪͞h̼͓̲̦̳̘̲e͇̣̰̦̬͎ ̢̼̻̱̘h͚͎͙̜̣̲ͅi̦̲̣̰̤v̻͍e̺̭̳̪̰-m̢iͅn̖̺̞̲̯̰d̵̼̟͙̩̼̘̳ ̞̥̱̳̭r̛̗̘e͙p͠r̼̞̻̭̗e̺̠̣͟s̘͇̳͍̝͉e͉̥̯̞̲͚̬͜ǹ̬͎͎̟̖͇̤t͍̬̤͓̼̭͘ͅi̪̱n͠g̴͉ ͏͉ͅc̬̟h͡a̫̻̯͘o̫̟̖͍̙̝͉s̗̦̲.̨̹͈̣"


@pytest.fixture
def database(engine: Engine, db_url: str) -> str:
    """A workspace in Chicago with a team member's event and a support account, so that a
    command gets as far as it can with each value."""
    add_staff(engine, command_line_operator(), "sam@nvadmin.example", PASSWORD, "support")
    workspace = add_workspace(engine)  # riverside, America/Chicago
    write(engine, workspace, [draft(0)])
    return db_url


def _limit_memory() -> None:
    limit = 1024 * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def run_limited(*argv: str) -> tuple[int, str]:
    """``nvadmin`` in its own process with 1 GiB of address space, for values that once made
    it grow without bound."""
    result = subprocess.run(
        [sys.executable, "-m", "nvadmin", *argv],
        capture_output=True, text=True, preexec_fn=_limit_memory, timeout=300, check=False,
    )  # fmt: skip
    return result.returncode, result.stderr


def run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    code = main(list(argv))
    return code, capsys.readouterr().err


def assert_names_the_option(code: int, err: str, option: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert code != 0
    assert len(lines) == 1, err
    assert lines[0].startswith(f"nvadmin: {option}: "), lines[0]
    assert "Traceback" not in err and "details in" not in err
    for fragment in fragments:
        assert fragment in lines[0]


def export(database: str, tmp_path: Path, *extra: str) -> list[str]:
    argv = ["--database", database, "export", "--workspace", "riverside",
            "--from", "2025-03-01", "--to", "2025-03-02", "--ticket", "T-1",
            "--output", str(tmp_path / "out.csv"), "--staff", "sam@nvadmin.example",
            "--password-stdin"]  # fmt: skip
    for option, value in zip(extra[::2], extra[1::2], strict=True):
        if option in argv:
            argv[argv.index(option) + 1] = value
        else:
            argv += [option, value]
    return argv


OUTSIDE = "outside the days nvadmin covers (1900-01-01 to 2999-12-31)"


@pytest.mark.parametrize(
    ("extra", "option", "fragments"),
    [
        (("--from", "9999-12-31", "--to", "9999-12-31"), "--from", ("9999-12-31 is", OUTSIDE)),
        (("--to", "0001-01-01", "--tz", "Asia/Tokyo"), "--to", ("0001-01-01 is", OUTSIDE)),
        (("--from", "2025-02-30"), "--from", ("2025-02-30 is not a date in the calendar",)),
        (("--from", "\u0662\u0660\u0662\u0665-03-01"), "--from", ("is not a date",)),
        (("--tz", "Nowhere/Else"), "--tz", ("unknown time zone 'Nowhere/Else'",)),
        (("--tz", ZALGO), "--tz", ("unknown time zone", "…'")),
        (("--tz", "../../../../etc/passwd"), "--tz", ("unknown time zone",)),
        (("--output", f"/tmp/{LONG_NAME}.csv"), "--output", ("too long (304 bytes, at most 255)",)),
        (("--output", "/no/such/folder/out.csv"), "--output", ("/no/such/folder does not exist",)),
        (("--output", "/tmp"), "--output", ("/tmp is a folder, not a file",)),
    ],
)  # fmt: skip
def test_export_values(
    database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    extra: tuple[str, ...],
    option: str,
    fragments: tuple[str, ...],
) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    code, err = run(monkeypatch, capsys, *export(database, folder, *extra))
    assert_names_the_option(code, err, option, *fragments)
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize(
    ("command", "option", "value", "fragments"),
    [
        ("verify", "--from", "0001-01-01T00:00+01:00", (OUTSIDE,)),
        ("verify", "--to", "9999-12-31T23:00-05:00", (OUTSIDE,)),
        ("verify", "--to", "2025-03-01T09:30", ("give a UTC offset",)),
        ("flags", "--from", "9999-12-31", (OUTSIDE,)),
        ("flags", "--to", "0001-01-01T00:00:00+14:00", (OUTSIDE,)),
        ("flags", "--csv", LONG_NAME, ("is too long (300 bytes",)),
        ("verify", "--trusted-key", "/no/such/key.pem", ("is not an existing file",)),
    ],
)
def test_verify_and_flags_values(
    database: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
    option: str,
    value: str,
    fragments: tuple[str, ...],
) -> None:
    argv = ["--database", database, command, "--workspace", "riverside", "--quiet"]
    code, err = run(monkeypatch, capsys, *argv, option, value)
    assert_names_the_option(code, err, option, *fragments)


@pytest.mark.parametrize(
    ("option", "value", "fragments"),
    [
        ("--end", "9999-12-31", (OUTSIDE,)),
        ("--events", "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669",
         ("is not a whole number",)),
        ("--workspaces", "1e3", ("is not a whole number",)),
    ],
)  # fmt: skip
def test_seed_values(tmp_path: Path, option: str, value: str, fragments: tuple[str, ...]) -> None:
    database = f"sqlite:///{tmp_path}/seed.sqlite3"
    code, err = run_limited("--database", database, "seed", option, value)
    assert_names_the_option(code, err, option, *fragments)
    assert not (tmp_path / "seed.sqlite3").exists()


def test_a_seed_ending_after_tomorrow_is_refused_before_the_database_is_made(
    tmp_path: Path,
) -> None:
    """Demo activity never lies after the moment of the seed, so --end stops at tomorrow."""
    later = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    database = f"sqlite:///{tmp_path}/seed.sqlite3"
    code, err = run_limited("--database", database, "seed", "--end", later)
    assert_names_the_option(code, err, "--end", "(tomorrow, UTC) or earlier", "current time")
    assert not (tmp_path / "seed.sqlite3").exists()


def test_partitions_ahead_are_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    database = f"sqlite:///{tmp_path}/db.sqlite3"
    argv = ("--database", database, "db", "partitions", "--months-ahead")
    code, err = run(monkeypatch, capsys, *argv, "99999999999999")
    assert_names_the_option(code, err, "--months-ahead", "give 0 to 120 months")


def test_a_huge_event_count_is_refused_before_it_uses_memory(tmp_path: Path) -> None:
    """The input that grew a fuzz run to 20.9 GB: ``seed --events`` with 39 digits. The seed
    now refuses more events a day than it can hold, in a process limited to 1 GiB."""
    database = f"sqlite:///{tmp_path}/seed.sqlite3"
    argv = ("--database", database, "seed", "--events", "123456789012345678901234567890123456789")
    code, err = run_limited(*argv)
    assert code == 1
    assert err.strip().splitlines() == [
        "nvadmin: --events must be between 0 and 27,000,000 for 3 workspace(s) over 90 days "
        "(at most 100,000 a day per workspace)"
    ]


def test_flags_csv_refuses_to_replace_a_file_without_force(
    database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    existing = tmp_path / "flags.csv"
    existing.write_text("keep me\n", encoding="utf-8")
    argv = ["--database", database, "flags", "--workspace", "riverside", "--quiet"]
    argv += ["--from", "2025-03-01", "--to", "2025-03-31", "--csv", str(existing)]
    code, err = run(monkeypatch, capsys, *argv)
    assert_names_the_option(code, err, "--csv", "already exists (give --force to replace it)")
    assert existing.read_text(encoding="utf-8") == "keep me\n"

    code, err = run(monkeypatch, capsys, *argv, "--force")
    assert code in (0, 1) and err == ""  # 1: something is flagged
    replaced = existing.read_text(encoding="utf-8-sig")
    assert replaced.startswith("flag,flag_title,workspace,")


@pytest.mark.parametrize("value", ["", "   "])
def test_a_blank_user_is_refused_not_read_as_every_member(
    database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    value: str,
) -> None:
    """``--user ""`` matched every member (every name starts with the empty text) and exported
    the whole workspace."""
    code, err = run(monkeypatch, capsys, *export(database, tmp_path, "--user", value))
    assert_names_the_option(code, err, "--user", "not a blank")
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("ending", ["/", "/."])
def test_an_output_ending_like_a_folder_is_refused(
    database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    ending: str,
) -> None:
    """``--output new/`` wrote a file named ``new``."""
    argv = export(database, tmp_path, "--output", f"{tmp_path / 'new'}{ending}")
    code, err = run(monkeypatch, capsys, *argv)
    assert_names_the_option(code, err, "--output", "ends like a folder; name a file")
    assert not (tmp_path / "new").exists()


def make_special_file(folder: Path, kind: str) -> Path:
    """A file of ``kind`` that is not a regular file, made in ``folder`` (a test never aims
    an export at the system's own /dev/null: a regression would replace it)."""
    path = folder / kind.replace(" ", "-")
    if kind == "FIFO":
        os.mkfifo(path)
    elif kind == "symbolic link":
        path.symlink_to(folder / "kept.csv")
    elif kind == "socket":
        with socket.socket(socket.AF_UNIX) as listening:
            listening.bind(str(path))
    else:
        try:  # the kernel's null device, as /dev/null is
            os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        except PermissionError:
            pytest.skip("making a device node needs root")
    return path


@pytest.mark.parametrize("kind", ["FIFO", "symbolic link", "socket", "device"])
def test_force_replaces_only_a_regular_file(
    database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    kind: str,
) -> None:
    """``--force`` renamed the export over whatever had the name: a FIFO or a device became
    a regular file, and a link was replaced instead of the file it points to."""
    target = tmp_path / "kept.csv"
    target.write_text("keep me\n", encoding="utf-8")
    output = make_special_file(tmp_path, kind)
    argv = [*export(database, tmp_path, "--output", str(output)), "--force"]
    code, err = run(monkeypatch, capsys, *argv)
    assert_names_the_option(code, err, "--output", f"is a {kind}", "only regular files")
    assert not stat.S_ISREG(os.lstat(output).st_mode)
    assert target.read_text(encoding="utf-8") == "keep me\n"


@pytest.mark.parametrize("last", ["0h", "0d", "00h"])
def test_flags_refuse_an_empty_last_range(
    database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], last: str
) -> None:
    """``--last 0h`` ran over no time at all and said "nothing flagged"; the search bar's
    ``last:0h`` was already refused, by the same rule now."""
    argv = ["--database", database, "flags", "--workspace", "riverside", "--quiet"]
    code, err = run(monkeypatch, capsys, *argv, "--last", last)
    assert code == 1
    assert err.strip() == f"nvadmin: --last takes hours or days, e.g. 24h or 7d, not '{last}'"
