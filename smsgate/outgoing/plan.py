"""``smsgate gateways plan``: how many devices a night needs for volunteers' replies within a minute.

Sizing the fleet for the peak rate as if it were one pool fell short on a measured night, for
two reasons this model takes in: the busiest *minute* sets the lag, not the busiest five, and
"same number back" ties each reply to the device its volunteer texted, so what matters is the
queue of each device, fed by its own volunteers, not the fleet's total. The model, printed with
every answer:

1. Traffic. Each volunteer sends ``floor(t)`` texts and one more with probability ``t - floor(t)``
   (``t`` texts per volunteer: a report, now and then a second text); texts from unknown numbers
   come on top (``unknown_share`` of the volunteers' texts).
2. The night's profile. Every text arrives at a time drawn from one hump over the night: a
   triangle rising to its top at a third of the night and falling to its end, and, for a peak
   factor above 2, a burst: a share of the texts within ``BURST_SECONDS`` around the top. The
   peak factor is the arrival rate at the top against the night's average: a triangle alone has
   2, the burst share is what brings it to the factor asked for (below 2 the triangle is mixed
   with a flat night instead). ``bench/fleet.py`` draws its night from this same profile.
3. The spread. Each volunteer texts one device (the number they were given): ``even`` gives
   every device a share of the volunteers in proportion to its rate (a campaign handing out its
   numbers in turn), ``random`` lets each volunteer pick one with that probability.
4. The queues. Replies to volunteers go first on every device (strangers' replies wait), so a
   device sends its volunteers' replies in arrival order at its rate: the k-th starts at
   ``max(arrival_k, start_(k-1) + 1 / rate)``, and its lag is ``start - arrival``. Each rate is
   taken ``1 + headroom`` times slower than nominal (phones that slow down, carriers that
   throttle).
5. Failures. ``spare`` devices (phones first) fail half-way through the night; their queued and
   later replies fail over to the others, spread in proportion to the others' rates.
6. The count. The smallest number of devices whose volunteers' reply lag p95 is under the
   target in *every one* of ``NIGHTS`` nights drawn from the profile (fixed seeds: the same
   question always gets the same answer), i.e. in the worst of them. Not the median: one night's
   p95 varies by several seconds around it at the same count, and a campaign gets one night, not
   the typical one; a count that met the median night missed on a steeper night the bench drew
   (p95 68 s where the median said 55 s). The worst of five is roughly the night that five
   campaigns in six would not exceed; the headroom and the spare device remain the margin for
   what the profile does not draw. On a night it drew itself, ``bench/fleet.py`` found the real
   worker's p95 within about two seconds of this model's for the same night and fleet.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .fleet import DEFAULT_RATES

#: Nights drawn per count: the count must meet the target in every one of them (the worst).
NIGHTS = 5
#: The burst around the night's top lasts this long (seconds).
BURST_SECONDS = 300.0
#: The top of the night's hump, as a fraction of the night.
TOP_AT = 1 / 3
#: Failing devices stop at this fraction of the night.
FAIL_AT = 0.5

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]


@dataclass(frozen=True)
class Assumptions:
    volunteers: int
    hours: float
    #: A report, and now and then a correction, a query or a resend.
    texts_per_volunteer: float = 1.2
    #: Texts from numbers we do not know (they are answered too, last).
    unknown_share: float = 0.05
    #: The arrival rate at the top of the night against the night's average.
    peak_factor: float = 2.5
    #: Devices are counted this much slower than their nominal rate.
    headroom: float = 0.10
    #: Devices that fail half-way through the night (phones first).
    spare: int = 1
    android_rate: float = DEFAULT_RATES["android"]
    modem_rate: float = DEFAULT_RATES["kannel"]
    target_seconds: float = 60.0
    #: How volunteers are spread over the devices: ``even`` or ``random``.
    spread: str = "even"


@dataclass(frozen=True)
class Profile:
    """The night's arrival profile: shares of a flat night, a triangle and a burst."""

    seconds: float
    flat: float
    triangle: float
    burst: float
    burst_start: float
    burst_end: float

    @property
    def top(self) -> float:
        return self.seconds * TOP_AT

    def cdf(self, t: Floats) -> Floats:
        """Share of the night's texts arrived by ``t`` (seconds)."""
        s, c = self.seconds, self.top
        x = np.clip(t, 0.0, s)
        rising = x * x / (s * c)
        falling = 1.0 - (s - x) ** 2 / (s * (s - c))
        tri = np.where(x <= c, rising, falling)
        span = self.burst_end - self.burst_start
        burst = (
            np.clip((x - self.burst_start) / span, 0.0, 1.0) if span > 0 else (x >= self.burst_start) * 1.0
        )
        return np.asarray(self.flat * x / s + self.triangle * tri + self.burst * burst, dtype=np.float64)

    def busiest(self, window: float) -> float:
        """The busiest ``window`` seconds' arrival rate against the night's average."""
        starts = np.arange(0.0, max(self.seconds - window, 0.0) + 1.0, 5.0)
        shares = self.cdf(starts + window) - self.cdf(starts)
        return float(shares.max() * self.seconds / min(window, self.seconds))

    def draw(self, n: int, rng: np.random.Generator) -> Floats:
        """``n`` arrival times (seconds into the night)."""
        kind = rng.choice(3, size=n, p=[self.flat, self.triangle, self.burst])
        times = np.empty(n)
        flat, tri, burst = kind == 0, kind == 1, kind == 2
        times[flat] = rng.uniform(0.0, self.seconds, flat.sum())
        times[tri] = rng.triangular(0.0, self.top, self.seconds, tri.sum())
        times[burst] = rng.uniform(self.burst_start, self.burst_end, burst.sum())
        return times


