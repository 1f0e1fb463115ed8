"""QC [region]: the quick-count estimate in one SMS, for coordinators, within their scope."""

from __future__ import annotations

import grammar

from ..quickcount import service
from ..replies import text
from . import Context, Outcome, handles
from .coordinator import resolve_region


def shares_text(estimate: dict[str, dict[str, float]]) -> str:
    """``01 25.1+-1.2 02 58.0+-1.4``: share and 95% margin in percentage points."""
    return " ".join(
        f"{code} {100 * r['value']:.1f}+-{100 * r['margin95']:.1f}" for code, r in estimate.items()
    )


@handles(grammar.QuickCount, name="QC", coordinator_only=True)
def quick_count(ctx: Context, message: grammar.QuickCount) -> Outcome:
    found = resolve_region(ctx, message.region, "QC")
    if isinstance(found, Outcome):
        return found
    try:
        document = service.quickcount(ctx.session, found.code or None)
    except service.NoDesign:
        return ctx.fail("qc_no_design")
    counts = document["stations"]
    if counts["sample"] == 0:
        return ctx.fail("qc_no_sample", region=found.name)
    if not document["estimate"]:
        return ctx.ok("qc_too_few", region=found.name, counted=counts["counted"], sample=counts["sample"])
    notes = ""
    if "low_coverage" in document["warnings"]:
        notes += text("qc_low", ctx.lang)
    if "uneven_coverage" in document["warnings"]:
        notes += text("qc_uneven", ctx.lang)
    if counts["disputed"]:
        notes += text("qc_disputed", ctx.lang, count=counts["disputed"])
    return ctx.ok(
        "qc",
        region=found.name,
        shares=shares_text(document["estimate"]),
        counted=counts["counted"],
        sample=counts["sample"],
        notes=notes,
    )
