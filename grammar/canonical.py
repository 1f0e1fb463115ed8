"""The canonical text of a parsed message: what the sender meant, written the one plain way.

A volunteer who typed ``Tps 12, paslon 1: 123 ...`` is echoed ``TPS 12 01=123 ...`` so they can
check the reading, and the tests hold the language to a simple promise: whatever is accepted,
rendered canonically, parses to the same message. ``render`` is that canonical writer.
"""

from __future__ import annotations

from grammar.messages import (
    Broadcast,
    Cancel,
    Check,
    Confirm,
    Help,
    Incident,
    Message,
    Missing,
    Pin,
    QuickCount,
    RegionRef,
    Register,
    Report,
    StationRef,
    Status,
    Totals,
)

_LEVEL_WORDS = {"kecamatan": "KEC", "kabupaten": "KAB", "kota": "KOTA", "desa": "DESA", "provinsi": "PROV"}


def station_text(station: StationRef) -> str:
    """``TPS 12``, or ``TPS 6371011001012`` when the desa is known."""
    return f"TPS {station.station_id}" if station.desa else f"TPS {station.tps}"


def region_text(region: RegionRef) -> str:
    """A region as a coordinator would type it: ``63.71`` or ``KAB BANJAR``."""
    words = [_LEVEL_WORDS[region.level]] if region.level in _LEVEL_WORDS else []
    words.append(region.code or region.name or "")
    return " ".join(words)


def report_text(report: Report) -> str:
    """``TPS 12 01=123 02=98 03=150 SAH=371 TS=5 DPT=290`` (votes in code order)."""
    words = [station_text(report.station)] if report.station else []
    words += [f"{code}={count}" for code, count in sorted(report.votes.items())]
    for label, value in (("SAH", report.valid), ("TS", report.invalid), ("DPT", report.registered)):
        if value is not None:
            words.append(f"{label}={value}")
    return " ".join(words)


def _words(message: Message) -> list[str]:
    match message:
        case Report():
            return [report_text(message)]
        case Help():
            return ["BANTUAN"]
        case Cancel(ref=ref):
            return ["BATAL", *([ref] if ref else [])]
        case Check(station=station):
            return ["CEK", *([station_text(station)] if station else [])]
        case Incident(text=text):
            return ["LAPOR", text]
        case Register(code=code, name=name):
            return ["DAFTAR", code, name]
        case Totals(region=region):
            return ["REKAP", *([region_text(region)] if region else [])]
        case Missing(region=region):
            return ["BELUM", *([region_text(region)] if region else [])]
        case Status(station=station):
            return ["STATUS", station.station_id or station_text(station)]
        case QuickCount(region=region):
            return ["QC", *([region_text(region)] if region else [])]
        case Broadcast(text=text):
            return ["SIARAN", text]
        case Confirm(code=code):
            return ["YA", code]
        case Pin(new=new, old=old):
            return ["PIN", *([old] if old else []), new]
    raise TypeError(f"not a message: {message!r}")


def render(message: Message) -> str:
    """The canonical text of ``message``; parsing it gives ``message`` back (normalisations aside)."""
    words = _words(message)
    if message.pin is not None:
        words += ["PIN", message.pin]
    return " ".join(words)
