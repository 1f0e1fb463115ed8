"""SMS Gateway for Android (capcom6/android-sms-gateway): signed JSON webhooks.

The app posts ``{"id", "event", "deviceId", "webhookId", "payload": {...}}`` and signs the raw
body: ``X-Signature`` is the hex HMAC-SHA256 of ``body + X-Timestamp`` (Unix seconds) under the
signing key set in the app (Settings > Webhooks), which is ``SMSGATE_ANDROID_SECRET`` here.
Requests with a wrong signature or a timestamp more than five minutes off are refused (403);
a replay inside the window finds the envelope ``id`` already logged and changes nothing.

``sms:received`` is a message to handle. The reply cannot ride in the HTTP response: the core
queues it as an outbound SMS (sent by ``smsgate worker`` through the app's send API) in the
same transaction that logs the message. ``sms:sent``/``sms:delivered``/``sms:failed`` update the
outbound row the app sent (its ``messageId`` is the id we gave it); other events are ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import datetime

from flask import Blueprint, Response, abort, current_app, jsonify, request

from smsgate.inbound import DeliveryReport, InboundSMS

from . import gateway

bp = Blueprint("android", __name__, url_prefix="/webhooks")

#: How far ``X-Timestamp`` may be from our clock, in seconds.
WINDOW = 300
STATUS_EVENTS = {"sms:sent": "sent", "sms:delivered": "delivered", "sms:failed": "failed"}


def signature(secret: str, body: bytes, timestamp: str) -> str:
    return hmac.new(secret.encode(), body + timestamp.encode(), hashlib.sha256).hexdigest()


def _authentic(body: bytes) -> bool:
    secret = current_app.extensions["smsgate.settings"].android_secret
    given = request.headers.get("X-Signature", "").strip().lower()
    timestamp = request.headers.get("X-Timestamp", "").strip()
    if not secret or not given or not timestamp.isdigit():
        return False
    if not hmac.compare_digest(signature(secret, body, timestamp), given):
        return False
    return abs(time.time() - int(timestamp)) <= WINDOW


def _received_at(value: object) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


@bp.post("/android")
def inbound() -> Response:
    body = request.get_data(cache=True)
    if not _authentic(body):
        abort(403)
    try:
        envelope = json.loads(body)
        event, payload = envelope.get("event"), envelope.get("payload") or {}
    except (ValueError, AttributeError):
        abort(400)
    if event in STATUS_EVENTS:
        _record_status(STATUS_EVENTS[event], payload)
        return jsonify(status="ok")
    if event != "sms:received":
        return jsonify(status="ignored")
    envelope_id = str(envelope.get("id") or "")
    # ``sender``/``recipient`` are the current fields; ``phoneNumber`` is the deprecated sender.
    sender = str(payload.get("sender") or payload.get("phoneNumber") or "")
    if not envelope_id or not sender:
        abort(400)
    sms = InboundSMS(
        provider="android",
        provider_message_id=envelope_id,
        from_number=sender,
        text=str(payload.get("message") or ""),
        to_number=str(payload.get("recipient") or ""),
        received_at=_received_at(payload.get("receivedAt")),
        reply_inline=False,
        device=str(envelope.get("deviceId") or ""),
    )
    reply = gateway().receive(sms)
    return jsonify(status="ok", outcome=reply.outcome)


def _record_status(status: str, payload: dict) -> None:
    message_id = str(payload.get("messageId") or "")
    if not message_id:
        return
    failed = status == "failed"
    error = str(payload.get("reason") or "failed on the phone") if failed else ""
    gateway().delivery_report(DeliveryReport("android", message_id, status, failed=failed, error=error))
