"""What a coordinator types in the message log's phone field, as an indexed condition.

Numbers are stored in E.164 (``+6281234567890``). People type them as they know them:

- the whole number or its beginning, written locally (``0812 3456 7890``, ``0812-3456``: a 0
  then any digit but 0) or internationally (``+62 812…``, ``62812…`` of at least 10 digits):
  numbers *starting* with it, read as E.164 (``0812`` is ``+62812``);
- other digits (``4567890``, ``00004``, ``812 3456 7890``): numbers *ending* with them, as
  someone reads the last digits off a list or a caller ID. (Last digits such as ``0512`` read
  as the start of a local number: type one more digit before them.)

Spaces, dashes, dots and brackets are ignored; anything else (a letter) is refused with a
message instead of silently finding nothing. A fragment from the middle of a number is not a
search: matching anywhere needed a trigram index, which serves digit strings poorly (every
number shares most of its trigrams: a search took about a second on a national night).

On PostgreSQL a start is a range on a ``varchar_pattern_ops`` index and an end a range on an
index of the reversed number (``smsgate.models.postgres_indexes.PHONE_INDEXES``); SQLite
compares the same way without them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func

_SEPARATORS = re.compile(r"[\s\-.()]")
_NUMBER = re.compile(r"\+?[0-9]+")
#: A number written locally: the trunk prefix 0, then an operator or area code (never 0).
#: Last digits may well begin with zeros (``…00004``): those stay an end.
_LOCAL = re.compile(r"0[1-9]")
#: ``62…`` is a country code only on a whole number (as ``phones.normalise_phone`` reads it);
#: shorter digits beginning with 62 are the end of a number.
MIN_INTERNATIONAL_DIGITS = 10


class InvalidPhoneSearch(ValueError):
    """The phone field holds something that is not part of a phone number."""


@dataclass(frozen=True)
class PhoneSearch:
    """``kind`` is ``"start"`` (``value`` an E.164 beginning) or ``"end"`` (``value`` digits)."""

    kind: str
    value: str


def parse(typed: str) -> PhoneSearch | None:
    """The search a coordinator means by ``typed``; None when it is empty."""
    text = _SEPARATORS.sub("", typed or "")
    if not text:
        return None
    if not _NUMBER.fullmatch(text):
        raise InvalidPhoneSearch(typed)
    if text.startswith("+"):
        return PhoneSearch("start", text)
    if _LOCAL.match(text):
        return PhoneSearch("start", "+62" + text[1:])
    if text.startswith("62") and len(text) >= MIN_INTERNATIONAL_DIGITS:
        return PhoneSearch("start", "+" + text)
    return PhoneSearch("end", text)


def condition(column: Any, search: PhoneSearch, dialect: str) -> ColumnElement[bool]:
    """``column`` (an E.164 number) matching ``search``, in a form an index serves on
    PostgreSQL. The values hold only digits and ``+``: nothing a LIKE pattern would read."""
    if search.kind == "start":
        return column.like(search.value + "%")
    if dialect == "postgresql":
        return func.reverse(column).like(search.value[::-1] + "%")
    return column.like("%" + search.value)
