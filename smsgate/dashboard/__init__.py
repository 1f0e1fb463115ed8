"""The coordinator dashboard: a server-rendered Flask blueprint under ``/dashboard``.

``init_app`` sets the session secret and cookie flags, turns on CSRF protection for the
dashboard's forms and registers the blueprint. The session key is ``SMSGATE_SECRET_KEY``;
when it is unset, the first process generates one and stores it in the database
(``app_secrets``) so every app server signs and reads the same cookies.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta

from flask import Flask
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from ..config import Settings
from ..db import Database
from ..models import AppSecret
from .csrf_protect import csrf

log = logging.getLogger(__name__)
SESSION_SECRET = "session_secret_key"


def stored_secret(database: Database) -> str:
    """The shared session key from the database, created by whichever process asks first."""
    with database.begin() as session:
        insert = postgresql.insert if database.is_postgresql else sqlite.insert
        session.execute(
            insert(AppSecret)
            .values(name=SESSION_SECRET, value=secrets.token_urlsafe(48))
            .on_conflict_do_nothing(index_elements=["name"])
        )
        return session.scalars(select(AppSecret.value).where(AppSecret.name == SESSION_SECRET)).one()


def secret_key(settings: Settings, database: Database) -> str:
    if settings.secret_key:
        return settings.secret_key
    try:
        return stored_secret(database)
    except SQLAlchemyError:
        log.warning("no SMSGATE_SECRET_KEY and no schema yet (run smsgate init): using a per-process key")
        return secrets.token_urlsafe(48)


def init_app(app: Flask, settings: Settings, database: Database) -> None:
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = secret_key(settings, database)
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=(settings.public_url or "").startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
    )
    # Only the dashboard's forms are checked (webhooks and the bearer-token API have no session);
    # a token lives as long as the session, so a page left open all night can still confirm.
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    csrf.init_app(app)

    from .views import bp

    app.register_blueprint(bp)
