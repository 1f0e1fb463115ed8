"""Bad input is a 4xx, never a 500, and never costs memory.

Header shapes: SMS Gateway for Android signs ``body + X-Timestamp`` (Unix seconds) into the hex
``X-Signature`` (capcom6/android-sms-gateway, modules/webhooks/plugins/PayloadSingingPlugin.kt);
Kannel's ``%T`` is Unix seconds and ``X-Kannel-Time`` ``YYYY-MM-DD HH:MM:SS`` (gw/urltrans.c,
gw/smsbox.c of Kannel).
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from smsgate.models import InboundMessage
from smsgate.receiver import create_receiver
from tests.support import VOLUNTEER_A
from webhooks.android import signature

from .helpers import ANDROID_SECRET, android_post, envelope, kannel_get


def stored(database) -> int:  # type: ignore[no-untyped-def]
    with database.read() as session:
        return session.scalar(select(func.count()).select_from(InboundMessage))


def signed_raw(client, body: bytes, timestamp: str | None = None):  # type: ignore[no-untyped-def]
    stamp = timestamp or str(int(time.time()))
    headers = {"X-Timestamp": stamp, "X-Signature": signature(ANDROID_SECRET, body, stamp)}
    return client.post("/webhooks/android", data=body, headers=headers, content_type="application/json")


def test_android_headers_that_are_not_a_signature_are_refused(client, database, world):  # type: ignore[no-untyped-def]
    body = json.dumps(envelope(VOLUNTEER_A, "CEK")).encode()
    now = str(int(time.time()))
    for headers in (
        {"X-Signature": "é", "X-Timestamp": now},
        {"X-Signature": "é" * 64, "X-Timestamp": now},
        {"X-Signature": signature(ANDROID_SECRET, body, now), "X-Timestamp": "²"},
        {"X-Signature": signature(ANDROID_SECRET, body, now), "X-Timestamp": "9" * 30},
    ):
        response = client.post("/webhooks/android", data=body, headers=headers)
        assert response.status_code == 403, headers
    assert stored(database) == 0


def test_android_without_a_secret_refuses_any_signature(client, app, database, world):  # type: ignore[no-untyped-def]
    app.extensions["smsgate.settings"] = replace(app.extensions["smsgate.settings"], android_secret=None)
    headers = {"X-Signature": "é", "X-Timestamp": str(int(time.time()))}
    assert client.post("/webhooks/android", data=b"{}", headers=headers).status_code == 403


@pytest.mark.parametrize(
    "body",
    [b"[]", b'"sms:received"', b"42", b"null", b"[" * 30000 + b"]" * 30000, b"{", b"\xff\xfe{}"],
    ids=["list", "string", "number", "null", "deeply-nested", "truncated", "not-utf8"],
)
def test_android_bodies_that_are_not_a_json_object_are_400(client, database, world, body):  # type: ignore[no-untyped-def]
    assert signed_raw(client, body).status_code == 400
    assert stored(database) == 0


def test_android_payloads_of_the_wrong_shape_are_400_or_ignored(client, database, world):  # type: ignore[no-untyped-def]
    for payload in ([], "x", 7, {"sender": ["+62811"], "message": "CEK"}, {"sender": {}, "message": "CEK"}):
        data = {"event": "sms:received", "id": "e1", "deviceId": "d", "payload": payload}
        assert signed_raw(client, json.dumps(data).encode()).status_code == 400, payload
    status = {"event": "sms:failed", "id": "e2", "payload": {"messageId": ["x"], "reason": {}}}
    assert signed_raw(client, json.dumps(status).encode()).status_code == 200
    assert stored(database) == 0


def test_a_refused_android_timestamp_is_logged_with_the_clock_skew(client, database, world, caplog):  # type: ignore[no-untyped-def]
    caplog.set_level(logging.WARNING, logger="webhooks.android")
    response = android_post(client, envelope(VOLUNTEER_A, "CEK"), timestamp=int(time.time()) - 3600)
    assert response.status_code == 403
    assert re.search(r"X-Timestamp is -360[01] s from our clock", caplog.text), caplog.text


@pytest.mark.parametrize("moment", ["²", "9" * 30, "yesterday", "2024-02-30 10:00:00", "-5"])
def test_kannel_times_kannel_never_sends_are_400(client, database, world, moment):  # type: ignore[no-untyped-def]
    assert kannel_get(client, VOLUNTEER_A, "CEK", time=moment, id="k1").status_code == 400
    assert stored(database) == 0


def test_kannel_secret_of_any_characters_is_just_wrong(client, database, world):  # type: ignore[no-untyped-def]
    response = client.get(
        "/webhooks/kannel",
        query_string={"sender": VOLUNTEER_A, "text": "CEK", "id": "k1"},
        headers={"X-Smsgate-Secret": "é²"},
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    )
    assert response.status_code == 403


def test_the_reference_receiver_refuses_a_malformed_signature(tmp_path):  # type: ignore[no-untyped-def]
    receiver = create_receiver("secret", str(tmp_path / "receiver.db")).test_client()
    for header in ("t=²,v1=00", "t=1,v1=é", "t=" + "9" * 40 + ",v1=00", "garbage"):
        response = receiver.post("/events", data=b"{}", headers={"Smsgate-Signature": header})
        assert response.status_code == 401, header


class _Unread:
    """A request body that fails the test if anyone reads it."""

    def read(self, *args):  # type: ignore[no-untyped-def]
        raise AssertionError("the body was read")

    readline = readlines = __iter__ = read


WEBHOOKS = ["/webhooks/android", "/webhooks/twilio", "/webhooks/kannel", "/webhooks/gammu"]


@pytest.mark.parametrize("path", WEBHOOKS)
def test_a_huge_body_is_refused_413_before_it_is_read(client, path):  # type: ignore[no-untyped-def]
    response = client.post(
        path,
        headers={"Content-Type": "application/json", "X-Signature": "0" * 64, "X-Timestamp": "1"},
        environ_overrides={"wsgi.input": _Unread(), "CONTENT_LENGTH": str(300 * 1024 * 1024)},
    )
    assert response.status_code == 413


def test_a_body_just_over_the_limit_is_413_and_a_long_sms_fits(client, database, world):  # type: ignore[no-untyped-def]
    from smsgate.app import MAX_REQUEST_BYTES

    over = client.post("/webhooks/twilio", data=b"B" * (MAX_REQUEST_BYTES + 1), content_type="text/plain")
    assert over.status_code == 413
    long_sms = "ꦲ" * 670  # 10 UCS-2 parts of Javanese script
    assert android_post(client, envelope(VOLUNTEER_A, long_sms)).status_code == 200
    assert stored(database) == 1
