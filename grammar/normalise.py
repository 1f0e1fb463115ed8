"""Unicode hardening: turn whatever a phone or gateway sent into plain text the grammar reads.

Feature phones and SMS gateways deliver full-width characters (``＝``, ``０１``), no-break
spaces, smart quotes, zero-width characters and the odd NUL. The grammar only has to know
ASCII punctuation and the plain space, because this module maps everything else first:

* tabs and line breaks become a plain space (silently: they are ordinary whitespace);
* control and format characters (NUL, zero-width joiners, byte-order marks) are removed;
* any other Unicode space becomes a plain space; smart quotes become ``'``/``"``; dashes ``-``;
* everything else goes through NFKC (full-width to ASCII, ligatures apart, ...).

Every character of the result remembers which characters of the original it came from, so an
error can point at the original text (``ParseError.position``/``token``). Anything other than
tabs and line breaks being changed is reported as the ``unicode_normalised`` normalisation.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from grammar.errors import MAX_TOKEN_LENGTH, Rejection
from grammar.messages import ParseError

_NOT_PRINTABLE_ASCII = re.compile(r"[^\x20-\x7e]")
_CLUSTERS = re.compile(r"[\x20-\x7e]+|.", re.DOTALL)
_ASCII_WHITESPACE = frozenset("\t\n\r\x0b\x0c")
_QUOTES = {
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u201b": "'",
    "\u2032": "'",
    "\u00b4": "'",
    "\u0060": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u201f": '"',
    "\u2033": '"',
    "\u00ab": '"',
    "\u00bb": '"',
}
_MEANINGFUL_ASCII = re.compile(r"[0-9A-Za-z?]")


@dataclass(frozen=True, slots=True)
class Normalised:
    """The normalised text and, unless it is the original itself, where each character came from.

    ``starts[i]``/``ends[i]`` are the original offsets of the characters that produced
    normalised character ``i``; ``None`` means the text was printable ASCII and is unchanged.
    """

    original: str
    text: str
    starts: list[int] | None = None
    ends: list[int] | None = None
    changed: bool = False

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Map a half-open span of the normalised text back to the original."""
        if self.starts is None or self.ends is None:
            return start, end
        n = len(self.starts)
        orig_start = self.starts[start] if start < n else len(self.original)
        orig_end = self.ends[end - 1] if end > start and end - 1 < n else orig_start
        return orig_start, max(orig_start, orig_end)

    def error(self, rejection: Rejection) -> ParseError:
        """Turn a rejection (normalised offsets) into the public error (original offsets)."""
        position = token = None
        if rejection.start is not None:
            start, end = self.span(rejection.start, rejection.end if rejection.end is not None else 0)
            position = start
            token = self.original[start:end][:MAX_TOKEN_LENGTH]
        return ParseError(
            code=rejection.code,
            token=token,
            position=position,
            field=rejection.field,
            expected=rejection.expected,
            actual=rejection.actual,
            details=rejection.details,
        )


def _normalise_cluster(cluster: str) -> str:
    """One base character with its combining marks, as the grammar should see it."""
    first = cluster[0]
    if first in _ASCII_WHITESPACE:
        return " "
    category = unicodedata.category(first)
    if category[0] == "C":
        return ""
    if category[0] == "Z":
        return " "
    if first in _QUOTES:
        return _QUOTES[first]
    if category == "Pd":
        return "-"
    folded = unicodedata.normalize("NFKC", cluster)
    return "".join(" " if ch.isspace() else ch for ch in folded if unicodedata.category(ch)[0] != "C")


def _is_combining_at(original: str, pieces: list[tuple[int, int]], index: int) -> bool:
    """Whether piece ``index`` is a single combining mark (it belongs to the character before)."""
    if index >= len(pieces):
        return False
    start, end = pieces[index]
    return end - start == 1 and unicodedata.combining(original[start]) != 0


def _keep(original: str, start: int, end: int, out: list[str], starts: list[int], ends: list[int]) -> None:
    """Copy printable ASCII through unchanged, one original offset per character."""
    out.append(original[start:end])
    starts.extend(range(start, end))
    ends.extend(range(start + 1, end + 1))


def normalise(original: str) -> Normalised:
    """Map ``original`` to the text the grammar parses (linear in its length)."""
    if not _NOT_PRINTABLE_ASCII.search(original):
        return Normalised(original, original)
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    changed = False
    pieces = [m.span() for m in _CLUSTERS.finditer(original)]
    index = 0
    while index < len(pieces):
        start, end = pieces[index]
        index += 1
        if _is_combining_at(original, pieces, index):
            # The last character of this piece is the base of a cluster with combining marks.
            if end - start > 1:
                _keep(original, start, end - 1, out, starts, ends)
                start = end - 1
            while _is_combining_at(original, pieces, index):
                end = pieces[index][1]
                index += 1
        elif " " <= original[start] <= "~":
            _keep(original, start, end, out, starts, ends)
            continue
        cluster = original[start:end]
        replacement = _normalise_cluster(cluster)
        if replacement != cluster and cluster[0] not in _ASCII_WHITESPACE:
            changed = True
        out.append(replacement)
        starts.extend([start] * len(replacement))
        ends.extend([end] * len(replacement))
    return Normalised(original, "".join(out), starts, ends, changed)


def is_empty(text: str) -> bool:
    """True when nothing but whitespace and punctuation is left: there is nothing to answer."""
    if _MEANINGFUL_ASCII.search(text):
        return False
    return not any(ch.isalnum() or unicodedata.category(ch) == "So" for ch in text)
