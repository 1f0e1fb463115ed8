"""Twilio's inbound SMS webhook: form-encoded POST, ``X-Twilio-Signature``, TwiML reply.

The signature covers the URL Twilio called and every form field, so behind a TLS proxy the
URL must be rebuilt from ``SMSGATE_PUBLIC_URL`` rather than from what Flask sees.
"""

from __future__ import annotations

import hmac
from functools import lru_cache
from xml.sax.saxutils import escape

from flask import Blueprint, Response, abort, request
from twilio.request_validator import RequestValidator

from smsgate.inbound import InboundSMS

from .front_door import gateway, refuse, settings

bp = Blueprint("twilio", __name__, url_prefix="/webhooks")


def public_url(base: str | None = None) -> str:
    """The URL Twilio signed: the configured public base (``base``, else the settings') plus our
    path and query string."""
    base = base if base is not None else settings().public_url
    if not base:
        return request.url
    url = base.rstrip("/") + request.path
    query = request.query_string.decode("latin-1")
    return f"{url}?{query}" if query else url


@lru_cache(maxsize=8)
def validator(token: str) -> RequestValidator:
    """One validator per auth token, not one per request."""
    return RequestValidator(token)


class _Params(dict[str, str]):
    """The form as the validator reads it: its ``getall`` first, so computing a signature does
    not raise and catch two AttributeErrors per field (the library's fallback for a plain dict)."""

    def getall(self, name: str) -> list[str]:
        return [self[name]]


def refusal() -> str | None:
    """Why this request is not Twilio's, or None when its signature is right.

    Twilio signs the URL it called, which is the configured public URL: that one HMAC is
    computed first. Only when it does not match does the library's own check run, which also
    tries the URL with and without its default port (two HMACs more), so exactly the signatures
    the library accepts are accepted, and a genuine webhook costs one HMAC, not two.
    """
    configured = settings()
    token = configured.twilio_auth_token
    signature = request.headers.get("X-Twilio-Signature", "")
    if not token:
        return "no_secret"
    if not signature:
        return "no_signature"
    fields = _Params(request.form.to_dict(flat=True))
    url, check = public_url(configured.public_url or ""), validator(token)
    if hmac.compare_digest(check.compute_signature(url, fields).encode(), signature.encode()):
        return None
    if not check.validate(url, fields, signature):
        return "bad_signature"
    return None


TWIML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>'


def twiml(text: str | None) -> str:
    """The TwiML answer: one ``<Message>`` with ``text``, or none. Byte for byte what the twilio
    package's ``MessagingResponse`` renders, without building and serialising an element tree
    for every request (ElementTree escapes ``&``, ``<`` and ``>`` in text, as ``escape`` does)."""
    if not text:
        return TWIML_HEAD + "<Response />"
    return f"{TWIML_HEAD}<Response><Message>{escape(text)}</Message></Response>"


@bp.post("/twilio")
def inbound() -> Response:
    reason = refusal()  # before the body is read: an unsigned request is refused unparsed
    if reason:
        refuse("twilio", reason)
    form = request.form  # one look-up through Flask's request proxy, not one per field
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    sender = form.get("From", "")
    if not sid or not sender:
        abort(400)
    to_number = form.get("To", "")
    sms = InboundSMS(
        provider="twilio",
        provider_message_id=sid,
        from_number=sender,
        to_number=to_number,
        text=form.get("Body", ""),
        device=to_number,
    )
    reply = gateway().receive(sms)
    return Response(twiml(reply.text), mimetype="application/xml")
