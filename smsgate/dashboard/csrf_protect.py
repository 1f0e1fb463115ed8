"""The dashboard's CSRF protection: one ``CSRFProtect`` for the app factory and the views.

A module of its own so that ``views`` does not import the package that registers it.
"""

from __future__ import annotations

from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
