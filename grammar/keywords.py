"""The keywords of the message language and the one-letter typos that are safe to accept.

A volunteer who types ``BANTUN`` or ``REKAPP`` should not pay for a second SMS. A typo is
accepted only when it is one edit (insert, delete or replace a letter) away from exactly one
word of the language and that word has at least four letters: ``CEKK`` is not read as ``CEK``
because three-letter words are too easily one edit away from something the sender meant.
"""

from __future__ import annotations

from functools import lru_cache

# Indonesian command word first (the canonical name, used in ``missing_argument``), then aliases.
COMMANDS: dict[str, tuple[str, ...]] = {
    "BANTUAN": ("BANTUAN", "HELP", "INFO", "?"),
    "BATAL": ("BATAL", "CANCEL"),
    "CEK": ("CEK", "CHECK"),
    "LAPOR": ("LAPOR", "INCIDENT"),
    "DAFTAR": ("DAFTAR", "REG", "REGISTER"),
    "REKAP": ("REKAP", "TOTAL"),
    "BELUM": ("BELUM", "MISSING"),
    "STATUS": ("STATUS",),
    "QC": ("QC",),
    "SIARAN": ("SIARAN", "BROADCAST"),
    "YA": ("YA", "YES"),
    "PIN": ("PIN",),
}

# Words of a report; they take part in the ambiguity check of typos but are never corrected.
REPORT_WORDS: tuple[str, ...] = ("TPS", "SAH", "TS", "DPT")

MIN_TYPO_LENGTH = 4

_CANONICAL: dict[str, str] = {
    alias: canonical for canonical, aliases in COMMANDS.items() for alias in aliases
}
_ALL_WORDS: tuple[str, ...] = (*_CANONICAL, *REPORT_WORDS)


def _one_edit_apart(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` differ by exactly one insertion, deletion or substitution."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    if len(a) == len(b):
        return a[i + 1 :] == b[i + 1 :]
    return a[i:] == b[i + 1 :]


@lru_cache(maxsize=4096)
def resolve_keyword(word: str) -> tuple[str, bool] | None:
    """The canonical command a typed word stands for, and whether it was a typo; else ``None``."""
    upper = word.upper()
    if upper and set(upper) == {"?"}:
        return "BANTUAN", False
    if upper in _CANONICAL:
        return _CANONICAL[upper], False
    if len(upper) > 12 or not upper.isalpha():
        return None
    near = [known for known in _ALL_WORDS if _one_edit_apart(upper, known)]
    if len(near) == 1 and len(near[0]) >= MIN_TYPO_LENGTH and near[0] in _CANONICAL:
        return _CANONICAL[near[0]], True
    return None
