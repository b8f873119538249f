"""Spreadsheet-safe cells: text a spreadsheet would run as a formula is shown as text."""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
_FORMULA_START_SET = frozenset(FORMULA_STARTS)


def neutralise(value: str | None) -> str | None:
    """The text of a free-text cell, made inert for spreadsheets."""
    if value and value[0] in _FORMULA_START_SET:
        return "'" + value
    return value
