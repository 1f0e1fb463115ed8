"""``/metrics``' database gauges stay exact without counting whole tables at each scrape.

Outbound SMS sent and failed come from counts the database keeps (triggers, migration 2102):
every way a row moves (the ORM, a delivery report, plain SQL, a delete) is followed by a scrape
compared with a full count made here. The outbox gauges read only undelivered deliveries.
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, func, select, text, update

from smsgate.inbound import DeliveryReport
from smsgate.models import OutboundMessage, OutboxDelivery, OutboxEvent, utcnow
from smsgate.services.outbound import enqueue, record_delivery

from ..support import VOLUNTEER_A, VOLUNTEER_B, Statements
from .test_metrics_and_logs import samples


def _by_status(client) -> dict[tuple[str, str], float]:  # type: ignore[no-untyped-def]
    found = samples(client.get("/metrics").get_data(as_text=True))
    return {
        (dict(labels)["provider"], dict(labels)["status"]): value
        for (name, labels), value in found.items()
        if name == "smsgate_outbound_messages"
    }


def _truth(database) -> dict[tuple[str, str], float]:  # type: ignore[no-untyped-def]
    with database.read() as session:
        rows = session.execute(
            select(OutboundMessage.provider, OutboundMessage.status, func.count()).group_by(
                OutboundMessage.provider, OutboundMessage.status
            )
        )
        return {(provider, status): float(count) for provider, status, count in rows}


def test_outbound_by_status_follows_every_move(client, database) -> None:  # type: ignore[no-untyped-def]
    now = utcnow()
    with database.begin() as session:
        for i, provider in enumerate(("android", "android", "android", "twilio", "twilio")):
            enqueue(session, to=VOLUNTEER_A, text=f"hi {i}", provider=provider, kind="reply", now=now)
    assert _by_status(client) == _truth(database) == {("android", "queued"): 3, ("twilio", "queued"): 2}

    with database.begin() as session:  # the worker's moves: claimed, sent, failed for good
        rows = list(session.scalars(select(OutboundMessage).order_by(OutboundMessage.id)))
        rows[0].status = "sending"
        rows[1].status, rows[1].provider_message_id = "sent", "p-1"
        rows[2].status = "failed"
        rows[3].status, rows[3].provider_message_id = "sent", "p-3"
    assert _by_status(client) == _truth(database)

    with database.begin() as session:  # a provider's delivery report: sent, then not delivered
        assert record_delivery(session, DeliveryReport("twilio", "p-3", "undelivered", True, "30003")) == 1
    assert _by_status(client) == _truth(database)
    assert _truth(database)[("twilio", "failed")] == 1

    with database.begin() as session:  # plain SQL, as an operator or a bench would write it
        session.execute(
            text(
                "INSERT INTO outbound_messages (to_number, text, provider, via, priority, kind, status, "
                "attempts, next_attempt_at, created_at) VALUES (:to, 'x', 'kannel', '', 2, 'reply', 'sent', "
                "1, :now, :now)"
            ),
            {"to": VOLUNTEER_B, "now": now},
        )
        session.execute(
            update(OutboundMessage).where(OutboundMessage.status == "failed").values(provider="gammu")
        )
        session.execute(
            update(OutboundMessage).where(OutboundMessage.status == "sending").values(status="sent")
        )
    assert _by_status(client) == _truth(database)

    with database.begin() as session:  # rows deleted (a retention purge): their counts go
        session.execute(delete(OutboundMessage).where(OutboundMessage.provider == "gammu"))
    assert _by_status(client) == _truth(database)
    assert ("gammu", "failed") not in _by_status(client)


def test_a_scrape_counts_no_whole_table(client, database) -> None:  # type: ignore[no-untyped-def]
    """The outbound queue by its status, the outbox by destination and undelivered status."""
    now = utcnow()
    with database.begin() as session:
        enqueue(session, to=VOLUNTEER_A, text="hi", provider="android", kind="reply", now=now)
        for seq, state in ((1, "delivered"), (2, "pending"), (3, "dead")):
            session.add(OutboxEvent(seq=seq, id=f"e{seq}", type="report.accepted", payload={},
                                    created_at=now - timedelta(minutes=seq)))  # fmt: skip
            session.flush()
            session.add(OutboxDelivery(event_seq=seq, destination="tally", status=state))
    with Statements() as sent:
        found = samples(client.get("/metrics").get_data(as_text=True))
    assert found[("smsgate_outbox_pending", (("destination", "tally"),))] == 1
    assert found[("smsgate_outbox_dead", (("destination", "tally"),))] == 1
    assert 110 <= found[("smsgate_outbox_delivery_lag_seconds", (("destination", "tally"),))] < 200
    assert found[("smsgate_outbound_queue_depth", (("provider", "android"),))] == 1
    for statement in sent.reading("outbound_messages"):  # the queue, or each device's last 15 min
        assert "status IN" in statement or "device IN" in statement, statement
    for statement in sent.reading("outbox_deliveries"):
        assert "min(outbox_deliveries.destination)" in statement or "destination IN" in statement, statement
    assert not [s for s in sent.reading("outbox_events") if "JOIN outbox_events" not in s]


def test_the_counts_migration_goes_down_and_up_and_counts_what_is_there(client, database) -> None:  # type: ignore[no-untyped-def]
    """Down: the table and its triggers go. Up again: the rows already sent or failed are counted
    once, and the triggers follow the next moves."""
    from alembic import command

    from smsgate.schema import alembic_config

    now = utcnow()
    with database.begin() as session:
        for i in range(4):
            enqueue(session, to=VOLUNTEER_A, text=f"hi {i}", provider="android", kind="reply", now=now)
    config = alembic_config(database.engine.url.render_as_string(hide_password=False))
    command.downgrade(config, "2021")
    with database.begin() as session:  # moves while nothing counts them
        session.execute(update(OutboundMessage).where(OutboundMessage.id <= 2).values(status="sent"))
        session.execute(update(OutboundMessage).where(OutboundMessage.id == 3).values(status="failed"))
    with database.read() as session:
        assert not database.engine.dialect.has_table(session.connection(), "outbound_status_counts")
    command.upgrade(config, "heads")
    assert (
        _by_status(client)
        == _truth(database)
        == {
            ("android", "sent"): 2,
            ("android", "failed"): 1,
            ("android", "queued"): 1,
        }
    )
    with database.begin() as session:
        session.execute(update(OutboundMessage).where(OutboundMessage.id == 4).values(status="sent"))
    assert _by_status(client) == _truth(database)
