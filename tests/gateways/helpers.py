"""Signed Android webhooks, Kannel requests and a fake provider HTTP server on localhost."""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from webhooks.android import signature

ANDROID_SECRET = "android-signing-key"
KANNEL_SECRET = "kannel-shared-secret"
_ids = itertools.count(1)


DEVICE_ID = "ffffffffceb0b1db0000018e937c815b"
SIM_NUMBER = "+6281300000000"


def envelope(
    phone: str,
    text: str,
    envelope_id: str | None = None,
    event: str = "sms:received",
    *,
    device: str = DEVICE_ID,
    shape: str = "current",
) -> dict:
    """An ``sms:received`` webhook as the app builds it.

    ``current``: the documented payload with ``sender``/``recipient`` and the deprecated
    ``phoneNumber`` (android-sms-gateway/docs-web, blog post 2026-02-17 "Webhook Payload
    Enhancement", "Expected Payload Structure"); ``legacy``: ``phoneNumber`` only (capcom6/
    android-sms-gateway, modules/webhooks/payload/SmsEventPayload.kt); ``future``: without
    ``phoneNumber``, which the docs say a future major version drops.
    """
    payload: dict = {
        "messageId": "abc123",  # the app's own id is content-based and not unique
        "message": text,
        "sender": phone,
        "recipient": SIM_NUMBER,
        "phoneNumber": phone,
        "simNumber": 1,
        "receivedAt": "2024-02-14T15:46:11.000+07:00",
    }
    if shape == "legacy":
        del payload["sender"], payload["recipient"]
    elif shape == "future":
        del payload["phoneNumber"]
    return {
        "deviceId": device,
        "event": event,
        "id": envelope_id or f"env{next(_ids):08d}",
        "payload": payload,
        "webhookId": "wh-1",
    }


def android_post(client, data: dict, *, secret: str = ANDROID_SECRET, timestamp: int | None = None, sig=None):  # type: ignore[no-untyped-def]
    body = json.dumps(data).encode()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    headers = {"X-Timestamp": stamp, "X-Signature": sig or signature(secret, body, stamp)}
    return client.post("/webhooks/android", data=body, headers=headers, content_type="application/json")


def kannel_get(
    client, phone: str, text: str, *, secret: str = KANNEL_SECRET, remote: str = "127.0.0.1", **extra
):  # type: ignore[no-untyped-def]
    params = {"sender": phone, "receiver": "+6281300000000", "text": text, "smsc": "modem1", **extra}
    if "id" not in params and "time" not in params:
        params["id"] = f"kannel-{next(_ids)}"
    if secret:
        params["secret"] = secret
    return client.get("/webhooks/kannel", query_string=params, environ_base={"REMOTE_ADDR": remote})


@dataclass
class FakeProvider:
    """Answers provider API calls: ``fail_first`` 500s, then ``ok_status``; records every request."""

    fail_first: int = 0
    fail_status: int = 500
    ok_status: int = 202
    requests: list[dict] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ, start_response):  # type: ignore[no-untyped-def]
        request = Request(environ)
        with self.lock:
            record = {
                "method": request.method,
                "path": request.path,
                "args": request.args.to_dict(),
                "form": request.form.to_dict(),
                "json": request.get_json(silent=True),
                "auth": request.headers.get("Authorization", ""),
            }
            self.requests.append(record)
            failing = len(self.requests) <= self.fail_first
        if failing:
            return Response("provider down", status=self.fail_status)(environ, start_response)
        if "/Messages.json" in request.path:  # Twilio's REST API
            body = {"sid": f"SM{len(self.requests):032x}", "status": "queued", "to": record["form"].get("To")}
            return Response(json.dumps(body), status=201, mimetype="application/json")(
                environ, start_response
            )
        if record["json"] is not None:  # the Android gateway
            body = {"id": record["json"].get("id", "x"), "state": "Pending"}
            return Response(json.dumps(body), status=self.ok_status, mimetype="application/json")(
                environ, start_response
            )
        return Response("0: Accepted for delivery", status=self.ok_status)(environ, start_response)

    def basic_auth(self, index: int = -1) -> tuple[str, str]:
        user, _, password = base64.b64decode(self.requests[index]["auth"].split()[1]).decode().partition(":")
        return user, password


@contextmanager
def fake_provider(**options) -> Iterator[FakeProvider]:  # type: ignore[no-untyped-def]
    provider = FakeProvider(**options)
    server = make_server("127.0.0.1", 0, provider, threaded=True)
    provider.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        thread.join(5)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def smsgate_serve(database_url: str, **env: str) -> Iterator[str]:
    """``smsgate serve`` (gunicorn, one worker) on a free port of 127.0.0.1; yields its base URL."""
    import os
    import subprocess
    import sys
    import urllib.request
    from pathlib import Path

    port = free_port()
    environ = {
        **os.environ,
        "SMSGATE_DATABASE_URL": database_url,
        "SMSGATE_KANNEL_SECRET": KANNEL_SECRET,
        "SMSGATE_KANNEL_ALLOWED_IPS": "127.0.0.1",
        "SMSGATE_ANDROID_SECRET": ANDROID_SECRET,
        "SMSGATE_FLOOD_PER_MINUTE": "0",
        **env,
    }
    smsgate = str(Path(sys.executable).parent / "smsgate")
    command = [smsgate, "serve", "--port", str(port), "--workers", "1"]
    process = subprocess.Popen(command, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/healthz", timeout=2).read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    error = process.stderr.read().decode() if process.stderr else "no server"
                    raise RuntimeError(error) from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
