"""Every inbound SMS, whatever the provider, goes through ``Ingest.receive``.

The message is logged, parsed, handled and answered inside one transaction, and the reply
is returned only after the commit: an acknowledged report is never lost. A redelivery of
the same provider message from the same phone (provider, message id and sender: gateway ids are
not all globally unique) finds the logged row and gets the same reply, changing nothing.
If handling fails, the raw message is still logged in a transaction of its own and the
sender is asked to send it again; a redelivery of that message is then processed afresh.
If not even that commits, the reply says so (``Reply.stored`` False) and the webhook answers
in the way that makes its provider deliver the message again. Every lock wait on this path is
bounded (``HANDLE_WAIT``, ``KEEP_WAIT``), so the answer comes inside the providers' timeouts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, inspect, literal, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

import grammar
from grammar.errors import INTERNAL_ERROR

from .. import commands, driver, observe
from ..config import Settings
from ..db import Database
from ..inbound import DeliveryReport, Heartbeat, InboundSMS, Reply, storable
from ..models import Candidate, Contact, InboundMessage, utcnow
from ..phones import InvalidPhone, normalise_phone
from ..replies import command_word, render, usage
from . import counters, flood, heartbeats, outbound, pending_writes, pins
from .rows import attach

log = logging.getLogger(__name__)

DEFAULT_CANDIDATES = ("01", "02", "03")
#: Seconds the transaction handling a message may wait for a lock (another process's SQLite
#: write lock, a PostgreSQL row or advisory lock), then the one keeping it raw after a failure:
#: a webhook answers within 10 s whatever holds the database (see ``Database.begin``).
HANDLE_WAIT = 8.0
KEEP_WAIT = 1.5
#: Longest body we keep verbatim; longer texts are cut (Twilio's concatenated maximum is 1,600).
MAX_BODY = 4000
#: The width of ``inbound_messages.provider_message_id``.
MAX_MESSAGE_ID = 128


class Ingest:
    """The provider-neutral front door of the core (``smsgate.inbound.Gateway``)."""

    def __init__(
        self, database: Database, settings: Settings, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.database = database
        self.settings = settings
        self.clock = clock

    def receive(self, sms: InboundSMS) -> Reply:
        started = time.perf_counter()
        sms = _fitted(sms.cleaned())  # nothing in a body may make storing fail
        try:
            reply = self._process(sms)
        except Exception:
            log.exception("failed to handle %s message %s", sms.provider, sms.provider_message_id)
            reply = self._keep_after_failure(sms)
        observe.sms_handled(sms, reply, time.perf_counter() - started)
        return reply

    def delivery_report(self, report: DeliveryReport) -> bool:
        """A provider's report on an SMS we sent: recorded on its outbound row.

        False when it could not be recorded (the webhook then answers 503 for a retry).
        """
        report = replace(
            report,
            provider_message_id=storable(report.provider_message_id),
            status=storable(report.status)[:32],
            error=storable(report.error),
        )
        try:
            with self.database.begin(wait=HANDLE_WAIT) as session:
                outbound.record_delivery(session, report)
        except Exception:
            log.exception("could not record the %s delivery report %s", report.provider, report.status)
            return False
        return True

    def heartbeat(self, beat: Heartbeat) -> None:
        """A device's ``system:ping``: the worker counts a device silent for too long as down."""
        with self.database.begin() as session:
            heartbeats.record(session, beat, self.clock())

    # -- the normal path ---------------------------------------------------------------------

    def _process(self, sms: InboundSMS) -> Reply:
        try:
            return self._process_once(sms)
        except DBAPIError as error:
            if not error.connection_invalidated:
                raise
            # The server dropped the pooled connection (a restart, a failover, PgBouncer's
            # idle timeout). There is no pre-ping; SQLAlchemy has discarded that connection and
            # the older ones, so one retry runs on a fresh connection.
            log.warning("connection lost; handling %s %s again", sms.provider, sms.provider_message_id)
            return self._process_once(sms)

    def _process_once(self, sms: InboundSMS) -> Reply:
        sender = _sender(sms.from_number)
        try:
            serialise = flood.serialise_on(self.settings, sender)
            with self.database.begin(wait=HANDLE_WAIT, serialise_on=serialise) as session:
                inbound, recent, known = self._log_new(session, sms, sender)
                if inbound is None:  # a redelivery
                    existing = self._logged(session, sms)
                    if existing is None:  # the first delivery rolled back meanwhile: try again
                        raise RuntimeError("a redelivery's first delivery vanished")
                    if existing.outcome != "error":
                        return Reply(existing.reply, existing.outcome)
                    inbound, recent = existing, flood.recent(session, self.settings, existing)
                    known = None
                held = flood.hold(self.settings, inbound, recent)
                if held is not None:  # logged, not handled, not answered
                    inbound.outcome, inbound.error_code, inbound.reply = held, held, None
                    pending_writes.write(session)
                    return Reply(None, held)
                counters.defer(session)  # written with the other changes (pending_writes)
                outcome, contact = self._handle(session, sms, inbound, known)
                reply, error_code = outcome.reply, outcome.error_code
                if reply is not None and not flood.may_reply(self.settings, recent):
                    reply, error_code = None, "reply_limit"
                # The row is written once more, here, with everything handling found out.
                if contact is not None and inbound.contact_id is None:
                    inbound.contact_id = contact.id
                inbound.outcome = outcome.outcome
                inbound.error_code = error_code
                inbound.reply = reply
                # Written now with prebuilt statements (one on PostgreSQL) when they are the
                # usual ones, else by the ORM's flush at commit. Rows written now leave the
                # session: nothing below may change ``inbound`` or the station's rows.
                pending_writes.write(session)
                if reply is not None and not sms.reply_inline:
                    outbound.queue_reply(session, inbound, reply, self.clock())
            return Reply(reply, outcome.outcome)
        except IntegrityError:
            # A concurrent delivery of the same message committed first: answer as it did.
            with self.database.read() as session:
                existing = self._logged(session, sms)
                if existing is None:
                    raise
                return Reply(existing.reply, existing.outcome)

    def _log_new(
        self, session: Session, sms: InboundSMS, sender: str
    ) -> tuple[InboundMessage | None, flood.Recent, _Known | None]:
        """Log ``sms`` unless it is a redelivery (then ``None``), with the sender's flood figures.

        ``INSERT ... ON CONFLICT DO NOTHING RETURNING``: a redelivery inserts nothing, with no
        read before the write. On PostgreSQL the same statement also reads the flood figures
        (its subqueries see the database as it was before this insert and after the sender's
        lock: exactly the sender's earlier messages), the sender's contact and the candidates
        (``_Known``), always fresh, with no cache to invalidate. The row becomes an ORM object
        without another query; handling changes it, and it is written once more at commit.
        """
        received_at = sms.received_at or self.clock()
        values = {
            "provider": sms.provider,
            "provider_message_id": sms.provider_message_id,
            "from_number": sender,
            "to_number": sms.to_number[:40],
            "device": sms.device[:64],
            "body": pins.mask(_clean_body(sms.text)),
            "received_at": received_at,
            "outcome": "ignored",
            "contact_id": None,
            "error_code": None,
            "reply": None,
        }
        dialect = session.get_bind().dialect.name
        params = {f"log_{key}": value for key, value in values.items()}
        known = None
        if dialect == "postgresql":
            new_id, recent, known = self._log_and_read(session, params, sender, received_at)
        else:
            # The transaction's first statement: nothing to flush, so on the driver's cursor.
            logged = _SQLITE_LOG.one_or_none(session.connection(), params)
            new_id, recent = (logged[0] if logged is not None else None), flood.NOTHING_RECENT
        if new_id is None:
            return None, recent, None
        inbound = attach(session, InboundMessage, {"id": new_id, **values})
        if dialect != "postgresql":
            recent, known = self._read_after_log(session, sender, received_at, new_id)
        return inbound, recent, known

    def _read_after_log(
        self, session: Session, sender: str, received_at: datetime, logged_id: int
    ) -> tuple[flood.Recent, _Known]:
        """SQLite (no data-modifying ``WITH``): what PostgreSQL's logging statement reads, in one
        query after the insert: the flood figures leaving the logged message out, the candidates
        and the sender's contact. A statement costs no network here, but each one costs the
        process's single interpreter SQLAlchemy's per-statement work."""
        limits = (
            self.settings.flood_duplicate_seconds,
            self.settings.flood_per_minute,
            self.settings.flood_replies_per_hour,
        )
        statement = _READ_AFTER_LOG.get(limits)
        if statement is None:
            statement = _READ_AFTER_LOG[limits] = driver.Statement(_read_after_log_statement(self.settings))
        bound = flood.recent_params(self.settings, sender, received_at, exclude_id=logged_id)
        row = statement.one(session.connection(), bound | {"contact_phone": sender})
        contact = None
        if row[_SQLITE_CONTACT_ID] is not None:
            values = dict(zip(_CONTACT_KEYS, row[_SQLITE_CONTACT_AT:], strict=True))
            contact = attach(session, Contact, values)
        pairs = sorted((code, aliases) for code, aliases in json.loads(row[3] or "[]"))
        return flood.recent_from((row[0], row[1], row[2])), _Known(contact=contact, contest=pairs)

    def _log_and_read(
        self, session: Session, params: dict[str, Any], sender: str, received_at: datetime
    ) -> tuple[int | None, flood.Recent, _Known]:
        """PostgreSQL: the logging insert as a CTE, with the flood figures, the candidates and
        the sender's contact read in the same statement (one round trip). The statement is
        built once per process and set of flood limits; each message only binds its values."""
        limits = (
            self.settings.flood_duplicate_seconds,
            self.settings.flood_per_minute,
            self.settings.flood_replies_per_hour,
        )
        statement = _LOG_AND_READ.get(limits)
        if statement is None:
            statement = _LOG_AND_READ[limits] = driver.Statement(_log_and_read_statement(self.settings))
        bound = params | flood.recent_params(self.settings, sender, received_at) | {"contact_phone": sender}
        # The first statement (nothing to flush), run on the driver's cursor (``smsgate.driver``).
        row = statement.one(session.connection(), bound)
        contact = None
        if row[_CONTACT_ID] is not None:
            contact = attach(session, Contact, dict(zip(_CONTACT_KEYS, row[_CONTACT_AT:], strict=True)))
        pairs = [(code, aliases) for code, aliases in (row[1] or [])]
        recent = flood.recent_from((row[2], row[3], row[4]))
        return row[0], recent, _Known(contact=contact, contest=pairs)

    def _logged(self, session: Session, sms: InboundSMS) -> InboundMessage | None:
        return session.scalars(
            select(InboundMessage).where(
                InboundMessage.provider == sms.provider,
                InboundMessage.provider_message_id == sms.provider_message_id,
                InboundMessage.from_number == _sender(sms.from_number),
            )
        ).one_or_none()

    def _log(self, session: Session, sms: InboundSMS, outcome: str = "ignored") -> InboundMessage:
        inbound = InboundMessage(
            provider=sms.provider,
            provider_message_id=sms.provider_message_id,
            from_number=_sender(sms.from_number),
            to_number=sms.to_number[:40],
            device=sms.device[:64],
            body=pins.mask(_clean_body(sms.text)),
            received_at=sms.received_at or self.clock(),
            outcome=outcome,
        )
        session.add(inbound)
        session.flush()  # the unique (provider, id) constraint fires here, not at commit
        return inbound

    def _handle(
        self, session: Session, sms: InboundSMS, inbound: InboundMessage, known: _Known | None
    ) -> tuple[commands.Outcome, Contact | None]:
        """The outcome of handling ``sms`` and the sender's contact (the caller records it on
        the message row together with the outcome, in one write). ``known``: the contact and
        candidates the logging statement already read, else they are read here."""
        if known is not None:
            found = known.contact
            contact = found if found is not None and found.active else None
            contest = known.contest
        else:
            contact = self._contact(session, inbound.from_number)
            query = select(Candidate.code, Candidate.aliases).order_by(Candidate.code)
            contest = [(code, aliases) for code, aliases in session.execute(query)]
        return self._outcome(session, sms, inbound, contact, contest), contact

    def _outcome(
        self,
        session: Session,
        sms: InboundSMS,
        inbound: InboundMessage,
        contact: Contact | None,
        contest: Sequence[tuple[str, str | None]],
    ) -> commands.Outcome:
        lang = contact.lang if contact else "id"
        candidates = tuple(code for code, _ in contest) or DEFAULT_CANDIDATES
        aliases = {word: code for code, words in contest for word in (words or "").split()}
        ctx = commands.Context(
            session=session,
            contact=contact,
            inbound=inbound,
            now=self.clock(),
            candidates=candidates,
            settings=self.settings,
            lang=lang,
        )
        parsed = grammar.parse(_clean_body(sms.text), candidates=candidates, aliases=aliases)  # log: masked
        if isinstance(parsed, grammar.ParseError):
            if INTERNAL_ERROR in parsed.details:  # the grammar logged it with the text
                return ctx.fail("parse_fault", outcome="error")
            if contact is None:
                return ctx.fail("unregistered", outcome="refused")
            return self._parse_error(ctx, parsed)
        command = commands.lookup(type(parsed))
        if command is None:
            if contact is None:
                return ctx.fail("unregistered", outcome="refused")
            return ctx.fail("not_available", command=type(parsed).__name__.upper())
        if contact is None and not command.public:
            return ctx.fail("unregistered", outcome="refused")
        if command.coordinator_only and not (contact and contact.is_coordinator):
            return ctx.fail("coordinator_only", outcome="refused", command=command_word(command.name, lang))
        return commands.run(command, ctx, parsed)

    def _contact(self, session: Session, phone: str) -> Contact | None:
        contact = session.scalars(select(Contact).where(Contact.phone == phone)).one_or_none()
        return contact if contact is not None and contact.active else None

    def _parse_error(self, ctx: commands.Context, error: grammar.ParseError) -> commands.Outcome:
        params: dict[str, object] = {
            "token": _short(error.token),
            "field": error.field or "",
            "expected": error.expected,
            "actual": error.actual,
            "missing": ",".join(error.details) or error.field or "",
            "codes": ",".join(ctx.candidates),
            "usage": usage(error.field or "", ctx.lang),
        }
        return ctx.fail_with(error.code, params, example=error.code != "missing_argument")

    # -- the failure path ----------------------------------------------------------------------

    def _keep_after_failure(self, sms: InboundSMS) -> Reply:
        reply = render("try_again", "id")
        try:
            with self.database.begin(wait=KEEP_WAIT) as session:
                existing = self._logged(session, sms)
                if existing is not None and existing.outcome != "error":
                    # An earlier delivery was handled while this one failed (it gave up waiting
                    # behind it, say): a redelivery is answered as that one was.
                    return Reply(existing.reply, existing.outcome)
                if existing is None:
                    inbound = self._log(session, sms, outcome="error")
                    inbound.reply = reply
                    inbound.error_code = "internal"
                    if not sms.reply_inline:
                        outbound.queue_reply(session, inbound, reply, self.clock())
        except Exception:
            log.exception("could not even log %s message %s", sms.provider, sms.provider_message_id)
            return Reply(reply, "error", stored=False)
        return Reply(reply, "error")


