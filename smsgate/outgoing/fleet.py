"""The gateway fleet: every SIM the deployment sends through, from one TOML file.

``SMSGATE_GATEWAYS`` names the file. Each ``[[device]]`` is one SIM: a name, the provider, its
number, how to send through it (Android local or cloud API, Kannel ``smsc``, Twilio number), a
send rate and an optional daily cap. A deployment without the file keeps working: the
single-device environment variables (``SMSGATE_ANDROID_URL``, ``SMSGATE_KANNEL_SENDSMS_URL``,
``TWILIO_*``) become a fleet of one device per provider, named after the provider, with the
provider's ``SMSGATE_SEND_RATE``.

A device is found from an inbound message by its *identifier*: the Android ``deviceId`` the
app puts in every webhook, Kannel's ``smsc`` id, Twilio's ``To`` number. A device without an
identifier (the fleet of one) answers for every message of its provider.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import ConfigError, Settings
from .senders import AndroidSender, GammuSender, KannelSender, Sender, TwilioSender

PROVIDERS = ("android", "kannel", "gammu", "twilio")
#: What happens to a reply whose own device is down (README "Gateway fleet").
FAILOVER_POLICIES = ("any", "same-provider", "none")
#: Realistic defaults (SMS per second) when a device names no rate: a phone sustains roughly
#: 1,000-1,500 SMS an hour, a GSM modem a little more; Twilio is limited by its account.
DEFAULT_RATES: Mapping[str, float] = {"android": 0.35, "kannel": 0.5, "gammu": 0.5, "twilio": 10.0}


class FleetError(ConfigError):
    """The gateways file is wrong; the message says where and how."""


@dataclass(frozen=True)
class Device:
    name: str
    provider: str
    #: The SIM's phone number, shown to operators (and Twilio's ``From``).
    number: str = ""
    #: How inbound messages name this device (Android deviceId, Kannel smsc, Twilio To);
    #: empty means every message of the provider.
    identifier: str = ""
    rate: float = 0.35
    daily_cap: int | None = None
    #: The device sends ``system:ping`` (Android: Settings > Ping), so silence means it is down.
    heartbeat: bool = False
    #: How to send: the provider's URL and credentials (see ``sender``).
    options: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def sender(self, settings: Settings) -> Sender:
        """A sender speaking this device's send API."""
        o = self.options
        if self.provider == "android":
            return AndroidSender(
                o["url"],
                o.get("user"),
                o.get("password"),
                device_id=self.identifier if o.get("api") == "cloud" else None,
                sim=o.get("sim"),
                name=self.name,
            )
        if self.provider == "gammu":
            return GammuSender(o["inject"], name=self.name)
        if self.provider == "kannel":
            return KannelSender(
                o["url"],
                o.get("user"),
                o.get("password"),
                sender=o.get("from") or self.number or None,
                smsc=self.identifier or None,
                name=self.name,
            )
        callback = (
            f"{settings.public_url.rstrip('/')}/webhooks/twilio/status" if settings.public_url else None
        )
        return TwilioSender(
            o["account_sid"],
            o["auth_token"],
            self.number,
            callback,
            base_url=o.get("base_url"),
            name=self.name,
        )


@dataclass(frozen=True)
class Fleet:
    devices: tuple[Device, ...] = ()
    failover: str = "any"
    #: A heartbeat device with no ping (nor message) for this long is down; also the lag warning.
    silent_after_seconds: float = 120.0
    #: Consecutive failed sends that take a device out of rotation, and for how long.
    failures_to_down: int = 3
    down_for_seconds: float = 60.0

    def by_name(self, name: str) -> Device | None:
        return next((d for d in self.devices if d.name == name), None)

    def home(self, provider: str, identifier: str) -> Device | None:
        """The device an inbound message of ``provider`` through ``identifier`` came through."""
        exact = [
            d for d in self.devices if d.provider == provider and d.identifier and d.identifier == identifier
        ]
        if exact:
            return exact[0]
        return next((d for d in self.devices if d.provider == provider and not d.identifier), None)

    @property
    def providers(self) -> set[str]:
        return {d.provider for d in self.devices}


def load_fleet(settings: Settings, environ: Mapping[str, str] | None = None) -> Fleet:
    """The fleet from ``SMSGATE_GATEWAYS`` (a TOML file), else from the single-device variables."""
    env = os.environ if environ is None else environ
    if settings.gateways_file:
        return _from_file(Path(settings.gateways_file), settings, env)
    # The fleet of one keeps the old rule: a provider's SMS go through that provider only.
    return Fleet(tuple(_from_settings(settings)), failover="same-provider")


def _from_settings(settings: Settings) -> Iterable[Device]:
    """The fleet of one per provider that the single-device environment variables describe."""
    if settings.android_url:
        yield Device(
            "android",
            "android",
            rate=float(settings.send_rates.get("android", 1.0)),
            options={
                "url": settings.android_url,
                "user": settings.android_user,
                "password": settings.android_password,
            },
        )
    if settings.kannel_sendsms_url:
        yield Device(
            "kannel",
            "kannel",
            rate=float(settings.send_rates.get("kannel", 5.0)),
            options={
                "url": settings.kannel_sendsms_url,
                "user": settings.kannel_user,
                "password": settings.kannel_password,
                "from": settings.kannel_from,
            },
        )
    if settings.gammu_inject:
        yield Device(
            "gammu",
            "gammu",
            rate=float(settings.send_rates.get("gammu", 0.5)),
            options={"inject": settings.gammu_inject},
        )
    if settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_from:
        yield Device(
            "twilio",
            "twilio",
            number=settings.twilio_from,
            rate=float(settings.send_rates.get("twilio", 10.0)),
            options={"account_sid": settings.twilio_account_sid, "auth_token": settings.twilio_auth_token},
        )


