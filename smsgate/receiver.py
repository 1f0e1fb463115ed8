"""The reference receiver (``smsgate receive``): the other end of the event stream in one file.

It implements the whole contract the README gives tally teams, so it is the example to copy:

- **signature**: ``Smsgate-Signature`` checked on the raw body against one or more secrets (a
  rotation: any of them), with a tolerance window; a malformed header is simply invalid (401);
- **one effect per event**: events are deduplicated by the body's ``id``, which the signature
  covers (``Idempotency-Key`` is the same value; a request whose key differs is refused), so a
  replayed request, even with a new key, changes nothing;
- **schema**: every document is checked against the JSON Schema of the version it claims; a
  version this receiver does not know is *its own* shortcoming, so it answers 503 and smsgate
  retries until the receiver is upgraded, instead of dead-lettering the event;
- **state**: per station the newest state (``station.status_changed`` or ``station.snapshot``),
  applied only if its ``sequence`` is newer than what it holds (a replayed dead event arrives
  after its successors and must not win);
- **gaps**: the ``station_sequence`` numbers (schema version 2) a station is missing, shown in
  ``GET /tally`` under ``gaps``; a snapshot covers every number up to its own.

    POST /events   (also POST /)  an event; 200 when applied or a duplicate, 401 bad signature,
                                  400 not an event, 422 fails its schema, 503 unknown version
    GET  /tally                   {"stations": {id: state}, "totals": {...}, "events": n, "gaps": {...}}
    GET  /events?station=ID       the events received, in arrival order
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from flask import Flask, Response, jsonify, request

from . import event_schemas
from .signing import DEFAULT_TOLERANCE, HEADER, IDEMPOTENCY_HEADER, verify

STATE_EVENTS = ("station.status_changed", "station.snapshot")

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY, type TEXT NOT NULL, station_id TEXT, sequence INTEGER NOT NULL,
    received_at REAL NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS stations (
    station_id TEXT PRIMARY KEY, sequence INTEGER NOT NULL, status TEXT NOT NULL, votes TEXT,
    valid INTEGER, invalid INTEGER, flagged INTEGER NOT NULL, reference TEXT);
CREATE TABLE IF NOT EXISTS station_sequences (
    station_id TEXT NOT NULL, station_sequence INTEGER NOT NULL, PRIMARY KEY (station_id, station_sequence));
"""
#: Columns added to ``stations`` since the first version of this file (old receiver files get them).
ADDED_COLUMNS = {
    "report_count": "INTEGER",
    "dissent": "INTEGER",
    "station_sequence": "INTEGER",
    "snapshot_sequence": "INTEGER NOT NULL DEFAULT 0",
    "schema_version": "INTEGER",
}


