"""Phone numbers in E.164, whatever way a volunteer or a provider wrote them."""

from __future__ import annotations

import phonenumbers


class InvalidPhone(ValueError):
    pass


def normalise_phone(raw: str, region: str = "ID") -> str:
    """``0812…``, ``62812…``, ``+62 812-…`` -> ``+62812…``; raises InvalidPhone otherwise."""
    text = (raw or "").strip()
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
