"""Sizes in bytes as people read them (``512 bytes``, ``1.5 MB``): files written, WAL behind."""

from __future__ import annotations

_UNITS = ("bytes", "KB", "MB", "GB", "TB")


def byte_size(count: int) -> str:
    """``count`` bytes in the largest unit it fills (binary steps, one decimal)."""
    value, step = float(count), 0
    while value >= 1024 and step < len(_UNITS) - 1:
        value /= 1024
        step += 1
    return f"{value:,.0f} bytes" if step == 0 else f"{value:,.1f} {_UNITS[step]}"
