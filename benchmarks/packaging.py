"""Bundle size and start-up time of the packaged app, against the same app run by ``uv run``.

Run:  packaging/build.sh                      (once: builds build/dist/nvadmin)
      uv run python -m benchmarks.packaging [--runs 5] [--append]

Start-up is measured by ``nvadmin --smoke`` itself: seconds from the process's start (read
from the kernel, so the bundle's bootloader counts) until the sign-in dialog is interactive
(database checked, demo accounts listed, "Sign in" enabled), minus the time the smoke test
spends creating its 2,000-event demo database, which a real start does not do.

"Cold" runs first evict every file of the bundle (and of the virtualenv, for the reference)
from the page cache with posix_fadvise(DONTNEED) — only those files, so nothing else on a
shared machine is disturbed; system libraries stay cached, as they would on a desktop.
The reference is ``python -m nvadmin --smoke`` from the project's virtualenv, same machine,
same run.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ROOT / "build" / "dist" / "nvadmin"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
STARTUP = re.compile(r"start-up without the demo data: ([0-9.]+) s")
ROWS = re.compile(r"activity rows shown ([0-9.]+) s after signing in")


def evict(folder: Path) -> int:
    evicted = 0
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                evicted += 1
            finally:
                os.close(fd)
    return evicted


def smoke(command: list[str]) -> tuple[float, float]:
    env = {k: v for k, v in os.environ.items() if k not in ("NVADMIN_HOME", "PYTHONPATH")}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    startup = STARTUP.search(result.stdout)
    rows = ROWS.search(result.stdout)
    assert startup and rows, result.stdout
    return float(startup.group(1)), float(rows.group(1))


def measure(command: list[str], folder: Path, runs: int) -> dict[str, float]:
    evict(folder)
    cold, cold_rows = smoke(command)
    warm = [smoke(command) for _ in range(runs)]
    return {
        "cold": cold,
        "cold_rows": cold_rows,
        "warm": statistics.median(w[0] for w in warm),
        "warm_min": min(w[0] for w in warm),
        "warm_rows": statistics.median(w[1] for w in warm),
    }


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="warm runs of each (default 5)")
    parser.add_argument("--append", action="store_true", help="append to benchmarks/RESULTS.md")
    args = parser.parse_args()
    executable = BUNDLE / ("nvadmin-cli.exe" if sys.platform == "win32" else "nvadmin")
    if not executable.exists():
        raise SystemExit("no bundle: run packaging/build.sh first")
    tarballs = sorted((ROOT / "dist").glob("nvadmin-*.tar.gz"))
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    bundle = measure([str(executable), "--smoke"], BUNDLE, args.runs)
    source = measure([sys.executable, "-m", "nvadmin", "--smoke"], Path(sys.prefix), args.runs)
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    size = folder_size(BUNDLE)
    lines = [
        f"### {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — {platform.node() or 'machine'}, "
        f"{os.cpu_count()} cores, {platform.system()} {platform.machine()}, "
        f"load average {load_before:.1f} → {load_after:.1f}",
        "",
        "Command: `packaging/build.sh` then "
        f"`uv run python -m benchmarks.packaging --runs {args.runs}`",
        "",
        f"Bundle (PyInstaller one-folder): {size / 1e6:.0f} MB on disk"
        + (
            f", `{tarballs[-1].name}` {tarballs[-1].stat().st_size / 1e6:.0f} MB"
            if tarballs
            else ""
        )
        + ".",
        "",
        "Process start → sign-in dialog interactive (seconds; target < 1.5 s):",
        "",
        "| run | cold (files evicted) | warm median | warm best | first page after sign-in |",
        "|---|---:|---:|---:|---:|",
        f"| bundle `nvadmin --smoke` | {bundle['cold']:.2f} | {bundle['warm']:.2f} | "
        f"{bundle['warm_min']:.2f} | {bundle['warm_rows']:.2f} |",
        f"| reference `python -m nvadmin --smoke` (virtualenv) | {source['cold']:.2f} | "
        f"{source['warm']:.2f} | {source['warm_min']:.2f} | {source['warm_rows']:.2f} |",
        f"| bundle / reference | {bundle['cold'] / source['cold']:.2f} | "
        f"{bundle['warm'] / source['warm']:.2f} | {bundle['warm_min'] / source['warm_min']:.2f}"
        f" | |",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.append:
        existing = (
            RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
        )
        if "\n## Packaging\n" not in existing:
            existing = existing.rstrip("\n") + "\n\n## Packaging\n"
        head, _, tail = existing.partition("\n## Packaging\n")
        # Newest result first under the heading; other sections stay where they are.
        updated = f"{head}\n## Packaging\n\n{text}\n{tail.lstrip(chr(10))}"
        RESULTS.write_text(updated.rstrip("\n") + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
