"""What every provider's blueprint shares: the core's front door and the refusal.

Kept apart from ``webhooks/__init__.py`` (which registers the blueprints) so that a blueprint
never imports the package that imports it.
"""

from __future__ import annotations

from typing import NoReturn

from flask import abort, current_app, request

from smsgate.config import Settings
from smsgate.inbound import Gateway


def gateway() -> Gateway:
    """The core's front door, installed by the app factory."""
    installed: Gateway = current_app.extensions["smsgate.gateway"]
    return installed


def settings() -> Settings:
    """The deployment's settings, installed by the app factory."""
    installed: Settings = current_app.extensions["smsgate.settings"]
    return installed


def refuse(provider: str, reason: str) -> NoReturn:
    """Answer 403, and say why in the log and on ``/metrics`` (``no_secret``, ``bad_signature``...)."""
    from smsgate.observe import webhook_refused

    webhook_refused(provider, reason, request.remote_addr)
    abort(403)
