"""Signatures, the receiver's checks, and the event schema file."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import jsonschema
import pytest

from smsgate.outgoing.destinations import ConfigError, load_destinations
from smsgate.receiver import create_receiver
from smsgate.signing import sign, verify

from .support import SCHEMA, SECRET


def test_signature_round_trip_tamper_and_age() -> None:
    body = b'{"id": "x"}'
    header = sign(SECRET, body)
    assert verify(SECRET, header, body)
    assert not verify(SECRET, header, body + b" ")
    assert not verify("other-secret", header, body)
    assert not verify(SECRET, None, body)
    assert not verify(SECRET, "t=abc,v1=00", body)
    old = sign(SECRET, body, timestamp=int(time.time()) - 301)
    assert not verify(SECRET, old, body)
    assert verify(SECRET, old, body, tolerance=400)
    rotated = sign("new-secret", body) + "," + sign(SECRET, body).split(",")[1]
    assert verify(SECRET, rotated, body) and verify("new-secret", rotated, body)


def event(sequence: int = 1, **data: object) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "type": "station.status_changed",
        "schema_version": 1,
        "sequence": sequence,
        "occurred_at": "2024-02-14T07:00:00+00:00",
        "station": {
            "id": "6371011001012",
            "tps": 12,
            "regions": {
                "province": "63",
                "kabupaten": "63.71",
                "kecamatan": "63.71.01",
                "desa": "63.71.01.1001",
            },
        },
        "data": {
            "status": "reported",
            "previous_status": "missing",
            "votes": {"01": 1, "02": 2},
            "valid": 3,
            "invalid": 0,
            "flagged": False,
            "reference": "K7Q2XM",
            "report_count": 1,
            "updated_at": "2024-02-14T07:00:00+00:00",
            **data,
        },
    }


def post(client, document: dict, secret: str = SECRET, key: str | None = None):  # type: ignore[no-untyped-def]
    body = json.dumps(document).encode()
    headers = {"Smsgate-Signature": sign(secret, body), "Idempotency-Key": key or document["id"]}
    return client.post("/events", data=body, headers=headers, content_type="application/json")


def test_receiver_verifies_deduplicates_and_keeps_the_newest_state(tmp_path: Path) -> None:
    client = create_receiver(SECRET, str(tmp_path / "r.db")).test_client()
    first, newer = event(1), event(2, votes={"01": 5, "02": 2}, valid=7)
    assert post(client, first, secret="wrong").status_code == 401
    assert post(client, first, key="another-key").status_code == 400
    assert post(client, newer).get_json() == {"ok": True, "duplicate": False}
    assert post(client, newer).get_json() == {"ok": True, "duplicate": True}
    assert post(client, first).get_json()["duplicate"] is False  # late, older: recorded, not applied
    tally = client.get("/tally").get_json()
    assert tally["events"] == 2
    assert tally["totals"]["votes"] == {"01": 5, "02": 2} and tally["totals"]["valid"] == 7
    assert [e["sequence"] for e in client.get("/events?station=6371011001012").get_json()] == [2, 1]
    # Deduplication survives a restart: it lives in the SQLite file.
    again = create_receiver(SECRET, str(tmp_path / "r.db")).test_client()
    assert post(again, newer).get_json()["duplicate"] is True


def test_schema_rejects_what_it_should() -> None:
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    validator.validate(event())
    for broken in (
        {**event(), "type": "report.eaten"},
        {**event(), "schema_version": 2},
        {**event(), "station": {**event()["station"], "id": "63710110010"}},
        event(status="counted"),
        {k: v for k, v in event().items() if k != "sequence"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            validator.validate(broken)


def test_destinations_from_env_and_file(settings, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    toml = tmp_path / "destinations.toml"
    toml.write_text(
        '[[destinations]]\nname = "kpu-watch"\nurl = "https://a.example/events"\nsecret_env = "A_SECRET"\n'
        '[[destinations]]\nname = "party"\nurl = "https://b.example/hook"\nsecret = "s2"\ntimeout = 3\n'
    )
    monkeypatch.setenv("A_SECRET", "s1")
    found = load_destinations(
        replace(settings, tally_url="https://t.example", tally_secret="s0", destinations_file=str(toml))
    )
    assert [(d.name, d.secret, d.timeout) for d in found] == [
        ("tally", "s0", None),
        ("kpu-watch", "s1", None),
        ("party", "s2", 3),
    ]
    as_json = tmp_path / "d.json"
    as_json.write_text(json.dumps({"destinations": [{"name": "x", "url": "http://x"}]}))
    with pytest.raises(ConfigError):
        load_destinations(replace(settings, destinations_file=str(as_json)))
    with pytest.raises(ConfigError):
        load_destinations(replace(settings, tally_url="https://t.example"))
