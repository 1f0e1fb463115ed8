"""The Flask application factory. Nothing is created at import time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Flask, Request, abort, jsonify, redirect, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask.typing import ResponseReturnValue

import webhooks

from . import api, dashboard, http_security, metrics
from .config import Settings
from .db import Database
from .models import utcnow
from .readiness import HealthProbe
from .services.ingest import Ingest

#: The largest request body accepted (``MAX_CONTENT_LENGTH``).
MAX_REQUEST_BYTES = 64 * 1024
#: Paths whose requests never use the dashboard's cookie session.
SESSIONLESS_PATHS = ("/webhooks/",)


class Sessions(SecureCookieSessionInterface):
    """Flask's signed-cookie session, not opened for the SMS webhooks.

    Flask opens the session of every request, building a signing serializer each time; the
    webhooks (every request of the night's peak) never use one, so they get Flask's null
    session, which fails loudly if anything ever writes to it.
    """

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith(SESSIONLESS_PATHS):
            return None
        return super().open_session(app, request)


def create_app(
    settings: Settings | None = None,
    test_config: dict[str, Any] | None = None,
    database: Database | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Flask:
    """The app; ``clock`` stamps what the intake stores (a benchmark's compressed night passes its
    virtual clock, so replies are queued at the texts' virtual arrival times)."""
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.session_interface = Sessions()
    # Flask's own options only: smsgate's settings live in app.extensions["smsgate.settings"].
    app.config.update(
        JSON_SORT_KEYS=False,
        # A 10-part UCS-2 SMS is about 8 kB even percent-encoded; anything far larger is refused
        # with 413 from its Content-Length, before the body is read into memory.
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
    )
    if test_config:
        app.config.update(test_config)
    database = database or Database.from_url(settings.database_url, settings.sqlite_synchronous)
    app.extensions["smsgate.settings"] = settings
    app.extensions["smsgate.database"] = database
    app.extensions["smsgate.gateway"] = Ingest(database, settings, clock)

    http_security.init_app(app, settings)

    @app.before_request
    def refuse_oversized_bodies() -> None:
        """413 from the Content-Length alone, before anything (a signature check) reads the body."""
        if (request.content_length or 0) > MAX_REQUEST_BYTES:
            abort(413)

    app.register_blueprint(api.bp)
    app.register_blueprint(metrics.bp)
    webhooks.register(app)
    dashboard.init_app(app, settings, database)

    health = HealthProbe(database.engine, settings.database_url)

    @app.get("/healthz")
    def healthz() -> ResponseReturnValue:
        """Readiness: the database answers, takes a write (rolled back) and has the schema."""
        reason = health.check()
        if reason:
            return jsonify(status="error", reason=reason), 503
        return jsonify(status="ok")

    @app.get("/")
    def index() -> ResponseReturnValue:
        """People who open the server's address want the dashboard (it asks them to log in)."""
        return redirect("/dashboard/")

    @app.get("/livez")
    def livez() -> ResponseReturnValue:
        """Liveness: the process answers HTTP; it does not touch the database."""
        return jsonify(status="ok")

    return app