_MESSAGES = cast(Table, InboundMessage.__table__)
_CONTACTS = cast(Table, Contact.__table__)
_CONTACT_COLUMNS = [(a.key, _CONTACTS.c[a.columns[0].name]) for a in inspect(Contact).column_attrs]
#: PostgreSQL: the contact's attribute names in the order of its table's columns, which the logging
#: statement reads from ``_CONTACT_AT`` on (after the logged id, the candidates and the three
#: flood figures); ``_CONTACT_ID``: where its id is (NULL: no contact with that phone).
_CONTACT_KEYS = tuple(inspect(Contact).get_property_by_column(c).key for c in _CONTACTS.c)
_CONTACT_AT = 5
_CONTACT_ID = _CONTACT_AT + list(_CONTACTS.c).index(_CONTACTS.c.id)
#: The columns the logging insert writes, each bound as ``log_<column>``.
_LOGGED = (
    "provider",
    "provider_message_id",
    "from_number",
    "to_number",
    "device",
    "body",
    "received_at",
    "outcome",
    "contact_id",
    "error_code",
    "reply",
)
#: Statements built once per process (SQLAlchemy then neither rebuilds them nor computes their
#: cache key again): the logging insert per dialect, PostgreSQL's logging statement per set of
#: flood limits.
_LOG: dict[str, Any] = {}
_LOG_AND_READ: dict[tuple[object, ...], driver.Statement] = {}
_READ_AFTER_LOG: dict[tuple[object, ...], driver.Statement] = {}
#: SQLite: where ``_read_after_log_statement``'s contact columns begin (after the three flood
#: figures and the candidates) and where its id is.
_SQLITE_CONTACT_AT = 4
_SQLITE_CONTACT_ID = _SQLITE_CONTACT_AT + list(_CONTACTS.c).index(_CONTACTS.c.id)


