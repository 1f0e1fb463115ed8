"""A tally team's receiver built only from the README: the recipe, copied verbatim, checks the
test vector, refuses garbage without raising, ignores a replayed request with a new key, and,
run as a process against ``smsgate worker`` (a process too), ends with the tally smsgate has."""

from __future__ import annotations

import importlib.util
import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from smsgate import signing
from smsgate.models import StationResult

from ..outbox.support import election_night, free_port, remaining, send_all
from .readme import receiver_recipe, stop, test_vector

SECRET = "readme-recipe-secret"
SMSGATE = str(Path(sys.executable).with_name("smsgate"))
GARBAGE_HEADERS = [
    None,
    "",
    ",",
    "=",
    "t=",
    "v1=",
    "t=²,v1=" + "0" * 64,  # "²".isdigit() is True in Python; int("²") raises
    "t=٣٣٣,v1=" + "0" * 64,  # Arabic-Indic digits
    "t=1707890400,v1=" + "é" * 64,  # non-ASCII v1: compare_digest raises TypeError on str
    "t=1707890400,v1=\udcff",
    "t=-1707890400,v1=" + "0" * 64,
    "t=1e9,v1=" + "0" * 64,
    "t=1707890400",
    "v1=" + "0" * 64,
    "t=1707890400,t=²,v1=" + "0" * 64,
    "t=99999999999999999999999,v1=" + "0" * 64,
    "t=1707890400,v1=" + "g" * 64,
    "\x00\x01,t\t=1,,v1==",
]


