"""The security headers on a webhook's answer: each one exactly once, a view's own value kept,
HSTS on https only, and none of them costing the answer an exception."""

from __future__ import annotations

import sys
from pathlib import Path
from types import FrameType
from typing import Any

from flask import Response

from smsgate.http_security import CONTENT_SECURITY_POLICY, HSTS, security_headers

from ..support import VOLUNTEER_A

#: Werkzeug's module of ``Headers``.
HEADER_CODE = str(Path("werkzeug", "datastructures", "headers.py"))
FIXED = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def test_a_webhook_answer_carries_each_security_header_once(sms, world):
    assert sms(VOLUNTEER_A, "TPS 012 01=120 02=98 03=150").startswith("OK")
    headers = sms.last_response.headers
    for name, value in FIXED.items():
        assert headers.getlist(name) == [value], name
    assert "Strict-Transport-Security" not in headers  # the test client speaks plain http


def test_hsts_once_over_https_and_a_views_own_header_kept(app):
    @app.get("/test-own-headers")
    def own() -> Response:
        response = Response("framed on purpose")
        response.headers["X-Frame-Options"] = "SAMEORIGIN"
        response.headers["Strict-Transport-Security"] = "max-age=60"
        return response

    client = app.test_client()
    headers = client.get("/test-own-headers", base_url="https://localhost").headers
    assert headers.getlist("X-Frame-Options") == ["SAMEORIGIN"]
    assert headers.getlist("Strict-Transport-Security") == ["max-age=60"]
    assert headers.getlist("Content-Security-Policy") == [CONTENT_SECURITY_POLICY]
    plain = client.get("/livez", base_url="https://localhost").headers
    assert plain.getlist("Strict-Transport-Security") == [HSTS]


def test_adding_the_headers_raises_nothing(sms, world):
    """Werkzeug's ``Headers.setdefault`` finds a header absent by raising and catching a
    ``BadRequestKeyError``: four exceptions an answer, about a tenth of the web layer's CPU.
    Every exception raised in Werkzeug's header code under ``security_headers`` while a webhook
    is answered is recorded through the interpreter's trace hook: none."""
    sms(VOLUNTEER_A, "TPS 012 01=120 02=98 03=150")  # first-request work is not counted
    raised: list[str] = []

    def trace(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "exception" and frame.f_code.co_filename.endswith(HEADER_CODE):
            caller: FrameType | None = frame
            while caller is not None and caller.f_code is not security_headers.__code__:
                caller = caller.f_back
            if caller is not None:
                raised.append(f"{frame.f_code.co_name}: {arg[0].__name__}")
        return trace

    sys.settrace(trace)
    try:
        assert sms(VOLUNTEER_A, "TPS 012 01=121 02=98 03=150").startswith("OK")
    finally:
        sys.settrace(None)
    assert raised == []
