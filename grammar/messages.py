"""The typed results of parsing one SMS.

Every result is a frozen dataclass so a parsed message can be logged, compared and passed
between threads without anyone changing it underneath. The core (``smsgate``) turns these
into database work and replies; nothing here knows about either.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class StationRef:
    """Which polling station a message is about.

    ``desa`` is the 10-digit Kemendagri desa code without dots when the sender named it
    (a 13-digit station ID or ``63.71.01.1001/12``); ``None`` when only the TPS number was
    given, in which case the core resolves it within the sender's own desa.
    """

    tps: int
    desa: str | None = None

    @property
    def station_id(self) -> str | None:
        """The KPU station ID (desa + 3-digit TPS), when the desa is known."""
        return f"{self.desa}{self.tps:03d}" if self.desa else None


@dataclass(frozen=True)
class RegionRef:
    """A region as a coordinator typed it: a code (normalised to dotted form) or a name.

    ``level`` is a hint the sender gave with a prefix (``KEC``, ``KAB``, ``KOTA``, ``DESA``,
    ``KEL``, ``PROV``), used by the core to pick between regions that share a name.
    """

    code: str | None = None
    name: str | None = None
    level: str | None = None


def _frozen_votes(votes: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType(dict(sorted(votes.items())))


@dataclass(frozen=True)
class Report:
    """A count from the C.Hasil form: votes per candidate code plus optional totals."""

    station: StationRef | None
    votes: Mapping[str, int]
    valid: int | None = None
    invalid: int | None = None
    registered: int | None = None
    normalisations: tuple[str, ...] = ()
    pin: str | None = None
    """The trailing ``PIN`` suffix's digits, if the sender added one (see the note below)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "votes", _frozen_votes(self.votes))

    def __hash__(self) -> int:
        return hash((self.station, tuple(self.votes.items()), self.valid, self.invalid, self.registered))


# Every command result also carries ``normalisations``, like ``Report``: what was tolerated
# to understand it (``keyword_typo``, ``unicode_normalised``), so the reply can echo it.
# Every message also carries ``pin``: the digits of a trailing ``PIN 1234`` suffix, by which a
# coordinator proves the SMS is theirs (the core checks it); ``None`` when there was none.


@dataclass(frozen=True)
class Help:
    """``BANTUAN`` / ``HELP`` / ``INFO`` / ``?``."""

    normalisations: tuple[str, ...] = ()
    pin: str | None = None


@dataclass(frozen=True)
class Cancel:
    """``BATAL [ref]`` / ``CANCEL [ref]``: ``ref`` is upper-cased, ``None`` means the latest."""

    ref: str | None = None
    normalisations: tuple[str, ...] = ()
    pin: str | None = None


@dataclass(frozen=True)
class Check:
    """``CEK [TPS n]`` / ``CHECK``."""

    station: StationRef | None = None
    normalisations: tuple[str, ...] = ()
    pin: str | None = None


@dataclass(frozen=True)
class Incident:
    """``LAPOR <text>`` / ``INCIDENT <text>``: free text, whitespace collapsed."""

    text: str
    normalisations: tuple[str, ...] = ()
    pin: str | None = None


@dataclass(frozen=True)
class Register:
    """``DAFTAR <code> <name>`` / ``REG``: ``code`` is upper-cased."""

    code: str
    name: str
    normalisations: tuple[str, ...] = ()
    pin: str | None = None


@dataclass(frozen=True)
class Totals:
    """``REKAP [region]`` / ``TOTAL``."""

    region: RegionRef | None = None
    normalisations: tuple[str, ...] = ()
    pin: str | None = None


@dataclass(frozen=True)
class Missing:
    """``BELUM [region]`` / ``MISSING``."""

    region: RegionRef | None = None
    normalisations: tuple[str, ...] = ()
    pin: str | None = None


@dataclass(frozen=True)
class Status:
    """``STATUS <station>``: the desa must be given, a coordinator has no single desa."""

    station: StationRef
    normalisations: tuple[str, ...] = ()
    pin: str | None = None


@dataclass(frozen=True)
class QuickCount:
    """``QC [region]``."""

    region: RegionRef | None = None
    normalisations: tuple[str, ...] = ()
    pin: str | None = None


@dataclass(frozen=True)
class Broadcast:
    """``SIARAN <text>`` / ``BROADCAST <text>``: a coordinator's message to volunteers."""

    text: str
    normalisations: tuple[str, ...] = ()
    pin: str | None = None


@dataclass(frozen=True)
class Confirm:
    """``YA <code>`` / ``YES <code>``: confirms a pending costly action such as a broadcast."""

    code: str
    normalisations: tuple[str, ...] = ()
    pin: str | None = None


@dataclass(frozen=True)
class Pin:
    """``PIN <new>`` or ``PIN <old> <new>``: a coordinator sets or changes their PIN (digits only).

    The grammar only reads the digits; whether ``old`` is right, and what a first PIN needs, is
    the core's business.
    """

    new: str
    old: str | None = None
    normalisations: tuple[str, ...] = ()
    pin: str | None = None


Message = (
    Report
    | Help
    | Cancel
    | Check
    | Incident
    | Register
    | Totals
    | Missing
    | Status
    | QuickCount
    | Broadcast
    | Confirm
    | Pin
)


@dataclass(frozen=True)
class ParseError:
    """Why a message was not understood, precise enough for a one-SMS reply.

    ``code`` is stable and machine-readable (the reply catalogue keys on it); ``token`` is the
    offending text as the sender typed it and ``position`` its 0-based offset in the original
    text. ``field`` names the candidate code or keyword concerned (``"02"``, ``"SAH"``), and
    ``expected``/``actual`` carry the two numbers of a mismatch. The codes are listed and
    explained in :mod:`grammar.errors`.
    """

    code: str
    token: str | None = None
    position: int | None = None
    field: str | None = None
    expected: int | None = None
    actual: int | None = None
    details: tuple[str, ...] = ()
