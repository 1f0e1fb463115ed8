"""PINs out of every text that is kept: the message log, the logs, a bug report.

The grammar owns the rule because it owns the syntax: ``PIN`` as a word, then the digits, in
every spelling ``parse`` accepts (``PIN 4821``, ``PIN:4821``, ``PIN 1111 2222``).
"""

from __future__ import annotations

import re

_MASKED = re.compile(r"(?<![^\s#*,;])PIN[\s#*,;=:]*\*\*\*\*", re.I)
#: ``PIN`` as a word, then up to two groups of digits (``PIN 4821``, ``PIN:4821``, ``PIN 1111 2222``).
_MASK = re.compile(r"(?<![^\s#*,;])(PIN)([\s#*,;]*[=:]?[\s#*,;]*)([0-9]+)(?:([\s#*,;]+)([0-9]+))?", re.I)


def mask(text: str) -> str:
    """``text`` with every PIN replaced by ``****``: what the message log and the logs keep."""

    def hide(match: re.Match[str]) -> str:
        second = f"{match.group(4)}****" if match.group(5) else ""
        return f"{match.group(1)}{match.group(2)}****{second}"

    return _MASK.sub(hide, text)


def masked(text: str) -> bool:
    """Whether a stored text carried a PIN (now ``PIN ****``)."""
    return _MASKED.search(text) is not None
