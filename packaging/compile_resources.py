"""Compile resources/ into the application: the .qrc, the Python resource module, icon sizes.

    uv run python packaging/compile_resources.py          # regenerate everything
    uv run python packaging/compile_resources.py --check  # exit 1 if anything is stale

Writes, all committed to the repository so a fresh clone runs with plain ``uv run``:

- ``resources/resources.qrc``: every SVG under resources/icons and the application icon;
- ``nvadmin/ui/_generated/resources_rc.py``: the qrc compiled by pyside6-rcc (uncompressed,
  format 1: no time stamps, so the same sources always give the same bytes);
- ``resources/app/png/nvadmin-<N>.png``, ``nvadmin.ico``, ``nvadmin.icns``: the application
  icon for the Linux .desktop file, the Windows executable and the macOS bundle.

The packaging build (packaging/build.py) runs this first; tests/gui/test_resources.py fails
when the committed module no longer matches the files in resources/.
"""

from __future__ import annotations

import argparse
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
RESOURCES = ROOT / "resources"
QRC = RESOURCES / "resources.qrc"
MODULE = ROOT / "nvadmin" / "ui" / "_generated" / "resources_rc.py"
APP_SVG = RESOURCES / "app" / "nvadmin.svg"
PNG_DIR = RESOURCES / "app" / "png"
ICO = RESOURCES / "app" / "nvadmin.ico"
ICNS = RESOURCES / "app" / "nvadmin.icns"
PNG_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
# icns element types that hold PNG data, by pixel size (Apple's "ic07".."ic10", "icp4".."icp6").
ICNS_TYPES = {16: b"icp4", 32: b"icp5", 64: b"icp6", 128: b"ic07", 256: b"ic08", 512: b"ic09"}


def qrc_files() -> list[str]:
    """Paths (relative to resources/) that go into the compiled module, in a stable order."""
    files = sorted(p.relative_to(RESOURCES).as_posix() for p in RESOURCES.glob("icons/*/*.svg"))
    return [APP_SVG.relative_to(RESOURCES).as_posix(), *files]


def qrc_text() -> str:
    lines = ['<!DOCTYPE RCC><RCC version="1.0">', "<qresource>"]
    lines += [f'    <file alias="{escape(f)}">{escape(f)}</file>' for f in qrc_files()]
    lines += ["</qresource>", "</RCC>", ""]
    return "\n".join(lines)


def _rcc_command() -> list[str]:
    found = shutil.which("pyside6-rcc", path=str(Path(sys.executable).parent))
    found = found or shutil.which("pyside6-rcc")
    if found:
        return [found]
    # The console script may be missing (e.g. an unusual install); the module is not.
    return [sys.executable, "-c", "from PySide6.scripts.pyside_tool import rcc; rcc()"]


def compiled_module(qrc: Path) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "resources_rc.py"
        subprocess.run(
            [
                *_rcc_command(),
                "--no-compress",
                "--format-version",
                "1",
                "-g",
                "python",
                "-o",
                str(out),
                str(qrc),
            ],
            check=True,
            cwd=qrc.parent,
        )
        return out.read_bytes()


def render_pngs() -> dict[int, bytes]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication([])
    renderer = QSvgRenderer(str(APP_SVG))
    if not renderer.isValid():
        raise SystemExit(f"cannot read {APP_SVG}")
    pngs: dict[int, bytes] = {}
    for size in PNG_SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        data = QByteArray()
        buffer = QBuffer(data)
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        image.save(buffer, "PNG")
        buffer.close()
        pngs[size] = bytes(data.data())
    return pngs


def ico_bytes(pngs: dict[int, bytes]) -> bytes:
    """A Windows .ico holding PNG images (supported since Windows Vista)."""
    header = struct.pack("<HHH", 0, 1, len(ICO_SIZES))
    offset = 6 + 16 * len(ICO_SIZES)
    entries, blobs = b"", b""
    for size in ICO_SIZES:
        data = pngs[size]
        dim = 0 if size >= 256 else size  # 0 means 256 in the directory entry
        entries += struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(data), offset)
        blobs += data
        offset += len(data)
    return header + entries + blobs


def icns_bytes(pngs: dict[int, bytes]) -> bytes:
    body = b"".join(
        kind + struct.pack(">I", 8 + len(pngs[size])) + pngs[size]
        for size, kind in ICNS_TYPES.items()
    )
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def outputs() -> dict[Path, bytes]:
    """Every generated file and the bytes it should hold."""
    pngs = render_pngs()
    wanted: dict[Path, bytes] = {QRC: qrc_text().encode()}
    with tempfile.TemporaryDirectory() as tmp:
        # Compile from a copy of the qrc as it should be, so --check does not write anything.
        staged = Path(tmp) / "resources"
        shutil.copytree(RESOURCES, staged, ignore=shutil.ignore_patterns("png", "*.ico", "*.icns"))
        (staged / "resources.qrc").write_text(qrc_text(), encoding="utf-8")
        wanted[MODULE] = compiled_module(staged / "resources.qrc")
    for size, data in pngs.items():
        wanted[PNG_DIR / f"nvadmin-{size}.png"] = data
    wanted[ICO] = ico_bytes(pngs)
    wanted[ICNS] = icns_bytes(pngs)
    return wanted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args(argv)
    stale = []
    for path, data in outputs().items():
        if path.exists() and path.read_bytes() == data:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    for path in stale:
        verb = "stale" if args.check else "wrote"
        print(f"{verb}: {path.relative_to(ROOT)}")
    if args.check and stale:
        print("run: uv run python packaging/compile_resources.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
