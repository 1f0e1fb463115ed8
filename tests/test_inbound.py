"""``InboundSMS.cleaned`` returns the message itself when every text field is storable as it is;
whatever it returns must equal the message with ``storable`` applied to each field."""

from __future__ import annotations

from dataclasses import replace
from itertools import product

from smsgate.inbound import InboundSMS, storable

TEXTS = ("TPS 012 01=60 02=50 03=40 TS=3", "", "CEK\x00", "caf\u00e9", "half \ud83d emoji", "\udc80", "\x00")
FIELDS = ("provider_message_id", "from_number", "text", "to_number", "device")


def test_cleaned_equals_every_field_made_storable() -> None:
    plain = InboundSMS("twilio", "SM1", "+6281234567890", "TPS 012 01=60 02=50 03=40", "+15005550006")
    assert plain.cleaned() is plain  # nothing to change: no copy
    for field, text in product(FIELDS, TEXTS):
        sms = replace(plain, **{field: text})
        expected = replace(sms, **{name: storable(getattr(sms, name)) for name in FIELDS})
        assert sms.cleaned() == expected, (field, text)
        assert getattr(sms.cleaned(), field) == storable(text)
