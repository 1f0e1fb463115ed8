"""Flood and cost control for inbound SMS, with its state in the message log itself.

A phone stuck resending, or someone hammering the number, must not cost hundreds of replies
nor crowd out other senders. Per sender, within the ``Ingest`` transaction:

- the same text (whitespace and case aside) as the latest message from the same number
  processed in the last ``flood_duplicate_seconds`` is logged as ``duplicate_text`` and not
  handled again. Only the latest counts: a volunteer who corrects a report and then sends the
  first values again (A, B, A) means A, and a second ``CEK`` after a correction is a new
  question, not a stuck phone;
- beyond ``flood_per_minute`` processed messages in a minute, a message is logged as
  ``throttled`` and not handled;
- beyond ``flood_replies_per_hour`` replies in an hour, a message is handled but not answered
  (``error_code`` ``reply_limit``).

Held messages get no reply and are not counted as processed, so a report first held back
is handled when resent later rather than mistaken for a duplicate of itself. The counts come
from ``inbound_messages`` (indexed on sender and time), so every app server sees the same
state; on PostgreSQL a transaction-scoped advisory lock per sender makes concurrent
deliveries from one number take turns, and SQLite's write lock does the same. The three figures
are read in one query (``recent_columns``); on PostgreSQL inside the statement that logs the
message, after the sender's lock is held, in one pass over the sender's messages
(``recent_subquery``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, bindparam, func, literal, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session

from ..config import Settings
from ..models import InboundMessage
from . import pins

DUPLICATE = "duplicate_text"
THROTTLED = "throttled"
#: Outcomes of messages that were not handled: they neither count nor match as duplicates.
HELD = (DUPLICATE, THROTTLED, "error")


def enabled(settings: Settings) -> bool:
    return bool(
        settings.flood_per_minute or settings.flood_replies_per_hour or settings.flood_duplicate_seconds
    )


def serialise_on(settings: Settings, phone: str) -> str | None:
    """The text ``Database.begin(serialise_on=...)`` takes turns on for ``phone``'s messages:
    concurrent deliveries from one sender must see each other's outcome (PostgreSQL's advisory
    lock; SQLite's write lock already serialises every writer). ``None`` when flood control is off."""
    return phone if enabled(settings) else None


@dataclass(frozen=True)
class Recent:
    """What flood control needs of a sender's recent messages, read in one query.

    ``latest_body``: the body of their latest processed message in the duplicate window;
    ``processed_last_minute``: processed messages in the last minute; ``replies_last_hour``:
    messages answered in the last hour. The message being handled never counts."""

    latest_body: str | None = None
    processed_last_minute: int = 0
    replies_last_hour: int = 0


NOTHING_RECENT = Recent()


def _normal(body: str) -> str:
    return " ".join(body.split()).upper()


def recent_columns(settings: Settings, *, exclude: bool = False) -> list[ColumnElement[Any]]:
    """The three values of ``Recent`` as scalar subqueries, so the ingest can fetch them in the
    statement that logs the message (PostgreSQL) or in one query of their own. A limit that
    is off costs no subquery. Their values are bound by name (``recent_params``), so a caller
    builds the statement once and only binds each message's values; ``exclude``: leave out the
    message with id ``flood_exclude`` (the one being handled, already logged)."""

    def recent(since: str) -> list[ColumnElement[bool]]:
        conditions = [
            InboundMessage.from_number == bindparam("flood_phone"),
            InboundMessage.received_at > bindparam(since),
            InboundMessage.received_at <= bindparam("flood_at"),
        ]
        if exclude:
            conditions.append(InboundMessage.id != bindparam("flood_exclude"))
        return conditions

    # One bound value per outcome, not an expanding list: SQLAlchemy would otherwise render the
    # statement's SQL again for every message (its "post-compile" step) on the ingest path.
    processed = InboundMessage.outcome.not_in([literal(outcome) for outcome in HELD])
    nothing: ColumnElement[Any] = literal(None)
    latest: ColumnElement[Any] = nothing
    count: ColumnElement[Any] = nothing
    replies: ColumnElement[Any] = nothing
    if settings.flood_duplicate_seconds:
        latest = (
            select(InboundMessage.body)
            .where(*recent("flood_duplicate_since"), processed)
            .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
            .limit(1)
            .scalar_subquery()
        )
    if settings.flood_per_minute:
        count = select(func.count()).where(*recent("flood_minute_since"), processed).scalar_subquery()
    if settings.flood_replies_per_hour:
        replies = (
            select(func.count())
            .where(*recent("flood_hour_since"), InboundMessage.reply.is_not(None))
            .scalar_subquery()
        )
    return [latest.label("flood_latest"), count.label("flood_minute"), replies.label("flood_hour")]


