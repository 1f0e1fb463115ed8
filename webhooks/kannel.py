"""Kannel ``sms-service`` and Gammu SMSD (``contrib/gammu-smsd-runonreceive.sh``): ``GET|POST
/webhooks/kannel`` with ``sender``, ``receiver``, ``text``, ``time``, ``smsc`` and ``id``, answered
with the reply as ``text/plain`` (empty when there is nothing to send).

Authentication: ``SMSGATE_KANNEL_SECRET`` in the ``secret`` parameter or the
``X-Smsgate-Secret`` header (constant-time compare), and, when ``SMSGATE_KANNEL_ALLOWED_IPS`` is
set, the client address must be in that list. Kannel's ``post-url`` form (text as the body,
``X-Kannel-From``/``-To``/``-Time`` headers) is accepted too.

Kannel gives a message no id we can count on, so the dedupe key is the ``id`` parameter when
sent (Kannel's ``%I``, Gammu's inbox file name) and otherwise a hash of smsc, sender, receiver,
time and text; one of ``id`` or ``time`` is required so two identical texts sent at different
times stay two messages.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

from flask import Blueprint, Response, abort, current_app, request

from smsgate.inbound import InboundSMS

from . import gateway

bp = Blueprint("kannel", __name__, url_prefix="/webhooks")


def _authentic() -> bool:
    settings = current_app.extensions["smsgate.settings"]
    if not settings.kannel_secret:
        return False
    if settings.kannel_allowed_ips and request.remote_addr not in settings.kannel_allowed_ips:
        return False
    given = request.headers.get("X-Smsgate-Secret") or request.values.get("secret", "")
    return hmac.compare_digest(given.encode(), settings.kannel_secret.encode())


def _field(name: str, header: str) -> str:
    return (request.values.get(name) or request.headers.get(header) or "").strip()


def _received_at(value: str) -> datetime | None:
    """Kannel's ``%T`` (Unix seconds); other forms are kept only in the dedupe key."""
    if value.isdigit():
        return datetime.fromtimestamp(int(value), UTC)
    return None


@bp.route("/kannel", methods=["GET", "POST"])
def inbound() -> Response:
    if not _authentic():
        abort(403)
    sender = _field("sender", "X-Kannel-From")
    receiver = _field("receiver", "X-Kannel-To")
    moment = _field("time", "X-Kannel-Time")
    smsc = _field("smsc", "X-Kannel-SMSC")
    message_id = _field("id", "X-Kannel-Id")
    if "text" in request.values:
        text = request.values["text"]
    elif request.headers.get("X-Kannel-From"):
        text = request.get_data(as_text=True)
    else:
        text = ""
    if not sender or not (message_id or moment):
        abort(400)
    if not message_id:
        material = "\x1f".join((smsc, sender, receiver, moment, text)).encode()
        message_id = "h:" + hashlib.sha256(material).hexdigest()[:40]
    sms = InboundSMS(
        provider="kannel",
        provider_message_id=message_id[:128],
        from_number=sender,
        text=text,
        to_number=receiver,
        received_at=_received_at(moment),
        device=smsc,
    )
    reply = gateway().receive(sms)
    return Response(reply.text or "", mimetype="text/plain")
