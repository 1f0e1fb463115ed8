"""Webhook signatures: ``Smsgate-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">``.

The scheme of the best-known webhook senders: the timestamp is signed with the body, so a
captured request cannot be replayed after the tolerance window, and a receiver can accept
several ``v1=`` values while a secret is being rotated.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Sequence

HEADER = "Smsgate-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: How far a signature's timestamp may be from the receiver's clock, in seconds.
DEFAULT_TOLERANCE = 300
#: ASCII only: ``str.isdigit`` and ``\d`` also accept "²" or "٣", which ``int`` then rejects or misreads.
_DIGITS = re.compile(r"[0-9]{1,12}")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


def signature(secret: str, timestamp: int, body: bytes) -> str:
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str | Sequence[str], body: bytes, timestamp: int | None = None) -> str:
    """The ``Smsgate-Signature`` header value for ``body``: one ``v1=`` per secret given
    (during a rotation the new secret first, then the old one), all over the same ``t``."""
    t = int(time.time()) if timestamp is None else timestamp
    secrets = [secret] if isinstance(secret, str) else list(secret)
    return ",".join([f"t={t}", *(f"v1={signature(s, t, body)}" for s in secrets)])


def verify(
    secret: str | Sequence[str],
    header: str | None,
    body: bytes,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> bool:
    """True when ``header`` carries a valid signature of ``body`` made within ``tolerance`` seconds.

    ``secret`` may be several secrets (a rotation: any of them will do). Anything malformed —
    a missing or non-ASCII-digit ``t`` (``"²".isdigit()`` is true in Python), a ``v1`` that
    is not 64 hex digits, non-ASCII text — is simply not a valid signature: this never raises.
    """
    if not header:
        return False
    timestamp, candidates = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and _DIGITS.fullmatch(value):
            timestamp = int(value)
        elif key == "v1" and _HEX64.fullmatch(value):
            candidates.append(value.lower())
    if timestamp is None or not candidates:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    secrets = [secret] if isinstance(secret, str) else list(secret)
    expected = [signature(s, timestamp, body) for s in secrets if s]
    return any(hmac.compare_digest(e, c) for e in expected for c in candidates)
