"""One Flask blueprint per SMS provider.

Each module authenticates its provider's request, turns it into a provider-neutral
``smsgate.inbound.InboundSMS``, hands it to the gateway the app installed, and renders the
reply in the provider's format. None of them knows about tallies or SQL.
"""

from __future__ import annotations

from typing import NoReturn

from flask import Flask, abort, current_app, request

from smsgate.inbound import Gateway


def gateway() -> Gateway:
    """The core's front door, installed by the app factory."""
    return current_app.extensions["smsgate.gateway"]


def refuse(provider: str, reason: str) -> NoReturn:
    """Answer 403, and say why in the log and on ``/metrics`` (``no_secret``, ``bad_signature``...)."""
    from smsgate.observe import webhook_refused

    webhook_refused(provider, reason, request.remote_addr)
    abort(403)


def register(app: Flask) -> None:
    from . import android, kannel, twilio, twilio_status

    app.register_blueprint(twilio.bp)
    app.register_blueprint(twilio_status.bp)
    app.register_blueprint(android.bp)
    app.register_blueprint(kannel.bp)
