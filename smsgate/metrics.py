"""``GET /metrics``: Prometheus metrics, right under any number of gunicorn processes.

Two kinds of figures:

- **Counters and the latency histogram** of what this server did (inbound SMS by provider and
  outcome, webhook refusals by reason, handling time). Each gunicorn process counts its own;
  with ``PROMETHEUS_MULTIPROC_DIR`` set (``smsgate serve`` sets it) prometheus_client's
  multiprocess mode writes them to files there and a scrape of any process adds them all up.
- **Gauges read from the database at scrape time** (``DatabaseCollector``): outbound queue depth
  and oldest age by provider, outbound messages by status, outbox pending/dead/lag by
  destination, stations reported. They are right whichever process or host did the work.

Adding a figure
---------------
A counter of something this process does: a module-level ``Counter``/``Histogram`` below with
``registry=None`` (it is added to each scrape's registry), incremented where it happens. A
figure the database knows: a method of ``DatabaseCollector`` yielding metric families, listed
in ``DatabaseCollector.SOURCES`` (e.g. per-device gauges of a gateway fleet).

``SMSGATE_METRICS_TOKEN`` set: ``/metrics`` wants ``Authorization: Bearer <token>`` (401 without).
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .db import Database

log = logging.getLogger(__name__)

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

INBOUND = Counter(
    "smsgate_inbound_sms",
    "Inbound SMS handled, by provider and outcome (accepted, command, refused, error, throttled, ...)",
    ["provider", "outcome"],
    registry=None,
)
REFUSALS = Counter(
    "smsgate_webhook_refusals",
    "Webhook requests refused before handling, by provider and reason",
    ["provider", "reason"],
    registry=None,
)
HANDLING = Histogram(
    "smsgate_sms_handling_seconds",
    "Time from a webhook's arrival to its answer, by provider",
    ["provider"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=None,
)
OWN_METRICS = (INBOUND, REFUSALS, HANDLING)


#: Each labelled child, looked up once: ``labels()`` takes the metric's lock, checks and turns
#: every label into a string and builds the key on every call, which is twice a webhook. A
#: child updates its own value (in multiprocess mode its slot in this process's file, which it
#: finds again itself after a fork), so one kept here counts exactly as a new look-up would.
_INBOUND_CHILDREN: dict[tuple[str, str], Counter] = {}
_HANDLING_CHILDREN: dict[str, Histogram] = {}


def observe_sms(provider: str, outcome: str, seconds: float) -> None:
    """One handled SMS: three value updates (the counter; the histogram's sum and the one bucket
    the time falls in), each a write to the process's file in multiprocess mode."""
    key = (provider, outcome or "unknown")
    counter = _INBOUND_CHILDREN.get(key)
    if counter is None:
        counter = _INBOUND_CHILDREN.setdefault(key, INBOUND.labels(*key))
    handling = _HANDLING_CHILDREN.get(provider)
    if handling is None:
        handling = _HANDLING_CHILDREN.setdefault(provider, HANDLING.labels(provider))
    counter.inc()
    handling.observe(seconds)


def observe_refusal(provider: str, reason: str) -> None:
    REFUSALS.labels(provider, reason).inc()


