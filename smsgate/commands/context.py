"""What a command handler is given and what it gives back: ``Context`` in, ``Outcome`` out.

A handler gets the open session, the sender and the logged message, and returns how the message
is logged and what to answer; it never commits (the ingest service does once the reply is known).
``Command`` is one row of the table in ``smsgate/commands/__init__.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ..config import Settings
from ..models import Contact, InboundMessage
from ..replies import render


@dataclass(frozen=True)
class Outcome:
    """The result of handling one message: how it is logged and what we answer."""

    outcome: str
    reply: str | None
    error_code: str | None = None


@dataclass
class Context:
    session: Session
    contact: Contact | None
    inbound: InboundMessage
    now: datetime
    candidates: tuple[str, ...]
    settings: Settings
    lang: str = "id"
    extras: dict[str, Any] = field(default_factory=dict)

    def ok(self, key: str, *extras: str, outcome: str = "command", **params: object) -> Outcome:
        return Outcome(outcome, render(key, self.lang, *extras, example=False, **params))

    def fail(
        self, key: str, *extras: str, example: bool = False, outcome: str = "rejected", **params: object
    ) -> Outcome:
        return Outcome(outcome, render(key, self.lang, *extras, example=example, **params), error_code=key)

    def fail_with(
        self, key: str, params: Mapping[str, object], *, example: bool = False, outcome: str = "rejected"
    ) -> Outcome:
        """``fail`` with the template's values as one mapping (a refusal's ``params``)."""
        return self.fail(key, example=example, outcome=outcome, **params)


Handler = Callable[[Context, Any], Outcome]


@dataclass(frozen=True)
class Command:
    """How to run one kind of message: the handler, and who may send it.

    ``public`` commands work for unregistered numbers (self-registration); ``coordinator_only``
    ones are refused to volunteers before the handler runs; ``needs_pin`` ones are refused to a
    coordinator whose message does not end with their PIN (volunteers change only their own data).
    """

    name: str
    handler: Handler
    public: bool = False
    coordinator_only: bool = False
    #: A coordinator must prove this command with ``PIN <digits>`` (it changes data or reaches many).
    needs_pin: bool = False


def pin_refused(ctx: Context, refusal: Any, command: str) -> Outcome:
    """The reply to a refused PIN; a lockout names its end in the deployment's zone."""
    params = dict(refusal.params)
    if "until" in params:
        from zoneinfo import ZoneInfo

        local = params["until"].astimezone(ZoneInfo(ctx.settings.timezone))
        params["until"] = f"{local:%d/%m %H:%M} {local.tzname()}"
    return ctx.fail(refusal.key, outcome="refused", command=command, **params)
