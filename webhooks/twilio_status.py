"""Twilio's status callback for SMS we sent through its REST API: updates the outbound row.

Signed like the inbound webhook (``X-Twilio-Signature``); ``failed`` and ``undelivered``
mark the row failed with Twilio's error code, other statuses are recorded as they come.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort
from flask import request as flask_request

from smsgate.inbound import DeliveryReport

from .front_door import gateway, refuse
from .twilio import refusal

bp = Blueprint("twilio_status", __name__, url_prefix="/webhooks")


@bp.post("/twilio/status")
def status() -> Response:
    reason = refusal()
    if reason:
        refuse("twilio", reason)
    sid = flask_request.form.get("MessageSid", "")
    state = flask_request.form.get("MessageStatus", "")
    if not sid or not state:
        abort(400)
    failed = state in ("failed", "undelivered")
    error = f"twilio {state} {flask_request.form.get('ErrorCode', '')}".strip() if failed else ""
    if not gateway().delivery_report(DeliveryReport("twilio", sid, state, failed=failed, error=error)):
        return Response("not recorded", status=503, mimetype="text/plain")
    return Response("", status=204)
