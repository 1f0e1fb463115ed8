"""What every worker shares about each fleet device: its send-rate bucket, its daily count, its
failures, its heartbeat and the operator's switch (the ``gateway_devices`` and
``gateway_pings`` rows).

``survey`` runs inside the claim transaction with the device rows locked, so the buckets and
caps hold across any number of workers, exactly as the per-provider buckets did before.
A device is *down* when

- an operator disabled it (``smsgate gateways disable NAME``),
- it sends heartbeats (``heartbeat = true``) and none came for ``silent_after_seconds``,
- its last ``failures_to_down`` sends failed and the last failure is under
  ``down_for_seconds`` old (after that one send is tried again: success brings it back),
- or its daily cap is used up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db import upsert_for
from ..models import GatewayDevice, GatewayPing
from .fleet import Device, Fleet


@dataclass
class Availability:
    device: Device
    #: Why the device is down, or "" when it is up.
    down: str
    #: Sends it may take now (bucket and daily cap).
    tokens: int

    @property
    def up(self) -> bool:
        return not self.down


def local_day(now: datetime, timezone: str) -> str:
    """The deployment's calendar day, which daily caps count against."""
    return now.astimezone(ZoneInfo(timezone)).date().isoformat()


def ensure(session: Session, capacities: dict[str, float], now: datetime) -> None:
    """Create the state rows of devices seen for the first time, with ``capacities`` tokens
    (concurrent workers may race; the first insert wins)."""
    insert = upsert_for(session)
    if not capacities:
        return
    session.execute(
        insert(GatewayDevice)
        .values(
            [
                {
                    "name": name,
                    "tokens": capacity,
                    "refilled_at": now,
                    "day": "",
                    "sent_today": 0,
                    "disabled": False,
                    "consecutive_failures": 0,
                    "failures": 0,
                }
                for name, capacity in capacities.items()
            ]
        )
        .on_conflict_do_nothing(index_elements=["name"])
    )


#: The fraction of an SMS a full bucket keeps towards the next one (see ``capacity``).
CARRY = 0.999


def burst(device: Device) -> float:
    """Whole sends a device may take at once: one second of its rate, at least one SMS. A new
    bucket starts with this many."""
    return max(1.0, device.rate)


def capacity(device: Device) -> float:
    """A bucket holds ``burst`` plus the fraction of an SMS earned towards the next one.

    Why the fraction: workers come by every so often, not at the very moment a token is
    earned. With a bucket of exactly one SMS, a phone at 0.35 SMS/s that a worker visits
    every 2 s held 0.7 tokens, then 1.4 cut to 1, sent, and sent again only 4 s later: 0.25
    SMS/s, a third of the phone lost. Keeping the fraction (never a whole extra SMS, so
    never a burst beyond ``burst``) lets the next visit send on time, and the device keeps its
    rate on average whatever the polling interval.
    """
    return burst(device) + CARRY


def lock_states(session: Session, fleet: Fleet, now: datetime) -> dict[str, GatewayDevice]:
    """The fleet's state rows, locked (in name order, so two workers never deadlock)."""
    names = sorted(d.name for d in fleet.devices)
    ensure(session, {d.name: burst(d) for d in fleet.devices}, now)
    rows = session.scalars(
        select(GatewayDevice)
        .where(GatewayDevice.name.in_(names))
        .order_by(GatewayDevice.name)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {row.name: row for row in rows}


def last_pings(session: Session, fleet: Fleet) -> dict[tuple[str, str], datetime]:
    keys = [(d.provider, d.identifier) for d in fleet.devices if d.heartbeat]
    if not keys:
        return {}
    rows = session.execute(
        select(GatewayPing.provider, GatewayPing.device, GatewayPing.last_ping_at).where(
            GatewayPing.device.in_([identifier for _, identifier in keys])
        )
    )
    return {(provider, device): at for provider, device, at in rows}


def survey(
    session: Session, fleet: Fleet, states: dict[str, GatewayDevice], now: datetime, timezone: str, batch: int
) -> dict[str, Availability]:
    """Refill every bucket to ``now``, roll the daily counts over, and say which devices are up
    and how many sends each may take now (at most ``batch``)."""
    day = local_day(now, timezone)
    pings = last_pings(session, fleet)
    found: dict[str, Availability] = {}
    for device in fleet.devices:
        state = states[device.name]
        elapsed = max((now - state.refilled_at).total_seconds(), 0.0)
        state.tokens = min(capacity(device), state.tokens + elapsed * device.rate)
        state.refilled_at = max(now, state.refilled_at)
        if state.day != day:
            state.day, state.sent_today = day, 0
        tokens = min(batch, int(min(state.tokens, burst(device)) + 1e-9))
        if device.daily_cap is not None:
            tokens = min(tokens, max(device.daily_cap - state.sent_today, 0))
        found[device.name] = Availability(device, down_reason(fleet, device, state, pings, now), tokens)
    return found


def down_reason(
    fleet: Fleet,
    device: Device,
    state: GatewayDevice,
    pings: dict[tuple[str, str], datetime],
    now: datetime,
) -> str:
    """Why ``device`` must not send now, or "" when it may."""
    if state.disabled:
        return "disabled by an operator"
    if device.heartbeat:
        last = pings.get((device.provider, device.identifier))
        if last is None:
            return "no heartbeat yet"
        silent = (now - last).total_seconds()
        if silent > fleet.silent_after_seconds:
            return f"silent for {silent:.0f}s"
    if (
        state.consecutive_failures >= fleet.failures_to_down
        and state.last_error_at is not None
        and now - state.last_error_at < timedelta(seconds=fleet.down_for_seconds)
    ):
        return f"failing: {state.last_error or 'send failed'}"[:120]
    if device.daily_cap is not None and state.sent_today >= device.daily_cap:
        return f"daily cap {device.daily_cap} reached"
    return ""


def record_send(session: Session, name: str, now: datetime, error: str | None) -> None:
    """Note one send's outcome on the device: a success clears its failure streak."""
    state = session.get(GatewayDevice, name, with_for_update=True, populate_existing=True)
    if state is None:
        return
    if error is None:
        state.consecutive_failures = 0
        state.last_sent_at = now
        return
    state.consecutive_failures += 1
    state.failures += 1
    state.last_error, state.last_error_at = error[:300], now


def set_disabled(session: Session, name: str, disabled: bool, now: datetime) -> None:
    """The operator's switch: a disabled device takes nothing; its queue fails over."""
    ensure(session, {name: 1.0}, now)
    state = session.get(GatewayDevice, name, with_for_update=True, populate_existing=True)
    assert state is not None
    state.disabled = disabled
    state.disabled_at = now if disabled else None
    if not disabled:
        state.consecutive_failures = 0