def _log_statement(dialect: str) -> Any:
    """``INSERT INTO inbound_messages ... ON CONFLICT DO NOTHING RETURNING id``: a redelivery
    inserts nothing, with no read before the write."""
    if dialect not in _LOG:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        values = {name: bindparam(f"log_{name}", type_=_MESSAGES.c[name].type) for name in _LOGGED}
        _LOG[dialect] = (
            insert(_MESSAGES)
            .values(values)
            .on_conflict_do_nothing(index_elements=["provider", "provider_message_id", "from_number"])
            .returning(_MESSAGES.c.id)
        )
    return _LOG[dialect]


def _log_and_read_statement(settings: Settings) -> Any:
    """PostgreSQL's logging statement: the insert as a CTE; the candidates (code, aliases) by
    code, the three flood figures (``flood.recent_subquery``, bound by ``flood.recent_params``)
    and the contact with phone ``contact_phone`` (NULLs: none) beside it."""
    logged = _log_statement("postgresql").cte("logged")
    candidates = cast(Table, Candidate.__table__)
    contest = (
        select(
            func.json_agg(
                aggregate_order_by(
                    func.json_build_array(candidates.c.code, candidates.c.aliases), candidates.c.code
                )
            )
        )
        .scalar_subquery()
        .label("contest")
    )
    anchor = select(literal(1).label("one")).subquery("anchor")
    joined: Any = anchor.outerjoin(_CONTACTS, _CONTACTS.c.phone == bindparam("contact_phone"))
    recent = flood.recent_subquery(settings)
    if recent is None:
        figures = flood.recent_columns(settings)  # flood control off: three NULLs, no scan
    else:  # one row, always: the sender's messages read once for the three figures
        figures = [recent.c.flood_latest, recent.c.flood_minute, recent.c.flood_hour]
        joined = joined.join(recent, true())
    return select(
        select(logged.c.id).scalar_subquery().label("logged_id"),
        contest,
        *figures,
        *_CONTACTS.c,
    ).select_from(joined)


