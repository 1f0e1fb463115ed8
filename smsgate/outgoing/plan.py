"""``smsgate gateways plan``: how many devices a night needs for replies within a minute.

The arithmetic, printed with every answer so a campaign can argue with its assumptions:

    texts      = volunteers x texts per volunteer x (1 + share from unknown numbers)
    average    = texts / (hours x 3600)                      texts per second
    peak       = average x peak factor                       the busiest stretch of the night
    devices    = ceil(peak x (1 + headroom) / device rate) + spare

Every text gets one reply, so replies per second at the peak equal texts per second. A fleet
whose capacity is below the peak rate builds a queue for as long as the peak lasts, and the
wait grows by minutes; at or above it (with a little headroom for the burstiness of arrivals)
the queue stays short and a reply goes out within seconds. The spare devices keep that true
when devices fail during the night.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from .fleet import DEFAULT_RATES


@dataclass(frozen=True)
class Assumptions:
    volunteers: int
    hours: float
    #: A report, and now and then a correction, a query or a resend.
    texts_per_volunteer: float = 1.2
    #: Texts from numbers we do not know (they are answered too, last).
    unknown_share: float = 0.05
    #: The busiest stretch of the night against the night's average.
    peak_factor: float = 2.5
    #: Capacity kept above the peak rate: arrivals come in bursts, not evenly.
    headroom: float = 0.10
    #: Devices in reserve for the ones that fail during the night.
    spare: int = 1
    android_rate: float = DEFAULT_RATES["android"]
    modem_rate: float = DEFAULT_RATES["kannel"]
    target_seconds: float = 60.0


@dataclass(frozen=True)
class Plan:
    assumptions: Assumptions
    texts: float
    average_per_second: float
    peak_per_second: float
    android_phones: int
    modems: int

    @property
    def capacity_needed(self) -> float:
        """SMS per second the fleet must sustain at the peak, before spares."""
        return self.peak_per_second * (1 + self.assumptions.headroom)

    def phones_with(self, modems: int) -> int:
        """Android phones needed next to ``modems`` GSM modems (spares included)."""
        a = self.assumptions
        rest = max(self.capacity_needed - modems * a.modem_rate, 0.0)
        return math.ceil(rest / a.android_rate - 1e-9) + a.spare

    def as_dict(self, modems: int | None = None) -> dict[str, Any]:
        found = {**asdict(self), "assumptions": asdict(self.assumptions)}
        found["capacity_needed"] = round(self.capacity_needed, 3)
        if modems is not None:
            found["mixed"] = {"modems": modems, "android_phones": self.phones_with(modems)}
        return found


def devices_for(peak: float, rate: float, headroom: float, spare: int) -> int:
    return math.ceil(peak * (1 + headroom) / rate - 1e-9) + spare


def plan(assumptions: Assumptions) -> Plan:
    a = assumptions
    if a.volunteers < 1 or a.hours <= 0 or a.android_rate <= 0 or a.modem_rate <= 0 or a.peak_factor < 1:
        raise ValueError("volunteers >= 1, hours > 0, rates > 0 and a peak factor >= 1, please")
    texts = a.volunteers * a.texts_per_volunteer * (1 + a.unknown_share)
    average = texts / (a.hours * 3600)
    peak = average * a.peak_factor
    return Plan(
        a,
        texts,
        average,
        peak,
        devices_for(peak, a.android_rate, a.headroom, a.spare),
        devices_for(peak, a.modem_rate, a.headroom, a.spare),
    )


def explain(result: Plan, modems: int | None = None) -> list[str]:
    """The plan as lines of text, arithmetic and assumptions included."""
    a, peak = result.assumptions, result.peak_per_second
    need = result.capacity_needed
    mixed: list[str] = []
    if modems is not None:
        rest = max(need - modems * a.modem_rate, 0.0)
        mixed = [
            f"  With {modems} modems: ({need:.2f} - {modems} x {a.modem_rate:g}) / {a.android_rate:g} ="
            f" {rest / a.android_rate:.2f} -> {result.phones_with(modems) - a.spare} phones + {a.spare} spare"
            f" = {result.phones_with(modems)} Android phones"
        ]
    return [
        f"Traffic: {a.volunteers:,} volunteers x {a.texts_per_volunteer:g} texts"
        f" x (1 + {a.unknown_share:.0%} from unknown numbers) = {result.texts:,.0f} texts in {a.hours:g} h",
        f"  average {result.texts:,.0f} / {a.hours * 3600:,.0f} s = {result.average_per_second:.2f} texts/s;"
        f" peak x{a.peak_factor:g} = {peak:.2f} texts/s, each answered by one reply",
        f"Capacity for replies within {a.target_seconds:g} s at the peak: {peak:.2f} x (1 + {a.headroom:.0%}"
        f" headroom) = {need:.2f} SMS/s, plus {a.spare} spare device(s) for failures",
        f"  Android phones only ({a.android_rate:g} SMS/s each): ceil({need:.2f} / {a.android_rate:g})"
        f" + {a.spare} = {result.android_phones}",
        f"  GSM modems only ({a.modem_rate:g} SMS/s each): ceil({need:.2f} / {a.modem_rate:g})"
        f" + {a.spare} = {result.modems}",
        f"  A mix works too: phones x {a.android_rate:g} + modems x {a.modem_rate:g} >= {need:.2f} SMS/s,"
        f" plus {a.spare} spare (--modems M prints the phones next to M modems).",
        *mixed,
        "Assumptions: every phone has Android's SMS limit raised (sms_outgoing_check_max_count) and the"
        " carrier does not throttle below these rates; change any figure with the options.",
    ]
