"""Phone numbers in E.164, whatever way a volunteer or a provider wrote them."""

from __future__ import annotations

import re

import phonenumbers


class InvalidPhone(ValueError):
    pass


#: An Indonesian number already in E.164 (``+62``, a national number of 7 to 17 digits not
#: starting with 0): what providers deliver on every inbound SMS. ``phonenumbers`` gives such a
#: number back unchanged (nothing to strip: Indonesia's national prefix is ``0``; every length
#: from 7 to 17 is a possible one), so it is answered without parsing (about 30 us an SMS);
#: ``tests/test_phones.py`` holds that to what ``phonenumbers`` answers.
_E164_ID = re.compile(r"\+62[1-9][0-9]{6,16}")


def normalise_phone(raw: str, region: str = "ID") -> str:
    """``0812…``, ``62812…``, ``+62 812-…`` -> ``+62812…``; raises InvalidPhone otherwise."""
    text = (raw or "").strip()
    if region == "ID" and _E164_ID.fullmatch(text):
        return text
    return parsed_phone(text, raw, region)


def parsed_phone(text: str, raw: str, region: str = "ID") -> str:
    """``normalise_phone`` by ``phonenumbers`` itself, for any stripped ``text`` (``raw`` is
    what the ``InvalidPhone`` names)."""
    if any(character.isalpha() for character in text):
        # phonenumbers reads letters as a keypad would (vanity numbers): "789O" would become
        # another, valid-looking number. A letter in a phone number is a typo, never a digit.
        raise InvalidPhone(raw)
    if text.isdigit() and text.startswith("62") and len(text) >= 10:
        text = "+" + text
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(raw) from exc
    if not phonenumbers.is_possible_number(number):
        raise InvalidPhone(raw)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def is_mobile(phone: str, region: str = "ID") -> bool:
    """Whether an E.164 number can receive SMS: a mobile number, not a landline like (0511) 3252100."""
    number = phonenumbers.parse(phone, region)
    kind = phonenumbers.number_type(number)
    return kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)