def _read_after_log_statement(settings: Settings) -> Any:
    """SQLite's query after the logging insert: the three flood figures without the message
    with id ``flood_exclude``, the candidates as a JSON array of [code, aliases] (SQLite 3.40
    has no ``ORDER BY`` inside an aggregate: sorted by the caller) and the contact with phone
    ``contact_phone`` (NULLs: none)."""
    candidates = cast(Table, Candidate.__table__)
    contest = (
        select(func.json_group_array(func.json_array(candidates.c.code, candidates.c.aliases)))
        .scalar_subquery()
        .label("contest")
    )
    anchor = select(literal(1).label("one")).subquery("anchor")
    return select(
        *flood.recent_columns(settings, exclude=True),
        contest,
        *_CONTACTS.c,
    ).select_from(anchor.outerjoin(_CONTACTS, _CONTACTS.c.phone == bindparam("contact_phone")))


@dataclass(frozen=True)
class _Known:
    """What PostgreSQL's logging statement read besides the message: the sender's contact
    (active or not; ``None``: no such phone) and the candidates (code, aliases) by code."""

    contact: Contact | None
    contest: list[tuple[str, str | None]]


def _sender(raw: str) -> str:
    try:
        return normalise_phone(raw)
    except InvalidPhone:
        return (raw or "").strip()[:40]


def _clean_body(text: str) -> str:
    return (text or "")[:MAX_BODY]


def _fitted(sms: InboundSMS) -> InboundSMS:
    """``sms`` with a provider message id that fits its column and still tells messages apart."""
    if len(sms.provider_message_id) <= MAX_MESSAGE_ID:
        return sms
    digest = hashlib.sha256(sms.provider_message_id.encode()).hexdigest()
    return replace(sms, provider_message_id=f"sha256:{digest}")


def _short(token: str | None, limit: int = 20) -> str:
    if not token:
        return ""
    token = " ".join(token.split())
    return token if len(token) <= limit else token[: limit - 2] + ".."


#: SQLite's logging insert, run on the driver's cursor (``smsgate.driver``).
_SQLITE_LOG = driver.Statement(_log_statement("sqlite"))
