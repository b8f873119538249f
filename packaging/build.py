"""Build the nvadmin bundle for the platform this runs on, in one command.

    packaging/build.sh                                     # Linux / macOS
    set UV_PROJECT_ENVIRONMENT=build\venv                  # Windows (cmd), then:
    uv run --no-dev --group packaging python packaging/build.py

The build runs in its own environment (build/venv) so that it neither disturbs nor depends
on the development .venv, and the bundle's analysis never sees the test tools.

Options: ``--no-smoke`` skips running the built bundle; ``--reuse`` skips PyInstaller when
build/dist/nvadmin already exists (to repack only).

Steps:
1. compile resources/ (packaging/compile_resources.py) so the bundle has the current icons;
2. PyInstaller, one folder, from packaging/nvadmin.spec into build/dist/nvadmin;
3. THIRD-PARTY-LICENSES.txt into the bundle: every bundled component's licence and texts;
4. ``nvadmin --smoke`` from the bundle, with a bare environment (no virtualenv, no
   PYTHONPATH, working directory /), which must exit 0;
5. on Linux, dist/nvadmin-<version>-linux-<arch>.tar.gz: the bundle, the .desktop file, the
   icon in every size and install.sh / uninstall.sh (per user, or system-wide with PREFIX).
   On Windows and macOS the folder (or nvadmin.app) in build/dist is the artefact.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import time
from email.parser import Parser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"
BUILD = ROOT / "build"
BUNDLE = BUILD / "dist" / "nvadmin"
DIST = ROOT / "dist"
RESOURCES = ROOT / "resources"
UNNAMED_LICENCES = {"sqlcipher3": "Zlib"}
LICENSE_FILE_PREFIXES = ("license", "licence", "copying", "notice", "authors")


def step(text: str) -> None:
    print(f"==> {text}", flush=True)


def version() -> str:
    import tomllib

    with (ROOT / "pyproject.toml").open("rb") as handle:
        return str(tomllib.load(handle)["project"]["version"])


def compile_resources() -> None:
    step("compiling resources")
    subprocess.run([sys.executable, str(PACKAGING / "compile_resources.py")], check=True)


def run_pyinstaller() -> None:
    step("PyInstaller (a few minutes)")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "PyInstaller",
            "--noconfirm",
            "--clean",
            "--log-level",
            "WARN",
            "--distpath",
            str(BUILD / "dist"),
            "--workpath",
            str(BUILD / "work"),
            str(PACKAGING / "nvadmin.spec"),
        ],
        check=True,
        cwd=ROOT,
    )


def internal_dir() -> Path:
    internal = BUNDLE / "_internal"
    return internal if internal.is_dir() else BUNDLE


def write_licences() -> Path:
    """One text file with every bundled distribution's licence, from the metadata in the
    bundle itself (so it lists exactly what shipped), plus Python, Qt and the LGPL/GPL texts."""
    step("writing THIRD-PARTY-LICENSES.txt")
    parts = [
        "nvadmin bundles the following components. nvadmin itself is licensed under the "
        "GNU Lesser General Public License v3.0 (text at the end).\n",
        "Qt 6 and PySide6 are used under the LGPL-3.0: their libraries are separate files in "
        "this folder (PySide6/Qt/lib) and may be replaced by compatible builds.\n",
    ]
    python_licence = (
        Path(sys.base_prefix)
        / "lib"
        / f"python{sys.version_info[0]}.{sys.version_info[1]}"
        / "LICENSE.txt"
    )
    if not python_licence.exists():
        python_licence = Path(sys.base_prefix) / "LICENSE.txt"
    parts.append(f"\n{'=' * 78}\nPython {platform.python_version()} — PSF-2.0\n{'=' * 78}\n")
    if python_licence.exists():
        parts.append(python_licence.read_text(encoding="utf-8", errors="replace"))
    for info in sorted(internal_dir().glob("*.dist-info"), key=lambda p: p.name.lower()):
        metadata_file = info / "METADATA"
        if not metadata_file.exists():
            continue
        meta = Parser().parsestr(metadata_file.read_text(encoding="utf-8", errors="replace"))
        licence = meta.get("License-Expression") or ""
        if not licence:
            classifiers = [
                c.split("::")[-1].strip()
                for c in meta.get_all("Classifier") or []
                if c.startswith("License ::")
            ]
            licence = " / ".join(classifiers) or (meta.get("License") or "").splitlines()[0:1]
            licence = licence if isinstance(licence, str) else "".join(licence)
        # Metadata that names no licence, though the package's licence file does.
        licence = licence or UNNAMED_LICENCES.get(meta["Name"].lower(), "")
        parts.append(f"\n{'=' * 78}\n{meta['Name']} {meta['Version']} — {licence}\n{'=' * 78}\n")
        texts = [
            p
            for p in sorted(info.rglob("*"))
            if p.is_file() and p.name.lower().startswith(LICENSE_FILE_PREFIXES)
        ]
        for text in texts:
            parts.append(f"--- {text.relative_to(info).as_posix()} ---\n")
            parts.append(text.read_text(encoding="utf-8", errors="replace"))
        if not texts:
            parts.append("(the package ships no separate licence file; see the licence above)\n")
    # sqlcipher3's wheel links SQLCipher and OpenSSL into its extension module but ships only
    # its own (zlib) licence; theirs are reproduced here. SQLite itself is public domain.
    parts.append(
        f"\n{'=' * 78}\nSQLCipher 4 (inside sqlcipher3) — BSD-3-Clause\n{'=' * 78}\n"
        + (PACKAGING / "licenses" / "SQLCipher.txt").read_text(encoding="utf-8")
        + f"\n{'=' * 78}\nOpenSSL 3 (inside sqlcipher3) — Apache-2.0\n{'=' * 78}\n"
        + (PACKAGING / "licenses" / "Apache-2.0.txt").read_text(encoding="utf-8")
    )
    for name in ("LGPL-3.0.txt", "GPL-3.0.txt"):
        parts.append(f"\n{'=' * 78}\n{name[:-4]}\n{'=' * 78}\n")
        parts.append((PACKAGING / "licenses" / name).read_text(encoding="utf-8"))
    target = BUNDLE / "THIRD-PARTY-LICENSES.txt"
    target.write_text("".join(parts), encoding="utf-8")
    return target


def executable() -> Path:
    if sys.platform == "win32":
        return BUNDLE / "nvadmin-cli.exe"
    if sys.platform == "darwin":
        return BUNDLE / "nvadmin-cli"
    return BUNDLE / "nvadmin"


def smoke() -> None:
    step("smoke test of the bundle (bare environment)")
    keep = ("HOME", "USERPROFILE", "SYSTEMROOT", "TEMP", "TMP", "TMPDIR", "LANG", "LC_ALL")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["PATH"] = os.defpath
    started = time.perf_counter()
    result = subprocess.run([str(executable()), "--smoke"], env=env, cwd=Path("/").anchor or "/")
    if result.returncode != 0:
        raise SystemExit(f"the bundle's smoke test failed (exit {result.returncode})")
    print(f"smoke test passed in {time.perf_counter() - started:.1f} s", flush=True)


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def linux_tarball() -> Path:
    step("packing the Linux tarball")
    arch = platform.machine() or "unknown"
    name = f"nvadmin-{version()}-linux-{arch}"
    stage = BUILD / "stage" / name
    shutil.rmtree(stage.parent, ignore_errors=True)
    stage.mkdir(parents=True)
    shutil.copytree(BUNDLE, stage / "nvadmin", symlinks=True)
    applications = stage / "share" / "applications"
    applications.mkdir(parents=True)
    shutil.copy2(RESOURCES / "nvadmin.desktop", applications / "nvadmin.desktop")
    hicolor = stage / "share" / "icons" / "hicolor"
    for png in sorted((RESOURCES / "app" / "png").glob("nvadmin-*.png")):
        size = png.stem.split("-")[-1]
        target = hicolor / f"{size}x{size}" / "apps"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(png, target / "nvadmin.png")
    (hicolor / "scalable" / "apps").mkdir(parents=True)
    shutil.copy2(RESOURCES / "app" / "nvadmin.svg", hicolor / "scalable" / "apps" / "nvadmin.svg")
    for script in ("install.sh", "uninstall.sh", "README.txt"):
        shutil.copy2(PACKAGING / "linux" / script, stage / script)
    for script in ("install.sh", "uninstall.sh"):
        (stage / script).chmod(0o755)
    DIST.mkdir(exist_ok=True)
    tarball = DIST / f"{name}.tar.gz"
    with tarfile.open(tarball, "w:gz", compresslevel=6) as archive:
        archive.add(stage, arcname=name, filter=_normalise)
    return tarball


def _normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the nvadmin bundle for this platform.")
    parser.add_argument("--no-smoke", action="store_true", help="do not run the built bundle")
    parser.add_argument("--reuse", action="store_true", help="reuse an existing PyInstaller build")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    compile_resources()
    if not (args.reuse and BUNDLE.is_dir()):
        run_pyinstaller()
    write_licences()
    if not args.no_smoke:
        smoke()
    size = folder_size(BUNDLE)
    print(f"bundle: {BUNDLE} ({size / 1e6:.0f} MB)")
    if sys.platform.startswith("linux"):
        tarball = linux_tarball()
        print(f"tarball: {tarball} ({tarball.stat().st_size / 1e6:.0f} MB)")
    print(f"built in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
