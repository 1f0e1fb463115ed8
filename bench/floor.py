"""The floor for bench/webhook.py: the least durable work any correct gateway must do for a report.

The bare endpoint measures the web stack alone. The floor is that very endpoint, under the very
gunicorn settings of ``smsgate serve``, which also stores the raw SMS before it answers: one
``INSERT`` of the message keyed by its provider id (``ON CONFLICT DO NOTHING``, so a redelivery
stores nothing twice) committed durably, then the same fixed TwiML. No parsing, no checks, no
counters, no events: whatever smsgate costs above this floor is its own work, and whatever the
floor cannot reach on a machine, no implementation of the guarantee "the raw SMS is committed
before the reply" reaches either.

- PostgreSQL: one psycopg connection per request thread, in autocommit mode, so the ``INSERT``
  is its own transaction (one round trip) and its commit waits for the WAL flush
  (``synchronous_commit`` is set ``on`` for the connection, whatever the server's default).
- SQLite: smsgate's durability settings (WAL, ``synchronous=FULL``, the same busy timeout) and,
  like smsgate, the process's writers take turns on a lock of their own; every ``INSERT`` is
  its own transaction and sync. smsgate's group commit shares one sync among the writers that
  queue; the floor does not, so on SQLite it is the floor of one commit per report.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

TABLE = "bench_floor_sms"
FIXED_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Message>OK</Message></Response>'
INSERT = (
    f"INSERT INTO {TABLE} (provider, provider_message_id, from_number, body) "
    "VALUES ('twilio', {p}, {p}, {p}) ON CONFLICT (provider, provider_message_id) DO NOTHING"
)


def create_table(engine: Engine) -> None:
    """The raw messages' table: what an inbound log needs, its provider id unique, nothing else."""
    postgresql = engine.dialect.name == "postgresql"
    key = "id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY" if postgresql else "id INTEGER PRIMARY KEY"
    received = "TIMESTAMPTZ NOT NULL DEFAULT now()" if postgresql else "TEXT NOT NULL DEFAULT (datetime())"
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE IF EXISTS {TABLE}"))
        connection.execute(
            text(
                f"CREATE TABLE {TABLE} ({key}, provider TEXT NOT NULL, provider_message_id TEXT NOT NULL, "
                f"from_number TEXT NOT NULL, body TEXT NOT NULL, received_at {received}, "
                "UNIQUE (provider, provider_message_id))"
            )
        )


def stored(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text(f"SELECT count(*) FROM {TABLE}")).scalar_one())


def floor_target(engine: Engine) -> str:
    """What the floor server connects to: a libpq URL, or ``sqlite:PATH``."""
    if engine.dialect.name == "sqlite":
        return f"sqlite:{engine.url.database}"
    url = make_url(engine.url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class _PostgreSQL:
    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self.local = threading.local()

    def store(self, sid: str, sender: str, body: str) -> None:
        connection = getattr(self.local, "connection", None)
        if connection is None:
            import psycopg

            connection = psycopg.connect(self.conninfo, autocommit=True)
            connection.execute("SET synchronous_commit = on")
            self.local.connection = connection
        connection.execute(INSERT.format(p="%s"), (sid, sender, body))


class _SQLite:
    def __init__(self, path: str) -> None:
        from smsgate.db import BUSY_TIMEOUT_MS, SQLITE_SYNCHRONOUS

        self.path, self.synchronous, self.busy = path, SQLITE_SYNCHRONOUS, BUSY_TIMEOUT_MS
        self.local = threading.local()
        self.turn = threading.Lock()

    def store(self, sid: str, sender: str, body: str) -> None:
        connection = getattr(self.local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(f"PRAGMA synchronous={self.synchronous}")
            connection.execute(f"PRAGMA busy_timeout={self.busy}")
            self.local.connection = connection
        with self.turn:
            connection.execute(INSERT.format(p="?"), (sid, sender, body))


def floor_app(target: str) -> Any:
    """The bare endpoint plus the durable insert of the raw SMS before the answer."""
    from flask import Flask, Response, abort, request

    store = _SQLite(target.removeprefix("sqlite:")) if target.startswith("sqlite:") else _PostgreSQL(target)
    app = Flask("floor")

    @app.post("/webhooks/twilio")
    def twilio() -> Response:
        form = request.form
        sid, sender = form.get("MessageSid", ""), form.get("From", "")
        if not sid or not sender:
            abort(400)
        store.store(sid, sender, form.get("Body", ""))
        return Response(FIXED_TWIML, mimetype="application/xml")

    @app.get("/healthz")
    def healthz() -> str:
        return "ok"

    return app


def serve_floor(port: int, workers: int, threads: int, target: str) -> None:
    from smsgate.server import _Server, gunicorn_options

    class Floor(_Server):
        def load(self) -> Any:
            return floor_app(target)

    Floor(gunicorn_options("127.0.0.1", port, workers, threads)).run()