def profile(hours: float, peak_factor: float) -> Profile:
    """The one-parameter family of nights, indexed by the peak factor (see the module)."""
    seconds = hours * 3600
    if peak_factor < 2:
        return Profile(seconds, 2 - peak_factor, peak_factor - 1, 0.0, 0.0, 0.0)
    window = min(BURST_SECONDS, seconds)
    burst = (peak_factor - 2) / (seconds / window - 2) if seconds / window > 2 else math.inf
    if burst > 1:
        limit = seconds / window if seconds / window > 2 else 2
        raise ValueError(
            f"a peak factor of {peak_factor:g} is more than a {hours:g} h night can have"
            f" (at most {limit:.2f}: every text within {window / 60:g} minutes)"
        )
    top = seconds * TOP_AT
    start = min(max(top - window / 2, 0.0), seconds - window)
    return Profile(seconds, 0.0, 1 - burst, burst, start, start + window)


@dataclass(frozen=True)
class Night:
    """One night drawn from the profile: each volunteer text's volunteer and arrival time
    (grouped by volunteer, in time order within each), and the strangers' arrival times."""

    volunteer: Ints
    at: Floats
    strangers: Floats


def draw_night(a: Assumptions, seed: int) -> Night:
    rng = np.random.default_rng(seed)
    shape = profile(a.hours, a.peak_factor)
    whole, extra = divmod(a.texts_per_volunteer, 1.0)
    counts = int(whole) + (rng.random(a.volunteers) < extra).astype(np.int64)
    volunteer = np.repeat(np.arange(a.volunteers, dtype=np.int64), counts)
    at = shape.draw(len(volunteer), rng)
    order = np.lexsort((at, volunteer))
    strangers = np.sort(shape.draw(round(len(volunteer) * a.unknown_share), rng))
    return Night(volunteer[order], at[order], strangers)


def spread(rates: Floats, people: int, how: str, rng: np.random.Generator) -> Ints:
    """The device (index into ``rates``) each of ``people`` volunteers texts."""
    share = rates / rates.sum()
    if how == "random":
        return rng.choice(len(rates), size=people, p=share)
    if how != "even":
        raise ValueError(f"spread must be even or random, not {how!r}")
    # Largest remainder: every device gets its share of the volunteers, give or take one.
    exact = share * people
    counts = np.floor(exact).astype(np.int64)
    counts[np.argsort(-(exact - counts), kind="stable")[: people - counts.sum()]] += 1
    return np.repeat(np.arange(len(rates), dtype=np.int64), counts)


def volunteer_lags(a: Assumptions, night: Night, rates: Floats, failing: int, seed: int) -> Floats:
    """Every volunteer reply's lag (seconds) on a fleet with these nominal ``rates``, of which
    the first ``failing`` devices fail half-way (see the module, steps 3 to 5)."""
    rng = np.random.default_rng(seed)
    device = spread(rates, a.volunteers, a.spread, rng)[night.volunteer]
    queued = night.at.copy()
    service = (1 + a.headroom) / rates
    failing = min(failing, len(rates) - 1)
    if failing > 0:
        fail_at = profile(a.hours, a.peak_factor).seconds * FAIL_AT
        others = np.arange(failing, len(rates))
        weights = rates[others] / rates[others].sum()
        dead = device < failing
        before = dead & (night.at < fail_at)
        starts = _starts(device[before], queued[before], service)
        stuck = np.flatnonzero(before)[starts >= fail_at]  # still queued when the device fails
        queued[stuck] = fail_at
        moved = np.flatnonzero(dead & (night.at >= fail_at)).tolist() + stuck.tolist()
        device[moved] = rng.choice(others, size=len(moved), p=weights)
    return _starts(device, queued, service) - night.at


