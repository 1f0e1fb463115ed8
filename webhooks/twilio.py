"""Twilio's inbound SMS webhook: form-encoded POST, ``X-Twilio-Signature``, TwiML reply.

The signature covers the URL Twilio called and every form field, so behind a TLS proxy the
URL must be rebuilt from ``SMSGATE_PUBLIC_URL`` rather than from what Flask sees.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, request
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from smsgate.inbound import InboundSMS

from .front_door import gateway, refuse, settings

bp = Blueprint("twilio", __name__, url_prefix="/webhooks")


def public_url() -> str:
    """The URL Twilio signed: the configured public base plus our path and query string."""
    base = settings().public_url
    if not base:
        return request.url
    url = base.rstrip("/") + request.path
    query = request.query_string.decode("latin-1")
    return f"{url}?{query}" if query else url


def refusal() -> str | None:
    """Why this request is not Twilio's, or None when its signature is right."""
    token = settings().twilio_auth_token
    signature = request.headers.get("X-Twilio-Signature", "")
    if not token:
        return "no_secret"
    if not signature:
        return "no_signature"
    if not RequestValidator(token).validate(public_url(), request.form.to_dict(flat=True), signature):
        return "bad_signature"
    return None


@bp.post("/twilio")
def inbound() -> Response:
    reason = refusal()
    if reason:
        refuse("twilio", reason)
    sid = request.form.get("MessageSid") or request.form.get("SmsSid") or ""
    sender = request.form.get("From", "")
    if not sid or not sender:
        abort(400)
    sms = InboundSMS(
        provider="twilio",
        provider_message_id=sid,
        from_number=sender,
        to_number=request.form.get("To", ""),
        text=request.form.get("Body", ""),
        device=request.form.get("To", ""),
    )
    reply = gateway().receive(sms)
    twiml = MessagingResponse()
    if reply.text:
        twiml.message(reply.text)
    return Response(str(twiml), mimetype="application/xml")
