"""Layers only look down.

``LAYERS`` lists nvadmin's packages from the bottom up. A module may import its own package
and anything below it, never anything above it or beside it: an import that points up or
sideways fails here, whether it sits at the top of a module or inside a function.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import nvadmin

PACKAGE = Path(nvadmin.__file__).parent

#: Bottom first. Each entry is one layer; a module belongs to the longest entry it starts with.
LAYERS = (
    ("nvadmin", "nvadmin.errors", "nvadmin.paths", "nvadmin.log"),  # the ground floor
    ("nvadmin.identity",),  # roles and permissions: who someone is
    ("nvadmin.files",),  # atomic files, spreadsheet-safe cells
    ("nvadmin.db",),  # the stored event model, engines, migrations
    ("nvadmin.workers",),  # cancellable, reported background work
    ("nvadmin.query",),  # filters, search language, paging, local time, workspaces
    ("nvadmin.audit",),  # the log itself: chain, access log, checkpoints, verification
    ("nvadmin.auth",),  # staff accounts and sign-in
    ("nvadmin.casefile",),
    ("nvadmin.analysis",),  # insights, flag rules, reports
    ("nvadmin.export",),  # CSV exports, manifests, export requests and their disclosures
    ("nvadmin.demo",),  # demo clinics and the seeder
    ("nvadmin.pdf",),  # reports laid out as pages (QtGui, no windows)
    ("nvadmin.context",),
    ("nvadmin.commands",),
    ("nvadmin.ui",),
    ("nvadmin.app",),
    ("nvadmin.__main__",),
)


def layer_of(module: str) -> int:
    best, rank = "", -1
    for index, layer in enumerate(LAYERS):
        for prefix in layer:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
                best, rank = prefix, index
    assert rank >= 0, f"{module} is in no layer: add it to LAYERS"
    return rank


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    source = path.read_text(encoding="utf-8")
    return imports_in(source, module_name(path), path.name == "__init__.py")


def imports_in(source: str, module: str, is_package: bool) -> set[str]:
    """Every nvadmin module ``source`` imports, at any depth of its code."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            # ``from nvadmin.x import y`` may name a submodule: judge it as that module
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "nvadmin" or name.startswith("nvadmin.")}


def sources() -> list[Path]:
    return [path for path in sorted(PACKAGE.rglob("*.py")) if "_generated" not in path.parts]


def known(name: str) -> bool:
    return (PACKAGE.parent / Path(*name.split("."))).with_suffix(".py").exists() or (
        PACKAGE.parent / Path(*name.split("."))
    ).is_dir()


def test_every_import_points_down() -> None:
    wrong = []
    for path in sources():
        module = module_name(path)
        own = layer_of(module)
        for target in sorted(imports(path)):
            if known(target) and layer_of(target) > own:
                wrong.append(f"{module} imports {target}, a layer above it")
            elif known(target) and layer_of(target) == own and own > 0:
                same = next(p for p in LAYERS[own] if module == p or module.startswith(p + "."))
                if not (target == same or target.startswith(same + ".")):
                    wrong.append(f"{module} imports {target}, beside it")
    assert not wrong, "\n".join(wrong)


def test_the_check_sees_upward_imports_in_any_spelling() -> None:
    """The rule itself: a query module reaching up to the UI is caught however it imports."""
    source = (
        "from nvadmin.ui import palette\n"
        "def f() -> None:\n"
        "    from ..audit import chain\n"
        "    import nvadmin.export.service\n"
    )
    found = imports_in(source, "nvadmin.query.paging", is_package=False)
    assert {"nvadmin.ui.palette", "nvadmin.audit.chain", "nvadmin.export.service"} <= found
    below = layer_of("nvadmin.query.paging")
    assert all(layer_of(name) > below for name in ("nvadmin.ui", "nvadmin.audit", "nvadmin.export"))


def test_every_package_is_in_a_layer() -> None:
    for path in sources():
        layer_of(module_name(path))


def test_domain_packages_do_not_import_qt_widgets() -> None:
    code = (
        "import sys, importlib, pkgutil\n"
        "import nvadmin\n"
        "below_ui = ['nvadmin.db', 'nvadmin.query', 'nvadmin.audit', 'nvadmin.auth',\n"
        "            'nvadmin.export', 'nvadmin.casefile', 'nvadmin.analysis', 'nvadmin.demo']\n"
        "for name in below_ui:\n"
        "    package = importlib.import_module(name)\n"
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
