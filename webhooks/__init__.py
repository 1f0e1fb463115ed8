"""One Flask blueprint per SMS provider.

Each module authenticates its provider's request, turns it into a provider-neutral
``smsgate.inbound.InboundSMS``, hands it to the gateway the app installed, and renders the
reply in the provider's format. None of them knows about tallies or SQL.
"""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    from . import android, kannel, twilio, twilio_status

    app.register_blueprint(twilio.bp)
    app.register_blueprint(twilio_status.bp)
    app.register_blueprint(android.bp)
    app.register_blueprint(kannel.bp)
