"""nvadmin: desktop administration console for a workspace Activity Log."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("nvadmin")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
