"""Every command-line option against the Big List of Naughty Strings, one case per process.

Nothing is written outside a temporary folder: cases run there, nothing is replaced
(``--force`` is never given), and a value for an option that writes a file is put inside that
folder with its slashes turned into ``_`` (the list holds ``../../etc/hosts``).

Each case runs ``nvadmin`` (its :func:`~nvadmin.__main__.main`) in a forked child with an
address-space limit (``resource.setrlimit(RLIMIT_AS)``) and a time limit, on a small seeded
SQLite database, and is reported when it does not end the way every command promises: exit
non-zero with one line ``nvadmin: ...`` naming the problem, or succeed. Reported:

* ``memory`` / ``time``: the child hit the limit (the input makes nvadmin grow or run away);
* ``traceback``: a traceback reached the terminal;
* ``catch-all``: the message is the unexpected-error handler's (``... (details in LOG)``);
* ``echo``: the message is nothing but the naughty string itself.

Run (about 10 minutes for every option; ``--option`` picks some, ``--limit`` samples)::

    uv run python -m tests.cli_fuzz [--memory-mb 2048] [--seconds 60] [--option export.--from]

The test suite keeps the cases this found as regular tests (tests/unit/test_cli_input.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BLNS = Path(__file__).parent / "data" / "blns" / "blns.json"
PASSWORD = "support-demo-2025\n"


def naughty_strings() -> list[str]:
    """The Big List of Naughty Strings (tests/data/blns, MIT licence), as a list."""
    strings = json.loads(BLNS.read_text(encoding="utf-8"))
    return [s for s in strings if isinstance(s, str)]


# Options whose value is a file nvadmin writes: the harness keeps those inside its folder.
WRITES = {"export.--output", "flags.--csv", "checkpoint.--export-public-key"}


def contained(value: str, scratch: Path) -> str:
    """A file name for ``value`` inside ``scratch/out`` (however many ``..`` it holds)."""
    return str(scratch / "out" / (value.replace("/", "_").lstrip(".") or "_"))


def templates(database: str, workspace: str, scratch: Path) -> dict[str, list[str]]:
    """``command.option`` -> argv with ``{}`` where the naughty string goes."""
    db = ["--database", database]
    export = [*db, "export", "--workspace", workspace, "--from", "2025-12-01",
              "--to", "2025-12-02", "--output", str(scratch / "out.csv"),
              "--staff", "support@demo.nvadmin.example", "--password-stdin",
              "--ticket", "T-1"]  # fmt: skip

    def with_option(base: list[str], option: str) -> list[str]:
        if option in base:
            at = base.index(option)
            return [*base[: at + 1], "{}", *base[at + 2 :]]
        return [*base, option, "{}"]

    def fresh() -> list[str]:
        return ["--database", f"sqlite:///{scratch}/seed-{{n}}.sqlite3"]

    seed = [*fresh(), "seed", "--workspaces", "1", "--events", "300", "--days", "7"]
    flags = [*db, "flags", "--workspace", workspace, "--quiet"]
    verify = [*db, "verify", "--workspace", workspace, "--quiet"]
    cases = {
        "global.--database": ["--database", "{}", "db", "upgrade"],
        "global.--profile": ["--profile", "{}", "db", "upgrade"],
        "global.--case": [*db, "--case", "{}"],
        "seed.--workspaces": with_option(seed, "--workspaces"),
        "seed.--events": with_option(seed, "--events"),
        "seed.--seed": with_option(seed, "--seed"),
        "seed.--days": with_option(seed, "--days"),
        "seed.--end": with_option(seed, "--end"),
        "db.--months-ahead": [*db, "db", "partitions", "--months-ahead", "{}"],
        "db.--login": [*db, "db", "roles", "--login", "{}"],
        "verify.--workspace": with_option(verify, "--workspace"),
        "verify.--from": with_option(verify, "--from"),
        "verify.--to": with_option(verify, "--to"),
        "verify.--trusted-key": with_option(verify, "--trusted-key"),
        "checkpoint.--workspace": [*db, "checkpoint", "--quiet", "--workspace", "{}"],
        "checkpoint.--export-public-key": [*db, "checkpoint", "--export-public-key", "{}"],
        "checkpoint.--trust": [*db, "checkpoint", "--trust", "{}"],
        "flags.--workspace": with_option(flags, "--workspace"),
        "flags.--from": with_option(flags, "--from"),
        "flags.--to": with_option(flags, "--to"),
        "flags.--last": with_option(flags, "--last"),
        "flags.--rule": with_option(flags, "--rule"),
        "flags.--set": with_option(flags, "--set"),
        "flags.--csv": with_option(flags, "--csv"),
        "export.--workspace": with_option(export, "--workspace"),
        "export.--from": with_option(export, "--from"),
        "export.--to": with_option(export, "--to"),
        "export.--user": with_option(export, "--user"),
        "export.--category": with_option(export, "--category"),
        "export.--ticket": with_option(export, "--ticket"),
        "export.--output": with_option(export, "--output"),
        "export.--staff": with_option(export, "--staff"),
        "export.--tz": with_option(export, "--tz"),
        "export.--columns": with_option(export, "--columns"),
        "staff.add": [*db, "staff", "add", "{}", "--role", "support", "--password-stdin"],
        "staff.--role": [*db, "staff", "add", "x@example.org", "--role", "{}"],
        "profile.add": ["profile", "add", "{}", "sqlite:///x.sqlite3"],
        "profile.url": ["profile", "add", "fuzz", "{}"],
    }
    return cases


@dataclass
class Outcome:
    option: str
    value: str
    status: str  # ok, error, memory, time, traceback, catch-all, echo
    code: int
    max_rss_mb: float
    message: str


def run_case(
    argv: list[str], memory_mb: int, seconds: float, scratch: Path
) -> tuple[int, str, float, bool]:
    """Run ``main(argv)`` in a forked child; (exit code or -signal, stderr, max RSS MB,
    timed out)."""
    err_path = scratch / "stderr.txt"
    out_path = scratch / "stdout.txt"
    stdin_read, stdin_write = os.pipe()
    os.write(stdin_write, PASSWORD.encode())
    os.close(stdin_write)
    pid = os.fork()
    if pid == 0:  # the child
        code = 70
        try:
            limit = memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            os.dup2(stdin_read, 0)
            with open(out_path, "wb") as out, open(err_path, "wb") as err:
                os.dup2(out.fileno(), 1)
                os.dup2(err.fileno(), 2)
            sys.stdin = os.fdopen(0, "r", closefd=False)
            from nvadmin.__main__ import main

            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 2
        except MemoryError:
            code = 75
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 71
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    os.close(stdin_read)
    deadline = time.monotonic() + seconds
    timed_out = False
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            _, status, usage = os.wait4(pid, 0)
            timed_out = True
            break
        time.sleep(0.01)
    code = os.waitstatus_to_exitcode(status)
    stderr = err_path.read_text(errors="replace") if err_path.exists() else ""
    return code, stderr, usage.ru_maxrss / 1024, timed_out


def classify(value: str, code: int, stderr: str, timed_out: bool, near_limit: bool) -> str:
    if timed_out:
        return "time"
    if near_limit or code == 75 or "MemoryError" in stderr or code == -signal.SIGKILL:
        return "memory"
    if "Traceback" in stderr or code == 71:
        return "traceback"
    if "(details in " in stderr:
        return "catch-all"
    last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    if value.strip() and last in (f"nvadmin: {value}", f"nvadmin: {value!r}"):
        return "echo"
    return "ok" if code == 0 else "error"


@contextlib.contextmanager
def seeded_database(scratch: Path) -> Iterator[tuple[str, str]]:
    from sqlalchemy import text

    from nvadmin.__main__ import main
    from nvadmin.db.engine import make_engine

    url = f"sqlite:///{scratch}/fuzz.sqlite3"
    code = main(["--database", url, "seed", "--workspaces", "2", "--events", "3000",
                 "--days", "30", "--end", "2026-01-01"])  # fmt: skip
    assert code == 0
    engine = make_engine(url)
    with engine.connect() as connection:
        first = text("SELECT slug FROM workspaces ORDER BY id LIMIT 1")
        slug = connection.execute(first).scalar_one()
    engine.dispose()
    yield url, str(slug)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memory-mb", type=int, default=2048)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--option", action="append", help="only these command.option cases")
    parser.add_argument("--limit", type=int, help="only the first N strings")
    parser.add_argument("--report", type=Path, help="write every outcome as JSON lines here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nvadmin-fuzz-") as folder:
        scratch = Path(folder)
        os.environ["NVADMIN_HOME"] = str(scratch / "home")
        # ``profile add`` stores passwords: never in this machine's keyring.
        os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
        (scratch / "out").mkdir()
        os.chdir(scratch)
        os.environ.pop("NVADMIN_DATABASE_URL", None)
        with seeded_database(scratch) as (url, workspace):
            cases = templates(url, workspace, scratch)
            strings = naughty_strings()[: args.limit]
            names = args.option or list(cases)
            report = args.report.open("w") if args.report else None
            bad = 0
            n = 0
            for name in names:
                for value in strings:
                    n += 1
                    argv = [a.replace("{n}", str(n)) if "{n}" in a else a for a in cases[name]]
                    given = contained(value, scratch) if name in WRITES else value
                    argv = [given if a == "{}" else a for a in argv]
                    code, stderr, rss, timed_out = run_case(
                        argv, args.memory_mb, args.seconds, scratch
                    )
                    for leftover in scratch.glob("seed-*.sqlite3*"):
                        leftover.unlink()
                    near_limit = rss > 0.8 * args.memory_mb
                    status = classify(value, code, stderr, timed_out, near_limit)
                    message = stderr.strip().splitlines()[-1][:200] if stderr.strip() else ""
                    outcome = Outcome(name, value, status, code, round(rss, 1), message)
                    if report:
                        report.write(json.dumps(outcome.__dict__, ensure_ascii=False) + "\n")
                        report.flush()
                    if status not in ("ok", "error"):
                        bad += 1
                        print(f"{status:10} {name} {value!r:.80} rss={rss:.0f}MB {message!r:.160}")
                        sys.stdout.flush()
            print(f"{n} cases, {bad} reported")
            return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
