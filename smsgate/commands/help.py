"""BANTUAN / HELP: the format with an example, and the coordinator commands for coordinators."""

from __future__ import annotations

import grammar

from .context import Context, Outcome


def help_(ctx: Context, message: grammar.Help) -> Outcome:
    if ctx.contact is not None and ctx.contact.is_coordinator:
        return ctx.ok("help_coordinator")
    return ctx.ok("help")
