"""SMS Gateway for Android (capcom6/android-sms-gateway): signed JSON webhooks.

The app posts ``{"id", "event", "deviceId", "webhookId", "payload": {...}}`` and signs the raw
body: ``X-Signature`` is the hex HMAC-SHA256 of ``body + X-Timestamp`` (Unix seconds) under the
signing key set in the app (Settings > Webhooks), which is ``SMSGATE_ANDROID_SECRET`` here.
Requests with a wrong signature or a timestamp more than five minutes off are refused (403);
a replay inside the window finds the envelope ``id`` already logged and changes nothing. A
timestamp refusal is logged with the measured clock skew: the app retries a refused webhook for
about a day (15 tries, exponential backoff), so a phone with a wrong clock must be found at once.

``sms:received`` is a message to handle. The reply cannot ride in the HTTP response: the core
queues it as an outbound SMS (sent by ``smsgate worker`` through the app's send API) in the
same transaction that logs the message. The answer is 200 only once the message is committed;
when even the raw message could not be stored the answer is 503, which the app retries.
``sms:sent``/``sms:delivered``/``sms:failed`` update the outbound row the app sent (its
``messageId`` is the id we gave it). ``system:ping`` (sent when Settings > Ping is on; payload
``{"health": {"status": "pass", "checks": {...}}}``) is the device's heartbeat. Other events are
ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify, request

from smsgate.inbound import DeliveryReport, Heartbeat, InboundSMS

from .front_door import gateway, refuse

bp = Blueprint("android", __name__, url_prefix="/webhooks")
log = logging.getLogger(__name__)

#: How far ``X-Timestamp`` may be from our clock, in seconds.
WINDOW = 300
STATUS_EVENTS = {"sms:sent": "sent", "sms:delivered": "delivered", "sms:failed": "failed"}
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}", re.ASCII)
_HEX = re.compile(r"[0-9a-f]{64}", re.ASCII)


def signature(secret: str, body: bytes, timestamp: str) -> str:
    return hmac.new(secret.encode(), body + timestamp.encode(), hashlib.sha256).hexdigest()


def _refusal(body: bytes) -> str | None:
    """Why this request is not the app's (logged and counted by ``refuse``), or None."""
    secret = current_app.extensions["smsgate.settings"].android_secret
    given = request.headers.get("X-Signature", "").strip().lower()
    timestamp = request.headers.get("X-Timestamp", "").strip()
    if not secret:
        return "no_secret"
    if not _HEX.fullmatch(given) or not _UNIX_SECONDS.fullmatch(timestamp):
        return "no_signature"
    if not hmac.compare_digest(signature(secret, body, timestamp), given):
        return "bad_signature"
    skew = int(timestamp) - time.time()
    if abs(skew) > WINDOW:
        log.warning(
            "android webhook refused: X-Timestamp is %+.0f s from our clock (allowed ±%d s); "
            "set the clock of the phone that sent it (User-Agent %s)",
            skew,
            WINDOW,
            request.headers.get("User-Agent", "?"),
        )
        return "stale_timestamp"
    return None


def _received_at(value: object) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _text(value: Any) -> str:
    """A JSON field as text: strings as they are, numbers as written, anything else empty."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def _envelope(body: bytes) -> dict[str, Any]:
    """The parsed webhook, or 400 for anything that is not a JSON object."""
    try:
        envelope = json.loads(body.decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        abort(400)
    if not isinstance(envelope, dict):
        abort(400)
    return envelope


@bp.post("/android")
def inbound() -> Response | tuple[Response, int]:
    body = request.get_data(cache=True)
    reason = _refusal(body)
    if reason:
        refuse("android", reason)
    envelope = _envelope(body)
    event, payload = envelope.get("event"), envelope.get("payload")
    if not isinstance(payload, dict):
        payload = {}
    if event in STATUS_EVENTS:
        if not _record_status(STATUS_EVENTS[event], payload):
            return jsonify(status="error", error="not recorded, deliver again"), 503
        return jsonify(status="ok")
    if event == "system:ping":
        device = _text(envelope.get("deviceId"))
        if not device:  # nothing to attribute it to; a 4xx would only make the app retry it
            return jsonify(status="ignored")
        gateway().heartbeat(_heartbeat(device, payload))
        return jsonify(status="ok")
    if event != "sms:received":
        return jsonify(status="ignored")
    envelope_id = _text(envelope.get("id"))
    # ``sender``/``recipient`` are the current fields; ``phoneNumber`` is the deprecated sender.
    sender = _text(payload.get("sender")) or _text(payload.get("phoneNumber"))
    if not envelope_id or not sender.strip():
        abort(400)
    sms = InboundSMS(
        provider="android",
        provider_message_id=envelope_id,
        from_number=sender,
        text=_text(payload.get("message")),
        to_number=_text(payload.get("recipient")),
        received_at=_received_at(payload.get("receivedAt")),
        reply_inline=False,
        device=_text(envelope.get("deviceId")),
    )
    reply = gateway().receive(sms)
    if not reply.stored:  # a 5xx makes the app deliver it again
        return jsonify(status="error", error="not stored, deliver again"), 503
    return jsonify(status="ok", outcome=reply.outcome)


def _record_status(status: str, payload: dict[str, Any]) -> bool:
    message_id = _text(payload.get("messageId"))
    if not message_id:
        return True
    failed = status == "failed"
    error = (_text(payload.get("reason")) or "failed on the phone") if failed else ""
    report = DeliveryReport("android", message_id, status, failed=failed, error=error)
    return gateway().delivery_report(report)


def _object(value: object) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one: a missing or odd field is no error."""
    return value if isinstance(value, dict) else {}


def _heartbeat(device: str, payload: dict[str, Any]) -> Heartbeat:
    """The app's health report (its ``/health`` document) boiled down to status and battery."""
    health = _object(payload.get("health"))
    battery = _object(_object(health.get("checks")).get("battery:level"))
    level = battery.get("observedValue")
    return Heartbeat(
        "android",
        device,
        health=str(health.get("status") or "")[:8],
        battery=int(level) if isinstance(level, int | float) and 0 <= level <= 100 else None,
    )