def recent_subquery(settings: Settings) -> Any:
    """PostgreSQL's form of ``recent_columns``: the three values as columns of one aggregate over
    the sender's messages in the widest window of the limits that are on, read by one index
    scan instead of one per figure, each row's heap tuple visited once. That scan is the
    sender's index (``ix_inbound_messages_from_prefix``: number, time, id) on any table whose
    statistics tell a sender from the window; on a small one analysed while smaller still the
    planner may cost the time index as cheaper and walk the window's messages, once (the
    separate counts walked it for the minute and again for the hour). Each figure keeps its
    own window and condition as an aggregate ``FILTER``; the latest body is the first of the
    window's bodies newest first (the ``ORDER BY`` of ``recent_columns``' subquery). An
    aggregate without ``GROUP BY`` yields exactly one row (counts 0 and the body NULL when the
    sender sent nothing), so the caller joins it without changing its rows. Bound by
    ``recent_params`` (without ``flood_exclude``: the statement that logs the message does not
    see its own insert). ``None`` when flood control is off."""
    if not enabled(settings):
        return None
    processed = InboundMessage.outcome.not_in([literal(outcome) for outcome in HELD])  # as above
    moment = InboundMessage.received_at.type

    def after(name: str) -> ColumnElement[bool]:
        return InboundMessage.received_at > bindparam(name, type_=moment)

    nothing: ColumnElement[Any] = literal(None)
    latest: ColumnElement[Any] = nothing
    count: ColumnElement[Any] = nothing
    replies: ColumnElement[Any] = nothing
    since: list[ColumnElement[Any]] = []
    if settings.flood_duplicate_seconds:
        since.append(bindparam("flood_duplicate_since", type_=moment))
        newest_first = (InboundMessage.received_at.desc(), InboundMessage.id.desc())
        bodies = func.array_agg(aggregate_order_by(InboundMessage.body, *newest_first)).filter(
            after("flood_duplicate_since"), processed
        )
        latest = bodies[1]
    if settings.flood_per_minute:
        since.append(bindparam("flood_minute_since", type_=moment))
        count = func.count().filter(after("flood_minute_since"), processed)
    if settings.flood_replies_per_hour:
        since.append(bindparam("flood_hour_since", type_=moment))
        replies = func.count().filter(after("flood_hour_since"), InboundMessage.reply.is_not(None))
    earliest = since[0] if len(since) == 1 else func.least(*since, type_=moment)
    return (
        select(latest.label("flood_latest"), count.label("flood_minute"), replies.label("flood_hour"))
        .where(
            InboundMessage.from_number == bindparam("flood_phone"),
            InboundMessage.received_at > earliest,
            InboundMessage.received_at <= bindparam("flood_at"),
        )
        .subquery("recent")
    )


def recent_params(
    settings: Settings, phone: str, received_at: datetime, exclude_id: int | None = None
) -> dict[str, Any]:
    """The values ``recent_columns`` binds, for ``phone``'s message received at ``received_at``."""
    return {
        "flood_phone": phone,
        "flood_at": received_at,
        "flood_duplicate_since": received_at - timedelta(seconds=settings.flood_duplicate_seconds or 0),
        "flood_minute_since": received_at - timedelta(minutes=1),
        "flood_hour_since": received_at - timedelta(hours=1),
        "flood_exclude": exclude_id,
    }


def recent_from(row: Sequence[object]) -> Recent:
    """``Recent`` from the three values ``recent_columns`` selected, in their order."""
    latest, count, replies = row
    return Recent(
        latest_body=latest if isinstance(latest, str) else None,
        processed_last_minute=int(count or 0),  # type: ignore[call-overload]
        replies_last_hour=int(replies or 0),  # type: ignore[call-overload]
    )


def recent(session: Session, settings: Settings, inbound: InboundMessage) -> Recent:
    """``Recent`` for ``inbound``'s sender, in one query (nothing when flood control is off)."""
    if not enabled(settings):
        return NOTHING_RECENT
    limits = (settings.flood_duplicate_seconds, settings.flood_per_minute, settings.flood_replies_per_hour)
    statement = _RECENT.get(limits)
    if statement is None:
        statement = _RECENT[limits] = select(*recent_columns(settings, exclude=True))
    params = recent_params(settings, inbound.from_number, inbound.received_at, exclude_id=inbound.id)
    return recent_from(session.execute(statement, params).one())


#: ``recent``'s statement per set of limits, built once (each message only binds its values).
_RECENT: dict[tuple[object, ...], Any] = {}


def hold(settings: Settings, inbound: InboundMessage, recent: Recent) -> str | None:
    """``duplicate_text`` or ``throttled`` when the message must not be handled, else ``None``."""
    latest = recent.latest_body
    # Texts with a (masked) PIN all look alike once masked: a retry with the right PIN is no duplicate.
    if (
        settings.flood_duplicate_seconds
        and latest is not None
        and _normal(latest) == _normal(inbound.body)
        and not pins.masked(inbound.body)
    ):
        return DUPLICATE
    if settings.flood_per_minute and recent.processed_last_minute >= settings.flood_per_minute:
        return THROTTLED
    return None


def may_reply(settings: Settings, recent: Recent) -> bool:
    if not settings.flood_replies_per_hour:
        return True
    return recent.replies_last_hour < settings.flood_replies_per_hour
