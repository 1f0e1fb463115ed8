"""The provider-neutral shape of an SMS, shared by every webhook and the core.

A webhook module turns its provider's request into an ``InboundSMS``, hands it to
``Gateway.receive`` and renders the ``Reply`` in its own format. Nothing here knows SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class InboundSMS:
    provider: str
    provider_message_id: str
    from_number: str
    text: str
    to_number: str = ""
    received_at: datetime | None = None
    #: The gateway device the message came through (Android ``deviceId``, Kannel's ``smsc``
    #: id, Gammu's ``PHONE_ID``, Twilio's ``To``), so a reply can go back through the same one.
    device: str = ""
    #: False when the provider cannot carry the reply in its HTTP response (Android gateway):
    #: the reply is then queued as an outbound SMS in the transaction that logs the message.
    reply_inline: bool = True


@dataclass(frozen=True)
class Reply:
    """What to answer. ``text`` is ``None`` when nothing should be sent (flood control)."""

    text: str | None
    outcome: str = "accepted"


@dataclass(frozen=True)
class DeliveryReport:
    """A provider's word on an SMS we sent (Twilio status callback, Android ``sms:failed``).

    ``status`` is the provider's own word, kept as it came; ``failed`` says whether it means
    the SMS will not arrive, with ``error`` saying why.
    """

    provider: str
    provider_message_id: str
    status: str
    failed: bool = False
    error: str = ""


class Gateway(Protocol):
    def receive(self, sms: InboundSMS) -> Reply: ...

    def delivery_report(self, report: DeliveryReport) -> None: ...
