"""Layers only look down: the domain packages never pull in Qt widgets."""

from __future__ import annotations

import subprocess
import sys


def test_domain_packages_do_not_import_qt_widgets() -> None:
    code = (
        "import sys, importlib, pkgutil\n"
        "import nvadmin.db, nvadmin.audit, nvadmin.auth, nvadmin.export, nvadmin.casefile\n"
        "for package in (nvadmin.db, nvadmin.audit, nvadmin.auth, nvadmin.export,\n"
        "                nvadmin.casefile):\n"
        "    for info in pkgutil.walk_packages(package.__path__, package.__name__ + '.'):\n"
        "        if '.migrations' not in info.name:\n"
        "            importlib.import_module(info.name)\n"
        "bad = [m for m in sys.modules if m.startswith(('PySide6.QtWidgets', 'nvadmin.ui'))]\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_importing_the_entry_point_does_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    code = "import nvadmin.__main__, nvadmin.app, nvadmin.context"
    subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        env={"NVADMIN_HOME": str(home), "PATH": "/usr/bin:/bin"},
    )
    assert not home.exists(), "importing created files"
