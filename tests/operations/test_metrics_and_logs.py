"""``GET /metrics`` (Prometheus exposition format, counters summed over gunicorn processes,
database gauges read at scrape time, optional bearer token) and the log lines of handled SMS
and refused webhooks."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from smsgate.logs import JsonFormatter, RateLimit, mask_phone

from ..support import VOLUNTEER_A, VOLUNTEER_B, twilio_signature
from .conftest import SMSGATE


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, parsed by prometheus_client's own parser."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def counted(found: dict, name: str, **labels: str) -> float:
    """The sum of ``name`` over the samples whose labels include ``labels``."""
    return sum(
        value
        for (sample, sample_labels), value in found.items()
        if sample == name and labels.items() <= dict(sample_labels).items()
    )


def test_metrics_count_sms_and_read_the_database(client, sms, world) -> None:
    # Counters live as long as the process (the test session): compare with a first scrape.
    before = samples(client.get("/metrics").get_data(as_text=True))
    assert sms(VOLUNTEER_A, "TPS 012 01=120 02=98 03=150") is not None
    assert sms(VOLUNTEER_B, "TPS 012 01=120 02=98 03=150") is not None
    assert sms(VOLUNTEER_A, "TPS 012 01=120 02=98") is not None  # a mistake: GAGAL
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=")
    found = samples(response.get_data(as_text=True))
    for name in ("smsgate_inbound_sms_total", "smsgate_sms_handling_seconds_count"):
        assert counted(found, name, provider="twilio") - counted(before, name, provider="twilio") == 3
    assert found[("smsgate_metrics_database_up", ())] == 1
    assert found[("smsgate_stations", (("state", "reported"),))] == 1  # Mantuil TPS 012
    assert found[("smsgate_stations", (("state", "total"),))] == 9  # tests/support.py's stations


def test_metrics_count_refused_webhooks_by_reason(client, world) -> None:
    before = samples(client.get("/metrics").get_data(as_text=True))
    form = {"MessageSid": "SM1", "From": VOLUNTEER_A, "To": "+15005550006", "Body": "CEK"}
    assert client.post("/webhooks/twilio", data=form).status_code == 403
    bad = {"X-Twilio-Signature": "bad"}
    assert client.post("/webhooks/twilio", data=form, headers=bad).status_code == 403
    found = samples(client.get("/metrics").get_data(as_text=True))
    name = "smsgate_webhook_refusals_total"
    for reason in ("no_signature", "bad_signature"):
        now, then = (counted(f, name, provider="twilio", reason=reason) for f in (found, before))
        assert now == then + 1, reason
    assert counted(found, name) - counted(before, name) == 2


def test_metrics_token(app, client) -> None:
    settings = app.extensions["smsgate.settings"]
    from dataclasses import replace

    app.extensions["smsgate.settings"] = replace(settings, metrics_token="m-token")
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer m-token"}).status_code == 200


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_counters_add_up_over_several_gunicorn_processes(database_url, world, tmp_path: Path) -> None:
    """Two gunicorn processes share the requests; every scrape, whichever process answers it,
    counts every SMS (prometheus_client's multiprocess mode)."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SMSGATE_", "TWILIO_", "PROMETHEUS_"))},
        "SMSGATE_DATABASE_URL": database_url,
        "TWILIO_AUTH_TOKEN": "multi-token",
        "SMSGATE_PUBLIC_URL": url,
        "SMSGATE_LOG_FORMAT": "json",
    }
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [*SMSGATE, "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(url + "/livez", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert server.poll() is None and time.monotonic() < deadline, (
                tmp_path / "server.log"
            ).read_text()
            time.sleep(0.2)
        sent = 24
        for number in range(sent):
            form = {"MessageSid": f"SMmulti{number:04d}", "From": VOLUNTEER_A, "To": "+1500", "Body": "CEK"}
            signature = twilio_signature(url + "/webhooks/twilio", form, "multi-token")
            # A new connection per request, so both processes take some.
            response = requests.post(
                url + "/webhooks/twilio",
                data=form,
                headers={"X-Twilio-Signature": signature, "Connection": "close"},
            )
            assert response.status_code == 200
        for _ in range(6):
            text = requests.get(url + "/metrics", headers={"Connection": "close"}, timeout=10).text
            counted = sum(
                value
                for (name, _labels), value in samples(text).items()
                if name == "smsgate_inbound_sms_total"
            )
            assert counted == sent, text
    finally:
        server.terminate()
        server.wait(30)
        log.close()
    lines = [
        json.loads(line)
        for line in (tmp_path / "server.log").read_text().splitlines()
        if line.startswith("{")
    ]
    handled = [line for line in lines if line.get("event") == "sms"]
    assert len(handled) == sent
    assert {line["provider"] for line in handled} == {"twilio"}
    assert handled[0]["sender"] == mask_phone(VOLUNTEER_A) and VOLUNTEER_A not in json.dumps(lines)
    assert all(isinstance(line["ms"], (int, float)) and line["outcome"] for line in handled)
    pids = {re.sub(r"\D", "", str(line.get("pid", ""))) for line in handled}
    assert len(pids) >= 1