def load_recipe(tmp_path: Path, secrets: str = SECRET) -> ModuleType:
    """The recipe imported as a module (its server only starts under ``__main__``)."""
    path = tmp_path / "tally_receiver.py"
    path.write_text(receiver_recipe(), encoding="utf-8")
    os.environ["TALLY_SECRETS"], os.environ["TALLY_DB"] = secrets, str(tmp_path / "imported.db")
    try:
        spec = importlib.util.spec_from_file_location("tally_receiver", path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        del os.environ["TALLY_SECRETS"], os.environ["TALLY_DB"]
    return module


def test_the_readme_test_vector_is_what_smsgate_signs(tmp_path: Path) -> None:
    vector = test_vector()
    body, t = vector["body"].encode("utf-8"), int(vector["t"])
    assert signing.signature(vector["secret"], t, body) == vector["v1"]
    assert signing.sign(vector["secret"], body, timestamp=t) == f"t={t},v1={vector['v1']}"
    header = f"t={t},v1={vector['v1']}"
    recipe = load_recipe(tmp_path)
    assert recipe.verify([vector["secret"]], header, body, now=t) is True
    assert signing.verify(vector["secret"], header, body, now=t) is True
    # Hex digits in upper case are the same signature, for the recipe as for smsgate.
    shouted = f"t={t},v1={vector['v1'].upper()}"
    assert recipe.verify([vector["secret"]], shouted, body, now=t) is True
    assert signing.verify(vector["secret"], shouted, body, now=t) is True
    # One byte, one second or one secret off, and it no longer verifies.
    assert recipe.verify([vector["secret"]], header, body + b" ", now=t) is False
    assert recipe.verify(["other", vector["secret"] + "x"], header, body, now=t) is False
    assert recipe.verify([vector["secret"]], header, body, now=t + 301) is False
    assert signing.verify(vector["secret"], header, body, now=t + 301) is False


def test_garbage_headers_are_invalid_and_never_raise(tmp_path: Path) -> None:
    recipe = load_recipe(tmp_path)
    body = b'{"id":"x"}'
    for header in GARBAGE_HEADERS:
        assert recipe.verify([SECRET], header, body, now=1707890400) is False, header
        assert signing.verify(SECRET, header, body, now=1707890400) is False, header


@settings(max_examples=300, deadline=None)
@given(header=st.text(max_size=200), body=st.binary(max_size=50))
def test_any_header_at_all_is_a_bool_not_an_exception(header: str, body: bytes) -> None:
    module = _RECIPE.get("module")
    if module is None:
        import tempfile

        module = _RECIPE["module"] = load_recipe(Path(tempfile.mkdtemp()))
    assert module.verify([SECRET], header, body) is False
    assert signing.verify(SECRET, header, body) is False


_RECIPE: dict[str, ModuleType] = {}


def _wait_for(condition, seconds: float, what: str) -> None:  # type: ignore[no-untyped-def]
    stop = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < stop, f"timed out waiting for {what}"
        time.sleep(0.05)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_the_readme_receiver_as_a_process_against_smsgate_worker(  # type: ignore[no-untyped-def]
    database, database_url, sms, tmp_path
):
    port = free_port()
    recipe = tmp_path / "tally_receiver.py"
    recipe.write_text(receiver_recipe(), encoding="utf-8")
    tally_db = tmp_path / "tally.db"
    receiver = subprocess.Popen(
        [sys.executable, str(recipe)],
        env={**os.environ, "TALLY_SECRETS": SECRET, "TALLY_PORT": str(port), "TALLY_DB": str(tally_db)},
        stdout=(tmp_path / "receiver.log").open("ab"),
        stderr=subprocess.STDOUT,
    )
    worker = None
    try:
        _wait_for(lambda: _listening(port), 60, "the README receiver to listen")
        url = f"http://127.0.0.1:{port}/events"
        send_all(sms, election_night(random.Random(18), rounds=3))
        worker = subprocess.Popen(
            [SMSGATE, "worker"],
            env={
                **os.environ,
                "SMSGATE_DATABASE_URL": database_url,
                "SMSGATE_TALLY_URL": url,
                "SMSGATE_TALLY_SECRET": SECRET,
                "SMSGATE_OUTBOX_BACKOFF": "0.05",
                "SMSGATE_OUTBOX_BACKOFF_MAX": "0.2",
            },
            stdout=(tmp_path / "worker.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        _wait_for(lambda: remaining(database) == 0, 60, "the worker to deliver every event")

        theirs = requests.get(f"http://127.0.0.1:{port}/", timeout=5).json()
        with database.read() as session:
            ours = {r.station_id: r for r in session.scalars(select(StationResult))}
        assert theirs, "the README receiver kept no station"
        for station, state in theirs.items():
            result = ours[station]
            assert (state["status"], state["votes"], state["valid"], state["invalid"]) == (
                result.status,
                result.votes,
                result.valid,
                result.invalid,
            ), station
            assert state["report_count"] == result.report_count, station
        assert {s for s, r in ours.items() if r.status != "missing"} <= set(theirs)

        # Garbage signatures: 401, never a crash.
        body = b'{"id":"00000000-0000-4000-8000-000000000000","type":"x","sequence":1,"data":{}}'
        for header in GARBAGE_HEADERS:
            headers = {"Content-Type": "application/json"}
            if header is not None:
                headers["Smsgate-Signature"] = header
            try:
                status = requests.post(url, data=body, headers=headers, timeout=5).status_code
            except (UnicodeEncodeError, ValueError):
                continue  # not even sendable as an HTTP header
            assert status == 401, (header, status)

        # A captured request replayed with a new Idempotency-Key: accepted, no second effect.
        events_before = _count(tally_db, "events")
        with database.read() as session:
            from smsgate.models import OutboxEvent
            from smsgate.services.outbox import document

            event = session.scalars(select(OutboxEvent).order_by(OutboxEvent.seq.desc()).limit(1)).one()
            captured = json.dumps(document(event), separators=(",", ":")).encode()
        replay = requests.post(
            url,
            data=captured,
            headers={"Smsgate-Signature": signing.sign(SECRET, captured), "Idempotency-Key": "new-key-1"},
            timeout=5,
        )
        assert replay.status_code == 200
        assert _count(tally_db, "events") == events_before
        assert requests.get(f"http://127.0.0.1:{port}/", timeout=5).json() == theirs

        # A request cut short of its Content-Length (a killed sender) stores nothing.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            head = f"POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: {len(captured) + 50}\r\n"
            raw.sendall(head.encode() + b"Smsgate-Signature: t=1,v1=0\r\n\r\n" + captured[:40])
            raw.shutdown(socket.SHUT_WR)
            raw.recv(100)
        assert _count(tally_db, "events") == events_before
        assert receiver.poll() is None, "the README receiver died"
    finally:
        stop(worker, receiver)


def _count(path: Path, table: str) -> int:
    import sqlite3

    with sqlite3.connect(path) as db:
        return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