class DatabaseCollector(Collector):
    """Gauges computed from the database when Prometheus scrapes."""

    SOURCES: tuple[str, ...] = ("outbound", "outbox", "stations", "gateways")

    def __init__(self, database: Database, now: Callable[[], datetime], settings: Any = None) -> None:
        self.database, self.now, self.settings = database, now, settings

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("smsgate_metrics_database_up", "1 when the database gauges could be read")
        families: list[Metric] = []
        try:
            with self.database.read() as session:
                now = self.now()
                for source in self.SOURCES:
                    families.extend(getattr(self, source)(session, now))
        except Exception as exc:  # a scrape must still answer, and say the database part failed
            log.warning("metrics: database gauges unavailable: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def outbound(self, session: Session, now: datetime) -> Iterator[Metric]:
        """The queue (queued and sending) counted live, a range of ``ix_outbound_messages_due``;
        sent and failed from the counts the database keeps (``OutboundStatusCount``): counting
        every row by status took a scan of the table at each scrape."""
        from .models import OutboundMessage as m
        from .models import OutboundStatusCount as kept

        depth = GaugeMetricFamily(
            "smsgate_outbound_queue_depth",
            "Outbound SMS waiting to be sent, by provider",
            labels=["provider"],
        )
        oldest = GaugeMetricFamily(
            "smsgate_outbound_oldest_age_seconds",
            "Age of the oldest outbound SMS waiting to be sent, by provider",
            labels=["provider"],
        )
        by_status = GaugeMetricFamily(
            "smsgate_outbound_messages",
            "Outbound SMS by provider and status (sent, failed, queued, sending)",
            labels=["provider", "status"],
        )
        waiting: dict[str, tuple[int, datetime]] = {}
        for provider, status, count, first in session.execute(
            select(m.provider, m.status, func.count(), func.min(m.created_at))
            .where(m.status.in_(("queued", "sending")))
            .group_by(m.provider, m.status)
        ):
            by_status.add_metric([provider, status], count)
            total, since = waiting.get(provider, (0, first))
            waiting[provider] = (total + count, min(since, first, key=lambda t: _aware(t, now)))
        for provider, (count, first) in sorted(waiting.items()):
            depth.add_metric([provider], count)
            oldest.add_metric([provider], max(0.0, (now - _aware(first, now)).total_seconds()))
        for provider, status, count in session.execute(
            select(kept.provider, kept.status, func.sum(kept.count))
            .group_by(kept.provider, kept.status)
            .having(func.sum(kept.count) > 0)
        ):
            by_status.add_metric([provider, status], int(count))
        yield from (depth, oldest, by_status)

    def outbox(self, session: Session, now: datetime) -> Iterator[Metric]:
        from .outgoing.event_queue import waiting

        figures = waiting(session, now)
        pending = GaugeMetricFamily(
            "smsgate_outbox_pending", "Event deliveries not yet made, by destination", labels=["destination"]
        )
        dead = GaugeMetricFamily(
            "smsgate_outbox_dead", "Event deliveries given up on, by destination", labels=["destination"]
        )
        lag = GaugeMetricFamily(
            "smsgate_outbox_delivery_lag_seconds",
            "Age of the oldest event not yet delivered, by destination (0 when none waits)",
            labels=["destination"],
        )
        for name, entry in sorted(figures.items()):
            pending.add_metric([name], entry.get("pending", 0))
            dead.add_metric([name], entry.get("dead", 0))
            lag.add_metric([name], entry.get("oldest_pending_seconds", 0.0))
        yield from (pending, dead, lag)

    def stations(self, session: Session, now: datetime) -> Iterator[Metric]:
        from .services.tally import tally

        stations = tally(session, None)["stations"]
        family = GaugeMetricFamily(
            "smsgate_stations", "Polling stations by state (total, reported, verified, ...)", labels=["state"]
        )
        for state, count in stations.items():
            family.add_metric([state], count)
        yield family

    def gateways(self, session: Session, now: datetime) -> Iterator[Metric]:
        """Per gateway device (``SMSGATE_GATEWAYS``): the figures of ``smsgate gateways status``."""
        if self.settings is None:
            return
        from .outgoing.fleet import FleetError, load_fleet
        from .outgoing.fleet_status import fleet_status

        try:
            fleet = load_fleet(self.settings)
        except FleetError as exc:
            log.warning("metrics: gateway gauges unavailable: %s", exc)
            return
        figures = fleet_status(session, fleet, now)
        labels = ["device", "provider"]
        families = {
            "up": GaugeMetricFamily(
                "smsgate_gateway_up", "1 when the device takes SMS, 0 when down or disabled", labels=labels
            ),
            "warning": GaugeMetricFamily(
                "smsgate_gateway_warning",
                "1 when the device is down, silent or lagging beyond the threshold",
                labels=labels,
            ),
            "queued": GaugeMetricFamily(
                "smsgate_gateway_queue_depth", "SMS waiting for the device", labels=labels
            ),
            "oldest": GaugeMetricFamily(
                "smsgate_gateway_oldest_queued_seconds",
                "Age of the oldest SMS waiting for it (0 when none)",
                labels=labels,
            ),
            "received": GaugeMetricFamily(
                "smsgate_gateway_received_15m",
                "Messages received through it in the last 15 minutes",
                labels=labels,
            ),
            "sent": GaugeMetricFamily(
                "smsgate_gateway_sent_15m", "SMS it accepted in the last 15 minutes", labels=labels
            ),
            "lag": GaugeMetricFamily(
                "smsgate_gateway_reply_lag_p95_seconds",
                "Reply lag p95 over the last 15 minutes (0 when none)",
                labels=labels,
            ),
            "seen": GaugeMetricFamily(
                "smsgate_gateway_last_seen_age_seconds",
                "Seconds since it was last seen (-1 never)",
                labels=labels,
            ),
            "failures": GaugeMetricFamily(
                "smsgate_gateway_failures", "Failed sends through it, all time", labels=labels
            ),
        }
        for d in figures.devices:
            key = [d.name, d.provider]
            families["up"].add_metric(key, 1 if d.state == "up" else 0)
            families["warning"].add_metric(key, 1 if d.warnings else 0)
            families["queued"].add_metric(key, d.queued)
            families["oldest"].add_metric(key, d.oldest_queued_seconds or 0.0)
            families["received"].add_metric(key, d.received_15m)
            families["sent"].add_metric(key, d.sent_15m)
            families["lag"].add_metric(key, d.lag_p95_seconds or 0.0)
            seen = (now - _aware(d.last_seen, now)).total_seconds() if d.last_seen else -1.0
            families["seen"].add_metric(key, seen)
            families["failures"].add_metric(key, d.failures)
        yield from families.values()


def _aware(moment: datetime, now: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=now.tzinfo)


def registry_for_scrape(
    database: Database, now: Callable[[], datetime], settings: Any = None
) -> CollectorRegistry:
    """This scrape's registry: every process's counters, and the database's gauges."""
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROCESS_ENV):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        for metric in OWN_METRICS:
            registry.register(metric)
    registry.register(DatabaseCollector(database, now, settings))
    return registry


bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics() -> Response:
    from .models import utcnow

    token = current_app.extensions["smsgate.settings"].metrics_token
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            return Response("metrics need Authorization: Bearer $SMSGATE_METRICS_TOKEN\n", 401)
    registry = registry_for_scrape(
        current_app.extensions["smsgate.database"], utcnow, current_app.extensions["smsgate.settings"]
    )
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
