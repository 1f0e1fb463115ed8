"""The overview document kept per process while nothing it shows has changed.

Every open overview asks for its document every few seconds (200 dashboards are 40 requests a
second), and most of the time nothing it shows has changed since the last ask. Computing it
costs a dozen statements and the activity chart's count of the last minutes' reports; checking
whether it *could* have changed costs a few primary-key lookups. So each process keeps the last
document of every region (in every language) with the **validity token** read just before it
was computed, and hands it out again as long as a fresh read of the token gives the same value.

The token is what the document is made of, read cheaply:

- the region's counters (every total, status count and vote the overview shows; an accepted
  report that changes the station's result changes them, in the same transaction);
- the candidates (codes and names);
- the active quick-count design and its fingerprint (``quickcount.service.fingerprint``: how
  many times a sampled station's result changed, logged by the database itself);
- the current minute (UTC).

The minute bounds everything else the document shows: the activity chart's bars (a report
that changes no total, such as a second volunteer's identical count, shows in the chart at the
next change of a total or at the next minute, whichever is first), a region renamed by an
import, and ``updated_at``, the moment the document was computed, never more than a minute
before the request. The totals are never older than the request: the token is read after the
request arrived, and a document is only reused when it was computed after the same token was
read.

The token also gives the JSON refresh its ``ETag`` (weak: the four worker processes compute
equal documents at different moments); a browser revalidating with ``If-None-Match`` gets
``304 Not Modified`` without a body.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Candidate
from ..services import counters

Token = tuple[Any, ...]

#: Regions × languages kept per process; past it the oldest half is dropped. Two languages and
#: every region a process's viewers opened: a few thousand documents of a few kilobytes.
LIMIT = 4096


def token(session: Session, key: str, now: datetime) -> Token:
    """The validity token of the overview of region ``key`` (undotted, ``""`` the country) at
    ``now``: four small indexed reads."""
    from ..quickcount.service import active_design, fingerprint

    design = active_design(session)
    quick = None
    if design is not None:
        quick = (design.id, design.created_at.isoformat(), fingerprint(session, design))
    names = tuple(
        tuple(row) for row in session.execute(select(Candidate.code, Candidate.name).order_by(Candidate.code))
    )
    return (
        now.replace(second=0, microsecond=0).isoformat(),
        tuple(sorted(counters.read(session, key).items())),
        names,
        quick,
    )


def etag(key: Hashable, value: Token) -> str:
    """An opaque tag for the document of ``key`` (region, language) at token ``value``."""
    return hashlib.sha256(repr((key, value)).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Kept:
    """A computed document, the token read before computing it, and its tag."""

    token: Token
    document: dict[str, Any]
    etag: str


class Documents:
    """The last document per key, reused while its token holds. Thread-safe; per process."""

    def __init__(self, limit: int = LIMIT) -> None:
        self._lock = threading.Lock()
        self._kept: dict[Hashable, Kept] = {}
        self._limit = limit

    def get(self, key: Hashable, current: Token, compute: Callable[[], dict[str, Any]]) -> Kept:
        """The document of ``key`` valid at token ``current`` (read by the caller, in this
        request): the kept one when its token is the same, else a new one from ``compute``,
        which must read the database after ``current`` was read."""
        with self._lock:
            kept = self._kept.get(key)
        if kept is not None and kept.token == current:
            return kept
        fresh = Kept(current, compute(), etag(key, current))
        with self._lock:
            if len(self._kept) >= self._limit and key not in self._kept:
                for old in list(self._kept)[: self._limit // 2]:
                    del self._kept[old]
            self._kept[key] = fresh
        return fresh
