"""Twilio's status callback for SMS we sent through its REST API: updates the outbound row.

Signed like the inbound webhook (``X-Twilio-Signature``); ``failed`` and ``undelivered``
mark the row failed with Twilio's error code, other statuses are recorded as they come.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app
from flask import request as flask_request
from sqlalchemy import select

from smsgate.models import OutboundMessage

from .twilio import signature_is_valid

bp = Blueprint("twilio_status", __name__, url_prefix="/webhooks")


@bp.post("/twilio/status")
def status() -> Response:
    if not signature_is_valid():
        abort(403)
    sid = flask_request.form.get("MessageSid", "")
    state = flask_request.form.get("MessageStatus", "")
    if not sid or not state:
        abort(400)
    database = current_app.extensions["smsgate.database"]
    with database.begin() as session:
        rows = session.scalars(
            select(OutboundMessage).where(
                OutboundMessage.provider == "twilio", OutboundMessage.provider_message_id == sid
            )
        )
        for row in rows:
            row.provider_status = state[:32]
            if state in ("failed", "undelivered"):
                row.status = "failed"
                row.last_error = f"twilio {state} {flask_request.form.get('ErrorCode', '')}".strip()[:300]
    return Response("", status=204)
