"""Event ids that follow time: UUID version 7 (RFC 9562), made in the process.

An event's id is unique (``outbox_events.id`` has a unique index) and is what a destination
deduplicates by (the ``Idempotency-Key``). A random id (version 4) lands anywhere in that
index: every event's entry goes to a random leaf page, so on a national night's table (some
16 million events, an index of a gigabyte) each insert reads and dirties a page of its own,
and the first change of each page after a checkpoint writes the whole page to the WAL. A
version-7 id starts with the Unix time in milliseconds, so new entries go to the index's
right-hand end, a few pages kept in memory, as ``seq``'s do.

Ids made by one process increase strictly (within a millisecond the 74 bits after the time
count up from a random start, by a random step); ids from other processes are merely close
in time, which is all the index needs. Uniqueness rests on the 74 random bits per
millisecond, as version 4's on its 122, and on the unique index, which refuses a repeat.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

_RANDOM_BITS = 74  # ``rand_a`` (12 bits) and ``rand_b`` (62 bits), taken as one number
_STEP_BITS = 32  # the largest step between two ids of one millisecond

_lock = threading.Lock()
_last = (0, 0)  # (milliseconds, random bits) of the last id made here


def new_event_id() -> str:
    """A new version-7 UUID, in its canonical text form, greater than the last one made here."""
    global _last
    now = time.time_ns() // 1_000_000
    with _lock:
        millis, counter = _last
        if now > millis:
            millis, counter = now, int.from_bytes(os.urandom(10), "big") >> (80 - _RANDOM_BITS + 1)
        else:  # the same millisecond (or the clock went back): count up from the last id
            counter += 1 + (int.from_bytes(os.urandom(4), "big") >> (32 - _STEP_BITS))
            if counter >> _RANDOM_BITS:
                millis, counter = millis + 1, int.from_bytes(os.urandom(10), "big") >> (80 - _RANDOM_BITS + 1)
        _last = (millis, counter)
    return str(uuid.UUID(int=_layout(millis, counter)))


def _layout(millis: int, counter: int) -> int:
    """The 128 bits: time (48), version 7 (4), ``rand_a`` (12), variant ``10`` (2), ``rand_b`` (62)."""
    rand_a, rand_b = counter >> 62, counter & ((1 << 62) - 1)
    return (millis & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
