"""What to do with each kind of parsed message: the table ``COMMANDS``, read in one place.

Each message type of ``grammar`` maps to its ``Command``: the SMS keyword it is logged under,
the handler (a function in this package taking a ``Context`` and the message, returning an
``Outcome``) and who may send it. Adding a command is a grammar message type, a handler and
one row here.
"""

from __future__ import annotations

from typing import Any

import grammar

from ..services import pins
from . import broadcast, coordinator, help, incident, pin, quickcount, register, report, volunteer
from .context import Command, Context, Outcome, pin_refused

__all__ = ["COMMANDS", "Command", "Context", "Outcome", "lookup", "run"]

COMMANDS: dict[type[grammar.Message], Command] = {
    grammar.Report: Command("LAPORAN", report.report, needs_pin=True),
    grammar.Cancel: Command("BATAL", volunteer.cancel, needs_pin=True),
    grammar.Check: Command("CEK", volunteer.check),
    grammar.Incident: Command("LAPOR", incident.incident),
    grammar.Help: Command("BANTUAN", help.help_, public=True),
    grammar.Register: Command("DAFTAR", register.register, public=True),
    grammar.Pin: Command("PIN", pin.choose_pin, coordinator_only=True),
    grammar.Totals: Command("REKAP", coordinator.totals, coordinator_only=True),
    grammar.Missing: Command("BELUM", coordinator.missing, coordinator_only=True),
    grammar.Status: Command("STATUS", coordinator.status, coordinator_only=True),
    grammar.QuickCount: Command("QC", quickcount.quick_count, coordinator_only=True),
    grammar.Broadcast: Command("SIARAN", broadcast.broadcast, coordinator_only=True, needs_pin=True),
    grammar.Confirm: Command("YA", broadcast.confirm, coordinator_only=True, needs_pin=True),
}


def lookup(message_type: type) -> Command | None:
    return COMMANDS.get(message_type)


def run(command: Command, ctx: Context, message: Any) -> Outcome:
    """Run ``command``'s handler, after the PIN check when a coordinator sends it."""
    if command.needs_pin and ctx.contact is not None and ctx.contact.is_coordinator:
        refusal = pins.verify(ctx.session, ctx.contact, getattr(message, "pin", None), ctx.now)
        if refusal is not None:
            return pin_refused(ctx, refusal, command.name)
    return command.handler(ctx, message)
