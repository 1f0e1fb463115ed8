"""Configuration from environment variables: ``Settings``, the one place they are read.

Every variable is read here, in ``Settings.from_env``, checked, and given its default once, on
the field; the rest of smsgate takes a ``Settings`` (the app keeps it in
``app.extensions["smsgate.settings"]``) and never reads the environment or ``app.config``.
A bad value raises ``ConfigError`` with one line naming the variable and the fix.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .services.consensus import DEFAULT_RULE, Rule, parse_rule

#: Western Indonesia Time, the zone of the default polls-close time and of naive settings.
WIB = timezone(timedelta(hours=7), "WIB")


class ConfigError(ValueError):
    """A setting that cannot be used; the message is one line naming the variable and the fix."""


def parse_polls_close(value: str | None) -> datetime | None:
    """``2024-02-14T13:00+07:00``; a value without an offset is read as WIB; unset is None.

    There is no default: a made-up election day would flag every report of a real one (or
    of a demo) as late.
    """
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(
            f"SMSGATE_POLLS_CLOSE: {value!r} is not an ISO date and time; "
            "write it like 2024-02-14T13:00+07:00 (13:00 WIB)"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=WIB)


def database_url(value: str | None) -> str:
    """The SQLAlchemy URL for ``SMSGATE_DATABASE_URL``.

    Heroku-style ``postgres://`` and bare ``postgresql://`` URLs are common in hosting panels
    and guides; both mean PostgreSQL through psycopg 3, the driver smsgate installs.
    """
    url = value or Settings.database_url
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    return url


def parse_timezone(value: str | None) -> str:
    """An IANA zone name, checked now so a typo fails at start-up, not on the first page."""
    name = value or Settings.timezone
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"SMSGATE_TIMEZONE: unknown time zone {name!r} (e.g. Asia/Jakarta)") from None
    return name


def parse_trusted_proxies(value: str | None) -> int:
    """A number of proxy hops, checked at start-up: a typo must not silently trust nobody (or everybody)."""
    if not value:
        return 0
    try:
        hops = int(value)
    except ValueError:
        hops = -1
    if hops < 0:
        raise ConfigError(f"SMSGATE_TRUSTED_PROXIES: expected a number of proxies (0, 1, 2…), not {value!r}")
    return hops


def parse_sqlite_synchronous(value: str | None) -> str:
    """``full`` (the default) or ``normal``: how SQLite syncs its log (smsgate.db.SQLITE_SYNCHRONOUS)."""
    choice = (value or "full").upper()
    if choice not in ("FULL", "NORMAL"):
        raise ConfigError(
            f"SMSGATE_SQLITE_SYNCHRONOUS: {value!r} is neither full nor normal; "
            "unset it (full: no acknowledged report lost in a power cut)"
        )
    return choice


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///smsgate.db"
    #: SQLite's ``PRAGMA synchronous`` (``SMSGATE_SQLITE_SYNCHRONOUS``): ``FULL`` or ``NORMAL``.
    sqlite_synchronous: str = "FULL"
    public_url: str | None = None
    twilio_auth_token: str | None = None
    twilio_account_sid: str | None = None
    twilio_from: str | None = None
    api_token: str | None = None
    #: When polls close (``SMSGATE_POLLS_CLOSE``, ISO datetime with offset, e.g. 13:00 WIB on
    #: election day); ``None`` turns the ``late`` check off.
    polls_close: datetime | None = None
    #: The zone people read times in on the dashboard (``SMSGATE_TIMEZONE``, an IANA name:
    #: Asia/Jakarta is WIB, Asia/Makassar WITA (Kalimantan Selatan), Asia/Jayapura WIT).
    timezone: str = "Asia/Jakarta"
    #: Hours after polls close after which a report is flagged as late (``SMSGATE_LATE_HOURS``).
    late_hours: float = 12.0
    #: The qualified majority that verifies a station despite dissent (``SMSGATE_CONSENSUS``,
    #: ``<min_agree>,<share>``, default ``3,2/3``; services/consensus.py).
    consensus: Rule = DEFAULT_RULE
    #: How many reverse proxies in front of smsgate append ``X-Forwarded-For``/``-Proto``/``-Host``
    #: (``SMSGATE_TRUSTED_PROXIES``; 0, the default, trusts none of those headers).
    trusted_proxies: int = 0
    # --- gateways and outbound SMS (README "Indonesian gateways") ---
    #: Provider for outbound SMS to a contact who never wrote to us (``SMSGATE_DEFAULT_PROVIDER``).
    default_provider: str = "twilio"
    android_secret: str | None = None
    android_url: str | None = None
    android_user: str | None = None
    android_password: str | None = None
    kannel_secret: str | None = None
    kannel_allowed_ips: tuple[str, ...] = ()
    kannel_sendsms_url: str | None = None
    kannel_user: str | None = None
    kannel_password: str | None = None
    kannel_from: str | None = None
    #: ``gammu-smsd-inject`` with its options: set, the worker sends Gammu SMS through it.
    gammu_inject: str | None = None
    #: ``inline`` answers in the HTTP response (Kannel sends it at once, in arrival order);
    #: ``queue`` queues it for the worker: priorities and the modem's rate (``SMSGATE_KANNEL_REPLY``).
    kannel_reply: str = "inline"
    #: Messages per second per provider, shared by all workers (``SMSGATE_SEND_RATE=android=1,kannel=5``).
    send_rates: Mapping[str, float] = field(default_factory=lambda: dict(SEND_RATES))
    #: The gateway fleet's TOML file (``SMSGATE_GATEWAYS``); unset, the single-device
    #: variables above make a fleet of one device per provider.
    gateways_file: str | None = None
    #: SMS sent at once by one worker (to distinct devices).
    outbound_concurrency: int = 8
    outbound_max_attempts: int = 6
    outbound_backoff_seconds: float = 30.0
    broadcast_ttl_minutes: float = 15.0
    remind_every_hours: float = 3.0
    #: Flood control per sender (``SMSGATE_FLOOD_*``); 0 turns a limit off.
    flood_per_minute: int = 10
    flood_replies_per_hour: int = 30
    flood_duplicate_seconds: int = 600
    # --- forwarding events to the tally (README "Forwarding to the tally") ---
    tally_url: str | None = None
    tally_secret: str | None = None
    #: The secret being rotated out (``SMSGATE_TALLY_PREVIOUS_SECRET``): requests carry both signatures.
    tally_previous_secret: str | None = None
    #: The event schema version the ``tally`` destination receives (``SMSGATE_TALLY_SCHEMA_VERSION``).
    tally_schema_version: str | None = None
    #: PostgreSQL URL a worker ``LISTEN``s on to wake when events commit (``SMSGATE_LISTEN_URL``;
    #: default the database URL; ``off`` polls). Must bypass PgBouncer's transaction pooling.
    listen_url: str | None = None
    #: A JSON or TOML file listing several destinations (``SMSGATE_DESTINATIONS``).
    destinations_file: str | None = None
    outbox_timeout_seconds: float = 10.0
    outbox_max_attempts: int = 30
    outbox_max_age_hours: float = 24.0
    outbox_backoff_seconds: float = 2.0
    outbox_backoff_max_seconds: float = 300.0
    outbox_lease_seconds: float = 60.0
    outbox_batch: int = 100
    outbox_concurrency: int = 8
    #: Signs the dashboard's session cookies (``SMSGATE_SECRET_KEY``); unset, the first process
    #: stores a random one in the database for every process to share.
    secret_key: str | None = None
    #: ``GET /metrics`` asks for ``Authorization: Bearer <token>`` when set (``SMSGATE_METRICS_TOKEN``).
    metrics_token: str | None = None
    #: ``text`` or ``json`` log lines for ``serve`` and ``worker`` (``SMSGATE_LOG_FORMAT``).
    log_format: str = "text"
    #: The dashboard's quick-count card of a region is recomputed at most once per this many
    #: seconds (``SMSGATE_QUICKCOUNT_CARD_SECONDS``), by ``smsgate worker`` for all; meanwhile the
    #: last stored card is served with the moment it was computed. 0: at every change.
    quickcount_card_seconds: float = 10.0
    #: How long a web process serves a due card, leaving its recomputation to ``smsgate
    #: worker``, before computing it itself (``SMSGATE_QUICKCOUNT_CARD_GRACE_SECONDS``; unset:
    #: ``quickcount_card_grace``). 0: at once, as without a worker.
    quickcount_card_grace_seconds: float | None = None

    @property
    def quickcount_card_grace(self) -> float:
        """The grace in seconds: the setting, else max(60, 6 x the card interval), long enough
        for a worker busy with other cards and short enough that a dashboard without a worker
        still follows the night."""
        if self.quickcount_card_grace_seconds is not None:
            return self.quickcount_card_grace_seconds
        return max(60.0, 6 * self.quickcount_card_seconds)

    def without_flood_control(self) -> Settings:
        """These settings with every flood limit off: for tests and benchmarks that send one
        sender's messages faster than a person could."""
        return replace(self, flood_per_minute=0, flood_replies_per_hour=0, flood_duplicate_seconds=0)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        def number(name: str, kind: type[int] | type[float], default: float) -> Any:
            """``kind(value)``, or a one-line error naming the variable."""
            value = get(name)
            if value is None:
                return kind(default)
            try:
                result = kind(value)
            except ValueError:
                example = "a whole number" if kind is int else "a number"
                raise ConfigError(
                    f"{name}: {value!r} is not {example} (e.g. {kind(default)}); fix or unset it"
                ) from None
            # float() reads "nan" and "inf", which no range check rejects and timedelta refuses.
            if not math.isfinite(result):
                raise ConfigError(f"{name} must be a finite number (e.g. {kind(default)}), not {value!r}")
            return result

        return cls(
            database_url=database_url(get("SMSGATE_DATABASE_URL")),
            sqlite_synchronous=parse_sqlite_synchronous(get("SMSGATE_SQLITE_SYNCHRONOUS")),
            public_url=get("SMSGATE_PUBLIC_URL"),
            twilio_auth_token=get("TWILIO_AUTH_TOKEN"),
            twilio_account_sid=get("TWILIO_ACCOUNT_SID"),
            twilio_from=get("TWILIO_FROM"),
            api_token=get("SMSGATE_API_TOKEN"),
            polls_close=parse_polls_close(get("SMSGATE_POLLS_CLOSE")),
            timezone=parse_timezone(get("SMSGATE_TIMEZONE")),
            late_hours=number("SMSGATE_LATE_HOURS", float, cls.late_hours),
            consensus=parse_rule(get("SMSGATE_CONSENSUS")),
            trusted_proxies=parse_trusted_proxies(get("SMSGATE_TRUSTED_PROXIES")),
            default_provider=get("SMSGATE_DEFAULT_PROVIDER") or cls.default_provider,
            android_secret=get("SMSGATE_ANDROID_SECRET"),
            android_url=get("SMSGATE_ANDROID_URL"),
            android_user=get("SMSGATE_ANDROID_USER"),
            android_password=get("SMSGATE_ANDROID_PASSWORD"),
            kannel_secret=get("SMSGATE_KANNEL_SECRET"),
            kannel_allowed_ips=tuple(_items(get("SMSGATE_KANNEL_ALLOWED_IPS"))),
            kannel_sendsms_url=get("SMSGATE_KANNEL_SENDSMS_URL"),
            kannel_user=get("SMSGATE_KANNEL_USER"),
            kannel_password=get("SMSGATE_KANNEL_PASSWORD"),
            kannel_from=get("SMSGATE_KANNEL_FROM"),
            gammu_inject=get("SMSGATE_GAMMU_INJECT"),
            kannel_reply=_choice(
                "SMSGATE_KANNEL_REPLY", get("SMSGATE_KANNEL_REPLY") or cls.kannel_reply, ("inline", "queue")
            ),
            send_rates={**SEND_RATES, **_rates(get("SMSGATE_SEND_RATE"))},
            gateways_file=get("SMSGATE_GATEWAYS"),
            outbound_concurrency=number("SMSGATE_OUTBOUND_CONCURRENCY", int, cls.outbound_concurrency),
            outbound_max_attempts=number("SMSGATE_OUTBOUND_MAX_ATTEMPTS", int, cls.outbound_max_attempts),
            outbound_backoff_seconds=number(
                "SMSGATE_OUTBOUND_BACKOFF_SECONDS", float, cls.outbound_backoff_seconds
            ),
            broadcast_ttl_minutes=number("SMSGATE_BROADCAST_TTL_MINUTES", float, cls.broadcast_ttl_minutes),
            remind_every_hours=number("SMSGATE_REMIND_EVERY_HOURS", float, cls.remind_every_hours),
            flood_per_minute=number("SMSGATE_FLOOD_PER_MINUTE", int, cls.flood_per_minute),
            flood_replies_per_hour=number("SMSGATE_FLOOD_REPLIES_PER_HOUR", int, cls.flood_replies_per_hour),
            flood_duplicate_seconds=number(
                "SMSGATE_FLOOD_DUPLICATE_SECONDS", int, cls.flood_duplicate_seconds
            ),
            tally_url=get("SMSGATE_TALLY_URL"),
            tally_secret=get("SMSGATE_TALLY_SECRET"),
            tally_previous_secret=get("SMSGATE_TALLY_PREVIOUS_SECRET"),
            tally_schema_version=get("SMSGATE_TALLY_SCHEMA_VERSION"),
            listen_url=get("SMSGATE_LISTEN_URL"),
            destinations_file=get("SMSGATE_DESTINATIONS"),
            outbox_timeout_seconds=number("SMSGATE_OUTBOX_TIMEOUT", float, cls.outbox_timeout_seconds),
            outbox_max_attempts=number("SMSGATE_OUTBOX_MAX_ATTEMPTS", int, cls.outbox_max_attempts),
            outbox_max_age_hours=number("SMSGATE_OUTBOX_MAX_AGE_HOURS", float, cls.outbox_max_age_hours),
            outbox_backoff_seconds=number("SMSGATE_OUTBOX_BACKOFF", float, cls.outbox_backoff_seconds),
            outbox_backoff_max_seconds=number(
                "SMSGATE_OUTBOX_BACKOFF_MAX", float, cls.outbox_backoff_max_seconds
            ),
            outbox_lease_seconds=number("SMSGATE_OUTBOX_LEASE", float, cls.outbox_lease_seconds),
            outbox_batch=number("SMSGATE_OUTBOX_BATCH", int, cls.outbox_batch),
            outbox_concurrency=number("SMSGATE_OUTBOX_CONCURRENCY", int, cls.outbox_concurrency),
            secret_key=get("SMSGATE_SECRET_KEY"),
            metrics_token=get("SMSGATE_METRICS_TOKEN"),
            quickcount_card_seconds=_not_negative(
                "SMSGATE_QUICKCOUNT_CARD_SECONDS",
                number("SMSGATE_QUICKCOUNT_CARD_SECONDS", float, cls.quickcount_card_seconds),
            ),
            quickcount_card_grace_seconds=(
                None
                if get("SMSGATE_QUICKCOUNT_CARD_GRACE_SECONDS") is None
                else _not_negative(
                    "SMSGATE_QUICKCOUNT_CARD_GRACE_SECONDS",
                    number("SMSGATE_QUICKCOUNT_CARD_GRACE_SECONDS", float, 0.0),
                )
            ),
            log_format=_choice(
                "SMSGATE_LOG_FORMAT", (get("SMSGATE_LOG_FORMAT") or cls.log_format).lower(), ("text", "json")
            ),
        )


#: Default send rates (messages per second) per provider; an Android phone is slow on purpose.
SEND_RATES: Mapping[str, float] = {"twilio": 10.0, "android": 1.0, "kannel": 5.0}


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def _not_negative(name: str, value: float) -> float:
    # float() reads "nan" and "inf", which no comparison below rejects and timedelta refuses.
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number of seconds (e.g. 10), not {value!r}")
    if value < 0:
        raise ConfigError(f"{name} must be 0 or more seconds, not {value}")
    return value


def _items(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def _rates(value: str | None) -> dict[str, float]:
    """``android=1,kannel=5`` -> ``{"android": 1.0, "kannel": 5.0}``."""
    rates = {}
    for item in _items(value):
        name, _, rate = item.partition("=")
        try:
            rates[name.strip().lower()] = float(rate)
        except ValueError:
            raise ConfigError(
                f"SMSGATE_SEND_RATE: {item!r} is not provider=messages per second "
                "(e.g. android=1,kannel=5,twilio=10)"
            ) from None
    return rates
