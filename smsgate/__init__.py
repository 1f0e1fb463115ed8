"""smsgate: an SMS reporting gateway for election volunteers.

``from smsgate import create_app`` works, but importing the package loads nothing heavy:
``smsgate serve`` must choose prometheus_client's multiprocess mode before the app (and
with it prometheus_client) is first imported, and ``import smsgate.config`` needs no Flask.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module 'smsgate' has no attribute {name!r}")
