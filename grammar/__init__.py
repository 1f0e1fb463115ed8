"""The SMS message language of smsgate: ``parse(text, candidates)`` and its typed results.

Read ``grammar/language.py`` for the language itself, ``grammar/errors.py`` for the error
codes and ``grammar/semantics.py`` for the normalisations a report may carry.
"""

from grammar.errors import ERROR_CODES
from grammar.messages import (
    Broadcast,
    Cancel,
    Check,
    Confirm,
    Help,
    Incident,
    Message,
    Missing,
    ParseError,
    Pin,
    QuickCount,
    RegionRef,
    Register,
    Report,
    StationRef,
    Status,
    Totals,
)
from grammar.parser import parse
from grammar.semantics import NORMALISATIONS

__all__ = [
    "ERROR_CODES",
    "NORMALISATIONS",
    "Broadcast",
    "Cancel",
    "Check",
    "Confirm",
    "Help",
    "Incident",
    "Message",
    "Missing",
    "ParseError",
    "Pin",
    "QuickCount",
    "RegionRef",
    "Register",
    "Report",
    "StationRef",
    "Status",
    "Totals",
    "parse",
]
