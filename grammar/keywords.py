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

FILLER_WORDS: tuple[str, ...] = (
    "PASLON",
    "PASANGAN",
    "CALON",
    "NOMOR",
    "NMR",
    "NO",
    "URUT",
    "SUARA",
    "HASIL",
    "PEROLEHAN",
)
"""Words around the numbers of a report that carry no value (``paslon 1: 123``, ``No. 2``)."""

CLOSINGS: tuple[str, ...] = (
    "TERIMA KASIH",
    "TERIMAKASIH",
    "TRIMA KASIH",
    "MAKASIH",
    "MKSH",
    "TRIMS",
    "TKS",
    "THX",
    "TQ",
    "SALAM",
)
"""What may end a complete report without meaning anything (a ``.`` or ``!`` may follow)."""

LABEL_WORDS: tuple[str, ...] = ("SAH", "TS", "DPT", "TIDAK", "TDK", "JML", "JUMLAH", "SELURUH", "SUARA")
"""The words of the C.Hasil form's labels for the extras (``JML SAH``, ``SUARA TIDAK SAH``)."""

MAX_ALIAS_LENGTH = 20

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


def alias_problem(word: str) -> str | None:
    """Why ``word`` cannot name a candidate in a report, or ``None`` when it can.

    An alias must be read as that candidate and nothing else: letters only, and not a word the
    language already gives a meaning (a command or a safe typo of one, ``TPS``, ``PIN``, a label,
    a filler word, a closing) nor one the grammar would read as a number (``OO`` is 00).
    """
    upper = word.upper()
    if not (upper.isascii() and upper.isalpha()) or not 2 <= len(upper) <= MAX_ALIAS_LENGTH:
        return f"must be 2 to {MAX_ALIAS_LENGTH} letters A-Z"
    if set(upper) == {"O"}:
        return "reads as the number zero"
    if upper.startswith("TPS") or upper == "PIN":
        return "is a word of the message language"
    if resolve_keyword(upper) is not None:
        return "is a command word (or one letter away from one)"
    closing_words = {part for closing in CLOSINGS for part in closing.split()}
    if upper in LABEL_WORDS or upper in FILLER_WORDS or upper in closing_words:
        return "is a word of the message language"
    return None
