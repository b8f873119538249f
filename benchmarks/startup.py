"""Start-up benchmark: `nvadmin --help`, process start → sign-in usable → first rows.

Run:  uv run python -m benchmarks.startup [--rounds 5] [--events 150000] [--append]

1. ``nvadmin --help`` against ``python -c pass`` (the floor every Python program pays), each
   run ``--rounds`` times in a fresh process; medians and their ratio (target: ≤ 0.3 s).
2. The app itself, offscreen, on a demo database of ``--events`` events built once with
   ``nvadmin seed`` in a throwaway ``NVADMIN_HOME`` (the embedded default database, as a user
   starts it). Each round is a new process running ``nvadmin`` (``__main__.main([])``) with a
   probe that watches the real widgets every 5 ms:

   - *sign-in usable*: seconds from the kernel's process start until the sign-in dialog is
     visible and its focused e-mail field takes a real key press (target ≤ 1.0 s warm);
   - *accounts read*: until the dialog has read the database and enabled "Sign in";
   - *first rows*: from clicking "Sign in" (admin demo account) until the main window shows
     its first page of activity rows (target ≤ 0.5 s).

   One unmeasured round first, then ``--rounds`` measured ones: warm starts, the files in the
   page cache. The probe imports nothing ahead of nvadmin (the order of imports changes their
   cost); it starts watching when nvadmin prepares the database.

Every process runs with compiled bytecode, as an installed nvadmin does (pip compiles on
install; the bundle ships it): ``PYTHONDONTWRITEBYTECODE`` is lifted for the measured processes
and the caches go to ``PYCACHE`` (``PYTHONPYCACHEPREFIX``), outside the source tree. Without
bytecode every start recompiles SQLAlchemy, alembic and nvadmin, several seconds on this
machine.

``--append`` adds the run to benchmarks/RESULTS.md under "Start-up". ``--tree DIR`` measures
the ``nvadmin`` package found in DIR instead, for a before/after on the same machine and load:
``git archive COMMIT nvadmin | tar -x -C DIR``.
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.util
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
PYCACHE = Path(tempfile.gettempdir()) / "nvadmin-benchmark-pycache"
PROBE_TIMEOUT_S = 120
TREE: Path | None = None  # --tree: the nvadmin package measured comes from there


def python_env() -> dict[str, str]:
    """The environment of an installed nvadmin: bytecode compiled once, then reused."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    if TREE is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(TREE), str(ROOT)])
    return env


