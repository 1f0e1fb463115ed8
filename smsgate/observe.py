"""What ``serve`` says about each SMS and each refused webhook: a log line and the metrics.

One line per handled SMS (provider, message id, masked sender, outcome, milliseconds) and one
per refused webhook with its reason, so a deployment that answers every SMS with an error or
refuses every webhook shows it in ``journalctl`` and on ``/metrics``, not only in the database.
Refusals are rate-limited per provider and reason: an attacker posting junk cannot fill the disk.
"""

from __future__ import annotations

import logging

from .inbound import InboundSMS, Reply
from .logs import RateLimit, mask_phone

log = logging.getLogger("smsgate.sms")
_refusals = RateLimit(per_minute=30)


def sms_handled(sms: InboundSMS, reply: Reply, seconds: float) -> None:
    from . import metrics

    outcome = reply.outcome or "unknown"
    metrics.observe_sms(sms.provider, outcome, seconds)
    if not log.isEnabledFor(logging.INFO):
        return  # the masked sender and the fields are for the line only
    sender = mask_phone(sms.from_number)
    ms = round(seconds * 1000, 1)
    log.info(
        "sms %s %s from %s: %s in %.0f ms",
        sms.provider,
        sms.provider_message_id,
        sender,
        outcome,
        ms,
        extra={
            "fields": {
                "event": "sms",
                "provider": sms.provider,
                "message_id": sms.provider_message_id,
                "sender": sender,
                "outcome": outcome,
                "ms": ms,
            }
        },
    )


def webhook_refused(provider: str, reason: str, remote: str | None) -> None:
    from . import metrics

    metrics.observe_refusal(provider, reason)
    allowed, suppressed = _refusals.allow(f"{provider}:{reason}")
    if not allowed:
        return
    more = f" ({suppressed} similar refusals not logged)" if suppressed else ""
    log.warning(
        "refused %s webhook from %s: %s%s",
        provider,
        remote or "?",
        reason,
        more,
        extra={
            "fields": {
                "event": "webhook_refused",
                "provider": provider,
                "reason": reason,
                "remote": remote,
                "suppressed": suppressed,
            }
        },
    )
