"""Why a message was not understood: the stable error codes and the internal rejection.

The reply catalogue in ``smsgate`` keys on ``ParseError.code``, so these strings are a
public contract. Renaming one breaks every reply that names it.

``empty``
    Nothing but whitespace, separators and punctuation (no letter, digit, ``?`` or emoji).
``unknown_command``
    The first word is neither a keyword (nor an unambiguous one-letter typo of one) nor the
    start of a report. ``token`` is that word.
``unknown_candidate``
    A candidate code not in the contest. ``field`` is the code as normalised (``"04"``),
    ``token`` the code as typed (``"4"``).
``missing_candidate``
    A candidate was not given. ``field`` is the first missing code, ``details`` all of them.
``duplicate_candidate``
    A candidate was given twice. ``field`` is the code, ``token``/``position`` the second one.
``bad_number``
    A count that is not a clean integer 0..9999: negative, too large, or malformed (``01==``,
    ``01=``, ``01=1,230``, ``01=12 3``, ``01=1.230``). ``field`` is the candidate code or the
    keyword (``"SAH"``, ``"TS"``, ``"DPT"``), ``token`` what was typed for the value. A PIN that
    is not 4 to 6 digits (the ``PIN`` command or suffix) is ``bad_number`` with ``field="PIN"``.
``sum_mismatch``
    ``SAH`` differs from the sum of the votes: ``field="SAH"``, ``expected`` the SAH value,
    ``actual`` the sum of the votes.
``no_station``
    A report form that needs a station has none (positional counts or a bare number without
    ``TPS``, the ``TPS`` keyword without a number), or ``STATUS`` without a full station ID.
``bad_station``
    A TPS number outside 1..999, or a malformed station ID or desa code. ``token`` as typed.
``positional_count``
    Positional counts that are not exactly one per candidate: ``expected`` is the number of
    candidates, ``actual`` how many numbers were typed.
``missing_argument``
    A command that needs an argument was sent without it (``LAPOR``, ``DAFTAR`` needs a code
    and a name, ``STATUS``, ``SIARAN``, ``YA``, ``PIN``). ``field`` is the Indonesian command word.
``unexpected_token``
    Anything else not understood inside a report or a command; ``token`` and ``position``
    point at it. ``field`` names ``SAH``/``TS``/``DPT`` when one of them is given twice;
    ``details == ("too_long",)`` when a report goes on beyond 2,000 characters.
    ``details == ("internal_error",)`` marks a bug in this package caught so that ``parse``
    still returns (it should never be seen): ``parse`` logs it with its traceback and the
    text (PINs masked) on the ``grammar.parser`` logger, and the core answers that the fault
    is the system's, not the sender's.

Ambiguity has no code of its own: an ambiguous value is ``bad_number`` or
``unexpected_token``, an ambiguous keyword typo is ``unknown_command``.

``position`` is always a 0-based offset into the text exactly as it was passed to ``parse``,
before any Unicode normalisation. ``token`` is the original text at that place, cut to at most
``MAX_TOKEN_LENGTH`` characters so a reply can always quote it.
"""

from __future__ import annotations

EMPTY = "empty"
UNKNOWN_COMMAND = "unknown_command"
UNKNOWN_CANDIDATE = "unknown_candidate"
MISSING_CANDIDATE = "missing_candidate"
DUPLICATE_CANDIDATE = "duplicate_candidate"
BAD_NUMBER = "bad_number"
SUM_MISMATCH = "sum_mismatch"
NO_STATION = "no_station"
BAD_STATION = "bad_station"
POSITIONAL_COUNT = "positional_count"
MISSING_ARGUMENT = "missing_argument"
UNEXPECTED_TOKEN = "unexpected_token"
#: ``ParseError.details`` of a bug caught inside ``parse`` (with ``UNEXPECTED_TOKEN``).
INTERNAL_ERROR = "internal_error"

ERROR_CODES: tuple[str, ...] = (
    EMPTY,
    UNKNOWN_COMMAND,
    UNKNOWN_CANDIDATE,
    MISSING_CANDIDATE,
    DUPLICATE_CANDIDATE,
    BAD_NUMBER,
    SUM_MISMATCH,
    NO_STATION,
    BAD_STATION,
    POSITIONAL_COUNT,
    MISSING_ARGUMENT,
    UNEXPECTED_TOKEN,
)

MAX_TOKEN_LENGTH = 40


class Rejection(Exception):
    """Raised inside the grammar when the message is understood to be wrong.

    Positions here are offsets into the *normalised* text; ``parse`` maps them back to the
    original text when it turns the rejection into a :class:`~grammar.messages.ParseError`.
    Parse actions raise it (pyparsing lets non-``ParseException`` errors through) because a
    decision such as "this candidate does not exist" must not be backtracked into a vaguer one.
    """

    def __init__(
        self,
        code: str,
        start: int | None = None,
        end: int | None = None,
        *,
        field: str | None = None,
        expected: int | None = None,
        actual: int | None = None,
        details: tuple[str, ...] = (),
    ) -> None:
        super().__init__(code)
        self.code = code
        self.start = start
        self.end = start if end is None else end
        self.field = field
        self.expected = expected
        self.actual = actual
        self.details = details
