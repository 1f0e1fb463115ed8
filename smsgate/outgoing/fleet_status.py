"""What the fleet is doing: the figures behind ``smsgate gateways status``, the dashboard's
gateways page, the overview's warnings and the per-device gauges in ``/metrics``.

Per device: its state (up, or down and why), last seen (the latest heartbeat, message received
through it or SMS it accepted), messages received and SMS sent in the last 15 minutes, its
queue (rows waiting for it: depth and oldest), reply lag p50/p95 over the last 15 minutes
(a reply's queueing, which happens in the transaction that stores the inbound message, to the
device accepting it), and failures with the last error. A device silent or lagging beyond the
fleet's threshold (``silent_after_seconds``, 2 minutes by default) carries a warning.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from ..models import GatewayDevice, GatewayPing, InboundMessage, OutboundMessage
from .devices import down_reason
from .fleet import Device, Fleet

WINDOW = timedelta(minutes=15)


@dataclass
class DeviceStatus:
    name: str
    provider: str
    number: str
    rate: float
    daily_cap: int | None
    state: str
    down_reason: str
    last_seen: datetime | None
    last_ping: datetime | None
    health: str
    battery: int | None
    received_15m: int
    sent_15m: int
    sent_today: int
    queued: int
    oldest_queued_seconds: float | None
    lag_p50_seconds: float | None
    lag_p95_seconds: float | None
    failures: int
    consecutive_failures: int
    last_error: str | None
    last_error_at: datetime | None
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(self).items()}


@dataclass
class FleetStatus:
    devices: list[DeviceStatus]
    #: Rows queued that no device of the fleet claims as its own (they fail over).
    unrouted: int
    threshold_seconds: float

    @property
    def warnings(self) -> list[str]:
        return [f"{d.name}: {w}" for d in self.devices for w in d.warnings]

    def as_dict(self) -> dict[str, Any]:
        return {
            "devices": [d.as_dict() for d in self.devices],
            "unrouted": self.unrouted,
            "threshold_seconds": self.threshold_seconds,
            "warnings": self.warnings,
        }


def fleet_status(session: Session, fleet: Fleet, now: datetime) -> FleetStatus:
    """Every figure of every device (the gateways page, ``smsgate gateways status``, ``/metrics``)."""
    return _status(session, fleet, now, traffic=True)


def fleet_warnings(session: Session, fleet: Fleet, now: datetime) -> list[str]:
    """The fleet's warnings alone, as ``fleet_status(...).warnings`` gives them, for the overview.

    No warning depends on the inbound traffic (messages received, last received), and counting
    it groups every inbound message of the night (2 million nationally, about 160 ms); the
    overview is opened by every coordinator, so it leaves that query out."""
    return _status(session, fleet, now, traffic=False).warnings


def _status(session: Session, fleet: Fleet, now: datetime, *, traffic: bool) -> FleetStatus:
    since = now - WINDOW
    states = {s.name: s for s in session.scalars(select(GatewayDevice))}
    pings = {(p.provider, p.device): p for p in session.scalars(select(GatewayPing))}

    def home(provider: str, via: str | None) -> str | None:
        found = fleet.home(provider, via or "")
        return found.name if found else None

    received: dict[str, int] = {}
    last_in: dict[str, datetime] = {}
    inbound = _inbound(session, fleet.providers, since) if traffic else []
    for provider, via_device, count, latest in inbound:
        name = home(provider, via_device)
        if name is not None:
            received[name] = received.get(name, 0) + count
            last_in[name] = max(latest, last_in.get(name, latest))

    queued: dict[str | None, int] = {}
    oldest: dict[str | None, datetime] = {}
    for provider, via, count, first_queued in session.execute(
        select(
            OutboundMessage.provider, OutboundMessage.via, func.count(), func.min(OutboundMessage.created_at)
        )
        .where(OutboundMessage.status.in_(("queued", "sending")))
        .group_by(OutboundMessage.provider, OutboundMessage.via)
    ):
        name = home(provider, via)
        queued[name] = queued.get(name, 0) + count
        oldest[name] = min(first_queued, oldest.get(name, first_queued))

    sent: dict[str, int] = {}
    lags: dict[str, list[float]] = {}
    # Each device's window of ``ix_outbound_messages_device_sent`` (device, sent_at): with
    # ``device IS NOT NULL`` the index was read from its first device to its last, every SMS
    # ever sent, at each scrape of /metrics.
    for sender, kind, created, sent_at in session.execute(
        select(
            OutboundMessage.device, OutboundMessage.kind, OutboundMessage.created_at, OutboundMessage.sent_at
        ).where(OutboundMessage.device.in_([d.name for d in fleet.devices]), OutboundMessage.sent_at > since)
    ):
        if sender is None or sent_at is None:  # excluded by the query; the row types allow it
            continue
        sent[sender] = sent.get(sender, 0) + 1
        if kind == "reply":
            lags.setdefault(sender, []).append(max((sent_at - created).total_seconds(), 0.0))

    threshold = fleet.silent_after_seconds
    found = []
    for device in fleet.devices:
        state = states.get(device.name) or GatewayDevice(
            name=device.name,
            tokens=0.0,
            refilled_at=now,
            day="",
            sent_today=0,
            disabled=False,
            consecutive_failures=0,
            failures=0,
        )
        ping = pings.get((device.provider, device.identifier)) if device.identifier else None
        ping_times = {(device.provider, device.identifier): ping.last_ping_at} if ping else {}
        reason = down_reason(fleet, device, state, ping_times, now)
        seen = [
            t
            for t in (ping.last_ping_at if ping else None, last_in.get(device.name), state.last_sent_at)
            if t
        ]
        first = oldest.get(device.name)
        status = DeviceStatus(
            name=device.name,
            provider=device.provider,
            number=device.number,
            rate=device.rate,
            daily_cap=device.daily_cap,
            state="disabled" if state.disabled else ("down" if reason else "up"),
            down_reason=reason,
            last_seen=max(seen) if seen else None,
            last_ping=ping.last_ping_at if ping else None,
            health=ping.health if ping else "",
            battery=ping.battery if ping else None,
            received_15m=received.get(device.name, 0),
            sent_15m=sent.get(device.name, 0),
            sent_today=state.sent_today,
            queued=queued.get(device.name, 0),
            oldest_queued_seconds=round((now - first).total_seconds(), 1) if first else None,
            lag_p50_seconds=_percentile(lags.get(device.name), 50),
            lag_p95_seconds=_percentile(lags.get(device.name), 95),
            failures=state.failures,
            consecutive_failures=state.consecutive_failures,
            last_error=state.last_error,
            last_error_at=state.last_error_at,
        )
        status.warnings = _warnings(device, status, threshold, now)
        found.append(status)
    return FleetStatus(found, queued.get(None, 0), threshold)


#: The distinct devices one provider's messages came through, by a skip scan of the
#: ``(provider, device, received_at)`` index: one index lookup per device, not one per message.
_DEVICES_OF = text(
    """
    WITH RECURSIVE seen(device) AS (
        SELECT min(device) FROM inbound_messages WHERE provider = :provider
        UNION ALL
        SELECT (SELECT min(m.device) FROM inbound_messages m
                WHERE m.provider = :provider AND m.device > seen.device)
        FROM seen WHERE seen.device IS NOT NULL
    )
    SELECT device FROM seen WHERE device IS NOT NULL
    """
)


def _inbound(
    session: Session, providers: Iterable[str], since: datetime
) -> list[tuple[str, str | None, int, datetime]]:
    """(provider, device, messages since ``since``, latest message) for every device any of
    ``providers``' messages came through. The night's inbound messages (millions nationally,
    with ``/metrics`` scraped every few seconds) are never grouped: the devices come from a
    skip scan of the index, each one's latest message from one backward index lookup, and the
    counts from the window's rows through the ``received_at`` index."""
    counts: dict[tuple[str, str], int] = {
        (provider, device): count
        for provider, device, count in session.execute(
            select(InboundMessage.provider, InboundMessage.device, func.count())
            .where(InboundMessage.received_at > since)
            .group_by(InboundMessage.provider, InboundMessage.device)
        )
    }
    found: list[tuple[str, str | None, int, datetime]] = []
    for provider in sorted(providers):
        for device in session.scalars(_DEVICES_OF, {"provider": provider}):
            latest = session.scalar(
                select(InboundMessage.received_at)
                .where(InboundMessage.provider == provider, InboundMessage.device == device)
                .order_by(InboundMessage.received_at.desc())
                .limit(1)
            )
            if latest is not None:
                found.append((provider, device, counts.get((provider, device), 0), latest))
    return found


def _warnings(device: Device, status: DeviceStatus, threshold: float, now: datetime) -> list[str]:
    warnings = []
    if status.state != "up":
        warnings.append(f"{status.state}: {status.down_reason}")
    if device.heartbeat and status.last_ping and (now - status.last_ping).total_seconds() > threshold:
        silent = (now - status.last_ping).total_seconds()
        if not status.down_reason.startswith("silent"):
            warnings.append(f"silent for {silent:.0f}s")
    if status.oldest_queued_seconds is not None and status.oldest_queued_seconds > threshold:
        warnings.append(f"lagging: oldest queued reply waits {status.oldest_queued_seconds:.0f}s")
    elif status.lag_p95_seconds is not None and status.lag_p95_seconds > threshold:
        warnings.append(f"lagging: reply lag p95 {status.lag_p95_seconds:.0f}s")
    return warnings


def _percentile(values: list[float] | None, pct: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[pct - 1], 1)
