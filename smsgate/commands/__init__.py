"""What to do with each kind of parsed message.

Each module in this package registers handlers with ``@handles(MessageType, ...)``; the
package imports them all on first use, so adding a command is adding a module. A handler
gets a ``Context`` (the open session, the sender, the logged message) and returns an
``Outcome``; it never commits, the ingest service does once the reply is known.
"""

from __future__ import annotations

import importlib
import pkgutil
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
    name: str
    handler: Handler
    public: bool = False
    coordinator_only: bool = False
    #: A coordinator must prove this command with ``PIN <digits>`` (it changes data or reaches many).
    needs_pin: bool = False


_REGISTRY: dict[type, Command] = {}
_loaded = False


def handles(
    message_type: type,
    *,
    name: str,
    public: bool = False,
    coordinator_only: bool = False,
    needs_pin: bool = False,
) -> Callable[[Handler], Handler]:
    """Register the decorated function for ``message_type``.

    ``public`` commands work for unregistered numbers (self-registration); ``coordinator_only``
    ones are refused to volunteers before the handler runs; ``needs_pin`` ones are refused to a
    coordinator whose message does not end with their PIN (volunteers change only their own data).
    """

    def register(handler: Handler) -> Handler:
        _REGISTRY[message_type] = Command(name, handler, public, coordinator_only, needs_pin)
        return handler

    return register


def lookup(message_type: type) -> Command | None:
    global _loaded
    if not _loaded:
        for module in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{module.name}")
        _loaded = True
    return _REGISTRY.get(message_type)


def run(command: Command, ctx: Context, message: Any) -> Outcome:
    """Run ``command``'s handler, after the PIN check when a coordinator sends it."""
    if command.needs_pin and ctx.contact is not None and ctx.contact.is_coordinator:
        from ..services import pins

        refusal = pins.verify(ctx.session, ctx.contact, getattr(message, "pin", None), ctx.now)
        if refusal is not None:
            return pin_refused(ctx, refusal, command.name)
    return command.handler(ctx, message)


def pin_refused(ctx: Context, refusal: Any, command: str) -> Outcome:
    """The reply to a refused PIN; a lockout names its end in the deployment's zone."""
    params = dict(refusal.params)
    if "until" in params:
        from zoneinfo import ZoneInfo

        local = params["until"].astimezone(ZoneInfo(ctx.settings.timezone))
        params["until"] = f"{local:%d/%m %H:%M} {local.tzname()}"
    return ctx.fail(refusal.key, outcome="refused", command=command, **params)