def timed_run(command: list[str]) -> tuple[float, float]:
    """Wall-clock seconds and the child's CPU seconds (user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        command, check=True, stdout=subprocess.DEVNULL, env=python_env(), cwd=TREE or ROOT
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def median_run(command: list[str], rounds: int) -> tuple[float, float]:
    timed_run(command)  # the first run may write the bytecode caches: not what a user meets
    runs = [timed_run(command) for _ in range(rounds)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def probe_env(home: Path) -> dict[str, str]:
    env = python_env()
    env.pop("NVADMIN_DATABASE_URL", None)
    env.update(
        NVADMIN_HOME=str(home),
        QT_QPA_PLATFORM="offscreen",
        # The system keyring is never touched: the "no keyring" state of a headless machine.
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
    )
    return env


def start_up_round(home: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.startup", "--probe"],
        cwd=TREE or ROOT,
        env=probe_env(home),
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT_S,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"the probe failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    result: dict[str, float] = json.loads(lines[-1])
    return result


# -- the probe, inside the measured process ----------------------------------------------------


def probe() -> int:
    """Run nvadmin as `nvadmin` does, watch for the moments above, print them as JSON.

    Nothing is imported ahead of nvadmin (the order of imports changes their cost): the watcher
    starts when nvadmin first prepares the database, its QApplication made by then.
    """
    from nvadmin.ui.smoke import process_age  # standard library only at import

    watcher = _Watcher(process_age)
    sys.meta_path.insert(0, _AfterImport("nvadmin.ui.startup", watcher.attach))
    from nvadmin.__main__ import main

    status = main([])
    print(json.dumps(watcher.result), flush=True)
    return 0 if status == 0 and "rows" in watcher.result else 1


class _AfterImport(importlib.abc.MetaPathFinder):
    """Calls ``then(module)`` once the named module has been imported, by whoever imports it."""

    def __init__(self, name: str, then: Callable[[ModuleType], None]) -> None:
        self.name, self.then = name, then

    def find_spec(self, fullname: str, path: object, target: object = None) -> ModuleSpec | None:
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        assert spec is not None and spec.loader is not None
        load = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            load(module)
            self.then(module)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


class _Watcher:
    def __init__(self, process_age: Callable[[], float]) -> None:
        self.age = process_age
        self.timer: object = None
        self.result: dict[str, float] = {}
        self.dialog: object = None
        self.window: object = None
        self.clicked_at = 0.0
        self.clicked_cpu = 0.0

    def attach(self, startup: ModuleType) -> None:
        """Start polling when nvadmin prepares the database (the QApplication exists then)."""
        prepare = startup.prepare_database

        def prepare_database(context: object) -> bool:
            from PySide6.QtCore import QTimer

            timer = QTimer()
            timer.setInterval(5)
            timer.timeout.connect(self.poll)
            timer.start()
            self.timer = timer
            return bool(prepare(context))

        startup.prepare_database = prepare_database

    def poll(self) -> None:
        from PySide6.QtCore import Qt
        from PySide6.QtTest import QTest
        from PySide6.QtWidgets import QApplication, QPushButton

        from nvadmin.ui.sign_in import SignInDialog

        if "usable" not in self.result:
            dialogs = [
                w
                for w in QApplication.topLevelWidgets()
                if isinstance(w, SignInDialog) and w.isVisible()
            ]
            if not dialogs:
                return
            dialog = dialogs[0]
            focused = QApplication.focusWidget()
            if focused is not dialog.email_edit or not focused.isEnabled():
                return
            QTest.keyClick(focused, Qt.Key.Key_A)  # a real key press event, as typed
            if dialog.email_edit.text() != "a":
                return
            self.result["usable"] = self.age()
            self.result["usable_cpu"] = time.process_time()
            dialog.email_edit.clear()
            self.dialog = dialog
        dialog = self.dialog
        if "accounts" not in self.result:
            if not dialog.sign_in_button.isEnabled():  # type: ignore[attr-defined]
                return
            self.result["accounts"] = self.age()
            self.result["accounts_cpu"] = time.process_time()
            admin = [
                b
                for b in dialog.demo_box.findChildren(QPushButton)  # type: ignore[attr-defined]
                if b.property("demoRole") == "admin"
            ]
            if not admin:
                raise SystemExit("the demo accounts are not offered")
            admin[0].click()
            self.clicked_at = time.perf_counter()
            self.clicked_cpu = time.process_time()
            dialog.sign_in_button.click()  # type: ignore[attr-defined]
            return
        self._wait_for_rows()

    def _wait_for_rows(self) -> None:
        from PySide6.QtWidgets import QApplication

        from nvadmin.ui.main_window import MainWindow
        from nvadmin.ui.session import _sessions

        if self.window is None:
            window = _sessions[-1].window if _sessions else None
            if not isinstance(window, MainWindow):
                return
            self.window = window
        window = self.window
        assert isinstance(window, MainWindow)
        if window.banner.isVisible() and window.banner.text():
            raise SystemExit(f"the main window shows an error: {window.banner.text()}")
        rows = window.model.rowCount()
        if rows and not window.model.loading and "rows" not in self.result:
            self.result["rows"] = time.perf_counter() - self.clicked_at
            self.result["rows_cpu"] = time.process_time() - self.clicked_cpu
            self.result["row_count"] = rows
            QApplication.quit()


# -- the report --------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="runs of each (default 5)")
    parser.add_argument("--events", type=int, default=150_000, help="demo events (default 150k)")
    parser.add_argument("--append", action="store_true", help="add to benchmarks/RESULTS.md")
    parser.add_argument("--tree", type=Path, metavar="DIR", help="measure DIR/nvadmin instead")
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        return probe()
    global TREE
    TREE = args.tree.resolve() if args.tree else None

    load_before = os.getloadavg()[0]
    python = sys.executable
    floor, floor_cpu = median_run([python, "-c", "pass"], args.rounds)
    help_s, help_cpu = median_run([python, "-m", "nvadmin", "--help"], args.rounds)

    home = Path(tempfile.mkdtemp(prefix="nvadmin-startup-"))
    try:
        env = probe_env(home)
        seed = [python, "-m", "nvadmin", "seed", "--events", str(args.events), "--workspaces", "4"]
        subprocess.run(seed, check=True, env=env, cwd=TREE or ROOT, stdout=subprocess.DEVNULL)
        start_up_round(home)  # writes the bytecode caches of the modules only the app uses
        rounds = [start_up_round(home) for _ in range(args.rounds)]
    finally:
        shutil.rmtree(home, ignore_errors=True)
    load_after = os.getloadavg()[0]

    def row(label: str, key: str, target: str) -> str:
        wall, cpu = [r[key] for r in rounds], [r[f"{key}_cpu"] for r in rounds]
        return (
            f"| {label} | {statistics.median(wall):.2f} s | {min(wall):.2f} s | "
            f"{max(wall):.2f} s | {statistics.median(cpu):.2f} s | {target} |"
        )

    lines = [
        f"### {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — {platform.node() or 'machine'}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {load_before:.1f} → {load_after:.1f}",
        "",
        f"Command: `uv run python -m benchmarks.startup --rounds {args.rounds} "
        f"--events {args.events}" + (f" --tree {args.tree}`" if args.tree else "`"),
        "",
        f"`python -m nvadmin --help` {help_s:.3f} s (CPU {help_cpu:.3f} s) against "
        f"`python -c pass` {floor:.3f} s (CPU {floor_cpu:.3f} s): ratio {help_s / floor:.1f} "
        f"(median of {args.rounds}; target ≤ 0.3 s).",
        "",
        f"The app on the demo database ({args.events:,} events), median of {args.rounds} "
        "warm starts; CPU is the process's CPU time (all threads) over the same span, "
        "which a loaded machine stretches less than the wall clock:",
        "",
        "| span | median | best | worst | CPU (median) | target |",
        "|---|---:|---:|---:|---:|---|",
        row("process start → sign-in dialog takes keys", "usable", "≤ 1.0 s warm"),
        row("process start → accounts read, Sign in enabled", "accounts", ""),
        row(
            f"Sign in clicked → first {int(rounds[0]['row_count'])} rows on screen",
            "rows",
            "≤ 0.5 s",
        ),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.append:
        existing = RESULTS.read_text(encoding="utf-8")
        if "\n## Start-up\n" not in existing:
            existing = existing.rstrip("\n") + "\n\n## Start-up\n"
        head, _, tail = existing.partition("\n## Start-up\n")
        updated = f"{head}\n## Start-up\n\n{text}\n{tail.lstrip(chr(10))}"
        RESULTS.write_text(updated.rstrip("\n") + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
