"""PIN <new> / PIN <old> <new>: a coordinator chooses or changes the PIN that proves their SMS."""

from __future__ import annotations

import grammar

from ..services import pins
from .context import Context, Outcome, pin_refused


def choose_pin(ctx: Context, message: grammar.Pin) -> Outcome:
    assert ctx.contact is not None
    first = ctx.contact.pin_hash is None
    refusal = pins.choose(ctx.session, ctx.contact, message.new, message.old, ctx.now)
    if refusal is not None:
        return pin_refused(ctx, refusal, "PIN")
    return ctx.ok("pin_set" if first else "pin_changed")
