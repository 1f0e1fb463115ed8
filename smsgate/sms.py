"""Making text fit one SMS: GSM-7 characters only, at most 160 of them."""

from __future__ import annotations

import unicodedata

SMS_LIMIT = 160

# The GSM 03.38 default alphabet (basic set only: the extension table costs two septets).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_REPLACEMENTS = {"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "…": "...", "\t": " "}


def to_gsm7(text: str) -> str:
    """Plain-ASCII-leaning GSM-7 text: smart quotes and dashes replaced, accents stripped,
    anything else dropped, so a reply never switches the SMS to UCS-2 (70 chars)."""
    if GSM7_BASIC.issuperset(text):  # nearly every reply: one set operation, not one per character
        return text
    out: list[str] = []
    for char in text:
        char = _REPLACEMENTS.get(char, char)
        if all(c in GSM7_BASIC for c in char):
            out.append(char)
            continue
        decomposed = unicodedata.normalize("NFKD", char)
        out.append("".join(c for c in decomposed if c in GSM7_BASIC and c.isascii()))
    return "".join(out)


def fit(*parts: str, limit: int = SMS_LIMIT) -> str:
    """Join ``parts`` with spaces, dropping optional trailing parts until it fits.

    The first part is essential; later parts are extras (an example, a hint) that go first
    when space is short. As a last resort the essential part is cut with ``..``.
    """
    kept = [to_gsm7(p).strip() for p in parts if p]
    while len(kept) > 1 and len(" ".join(kept)) > limit:
        kept.pop()
    text = " ".join(kept)
    if len(text) > limit:
        text = text[: limit - 2].rstrip() + ".."
    return text


def is_single_gsm7_sms(text: str) -> bool:
    return len(text) <= SMS_LIMIT and all(c in GSM7_BASIC for c in text)
