"""The overview document kept per process while nothing it shows has changed.

Every open overview asks for its document every few seconds (200 dashboards are 40 requests a
second), and most of the time nothing it shows has changed since the last ask. Computing it
costs a dozen statements and the activity chart's count of the last minutes' reports; checking
whether it *could* have changed costs a few primary-key lookups. So each process keeps the last
document of every region (in every language) with the **validity token** read just before it
was computed, and hands it out again as long as a fresh read of the token gives the same value.

The token is what the document is made of, read cheaply, in one statement:

- the region's counters (every total, status count and vote the overview shows; an accepted
  report that changes the station's result changes them, in the same transaction);
- the candidates (codes and names);
- the active quick-count design and its fingerprint (``quickcount.service.fingerprint``: how
  many times a sampled station's result changed, logged by the database itself), and when the
  region's stored quick-count card was last computed (``quickcount.stored``: it may be stored
  by another process after this one's last change), and whether that card is at least the
  card interval old (``SMSGATE_QUICKCOUNT_CARD_SECONDS``). The last part is why a card left
  behind by a change inside the interval is recomputed once the interval has passed: only a
  refresh that computes the overview reaches the stored card, and without it the token (and
  the browsers' ``ETag``) would hold until the next minute or the next change of a counter.
  It flips once per stored card (a current card that ages costs one more overview, never a
  recomputation of the card);
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
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, case, cast, func, literal, select, union_all
from sqlalchemy.orm import Session

from ..models import (
    Candidate,
    PreviousResult,
    QuickcountCard,
    RegionCounter,
    SampleDesign,
    SampleResultChange,
)

Token = tuple[Any, ...]

#: Regions × languages kept per process; past it the oldest half is dropped. Two languages and
#: every region a process's viewers opened: a few thousand documents of a few kilobytes.
LIMIT = 4096


def token(session: Session, key: str, now: datetime, *, card_seconds: float) -> Token:
    """The validity token of the overview of region ``key`` (undotted, ``""`` the country) at
    ``now``, in one round trip: the region's counters (summed over shards), the candidates, the
    active quick-count design and what ``quickcount.service.fingerprint`` checks the cached
    estimate by (the design's logged result changes, the latest previous-result import), when
    the region's stored quick-count card was computed and whether it is ``card_seconds`` old
    (then a stale card is due: ``quickcount.stored``)."""
    design = (
        select(SampleDesign.id)
        .where(SampleDesign.active.is_(True))
        .order_by(SampleDesign.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    parts = union_all(
        select(literal("counter"), RegionCounter.name, cast(func.sum(RegionCounter.value), String))
        .where(RegionCounter.region_key == key)
        .group_by(RegionCounter.name),
        select(literal("candidate"), Candidate.code, Candidate.name),
        select(literal("design"), cast(SampleDesign.id, String), cast(SampleDesign.created_at, String)).where(
            SampleDesign.id == design
        ),
        select(literal("changes"), literal(""), cast(func.count(), String))
        .select_from(SampleResultChange)
        .where(SampleResultChange.design_id == design),
        select(literal("previous"), literal(""), cast(func.max(PreviousResult.imported_at), String)),
        select(literal("card"), literal(""), cast(QuickcountCard.computed_at, String)).where(
            QuickcountCard.design_id == design, QuickcountCard.region_key == key
        ),
        select(
            literal("card aged"),
            literal(""),
            case((QuickcountCard.computed_at <= now - timedelta(seconds=card_seconds), "1"), else_="0"),
        ).where(QuickcountCard.design_id == design, QuickcountCard.region_key == key),
    )
    rows = sorted((kind, name, value or "") for kind, name, value in session.execute(parts))
    return (now.replace(second=0, microsecond=0).isoformat(), *rows)


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
