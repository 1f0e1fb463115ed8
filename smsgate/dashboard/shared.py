"""One computation for every viewer who asks for the same thing at the same time.

Every open overview refreshes itself every few seconds, and every viewer of a region gets the
same document. When many ask at once (200 dashboards are 40 refreshes a second), computing it
once per request multiplies the same database reads by the number of viewers, and the machine
saturates exactly when the night is busiest.

``Shared.get(key, compute)`` joins a computation of ``key`` that has *not started yet* and
waits for its result, instead of starting one of its own. A request never takes a result that
began before it arrived, so what it shows is never older than the request: a viewer who sends
an SMS and then reloads sees it, exactly as without sharing. A computation already running
when a request arrives is not joined; the request waits for it to finish and starts the next
one, which every request arriving meanwhile joins. An idle server therefore computes once per
request as before, and a busy one computes at most twice per region at a time, however many
viewers wait — the load the dashboards put on the database stops growing with their number.

Sharing is per process (threads of one ``smsgate serve`` worker); nothing is kept after the
result is handed out, so there is nothing to expire or invalidate.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Batch:
    """One computation and the requests waiting for it."""

    done: threading.Event = field(default_factory=threading.Event)
    value: Any = None
    error: BaseException | None = None

    def result(self) -> Any:
        self.done.wait()
        if self.error is not None:
            raise self.error
        return self.value


@dataclass
class _Slot:
    running: _Batch | None = None
    #: The next computation, not started yet: the one later arrivals join.
    waiting: _Batch | None = None


class Shared:
    """Computations by key, each shared by the requests that arrived before it started."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[Hashable, _Slot] = {}

    def get(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        with self._lock:
            slot = self._slots.setdefault(key, _Slot())
            joined = slot.waiting
            if slot.running is None:
                batch, before = _Batch(), None
                slot.running = batch
            elif joined is None:
                batch, before = _Batch(), slot.running
                slot.waiting = batch
        if joined is not None:
            return joined.result()
        if before is not None:
            before.done.wait()  # then ``_finish`` has made ``batch`` the running one
        try:
            batch.value = compute()
        except BaseException as exc:
            batch.error = exc
            raise
        finally:
            self._finish(key, slot, batch)
        return batch.value

    def _finish(self, key: Hashable, slot: _Slot, batch: _Batch) -> None:
        with self._lock:
            slot.running, slot.waiting = slot.waiting, None
            if slot.running is None:
                del self._slots[key]
        batch.done.set()
