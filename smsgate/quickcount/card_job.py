"""The ``quickcount-card`` worker job: recomputing the dashboard's stored quick-count cards.

Why: a card recomputation is about 0.6 s of CPU on the national sample. Done inside a web
process (``smsgate serve``) it holds that process's interpreter while the SMS requests it also
serves wait: with 200 open dashboards and 50 SMS/s the SMS replies' p99 went from 24 to 310 ms.
``smsgate worker`` runs no request, so the computation moves here; a refresh serves the stored
card and computes one itself only for a region's first view or when no worker has done it
within the grace (``quickcount.stored``, ``Settings.quickcount_card_grace``).

Each pass recomputes the due cards of the regions viewed so far (``stored.recompute_due``)
under the same lease the web processes take, so several workers never compute a card twice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ..config import Settings
from ..db import Database
from ..models import utcnow
from . import stored


class CardJob:
    """Recomputes due stored cards; ``clock`` is injectable for tests."""

    name = "quickcount-card"

    def __init__(self, settings: Settings, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.settings = settings
        self.clock = clock

    def run_once(self, database: Database, settings: Settings | None = None) -> int:
        """How many cards this pass computed (0 without an active design or a due card)."""
        interval = (settings or self.settings).quickcount_card_seconds
        return stored.recompute_due(database, interval=interval, now=self.clock())


def card_job(settings: Settings) -> CardJob:
    return CardJob(settings)
