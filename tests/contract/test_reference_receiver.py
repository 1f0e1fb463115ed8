"""``smsgate receive``, the reference receiver, as a process: garbage is a 4xx (never a 500), a
document is checked against its schema version (an unknown version is the receiver's own
shortcoming: 503, so smsgate retries), either secret of a rotation verifies, a replay with a new
key changes nothing, and a station whose ``station_sequence`` skips a number shows as a gap."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from smsgate.signing import sign

from ..outbox.support import free_port
from .readme import stop

SMSGATE = str(Path(sys.executable).with_name("smsgate"))
NEW, OLD = "new-secret-2024", "old-secret-2023"
STATION = {
    "id": "6371011001012",
    "tps": 12,
    "regions": {"province": "63", "kabupaten": "63.71", "kecamatan": "63.71.01", "desa": "63.71.01.1001"},
}


def state_event(sequence: int, station_sequence: int | None, status: str = "reported", **extra) -> dict:  # type: ignore[no-untyped-def]
    document = {
        "id": str(uuid.uuid4()),
        "type": "station.status_changed",
        "schema_version": 2,
        "sequence": sequence,
        "station_sequence": station_sequence,
        "occurred_at": "2024-02-14T07:00:00+00:00",
        "station": STATION,
        "data": {
            "status": status,
            "previous_status": "missing",
            "votes": {"01": sequence, "02": 2},
            "valid": sequence + 2,
            "invalid": 0,
            "flagged": False,
            "reference": "K7Q2XM",
            "report_count": 1,
            "dissent": 0,
            "updated_at": "2024-02-14T07:00:00+00:00",
        },
    }
    document.update(extra)
    return document


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [
            SMSGATE,
            "receive",
            "--port",
            str(port),
            "--secret",
            NEW,
            "--secret",
            OLD,
            "--db",
            str(tmp_path / "r.db"),
        ],
        stdout=(tmp_path / "receive.log").open("ab"),
        stderr=subprocess.STDOUT,
        env={k: v for k, v in os.environ.items() if k != "SMSGATE_TALLY_SECRET"},
    )
    try:
        deadline = time.monotonic() + 60
        while not _listening(port):
            assert process.poll() is None, (tmp_path / "receive.log").read_text()
            assert time.monotonic() < deadline, "smsgate receive did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def post(
    url: str,
    document: object,
    secret: str | list[str] = NEW,
    key: str | None = None,
    header: bytes | None = None,
):  # type: ignore[no-untyped-def]
    body = json.dumps(document).encode() if not isinstance(document, bytes) else document
    headers = {"Content-Type": "application/json", "Smsgate-Signature": header or sign(secret, body)}
    if key is not None:
        headers["Idempotency-Key"] = key
    return requests.post(f"{url}/events", data=body, headers=headers, timeout=5)


def _as_sent(header: str) -> bytes:
    """The header's bytes as a client puts them on the wire: Latin-1 where it can ("²" is byte
    0xB2, which the server decodes back to "²"), UTF-8 otherwise."""
    try:
        return header.encode("latin-1")
    except UnicodeEncodeError:
        return header.encode("utf-8")


def test_garbage_is_refused_with_4xx_never_500(receiver: str) -> None:
    document = state_event(1, 1)
    zeros = "0" * 64
    for header in (
        f"t=²,v1={zeros}",
        f"t=٣,v1={zeros}",
        "t=,v1=",
        ",,,",
        "t=1,v1=zz",
        f"t={int(time.time())},v1=é",
    ):
        response = post(receiver, document, header=_as_sent(header))
        assert response.status_code == 401, (header, response.status_code)
    for body in (b"", b"not json", b"[1, 2]", b"\xff\xfe", json.dumps({"type": "x"}).encode()):
        assert post(receiver, body).status_code == 400, body
    for broken in (state_event(1, 1, status="counted"), {"id": 5}, {**state_event(1, 1), "sequence": "1"}):
        assert post(receiver, broken).status_code == 422, broken
    assert post(receiver, {**state_event(1, 1), "schema_version": 3}).status_code == 503
    assert requests.get(f"{receiver}/tally", timeout=5).json()["events"] == 0


def test_either_secret_of_a_rotation_and_a_replay_with_a_new_key(receiver: str) -> None:
    first, second = state_event(10, 1), state_event(11, 2)
    assert post(receiver, first, secret=OLD).json() == {"ok": True, "duplicate": False}
    assert post(receiver, second, secret=[NEW, OLD]).json() == {"ok": True, "duplicate": False}
    assert post(receiver, second, secret="a-third-secret").status_code == 401
    # The same signed body again, under a new key: refused or a duplicate, never a second effect.
    assert post(receiver, second, key="a-new-key").status_code == 400
    assert post(receiver, second).json() == {"ok": True, "duplicate": True}
    tally = requests.get(f"{receiver}/tally", timeout=5).json()
    assert tally["events"] == 2
    assert tally["stations"][STATION["id"]]["station_sequence"] == 2
    assert tally["gaps"] == {}


def test_gaps_in_station_sequence_show_until_filled(receiver: str) -> None:
    assert post(receiver, state_event(10, 1)).status_code == 200
    assert post(receiver, state_event(14, 4)).status_code == 200  # 2 and 3 never came
    tally = requests.get(f"{receiver}/tally", timeout=5).json()
    assert tally["gaps"] == {STATION["id"]: [2, 3]}
    assert post(receiver, state_event(12, 2)).status_code == 200  # a late (replayed) event: not applied
    tally = requests.get(f"{receiver}/tally", timeout=5).json()
    assert tally["gaps"] == {STATION["id"]: [3]}
    assert tally["stations"][STATION["id"]]["sequence"] == 14
    assert tally["totals"]["votes"] == {"01": 14, "02": 2}


def test_a_version_1_document_is_still_understood(receiver: str) -> None:
    document = state_event(5, None)
    del document["station_sequence"], document["data"]["dissent"]
    document["schema_version"] = 1
    assert post(receiver, document).json() == {"ok": True, "duplicate": False}
    tally = requests.get(f"{receiver}/tally", timeout=5).json()
    assert tally["stations"][STATION["id"]]["status"] == "reported"
