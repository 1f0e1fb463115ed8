"""The reference receiver (``smsgate receive``): the other end of the event stream in one file.

It verifies ``Smsgate-Signature`` (with a tolerance window), drops repeated deliveries by
``Idempotency-Key`` (persistently, in a SQLite file), and keeps its own tally: the latest
``station.status_changed`` state of every station, applied only if its ``sequence`` is newer
than what it holds. ``GET /tally`` shows it. Partners can run it as is or copy it.

    POST /events   (also POST /)  an event; 200 when applied or a duplicate, 401 bad signature,
                                  400 not an event
    GET  /tally                   {"stations": {id: state}, "totals": {...}, "events": n}
    GET  /events?station=ID       the events received, in arrival order
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import Counter
from typing import Any

from flask import Flask, Response, jsonify, request

from .signing import DEFAULT_TOLERANCE, HEADER, IDEMPOTENCY_HEADER, verify

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY, type TEXT NOT NULL, station_id TEXT, sequence INTEGER NOT NULL,
    received_at REAL NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS stations (
    station_id TEXT PRIMARY KEY, sequence INTEGER NOT NULL, status TEXT NOT NULL, votes TEXT,
    valid INTEGER, invalid INTEGER, flagged INTEGER NOT NULL, reference TEXT);
"""


class Store:
    """The receiver's SQLite file: events seen (by id) and the latest state per station."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._connection.execute("PRAGMA busy_timeout=30000")
        if path != ":memory:":
            self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.executescript(SCHEMA)

    def accept(self, event: dict[str, Any], received_at: float) -> bool:
        """Record ``event`` and apply it to the tally; False when its id was seen before."""
        station = (event.get("station") or {}).get("id")
        with self._lock:
            db = self._connection
            db.execute("BEGIN IMMEDIATE")
            try:
                inserted = db.execute(
                    "INSERT OR IGNORE INTO events (id, type, station_id, sequence, received_at, body)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (event["id"], event["type"], station, event["sequence"], received_at, json.dumps(event)),
                ).rowcount
                if inserted and event["type"] == "station.status_changed" and station:
                    data = event["data"]
                    db.execute(
                        "INSERT INTO stations (station_id, sequence, status, votes, valid, invalid, flagged,"
                        " reference) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (station_id) DO UPDATE SET"
                        " sequence = excluded.sequence, status = excluded.status, votes = excluded.votes,"
                        " valid = excluded.valid, invalid = excluded.invalid, flagged = excluded.flagged,"
                        " reference = excluded.reference WHERE excluded.sequence > stations.sequence",
                        (
                            station,
                            event["sequence"],
                            data["status"],
                            json.dumps(data.get("votes")),
                            data.get("valid"),
                            data.get("invalid"),
                            int(bool(data.get("flagged"))),
                            data.get("reference"),
                        ),
                    )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return bool(inserted)

    def tally(self) -> dict[str, Any]:
        with self._lock:
            rows = self._connection.execute(
                "SELECT station_id, sequence, status, votes, valid, invalid, flagged, reference FROM stations"
            ).fetchall()
            events = self._connection.execute("SELECT count(*) FROM events").fetchone()[0]
        stations, votes, statuses = {}, Counter(), Counter()
        valid = invalid = flagged = 0
        for station_id, sequence, status, raw_votes, v, inv, flag, reference in rows:
            station_votes = json.loads(raw_votes) if raw_votes else None
            stations[station_id] = {
                "sequence": sequence,
                "status": status,
                "votes": station_votes,
                "valid": v,
                "invalid": inv,
                "flagged": bool(flag),
                "reference": reference,
            }
            statuses[status] += 1
            flagged += bool(flag)
            if status != "missing":
                votes.update(station_votes or {})
                valid += v or 0
                invalid += inv or 0
        totals = {
            "reported": sum(n for s, n in statuses.items() if s != "missing"),
            "verified": statuses["verified"],
            "disputed": statuses["disputed"],
            "flagged": flagged,
            "votes": dict(sorted(votes.items())),
            "valid": valid,
            "invalid": invalid,
        }
        return {"stations": stations, "totals": totals, "events": events}

    def events(self, station: str | None = None) -> list[dict[str, Any]]:
        query = "SELECT body FROM events" + (" WHERE station_id = ?" if station else "") + " ORDER BY rowid"
        with self._lock:
            rows = self._connection.execute(query, (station,) if station else ()).fetchall()
        return [json.loads(body) for (body,) in rows]

    def close(self) -> None:
        self._connection.close()


def create_receiver(secret: str, db: str = "receiver.db", tolerance: int = DEFAULT_TOLERANCE) -> Flask:
    """The receiver app; ``app.extensions["smsgate.receiver"]`` is its ``Store``."""
    app = Flask(__name__)
    store = Store(db)
    app.extensions["smsgate.receiver"] = store

    def receive() -> Response | tuple[Response, int]:
        body = request.get_data()
        if not verify(secret, request.headers.get(HEADER), body, tolerance=tolerance):
            return jsonify(error="bad or expired signature"), 401
        try:
            event = json.loads(body)
            key = request.headers.get(IDEMPOTENCY_HEADER) or event["id"]
            if key != event["id"]:
                return jsonify(error="Idempotency-Key differs from the event id"), 400
            new = store.accept(event, time.time())
        except (ValueError, KeyError, TypeError) as exc:
            return jsonify(error=f"not an event: {exc}"), 400
        return jsonify(ok=True, duplicate=not new)

    app.add_url_rule("/events", "events_post", receive, methods=["POST"])
    app.add_url_rule("/", "root_post", receive, methods=["POST"])

    @app.get("/tally")
    def tally() -> Response:
        return jsonify(store.tally())

    @app.get("/events")
    def events() -> Response:
        return jsonify(store.events(request.args.get("station")))

    return app


def serve(app: Flask, host: str, port: int) -> None:
    """Serve ``app`` with werkzeug's threaded server until interrupted."""
    from werkzeug.serving import make_server

    server = make_server(host, port, app, threaded=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def receive_command() -> Any:
    import click

    @click.command("receive")
    @click.option("--port", required=True, type=int, help="Port to listen on.")
    @click.option("--secret", required=True, envvar="SMSGATE_TALLY_SECRET", help="The shared signing secret.")
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--db", default="receiver.db", show_default=True, help="SQLite file for events and tally.")
    @click.option(
        "--tolerance", default=DEFAULT_TOLERANCE, show_default=True, help="Signature age limit (s)."
    )
    def receive(port: int, secret: str, host: str, db: str, tolerance: int) -> None:
        """Run the reference receiver: verify, deduplicate, keep a tally (GET /tally)."""
        click.echo(f"receiving events on http://{host}:{port}/events, tally at /tally, stored in {db}")
        serve(create_receiver(secret, db, tolerance), host, port)

    return receive
