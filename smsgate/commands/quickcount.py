"""QC [region]: the quick-count estimate in one SMS, for coordinators, within their scope.

The call and every caution come first and are never cut; the numbers follow, the lead, then
the candidates from the largest share down, and the 160-character limit drops numbers from
the end (``sms.fit``), never a caution.
"""

from __future__ import annotations

from typing import Any

import grammar

from ..quickcount import call, service
from ..replies import QC_WARNINGS, lang_index, text
from .context import Context, Outcome
from .coordinator import resolve_region


def number(r: dict[str, Any]) -> str:
    """``25.1+-1.2`` (percentage points), or ``25.1`` when the estimate is indicative."""
    if r["margin95"] is None:
        return f"{100 * r['value']:.1f}"
    return f"{100 * r['value']:.1f}+-{100 * r['margin95']:.1f}"


def shares_text(estimate: dict[str, dict[str, Any]]) -> list[str]:
    """``01 25.1+-1.2`` per candidate, the largest share first."""
    ranked = sorted(estimate.items(), key=lambda item: -item[1]["value"])
    return [f"{code} {number(r)}" for code, r in ranked]


def call_text(document: dict[str, Any], lang: str) -> str:
    """The call: the presidential rule's for the whole country, else the lead's."""
    lead = document["lead"]
    president = document.get("presidential")
    if president is not None:
        if president["status"] == call.TOO_CLOSE:
            return text("qc_too_close", lang)
        sure = president["status"] == call.CALLED
        if president["outcome"] == "second round":
            first, second = president["runoff"]
            return text("qc_runoff_called" if sure else "qc_runoff_leading", lang, first=first, second=second)
        return text("qc_win_called" if sure else "qc_win_leading", lang, first=president["winner"])
    if lead is None or document["call"] == call.TOO_CLOSE:
        return text("qc_too_close", lang)
    key = "qc_called" if document["call"] == call.CALLED else "qc_leading"
    return text(key, lang, first=lead["first"])


def cautions(document: dict[str, Any], lang: str) -> str:
    words = [QC_WARNINGS[w][lang_index(lang)] for w in QC_WARNINGS if w in document["warnings"]]
    return text("qc_caution", lang, warnings=", ".join(words)) if words else ""


def quick_count(ctx: Context, message: grammar.QuickCount) -> Outcome:
    found = resolve_region(ctx, message.region, "QC")
    if isinstance(found, Outcome):
        return found
    try:
        document = service.quickcount(ctx.session, found.code or None, comparison=False)
    except service.NoDesign:
        return ctx.fail("qc_no_design")
    counts = document["stations"]
    if counts["sample"] == 0:
        return ctx.fail("qc_no_sample", region=found.name)
    if not document["estimate"]:
        return ctx.ok("qc_too_few", region=found.name, counted=counts["counted"], sample=counts["sample"])
    notes = cautions(document, ctx.lang)
    if counts["disputed"]:
        notes += text("qc_disputed", ctx.lang, count=counts["disputed"])
    lead = document["lead"]
    numbers = shares_text(document["estimate"])
    if lead is not None:
        margin = text("qc_lead", ctx.lang, first=lead["first"], second=lead["second"], lead=number(lead))
        numbers.insert(0, margin)
    return ctx.ok(
        "qc",
        *numbers,
        region=found.name,
        call=call_text(document, ctx.lang),
        counted=counts["counted"],
        sample=counts["sample"],
        notes=notes,
    )