def test_one_log_line_per_sms_and_per_refusal(client, sms, world, caplog) -> None:
    caplog.set_level(logging.INFO, logger="smsgate")
    sms(VOLUNTEER_A, "TPS 012 01=120 02=98 03=150")
    form = {"MessageSid": "SMx", "From": VOLUNTEER_A, "To": "+1", "Body": "CEK"}
    client.post("/webhooks/twilio", data=form, headers={"X-Twilio-Signature": "bad"})
    handled = [r for r in caplog.records if getattr(r, "fields", {}).get("event") == "sms"]
    refused = [r for r in caplog.records if getattr(r, "fields", {}).get("event") == "webhook_refused"]
    assert len(handled) == 1 and len(refused) == 1
    line = handled[0].getMessage()
    assert "twilio" in line and mask_phone(VOLUNTEER_A) in line and " ms" in line and VOLUNTEER_A not in line
    assert refused[0].fields["reason"] == "bad_signature" and "bad_signature" in refused[0].getMessage()
    document = json.loads(JsonFormatter().format(handled[0]))
    assert document["provider"] == "twilio" and document["outcome"] and document["level"] == "info"


def test_refusal_lines_are_rate_limited() -> None:
    limit = RateLimit(per_minute=3)
    allowed = [limit.allow("twilio:bad_signature", now=0.0) for _ in range(10)]
    assert [ok for ok, _ in allowed] == [True] * 3 + [False] * 7
    assert limit.allow("twilio:bad_signature", now=61.0) == (
        True,
        7,
    )  # the next minute says how many were dropped
    assert limit.allow("android:stale_timestamp", now=0.0) == (True, 0)


@pytest.mark.parametrize(
    ("phone", "masked"),
    [("+6281234567890", "+62812****7890"), ("+628155556666", "+62815***6666"), ("123", "***")],
)
def test_mask_phone(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked


def test_metric_updates_per_webhook(client, sms, world, monkeypatch) -> None:
    """What a webhook costs the metrics: under ``smsgate serve`` (multiprocess mode) every value
    update is a write to the process's file, so the count is pinned: a handled SMS updates
    ``smsgate_inbound_sms_total`` once and the handling histogram twice (its sum and the one
    bucket the time falls in); a refused webhook updates its refusal counter once."""
    from prometheus_client import values

    updates: list[float] = []
    update = values.ValueClass.inc

    def counted_inc(self, amount: float) -> None:  # type: ignore[no-untyped-def]
        updates.append(amount)
        update(self, amount)

    sms(VOLUNTEER_A, "TPS 012 01=120 02=98 03=150")  # the labelled values exist from here on
    monkeypatch.setattr(values.ValueClass, "inc", counted_inc)
    assert sms(VOLUNTEER_A, "TPS 012 01=121 02=98 03=150") is not None
    assert len(updates) == 3 and updates.count(1) >= 2
    updates.clear()
    form = {"MessageSid": "SMrefused", "From": VOLUNTEER_A, "To": "+1", "Body": "CEK"}
    refused = client.post("/webhooks/twilio", data=form, headers={"X-Twilio-Signature": "bad"})
    assert refused.status_code == 403
    assert updates == [1]
