"""Deployment checks: what ``smsgate check`` prints and ``smsgate serve`` logs at start.

A deployment can look healthy while it refuses, loses or mis-answers every SMS: no provider
secret (every webhook a silent 403), no candidates (reports checked against a made-up 01-03),
polls-close a year ago (every report flagged late). Each check below looks at one such state
and returns ``Problem``\\ s, each one line: what is wrong, marked error or warning, and the fix.

Adding a check
--------------
Write a function ``check_something(ctx: Context) -> Iterable[Problem]`` in this module (or in
your feature's module, imported here) and append it to ``CHECKS``. ``ctx.session`` is a read
session on a database that answers and is migrated, or None when it is not (the database
check has already said why); checks that need the database return nothing then. Use
``error`` for states in which SMS are refused, lost or counted wrong, ``warning`` for the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .config import Settings
from .db import Database

log = logging.getLogger(__name__)

Level = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    level: Level
    what: str
    fix: str

    def line(self) -> str:
        return f"{self.level}: {self.what}. Fix: {self.fix}"


def error(what: str, fix: str) -> Problem:
    return Problem("error", what, fix)


def warning(what: str, fix: str) -> Problem:
    return Problem("warning", what, fix)


@dataclass
class Context:
    settings: Settings
    database: Database | None
    #: A read session when the database answers and is at the head revision, else None.
    session: Session | None
    now: datetime
    #: Set by ``check_database`` when the database cannot be used.
    database_problem: str | None = None


Check = Callable[[Context], Iterable[Problem]]


# -- configuration ---------------------------------------------------------------------------


def check_inbound_provider(ctx: Context) -> Iterable[Problem]:
    """Some provider must be able to deliver SMS: without its secret every webhook gets 403."""
    s = ctx.settings
    half_twilio = bool(s.twilio_account_sid or s.twilio_from) and not s.twilio_auth_token
    if half_twilio:
        yield error(
            "TWILIO_ACCOUNT_SID or TWILIO_FROM is set but TWILIO_AUTH_TOKEN is not, so Twilio's "
            "webhooks are refused with 403 and nothing can be sent through Twilio",
            "set TWILIO_AUTH_TOKEN to the account's auth token",
        )
    elif not (s.twilio_auth_token or s.android_secret or s.kannel_secret):
        yield error(
            "no inbound SMS provider is configured, so every webhook is refused with 403 "
            "(TWILIO_AUTH_TOKEN, SMSGATE_ANDROID_SECRET and SMSGATE_KANNEL_SECRET are all unset)",
            "set the secret of your gateway: SMSGATE_ANDROID_SECRET (SMS Gateway for Android), "
            "SMSGATE_KANNEL_SECRET (Kannel or Gammu) or TWILIO_AUTH_TOKEN (Twilio)",
        )


def check_outbound_sender(ctx: Context) -> Iterable[Problem]:
    """Replies that cannot ride in the HTTP answer, reminders and broadcasts need a sender."""
    s = ctx.settings
    if s.android_secret and not s.android_url:
        yield error(
            "SMS Gateway for Android delivers SMS (SMSGATE_ANDROID_SECRET) but SMSGATE_ANDROID_URL is "
            "unset, so its replies are queued and never sent",
            "set SMSGATE_ANDROID_URL, SMSGATE_ANDROID_USER and SMSGATE_ANDROID_PASSWORD (the app's "
            "send API) and run smsgate worker",
        )
    senders = {
        "twilio": bool(s.twilio_account_sid and s.twilio_auth_token and s.twilio_from),
        "android": bool(s.android_url),
        "kannel": bool(s.kannel_sendsms_url),
    }
    if not senders.get(s.default_provider, False):
        needs = {
            "twilio": "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM",
            "android": "SMSGATE_ANDROID_URL (with SMSGATE_ANDROID_USER and SMSGATE_ANDROID_PASSWORD)",
            "kannel": "SMSGATE_KANNEL_SENDSMS_URL (with SMSGATE_KANNEL_USER and SMSGATE_KANNEL_PASSWORD)",
        }.get(s.default_provider, "a known provider (twilio, android, kannel)")
        others = [name for name, ready in senders.items() if ready]
        fix = f"set {needs}"
        if others:
            fix += f", or SMSGATE_DEFAULT_PROVIDER={others[0]}"
        yield warning(
            f"the default outbound provider {s.default_provider!r} (SMSGATE_DEFAULT_PROVIDER) has no "
            "sender configured, so reminders and broadcasts to people who never wrote cannot be sent",
            fix,
        )


def check_public_url(ctx: Context) -> Iterable[Problem]:
    """Twilio signs the URL it calls; behind a proxy Flask sees another one."""
    url = ctx.settings.public_url
    if not url:
        yield warning(
            "SMSGATE_PUBLIC_URL is unset: Twilio signatures are checked against the URL the server "
            "sees, which is wrong behind a TLS proxy (every Twilio webhook then gets 403)",
            "set SMSGATE_PUBLIC_URL to the public https address, e.g. https://sms.example.org",
        )
    elif not url.startswith("https://"):
        yield warning(
            f"SMSGATE_PUBLIC_URL {url} is not https: reports, secrets and dashboard passwords travel "
            "in clear text",
            "put a TLS proxy in front (deploy/Caddyfile) and set SMSGATE_PUBLIC_URL=https://...",
        )


def check_secret_key(ctx: Context) -> Iterable[Problem]:
    if not ctx.settings.secret_key:
        yield warning(
            "SMSGATE_SECRET_KEY is unset: dashboard sessions are signed with a key kept in the "
            "database, so restoring a backup or moving hosts logs everyone out",
            'set SMSGATE_SECRET_KEY to a long random value (python3 -c "import secrets; '
            'print(secrets.token_urlsafe(48))") in every serve process',
        )


def check_polls_close(ctx: Context) -> Iterable[Problem]:
    close = ctx.settings.polls_close
    if close is None:
        yield warning(
            "SMSGATE_POLLS_CLOSE is unset, so no report is ever flagged late",
            "set it to this election's closing time, e.g. SMSGATE_POLLS_CLOSE=2024-02-14T13:00+07:00",
        )
        return
    late_after = close + timedelta(hours=ctx.settings.late_hours)
    if late_after < ctx.now:
        yield warning(
            f"SMSGATE_POLLS_CLOSE {close.isoformat()} is in the past (more than "
            f"{ctx.settings.late_hours:g} h ago), so every new report is flagged late",
            "set SMSGATE_POLLS_CLOSE to this election's closing time",
        )


# -- the database ----------------------------------------------------------------------------


def check_database(ctx: Context) -> Iterable[Problem]:
    if ctx.database_problem:
        what = ctx.database_problem.removesuffix(": run smsgate init")
        yield error(what, _database_fix(ctx.database_problem))


def _database_fix(problem: str) -> str:
    if "run smsgate init" in problem:
        return "run smsgate init"
    if "does not exist" in problem:
        return "create the database (deploy/postgresql.sql), then run smsgate init"
    return "make the database reachable (SMSGATE_DATABASE_URL), then run smsgate init"


def check_prefix_indexes(ctx: Context) -> Iterable[Problem]:
    """Region filters (``LIKE '6371%'``) need the pattern-ops indexes ``init`` creates."""
    from .schema import prefix_index_warning

    if ctx.database is None or ctx.session is None:
        return
    message = prefix_index_warning(ctx.database.engine)
    if message:
        what, _, fix = message.removeprefix("warning: ").partition(". ")
        yield warning(what, fix.rstrip(".") or "run smsgate init")


def _count(session: Session, model: type, *where: object) -> int:
    return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)  # type: ignore[arg-type]


def check_election_data(ctx: Context) -> Iterable[Problem]:
    """Regions, candidates, stations and volunteers: without them every report is refused."""
    from .models import COORDINATOR, Candidate, Contact, Invite, Region, Station

    session = ctx.session
    if session is None:
        return
    if not _count(session, Region):
        yield error(
            "no regions: no station can be found and every report is refused",
            "smsgate regions load --province CODE (or smsgate import regions FILE.csv)",
        )
    candidates = _count(session, Candidate)
    if not candidates:
        yield error(
            "no candidates imported: reports are checked against 01, 02, 03, wrong for any other race",
            "smsgate import candidates FILE.csv (columns code,name)",
        )
    elif candidates == 1:
        yield warning("only one candidate imported", "import every candidate of the race")
    if not _count(session, Station):
        yield error(
            "no polling stations: every report names an unknown TPS",
            "smsgate import stations FILE.csv (columns region_code,tps,registered_voters)",
        )
    volunteers = _count(session, Contact, Contact.active.is_(True), Contact.role != COORDINATOR)
    if not volunteers:
        invites = _count(session, Invite, Invite.expires_at > ctx.now, Invite.uses < Invite.max_uses)
        if invites:
            yield warning(
                "no volunteers registered yet (only invite codes): reports are refused until they DAFTAR",
                "hand out the invite codes, or smsgate import volunteers FILE.csv",
            )
        else:
            yield error(
                "no volunteers and no open invite codes: every SMS is answered 'not registered'",
                "smsgate import volunteers FILE.csv, or smsgate invite create --region CODE",
            )


def check_time_zone(ctx: Context) -> Iterable[Problem]:
    """Dashboard times should be the zone the regions' people live in (WITA in Kalimantan)."""
    from .models import Region
    from .regions import time_zone

    session = ctx.session
    if session is None:
        return
    provinces = list(session.scalars(select(Region.code).where(Region.level == 1)))
    zones = {time_zone(code) for code in provinces}
    configured = ctx.settings.timezone
    if len(zones) == 1 and configured not in zones and _offset(configured) != _offset(next(iter(zones))):
        zone = next(iter(zones))
        yield warning(
            f"the regions are in {zone} but SMSGATE_TIMEZONE is {configured}, so the dashboard shows "
            "times in another zone than the volunteers' clocks",
            f"SMSGATE_TIMEZONE={zone}",
        )


