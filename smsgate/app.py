"""The Flask application factory. Nothing is created at import time."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text

import webhooks

from . import api, dashboard, http_security
from .config import Settings
from .db import Database
from .services.ingest import Ingest


def create_app(
    settings: Settings | None = None,
    test_config: dict[str, Any] | None = None,
    database: Database | None = None,
) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config.update(
        SMSGATE_DATABASE_URL=settings.database_url,
        SMSGATE_PUBLIC_URL=settings.public_url,
        SMSGATE_API_TOKEN=settings.api_token,
        TWILIO_AUTH_TOKEN=settings.twilio_auth_token,
        TWILIO_ACCOUNT_SID=settings.twilio_account_sid,
        TWILIO_FROM=settings.twilio_from,
        JSON_SORT_KEYS=False,
    )
    if test_config:
        app.config.update(test_config)
    database = database or Database.from_url(settings.database_url)
    app.extensions["smsgate.settings"] = settings
    app.extensions["smsgate.database"] = database
    app.extensions["smsgate.gateway"] = Ingest(database, settings)

    http_security.init_app(app, settings)
    app.register_blueprint(api.bp)
    webhooks.register(app)
    dashboard.init_app(app, settings, database)

    @app.get("/healthz")
    def healthz() -> ResponseReturnValue:
        try:
            with database.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:  # the point of the check is to report any failure
            return jsonify(status="error", error=type(exc).__name__), 503
        return jsonify(status="ok")

    return app
