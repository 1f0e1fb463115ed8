"""Kannel ``sms-service`` and the Gammu spool forwarder: ``GET|POST /webhooks/kannel`` and
``POST /webhooks/gammu`` with ``sender``, ``receiver``, ``text``, ``time``, ``smsc``, ``id``,
``coding`` and ``charset``, answered with the reply as ``text/plain`` (empty: send nothing).

Authentication: ``SMSGATE_KANNEL_SECRET`` in the ``secret`` parameter or the
``X-Smsgate-Secret`` header (constant-time compare), and, when ``SMSGATE_KANNEL_ALLOWED_IPS`` is
set, the client address must be in that list.

Kannel builds two request shapes (gw/smsbox.c, ``obey_request``): ``get-url`` puts every escape
code in the query string, the text (``%a``) percent-encoded as raw bytes of the message's
charset (UTF-16BE for a UCS-2 message); ``post-url`` sends the text as the request body with
its charset in ``Content-Type`` and ``X-Kannel-To``/``-Time``/``-SMSC``/``-Coding`` headers,
and ``X-Kannel-From`` only with ``send-sender = true`` (else the sender comes from the URL,
``?sender=%p``). The text is decoded by Kannel's charset (``%C``) or coding (``%c``), so
UCS-2 (emoji, Javanese script) arrives as sent. ``time`` is ``%T`` (Unix seconds), ``%t`` or
``X-Kannel-Time`` (``YYYY-MM-DD HH:MM:SS``, UTC); anything else is refused (400).

Kannel treats only 200 and 202 as success and retries anything else when ``http-request-retry``
is set; a message we could not store is answered 503 so that it comes again.

Kannel's ``%I`` is a UUID; without an ``id`` the dedupe key is a hash of smsc, sender,
receiver, time and text, which is why one of ``id`` or ``time`` is required.
"""

from __future__ import annotations

import codecs
import hashlib
import hmac
import re
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from flask import Blueprint, Response, abort, current_app, request

from grammar.masking import mask
from smsgate.inbound import InboundSMS

from .front_door import gateway, refuse

bp = Blueprint("kannel", __name__, url_prefix="/webhooks")

FORM_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data"}
_UNIX_SECONDS = re.compile(r"[0-9]{1,11}", re.ASCII)
_KANNEL_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[ +T][0-9]{2}:[0-9]{2}:[0-9]{2}", re.ASCII)
#: Kannel's charset names for text it keeps in its own internal form (UTF-8).
_INTERNAL = {"", "gsm", "8-bit", "binary"}


def _refusal() -> str | None:
    """Why this request is not our Kannel's or Gammu's (logged and counted by ``refuse``), or None."""
    settings = current_app.extensions["smsgate.settings"]
    if not settings.kannel_secret:
        return "no_secret"
    if settings.kannel_allowed_ips and request.remote_addr not in settings.kannel_allowed_ips:
        return "address_not_allowed"
    given = request.headers.get("X-Smsgate-Secret") or request.values.get("secret", "")
    if not hmac.compare_digest(given.encode("utf-8", "replace"), settings.kannel_secret.encode()):
        return "bad_secret"
    return None


def _field(name: str, header: str) -> str:
    return (request.values.get(name) or request.headers.get(header) or "").strip()


def decode_text(raw: bytes, charset: str = "", coding: str = "") -> str:
    """Kannel's message bytes as text: by its charset (``%C``), else by its coding (``%c``)."""
    name = charset.strip().strip('"').lower()
    if name in _INTERNAL:
        name = "utf-16-be" if coding.strip() == "2" else "utf-8"
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        codec = "utf-8"
    return raw.decode(codec, "replace")


def _raw_parameter(name: str) -> bytes | None:
    """The percent-decoded bytes of a query or form parameter, before any charset decoding."""
    sources = [request.query_string]
    if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
        sources.append(request.get_data(cache=True))
    for source in sources:
        for key, value in parse_qsl(source.decode("latin-1"), keep_blank_values=True, encoding="latin-1"):
            if key == name:
                return value.encode("latin-1")
    return None


def _text() -> str:
    coding = _field("coding", "X-Kannel-Coding")
    raw = _raw_parameter("text")
    if raw is not None:
        return decode_text(raw, request.values.get("charset", ""), coding)
    if request.method == "POST" and request.mimetype not in FORM_TYPES:  # Kannel post-url
        charset = request.mimetype_params.get("charset", "") or request.values.get("charset", "")
        return decode_text(request.get_data(cache=True), charset, coding)
    return request.values.get("text", "")


def _received_at(value: str) -> datetime | None:
    """Kannel's ``%T`` (Unix seconds) or ``%t``/``X-Kannel-Time`` (UTC); None when absent.

    Anything else is refused (400): Kannel never sends it.
    """
    if not value:
        return None
    try:
        if _UNIX_SECONDS.fullmatch(value):
            return datetime.fromtimestamp(int(value), UTC)
        if _KANNEL_TIME.fullmatch(value):
            return datetime.strptime(value[:10] + " " + value[11:], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        pass
    abort(400, description="time must be Unix seconds or YYYY-MM-DD HH:MM:SS")


def _inbound(provider: str) -> Response:
    reason = _refusal()
    if reason:
        refuse(provider, reason)
    sender = _field("sender", "X-Kannel-From")
    receiver = _field("receiver", "X-Kannel-To")
    moment = _field("time", "X-Kannel-Time")
    smsc = _field("smsc", "X-Kannel-SMSC")
    message_id = _field("id", "X-Kannel-Id")
    if not sender or not (message_id or moment):
        abort(400)
    received_at = _received_at(moment)
    text = _text()
    queued = provider == "kannel" and current_app.extensions["smsgate.settings"].kannel_reply == "queue"
    if not message_id:
        # The text is hashed with its PIN masked, as it is stored: a digest of the real text would
        # let anyone who reads the database recover a 4-6 digit PIN by trying them all.
        material = "\x1f".join((smsc, sender, receiver, moment, mask(text))).encode("utf-8", "replace")
        message_id = "h:" + hashlib.sha256(material).hexdigest()[:40]
    sms = InboundSMS(
        provider=provider,
        provider_message_id=message_id,
        from_number=sender,
        text=text,
        to_number=receiver,
        received_at=received_at,
        device=smsc,
        reply_inline=not queued,
    )
    reply = gateway().receive(sms)
    if not reply.stored:  # Kannel retries (http-request-retry) and the forwarder keeps the file
        return Response(reply.text or "", status=503, mimetype="text/plain")
    # Queued replies go out through the worker (priorities, the modem's rate): answer nothing here.
    return Response("" if queued else reply.text or "", mimetype="text/plain")


@bp.route("/kannel", methods=["GET", "POST"])
def inbound() -> Response:
    return _inbound("kannel")


@bp.post("/gammu")
def gammu() -> Response:
    """What ``smsgate gammu forward`` posts from a Gammu SMSD spool (see the README)."""
    return _inbound("gammu")
