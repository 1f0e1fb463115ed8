"""Which device sends which queued SMS: same number back, priorities, failover.

Every queued row names the provider and device (``via``) the contact wrote to. Its *home*
is the fleet device with that identifier, or else the provider's catch-all device (one
without an identifier, as in a fleet of one).

- A row whose home is up waits for its home's tokens: the volunteer sees the answer from
  the number they texted.
- A row whose home is down, or that has no home, *fails over* by the fleet's policy:
  ``any`` (default) picks an up device of the same provider, else any up device;
  ``same-provider`` only the former; ``none`` waits for the home device. Among candidates the
  one with the most sends to spare wins. The row records the device in ``device`` and the
  reason in ``route``.
- A row no device of the fleet can ever take (its provider has no device and the policy
  forbids another) fails at once with that reason instead of waiting forever.
- Within what the devices may send now, rows go strictly by ``priority`` (volunteers,
  coordinators, broadcasts and reminders, strangers), then by due time: a flood of strangers
  never delays a volunteer's confirmation on the same device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, false, or_

from ..models import OutboundMessage
from .devices import Availability
from .fleet import Device, Fleet
from .senders import no_sender_reason


def home_condition(fleet: Fleet, device: Device) -> ColumnElement[bool]:
    """SQL: the rows whose home is ``device``."""
    row = OutboundMessage
    if device.identifier:
        return and_(row.provider == device.provider, row.via == device.identifier)
    taken = [d.identifier for d in fleet.devices if d.provider == device.provider and d.identifier]
    if taken:
        return and_(row.provider == device.provider, row.via.not_in(taken))
    return row.provider == device.provider


def orphan_condition(fleet: Fleet, down: Sequence[Device]) -> ColumnElement[bool]:
    """SQL: rows whose home is one of the ``down`` devices, or that have no home at all."""
    homes = [home_condition(fleet, d) for d in fleet.devices]
    homeless = ~or_(*homes) if homes else ~false()
    return or_(homeless, *[home_condition(fleet, d) for d in down])


@dataclass(frozen=True)
class Candidate:
    row_id: int
    priority: int
    order: tuple
    provider: str
    #: The home device's name, or None when the row has none.
    home: str | None


@dataclass(frozen=True)
class Assignment:
    row_id: int
    device: str
    #: Why not the home device ("" when it is the home device).
    route: str


@dataclass(frozen=True)
class Refusal:
    row_id: int
    reason: str


def allocate(
    fleet: Fleet, available: dict[str, Availability], candidates: Sequence[Candidate]
) -> tuple[list[Assignment], list[Refusal]]:
    """Give each candidate (best priority first) a device with a token to spare, by the policy."""
    spare = {name: a.tokens if a.up else 0 for name, a in available.items()}
    assigned: list[Assignment] = []
    refused: list[Refusal] = []
    for item in sorted(candidates, key=lambda c: (c.priority, c.order)):
        home = available.get(item.home) if item.home else None
        if home is not None and home.up:
            if spare[home.device.name] > 0:
                spare[home.device.name] -= 1
                assigned.append(Assignment(item.row_id, home.device.name, ""))
            continue
        why = (
            f"failover from {item.home}: {home.down}"
            if home is not None
            else f"no {item.provider} device of its own"
        )
        choice = _failover_target(fleet, available, spare, item.provider)
        if choice is None:
            if not _could_ever_send(fleet, item):
                refused.append(Refusal(item.row_id, no_sender_reason(item.provider)))
            continue
        spare[choice] -= 1
        assigned.append(Assignment(item.row_id, choice, why[:200]))
    return assigned, refused


def _failover_target(
    fleet: Fleet, available: dict[str, Availability], spare: dict[str, int], provider: str
) -> str | None:
    if fleet.failover == "none":
        return None
    ready = [a for a in available.values() if a.up and spare[a.device.name] > 0]
    same = [a for a in ready if a.device.provider == provider]
    pool = same or ([] if fleet.failover == "same-provider" else ready)
    if not pool:
        return None
    return max(pool, key=lambda a: (spare[a.device.name], a.device.rate, a.device.name)).device.name


def _could_ever_send(fleet: Fleet, item: Candidate) -> bool:
    """Whether some device could take this row some day (else waiting would be forever)."""
    if item.home is not None:
        return True
    if fleet.failover == "any":
        return bool(fleet.devices)
    if fleet.failover == "same-provider":
        return item.provider in fleet.providers
    return False