class Store:
    """The receiver's SQLite file: events seen (by id), the latest state per station, and the
    ``station_sequence`` numbers received (for gaps)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._connection.execute("PRAGMA busy_timeout=30000")
        if path != ":memory:":
            self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.executescript(SCHEMA)
        have = {row[1] for row in self._connection.execute("PRAGMA table_info(stations)")}
        for column, kind in ADDED_COLUMNS.items():
            if column not in have:
                self._connection.execute(f"ALTER TABLE stations ADD COLUMN {column} {kind}")

    def accept(self, event: dict[str, Any], received_at: float) -> bool:
        """Record ``event`` and apply it to the tally; False when its id was seen before."""
        station = (event.get("station") or {}).get("id")
        station_sequence = event.get("station_sequence")
        with self._lock:
            db = self._connection
            db.execute("BEGIN IMMEDIATE")
            try:
                inserted = db.execute(
                    "INSERT OR IGNORE INTO events (id, type, station_id, sequence, received_at, body)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (event["id"], event["type"], station, event["sequence"], received_at, json.dumps(event)),
                ).rowcount
                if inserted and station and isinstance(station_sequence, int):
                    db.execute(
                        "INSERT OR IGNORE INTO station_sequences (station_id, station_sequence)"
                        " VALUES (?, ?)",
                        (station, station_sequence),
                    )
                if inserted and event["type"] in STATE_EVENTS and station:
                    self._apply(db, station, event)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return bool(inserted)

    @staticmethod
    def _apply(db: sqlite3.Connection, station: str, event: dict[str, Any]) -> None:
        data = event["data"]
        snapshot = event["station_sequence"] if event["type"] == "station.snapshot" else 0
        db.execute(
            "INSERT INTO stations (station_id, sequence, status, votes, valid, invalid, flagged, reference,"
            " report_count, dissent, station_sequence, snapshot_sequence, schema_version)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (station_id) DO UPDATE SET"
            " sequence = excluded.sequence, status = excluded.status, votes = excluded.votes,"
            " valid = excluded.valid, invalid = excluded.invalid, flagged = excluded.flagged,"
            " reference = excluded.reference, report_count = excluded.report_count,"
            " dissent = excluded.dissent,"
            " station_sequence = excluded.station_sequence, schema_version = excluded.schema_version,"
            " snapshot_sequence = max(stations.snapshot_sequence, excluded.snapshot_sequence)"
            " WHERE excluded.sequence > stations.sequence",
            (
                station,
                event["sequence"],
                data["status"],
                json.dumps(data.get("votes")),
                data.get("valid"),
                data.get("invalid"),
                int(bool(data.get("flagged"))),
                data.get("reference"),
                data.get("report_count"),
                data.get("dissent"),
                event.get("station_sequence"),
                snapshot or 0,
                event["schema_version"],
            ),
        )

    def gaps(self) -> dict[str, list[int]]:
        """Per station, the ``station_sequence`` numbers missing below the highest one received
        (a snapshot covers everything up to its own number)."""
        with self._lock:
            rows = self._connection.execute(
                "SELECT q.station_id, group_concat(q.station_sequence), coalesce(max(s.snapshot_sequence), 0)"
                " FROM station_sequences q LEFT JOIN stations s ON s.station_id = q.station_id"
                " GROUP BY q.station_id"
            ).fetchall()
        found: dict[str, list[int]] = {}
        for station, numbers, floor in rows:
            have = {int(n) for n in numbers.split(",")}
            missing = [n for n in range(floor + 1, max(have)) if n not in have]
            if missing:
                found[station] = missing
        return found

    def tally(self) -> dict[str, Any]:
        with self._lock:
            rows = self._connection.execute(
                "SELECT station_id, sequence, status, votes, valid, invalid, flagged, reference,"
                " report_count, dissent, station_sequence FROM stations"
            ).fetchall()
            events = self._connection.execute("SELECT count(*) FROM events").fetchone()[0]
        stations: dict[str, dict[str, Any]] = {}
        votes: Counter[str] = Counter()
        statuses: Counter[str] = Counter()
        valid = invalid = flagged = 0
        for row in rows:
            station_id, sequence, status, raw_votes, v, inv, flag, reference, count, dissent, station_sq = row
            station_votes = json.loads(raw_votes) if raw_votes else None
            stations[station_id] = {
                "sequence": sequence,
                "station_sequence": station_sq,
                "status": status,
                "votes": station_votes,
                "valid": v,
                "invalid": inv,
                "flagged": bool(flag),
                "reference": reference,
                "report_count": count,
                "dissent": dissent,
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
            "overridden": statuses["overridden"],
            "flagged": flagged,
            "votes": dict(sorted(votes.items())),
            "valid": valid,
            "invalid": invalid,
        }
        return {"stations": stations, "totals": totals, "events": events, "gaps": self.gaps()}

    def events(self, station: str | None = None) -> list[dict[str, Any]]:
        query = "SELECT body FROM events" + (" WHERE station_id = ?" if station else "") + " ORDER BY rowid"
        with self._lock:
            rows = self._connection.execute(query, (station,) if station else ()).fetchall()
        return [json.loads(body) for (body,) in rows]

    def close(self) -> None:
        self._connection.close()


def create_receiver(
    secret: str | Sequence[str], db: str = "receiver.db", tolerance: int = DEFAULT_TOLERANCE
) -> Flask:
    """The receiver app; ``secret`` may be several (during a rotation any of them is accepted).
    ``app.extensions["smsgate.receiver"]`` is its ``Store``."""
    secrets = [secret] if isinstance(secret, str) else [s for s in secret if s]
    if not secrets:
        raise ValueError("the receiver needs at least one secret")
    app = Flask(__name__)
    store = Store(db)
    app.extensions["smsgate.receiver"] = store

    def receive() -> Response | tuple[Response, int]:
        body = request.get_data()
        if request.content_length is not None and len(body) < request.content_length:
            # A sender killed mid-request: never act on a partial body. smsgate retries it.
            return jsonify(error="request body shorter than its Content-Length"), 400
        if not verify(secrets, request.headers.get(HEADER), body, tolerance=tolerance):
            return jsonify(error="bad or expired signature"), 401
        try:
            event = json.loads(body)
            problems = event_schemas.errors(event)
        except event_schemas.UnknownVersion as exc:
            return jsonify(error=f"this receiver cannot read the event yet: {exc}"), 503
        except ValueError as exc:
            return jsonify(error=f"not JSON: {exc}"), 400
        if problems:
            status = 400 if not isinstance(event, dict) or "id" not in event else 422
            return jsonify(error="not a valid event", problems=problems[:20]), status
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if key is not None and key != event["id"]:
            return jsonify(error="Idempotency-Key differs from the event id"), 400
        new = store.accept(event, time.time())
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
    @click.option(
        "--secret",
        "secrets",
        required=True,
        multiple=True,
        envvar="SMSGATE_TALLY_SECRET",
        help="A signing secret; give it twice during a rotation (either is accepted).",
    )
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--db", default="receiver.db", show_default=True, help="SQLite file for events and tally.")
    @click.option(
        "--tolerance", default=DEFAULT_TOLERANCE, show_default=True, help="Signature age limit (s)."
    )
    def receive(port: int, secrets: tuple[str, ...], host: str, db: str, tolerance: int) -> None:
        """Run the reference receiver: verify, deduplicate, keep a tally (GET /tally)."""
        click.echo(f"receiving events on http://{host}:{port}/events, tally at /tally, stored in {db}")
        serve(create_receiver(list(secrets), db, tolerance), host, port)

    return receive
