"""What every HTTP response carries for the browser's protection, and the real client address.

The dashboard is served from its own origin with its own scripts and stylesheets only (no inline
script, no inline style, no third-party resource), so the Content-Security-Policy can forbid
everything else: an injected ``<script>`` does not run, and ``frame-ancestors 'none'`` (with
``X-Frame-Options: DENY`` for older browsers) stops another site from framing the review page to
trick a coordinator into a one-click confirm. HSTS is sent on https only: browsers ignore it on
plain http, and it would lock a plain-http test deployment out of itself.

Behind ``SMSGATE_TRUSTED_PROXIES`` reverse proxies (Caddy, nginx), Werkzeug's ``ProxyFix`` takes
the client address, scheme and host from that many ``X-Forwarded-*`` hops, so the login limits
see each person's own address and ``request.is_secure`` knows the proxy spoke TLS. With 0 (the
default) those headers are ignored: anyone can send them, so trusting them without a proxy would
let a guesser pick a new address for every attempt.
"""

from __future__ import annotations

from flask import Flask, Response, request
from werkzeug.middleware.proxy_fix import ProxyFix

from .config import Settings

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
HSTS = "max-age=31536000"


#: The headers every response carries unless its view set its own, in the order they are added.
SECURITY_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
)


def security_headers(response: Response) -> Response:
    """Add each security header the view did not set itself.

    The names present are read once: Werkzeug's ``Headers.setdefault`` looks each name up by
    raising and catching a ``KeyError`` (an HTTP exception class) when it is absent, four times
    a response, about a tenth of the web layer's CPU on a webhook."""
    headers = response.headers
    present = {name.lower() for name, _value in headers.items()}
    for name, value in SECURITY_HEADERS:
        if name.lower() not in present:
            headers.add(name, value)
    if request.is_secure and "strict-transport-security" not in present:
        headers.add("Strict-Transport-Security", HSTS)
    return response


def init_app(app: Flask, settings: Settings) -> None:
    hops = settings.trusted_proxies
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    app.after_request(security_headers)
