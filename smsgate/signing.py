"""Webhook signatures: ``Smsgate-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">``.

The scheme of the best-known webhook senders: the timestamp is signed with the body, so a
captured request cannot be replayed after the tolerance window, and a receiver can accept
several ``v1=`` values while a secret is being rotated.
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "Smsgate-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: How far a signature's timestamp may be from the receiver's clock, in seconds.
DEFAULT_TOLERANCE = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The ``Smsgate-Signature`` header value for ``body``."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={signature(secret, t, body)}"


def verify(
    secret: str, header: str | None, body: bytes, tolerance: int = DEFAULT_TOLERANCE, now: float | None = None
) -> bool:
    """True when ``header`` carries a valid signature of ``body`` made within ``tolerance`` seconds."""
    if not header:
        return False
    timestamp, candidates = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isascii() and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif key == "v1" and value.isascii():
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)