#: Keys a ``[[device]]`` may have, per provider (besides the common ones).
_COMMON = {"name", "provider", "number", "rate", "daily_cap", "heartbeat"}
_KEYS = {
    "android": {"url", "user", "password", "password_env", "device_id", "api", "sim"},
    "kannel": {"url", "user", "password", "password_env", "smsc", "from"},
    "gammu": {"inject", "phone_id"},
    "twilio": {"account_sid", "auth_token", "auth_token_env", "base_url"},
}
_REQUIRED = {
    "android": ("url",),
    "kannel": ("url",),
    "gammu": ("inject",),
    "twilio": ("account_sid", "number"),
}
_IDENTIFIER = {"android": "device_id", "kannel": "smsc", "gammu": "phone_id", "twilio": "number"}


def _from_file(path: Path, settings: Settings, env: Mapping[str, str]) -> Fleet:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FleetError(f"SMSGATE_GATEWAYS: cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise FleetError(f"{path}: not valid TOML: {exc}") from None
    unknown = set(data) - {"fleet", "device"}
    if unknown:
        raise FleetError(f"{path}: unknown section(s) {sorted(unknown)}; expected [fleet] and [[device]]")
    top = data.get("fleet", {})
    bad = set(top) - {"failover", "silent_after_seconds", "failures_to_down", "down_for_seconds"}
    if bad:
        raise FleetError(f"{path}: unknown [fleet] key(s) {sorted(bad)}")
    failover = str(top.get("failover", "any"))
    if failover not in FAILOVER_POLICIES:
        raise FleetError(f"{path}: [fleet] failover must be one of {', '.join(FAILOVER_POLICIES)}")
    devices = [_device(path, index, entry, env) for index, entry in enumerate(data.get("device", []), 1)]
    if not devices:
        raise FleetError(f"{path}: no [[device]] entries")
    names = [d.name for d in devices]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise FleetError(f"{path}: device names must be unique: {duplicates}")
    keys = [(d.provider, d.identifier) for d in devices]
    clashes = sorted({f"{p} {i or '(any)'}" for p, i in keys if keys.count((p, i)) > 1})
    if clashes:
        raise FleetError(f"{path}: two devices claim the same inbound identifier: {clashes}")
    try:
        return Fleet(
            tuple(devices),
            failover=failover,
            silent_after_seconds=float(top.get("silent_after_seconds", 120)),
            failures_to_down=int(top.get("failures_to_down", 3)),
            down_for_seconds=float(top.get("down_for_seconds", 60)),
        )
    except (TypeError, ValueError):
        raise FleetError(f"{path}: [fleet] numbers must be numbers") from None


def _device(path: Path, index: int, entry: Any, env: Mapping[str, str]) -> Device:
    where = f"{path}: device {index}"
    if not isinstance(entry, dict):
        raise FleetError(f"{where}: must be a table")
    name, provider = str(entry.get("name") or ""), str(entry.get("provider") or "")
    if not name or len(name) > 32 or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise FleetError(f"{where}: name is required: 1-32 letters, digits, '-', '_' or '.'")
    where = f"{path}: device {name!r}"
    if provider not in PROVIDERS:
        raise FleetError(f"{where}: provider must be one of {', '.join(PROVIDERS)}")
    unknown = set(entry) - _COMMON - _KEYS[provider]
    if unknown:
        raise FleetError(f"{where}: unknown key(s) for {provider}: {sorted(unknown)}")
    missing = [key for key in _REQUIRED[provider] if not entry.get(key)]
    if missing:
        raise FleetError(f"{where}: missing {', '.join(missing)}")
    options = {k: v for k, v in entry.items() if k in _KEYS[provider]}
    for secret in ("password", "auth_token"):
        if f"{secret}_env" in options:
            variable = str(options.pop(f"{secret}_env"))
            if variable not in env:
                raise FleetError(f"{where}: {secret}_env names {variable}, which is not set")
            options[secret] = env[variable]
    if provider == "twilio" and not options.get("auth_token"):
        raise FleetError(f"{where}: missing auth_token (or auth_token_env)")
    if provider == "android":
        api = str(options.get("api") or ("cloud" if "/3rdparty/v1/" in str(options["url"]) else "local"))
        if api not in ("local", "cloud"):
            raise FleetError(f"{where}: api must be local or cloud")
        options["api"] = api
        if api == "cloud" and not entry.get("device_id"):
            raise FleetError(f"{where}: a cloud device needs device_id (the app's deviceId)")
    try:
        rate = float(entry.get("rate", DEFAULT_RATES[provider]))
        cap = entry.get("daily_cap")
        daily_cap = int(cap) if cap is not None else None
    except (TypeError, ValueError):
        raise FleetError(f"{where}: rate and daily_cap must be numbers") from None
    if rate <= 0 or (daily_cap is not None and daily_cap < 1):
        raise FleetError(f"{where}: rate must be above 0 and daily_cap at least 1")
    return Device(
        name=name,
        provider=provider,
        number=str(entry.get("number") or ""),
        identifier=str(entry.get(_IDENTIFIER[provider]) or ""),
        rate=rate,
        daily_cap=daily_cap,
        heartbeat=bool(entry.get("heartbeat", False)),
        options=options,
    )