def _starts(device: Ints, queued: Floats, service: Floats) -> Floats:
    """When each reply starts going out (in the order given): per device, in queue order, one
    per service time.

    start_k = max(q_k, start_(k-1) + s) = k s + max over j <= k of (q_j - j s), per device;
    an offset per device keeps the running maximum from reaching across devices."""
    if len(device) == 0:
        return np.empty(0)
    order = np.lexsort((queued, device))
    dev, q = device[order], queued[order]
    first = np.r_[0, np.flatnonzero(np.diff(dev)) + 1]
    group = np.cumsum(np.r_[1, (np.diff(dev) != 0).astype(np.int64)]) - 1
    k = np.arange(len(dev)) - first[group]
    s = service[dev]
    big = (q.max() + k.max() * s.max() + 1.0) * 4
    running = np.maximum.accumulate(q - k * s + group * big)
    found = np.empty(len(dev))
    found[order] = k * s + running - group * big
    return found


@dataclass(frozen=True)
class Check:
    """One fleet's volunteers' reply lags in the model's nights: the worst night's p50 and p95
    (for a fleet that misses, the first night that missed)."""

    phones: int
    modems: int
    p50: float
    p95: float

    @property
    def devices(self) -> int:
        return self.phones + self.modems


@dataclass
class Plan:
    assumptions: Assumptions
    texts: float
    average_per_second: float
    peak_per_second: float
    busiest_minute_per_second: float
    busiest_5min_per_second: float
    burst_share: float
    android_phones: int
    modems: int
    #: Per search (phones only, modems only, phones next to M modems): the count and the one below.
    checks: dict[str, list[Check]] = field(default_factory=dict)
    nights: list[Night] = field(default_factory=list, repr=False)

    @property
    def capacity_needed(self) -> float:
        """SMS per second one pool would need at the top of the night (for comparison)."""
        return self.peak_per_second * (1 + self.assumptions.headroom)

    def check(self, phones: int, modems: int) -> Check:
        """The worst of the nights for this fleet: the night with the highest p95 (its p50 too).

        Stops at the first night that misses the target: one miss decides, and the search spends
        most of its time on counts that miss."""
        a = self.assumptions
        rates = np.array([a.android_rate] * phones + [a.modem_rate] * modems, dtype=np.float64)
        worst = (-math.inf, 0.0)
        for seed, night in enumerate(self.nights):
            lags = volunteer_lags(a, night, rates, a.spare, seed)
            p50, p95 = np.percentile(lags, [50, 95]) if len(lags) else (0.0, 0.0)
            worst = max(worst, (float(p95), float(p50)))
            if worst[0] >= a.target_seconds:
                break
        p95, p50 = worst
        return Check(phones, modems, p50, p95)

    def fewest(self, vary: str, fixed: int, label: str) -> int:
        """The fewest devices of kind ``vary`` (``phones`` or ``modems``) next to ``fixed`` of the
        other kind that meet the target in every night; notes it and the count below."""
        a = self.assumptions
        rate = a.android_rate if vary == "phones" else a.modem_rate
        other = (a.modem_rate if vary == "phones" else a.android_rate) * fixed

        def run(n: int) -> Check:
            return self.check(n, fixed) if vary == "phones" else self.check(fixed, n)

        def ok(n: int) -> bool:
            return n + fixed > a.spare and run(n).p95 < a.target_seconds

        average = self.texts / (a.hours * 3600)
        low = max(math.floor((average - other) / rate), 0)  # below this the queue never drains
        if ok(low):
            high = low
        else:
            step, high = max(1, low // 8), low
            while not ok(high):
                low, high = high, high + step
                step *= 2
                if high > 1_000_000:
                    raise ValueError("no fleet under a million devices meets the target")
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (low, middle) if ok(middle) else (middle, high)
        found = [run(high)] + ([run(high - 1)] if high > 0 else [])
        self.checks[label] = found
        return high

    def phones_with(self, modems: int) -> int:
        """Android phones needed next to ``modems`` GSM modems (failing devices included)."""
        return self.fewest("phones", modems, f"phones next to {modems} modems")

    def as_dict(self, modems: int | None = None) -> dict[str, Any]:
        found: dict[str, Any] = {
            "assumptions": asdict(self.assumptions),
            "texts": self.texts,
            "average_per_second": self.average_per_second,
            "peak_per_second": self.peak_per_second,
            "busiest_minute_per_second": self.busiest_minute_per_second,
            "busiest_5min_per_second": self.busiest_5min_per_second,
            "burst_share": self.burst_share,
            "android_phones": self.android_phones,
            "modems": self.modems,
            "capacity_needed": round(self.capacity_needed, 3),
        }
        if modems is not None:
            found["mixed"] = {"modems": modems, "android_phones": self.phones_with(modems)}
        found["checks"] = {label: [asdict(c) for c in checks] for label, checks in self.checks.items()}
        return found


def plan(assumptions: Assumptions, nights: list[Night] | None = None) -> Plan:
    """The plan for these assumptions, on ``NIGHTS`` nights drawn from them, or on ``nights``
    (``bench/fleet.py`` asks what the model says of the one night it drew)."""
    a = assumptions
    if a.volunteers < 1 or a.hours <= 0 or a.android_rate <= 0 or a.modem_rate <= 0 or a.peak_factor < 1:
        raise ValueError("volunteers >= 1, hours > 0, rates > 0 and a peak factor >= 1, please")
    shape = profile(a.hours, a.peak_factor)
    texts = a.volunteers * a.texts_per_volunteer * (1 + a.unknown_share)
    average = texts / (a.hours * 3600)
    result = Plan(
        a,
        texts,
        average,
        average * a.peak_factor,
        average * shape.busiest(60.0),
        average * shape.busiest(300.0),
        shape.burst,
        0,
        0,
        nights=nights or [draw_night(a, seed) for seed in range(NIGHTS)],
    )
    result.android_phones = result.fewest("phones", 0, "phones only")
    result.modems = result.fewest("modems", 0, "modems only")
    return result


def explain(result: Plan, modems: int | None = None) -> list[str]:
    """The plan as lines of text, model and assumptions included."""
    a = result.assumptions
    if modems is not None:
        result.phones_with(modems)
    lines = [
        f"Traffic: {a.volunteers:,} volunteers x {a.texts_per_volunteer:g} texts"
        f" x (1 + {a.unknown_share:.0%} from unknown numbers) = {result.texts:,.0f} texts in {a.hours:g} h,"
        f" each answered by one reply",
        f"  average {result.texts:,.0f} / {a.hours * 3600:,.0f} s = {result.average_per_second:.2f} texts/s;"
        f" at the top of the night x{a.peak_factor:g} = {result.peak_per_second:.2f} texts/s",
        f"Night profile: a hump rising to its top at {TOP_AT:.0%} of the night, with"
        f" {result.burst_share:.1%} of the texts in a {BURST_SECONDS / 60:g}-minute burst at the top;"
        f" busiest minute {result.busiest_minute_per_second:.2f} texts/s,"
        f" busiest 5 minutes {result.busiest_5min_per_second:.2f} texts/s",
        f"Spread: each volunteer texts one device, volunteers spread {a.spread}ly in proportion to the"
        f" devices' rates; a reply goes back through the device it came in on",
        f"Queues: per device, volunteers' replies first, in arrival order, one every"
        f" (1 + {a.headroom:.0%} headroom) / rate seconds; {a.spare} device(s) fail half-way and their"
        f" replies fail over to the others",
        f"Count: the fewest devices whose volunteers' reply lag p95 is under {a.target_seconds:g} s"
        f" in every one of {len(result.nights)} nights drawn from the profile, i.e. in the worst of them"
        " (its p50 and p95 shown): a campaign gets one night, not the typical one",
        f"  (one pool at the top of the night would need {result.peak_per_second:.2f}"
        f" x (1 + {a.headroom:.0%}) = {result.capacity_needed:.2f} SMS/s: not enough when the top is steep"
        " or a phone fills up)",
    ]
    titles = {
        "phones only": f"Android phones only ({a.android_rate:g} SMS/s each)",
        "modems only": f"GSM modems only ({a.modem_rate:g} SMS/s each)",
    }
    for label, checks in result.checks.items():
        title = titles.get(label, f"Android phones next to {modems} GSM modems")
        chosen = checks[0]
        count = chosen.phones if label != "modems only" else chosen.modems
        lines.append(f"  {title}: {count} -> volunteers' lag p50 {chosen.p50:.1f} s, p95 {chosen.p95:.1f} s")
        if len(checks) > 1:
            below = checks[1]
            fewer = below.phones if label != "modems only" else below.modems
            lines.append(f"    ({fewer}: p95 {below.p95:.1f} s)")
    lines.append(
        "Assumptions: every phone has Android's SMS limit raised (sms_outgoing_check_max_count) and the"
        " carrier does not throttle below these rates; change any figure with the options."
    )
    return lines
