"""Spreadsheet-safe cells: text a spreadsheet would run as a formula is shown as text.

A cell starting with a formula start gets a leading apostrophe, which spreadsheets show as
text and never evaluate. So does a cell that already starts with an apostrophe: a spreadsheet
would hide that one (the stored ``'abc`` would show as ``abc``), and a stored ``'=1+1`` would
look like the neutralised ``=1+1``. Every cell starting with an apostrophe therefore carries
exactly one that nvadmin added, and :func:`restore` takes exactly that one off.
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
APOSTROPHE = "'"
# The first characters that get an apostrophe in front (each below "A": see export.columns).
NEUTRALISED_STARTS = (*FORMULA_STARTS, APOSTROPHE)
# The rule in words, for manifests and help texts.
NEUTRALISING = (
    "cells starting with = + - @ tab CR LF or an apostrophe are prefixed with an apostrophe"
)
_NEUTRALISED_START_SET = frozenset(NEUTRALISED_STARTS)


def neutralise(value: str | None) -> str | None:
    """The text of a free-text cell, made inert for spreadsheets."""
    if value and value[0] in _NEUTRALISED_START_SET:
        return APOSTROPHE + value
    return value


def restore(cell: str) -> str:
    """The stored text of a neutralised cell (the inverse of :func:`neutralise`)."""
    return cell[1:] if cell.startswith(APOSTROPHE) else cell
