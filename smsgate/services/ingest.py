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
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import grammar
from grammar.errors import INTERNAL_ERROR

from .. import commands, observe
from ..config import Settings
from ..db import Database
from ..inbound import DeliveryReport, Heartbeat, InboundSMS, Reply, storable
from ..models import Candidate, Contact, InboundMessage, utcnow
from ..phones import InvalidPhone, normalise_phone
from ..replies import command_word, render, usage
from . import flood, heartbeats, outbound, pins

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
            with self.database.begin(wait=HANDLE_WAIT) as session:
                flood.serialise(session, self.settings, _sender(sms.from_number))
                existing = self._logged(session, sms)
                if existing is not None and existing.outcome != "error":
                    return Reply(existing.reply, existing.outcome)
                inbound = existing or self._log(session, sms)
                held = flood.hold(session, self.settings, inbound)
                if held is not None:  # logged, not handled, not answered
                    inbound.outcome, inbound.error_code, inbound.reply = held, held, None
                    return Reply(None, held)
                outcome = self._handle(session, sms, inbound)
                reply, error_code = outcome.reply, outcome.error_code
                if reply is not None and not flood.may_reply(session, self.settings, inbound):
                    reply, error_code = None, "reply_limit"
                inbound.outcome = outcome.outcome
                inbound.error_code = error_code
                inbound.reply = reply
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

    def _handle(self, session: Session, sms: InboundSMS, inbound: InboundMessage) -> commands.Outcome:
        contact = self._contact(session, inbound.from_number)
        inbound.contact_id = contact.id if contact else None
        lang = contact.lang if contact else "id"
        contest = session.execute(select(Candidate.code, Candidate.aliases).order_by(Candidate.code)).all()
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