def _offset(zone: str) -> timedelta | None:
    return datetime.now(ZoneInfo(zone)).utcoffset()


#: Every check, in the order their lines are printed. Add yours here.
CHECKS: list[Check] = [
    check_database,
    check_inbound_provider,
    check_outbound_sender,
    check_public_url,
    check_secret_key,
    check_polls_close,
    check_prefix_indexes,
    check_election_data,
    check_time_zone,
]


def run(settings: Settings, database: Database | None, now: datetime | None = None) -> list[Problem]:
    """Every check's problems, errors first."""
    from .models import utcnow
    from .readiness import NotReady, require_schema

    problem = None
    if database is not None:
        try:
            require_schema(database.engine, settings.database_url)
        except NotReady as exc:
            problem = str(exc)
    else:
        problem = "no database"
    problems: list[Problem] = []
    usable = database if problem is None else None
    with usable.read() if usable is not None else nullcontext() as session:
        ctx = Context(settings, usable, session, now or utcnow(), problem)
        for check in CHECKS:
            try:
                problems.extend(check(ctx))
            except Exception as exc:  # a broken check must not hide the others
                log.exception("check %s failed", check.__name__)
                problems.append(error(f"the check {check.__name__} failed: {exc}", "report this bug"))
    return sorted(problems, key=lambda p: p.level != "error")


def log_problems(problems: Iterable[Problem], logger: logging.Logger = log) -> None:
    """How ``serve`` and ``worker`` report the checks at start: one log line each."""
    for problem in problems:
        (logger.error if problem.level == "error" else logger.warning)("check: %s", problem.line())
