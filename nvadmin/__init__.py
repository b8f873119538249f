"""nvadmin: desktop administration console for a workspace Activity Log."""

from __future__ import annotations

from functools import cache


@cache
def _installed_version() -> str:
    # importlib.metadata scans the installed packages: read only when the version is asked for
    # (``from nvadmin import __version__``), not by every ``import nvadmin``.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nvadmin")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0+unknown"


def __getattr__(name: str) -> str:
    if name == "__version__":
        return _installed_version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
