"""The audit database's schema revisions (Alembic), and what later revisions share."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

VERSIONS = Path(__file__).with_name("versions")


def revision_module(file_name: str) -> ModuleType:
    """An earlier revision's module, for a later one that edits what it wrote (a revision's
    file name starts with a digit: no plain import)."""
    path = VERSIONS / file_name
    spec = importlib.util.spec_from_file_location(f"nvadmin_migration_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
