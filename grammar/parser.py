"""``parse``: the one entry point. Never raises, whatever it is given."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Mapping, Sequence

from grammar import errors
from grammar.errors import Rejection
from grammar.fastpath import parse_report_fast
from grammar.language import parse_normalised
from grammar.masking import mask
from grammar.messages import Message, ParseError
from grammar.normalise import is_empty, normalise
from grammar.semantics import Candidates, ReportDraft, build_report, candidate_set, ordered

DEFAULT_CANDIDATES: tuple[str, ...] = ("01", "02", "03")

log = logging.getLogger(__name__)


def _candidates(candidates: Sequence[str] | str) -> tuple[str, ...]:
    if isinstance(candidates, str):
        return (candidates,)
    return tuple(candidates)


def _aliases(aliases: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(aliases.items())) if aliases else ()


#: pyparsing is not thread-safe: the first calls of a parse action work out its arity by trial
#: (``_trim_arity``), and two threads doing that at once can leave it wrong for the life of
#: the process, so that every later parse raises. Threaded servers parse concurrently; one
#: pyparsing parse at a time costs nothing the GIL did not already serialise.
_PYPARSING = threading.Lock()


def parse_full(
    text: str, candidates: Sequence[str] = DEFAULT_CANDIDATES, aliases: Mapping[str, str] | None = None
) -> Message:
    """Parse normalised text with the pyparsing grammar alone (raises ``Rejection``)."""
    with _PYPARSING:
        result = parse_normalised(text)
    if isinstance(result, ReportDraft):
        return build_report(text, result, candidate_set(_candidates(candidates), _aliases(aliases)))
    return result


def _understand(text: str, contest: Candidates) -> Message:
    """The fast path for a plain report, else the full grammar (raises ``Rejection``)."""
    fast = parse_report_fast(text, contest)
    if fast is not None:
        return fast
    with _PYPARSING:
        draft_or_message = parse_normalised(text)
    if isinstance(draft_or_message, ReportDraft):
        return build_report(text, draft_or_message, contest)
    return draft_or_message


def parse(
    text: str, candidates: Sequence[str] = DEFAULT_CANDIDATES, aliases: Mapping[str, str] | None = None
) -> Message | ParseError:
    """Understand one SMS: a typed ``Message``, or a ``ParseError`` saying exactly what is wrong.

    ``candidates`` are the contest's candidate codes; a report must give each exactly once.
    ``aliases`` maps words (letters only, any case) to candidate codes, so ``AMIN=123`` can
    stand for ``01=123``. Whatever ``text`` is (any Unicode, any length, even not a string) the
    answer is a value: the gateway must never fail because of what someone typed.
    """
    try:
        return _parse(text, candidates, aliases)
    except Exception:  # the contract is "never raises": a bug of ours, not the sender's mistake
        shown = mask(text) if isinstance(text, str) else type(text).__name__
        log.exception("internal error in the grammar while parsing %r", shown)
        return ParseError(errors.UNEXPECTED_TOKEN, details=(errors.INTERNAL_ERROR,))


def _parse(
    text: object, candidates: Sequence[str], aliases: Mapping[str, str] | None
) -> Message | ParseError:
    if text is None:
        return ParseError(errors.EMPTY)
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("utf-8", "replace")
    if not isinstance(text, str):
        return ParseError(errors.UNEXPECTED_TOKEN, token=type(text).__name__[: errors.MAX_TOKEN_LENGTH])
    normalised = normalise(text)
    if is_empty(normalised.text):
        return ParseError(errors.EMPTY)
    contest = candidate_set(_candidates(candidates), _aliases(aliases))
    try:
        result = _understand(normalised.text, contest)
    except Rejection as rejection:
        return normalised.error(rejection)
    if normalised.changed:
        notes = ordered({"unicode_normalised", *result.normalisations})
        result = dataclasses.replace(result, normalisations=notes)
    return result
