"""A webhook's database session is freed when its request ends, not by the garbage collector.

The report path keeps per-transaction state in ``session.info`` (the rows it locked, keyed by
the transaction, which refers back to the session). Left there, every request's session,
transaction, connection and identity map formed a reference cycle, some 40 objects that only
the collector's young-generation passes freed: a pass every ten requests or so, about 28 µs of
CPU a request. ``Database.begin`` empties ``info`` once the transaction is over.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterator

import pytest

from ..support import VOLUNTEER_A, VOLUNTEER_B

#: What a request's session left for the collector before: one of each.
SESSION_OBJECTS = ("Session", "SessionTransaction", "Connection", "RootTransaction")


@pytest.fixture
def collected() -> Iterator[list[object]]:
    """What the collector finds unreachable (kept in ``gc.garbage``), with automatic collection
    off so that nothing is freed behind the test's back."""
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield gc.garbage
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if enabled:
            gc.enable()


def test_a_report_leaves_no_session_for_the_collector(sms, world, collected) -> None:
    assert sms(VOLUNTEER_A, "TPS 012 01=120 02=98 03=150").startswith("OK")  # first-request work
    gc.collect()
    collected.clear()
    assert sms(VOLUNTEER_B, "TPS 012 01=120 02=98 03=150").startswith("OK")
    assert sms(VOLUNTEER_A, "TPS 012 01=121 02=98 03=150").startswith("OK")  # a correction
    gc.collect()
    left = Counter(type(thing).__name__ for thing in collected)
    assert {name: left[name] for name in SESSION_OBJECTS} == dict.fromkeys(SESSION_OBJECTS, 0)
