"""The provider-neutral shape of an SMS, shared by every webhook and the core.

A webhook module turns its provider's request into an ``InboundSMS``, hands it to
``Gateway.receive`` and renders the ``Reply`` in its own format. Nothing here knows SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

REPLACEMENT = "\ufffd"


def storable(text: str) -> str:
    """``text`` with everything a database refuses replaced by U+FFFD.

    A JSON body may carry a lone UTF-16 surrogate (``"\\ud83d"``, half an emoji) and any body
    may carry NUL; PostgreSQL and SQLite's UTF-8 refuse both, and one refused character would
    lose the whole message. Proper surrogate pairs are joined into their character.
    """
    if text.isascii() and "\x00" not in text:
        return text
    text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text.replace("\x00", REPLACEMENT)


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

    def cleaned(self) -> InboundSMS:
        """This message with every text field made storable (see ``storable``): itself when
        they all are already, as nearly every message is (no copy made)."""
        fields = (self.provider_message_id, self.from_number, self.text, self.to_number, self.device)
        if all(field.isascii() and "\x00" not in field for field in fields):
            return self
        return replace(
            self,
            provider_message_id=storable(self.provider_message_id),
            from_number=storable(self.from_number),
            text=storable(self.text),
            to_number=storable(self.to_number),
            device=storable(self.device),
        )


@dataclass(frozen=True)
class Reply:
    """What to answer. ``text`` is ``None`` when nothing should be sent (flood control).

    ``stored`` is False only when not even the raw message could be committed: a provider
    that retries must then get an answer that makes it deliver the message again (a 5xx),
    never a 2xx, which would tell it the message is safe.
    """

    text: str | None
    outcome: str = "accepted"
    stored: bool = True


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


@dataclass(frozen=True)
class Heartbeat:
    """A device saying it is alive (Android ``system:ping``): ``device`` as its provider names it
    (the app's ``deviceId``), with the app's own verdict on its health (``pass``/``warn``/``fail``)."""

    provider: str
    device: str
    health: str = ""
    battery: int | None = None


class Gateway(Protocol):
    def receive(self, sms: InboundSMS) -> Reply: ...

    def delivery_report(self, report: DeliveryReport) -> bool: ...

    def heartbeat(self, beat: Heartbeat) -> None: ...
