"""A live smsgate server on localhost for the simulator: the real app, served by werkzeug in a
thread, on the test database."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace

import pytest
from werkzeug.serving import make_server

from smsgate.config import Settings
from smsgate.db import Database

AUTH_TOKEN = "live-auth-token"


@pytest.fixture
def live_url(database_url: str, database: Database, world) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """Base URL of a threaded server running ``create_app`` on the ``world`` database."""
    from smsgate import create_app

    settings = Settings(
        database_url=database_url, twilio_auth_token=AUTH_TOKEN, api_token="live-api"
    ).without_flood_control()
    app = create_app(settings, database=database)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    # As behind a proxy: signatures are checked against the configured public URL.
    app.extensions["smsgate.settings"] = replace(settings, public_url=url)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield url
    server.shutdown()
    thread.join(10)
