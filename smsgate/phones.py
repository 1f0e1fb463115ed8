"""Phone numbers in E.164, whatever way a volunteer or a provider wrote them."""

from __future__ import annotations

import phonenumbers


class InvalidPhone(ValueError):
    pass


def normalise_phone(raw: str, region: str = "ID") -> str:
    """``0812…``, ``62812…``, ``+62 812-…`` -> ``+62812…``; raises InvalidPhone otherwise."""
    text = (raw or "").strip()
    if text.isdigit() and text.startswith("62") and len(text) >= 10:
        text = "+" + text
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(raw) from exc
    if not phonenumbers.is_possible_number(number):
        raise InvalidPhone(raw)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
