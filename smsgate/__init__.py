"""smsgate: an SMS reporting gateway for election volunteers."""

from .app import create_app

__all__ = ["create_app"]
