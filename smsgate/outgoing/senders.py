"""Sending one SMS through a provider, behind one small interface.

A sender's ``send(to, text, ref=...)`` returns the provider's message id or raises
``SendError``; ``permanent`` errors (the provider refused this message for good) are not
retried. ``ref`` is our own id for the message: providers that accept a client id (the
Android gateway) use it to ignore a resend of a message they already took.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Mapping
from typing import Protocol

import requests

from ..config import Settings
from ..sms import GSM7_BASIC
from .retry import retryable

TIMEOUT = 10.0


class SendError(Exception):
    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Sender(Protocol):
    name: str

    def send(self, to: str, text: str, ref: str = "") -> str: ...


def _http_error(response: requests.Response) -> SendError:
    return SendError(
        f"HTTP {response.status_code}: {response.text[:200]}", permanent=not retryable(response.status_code)
    )


class AndroidSender:
    """SMS Gateway for Android (capcom6): ``POST`` JSON to the app's message endpoint with
    basic auth, e.g. ``http://<phone>:8080/message`` (local server) or
    ``https://api.sms-gate.app/3rdparty/v1/messages`` (cloud)."""

    name = "android"

    def __init__(self, url: str, user: str | None, password: str | None, timeout: float = TIMEOUT) -> None:
        self.url, self.auth, self.timeout = url, (user or "", password or ""), timeout

    def send(self, to: str, text: str, ref: str = "") -> str:
        body: dict[str, object] = {"textMessage": {"text": text}, "phoneNumbers": [to]}
        if ref:
            body["id"] = ref
        try:
            response = requests.post(self.url, json=body, auth=self.auth, timeout=self.timeout)
        except requests.RequestException as exc:
            raise SendError(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code == 409 and ref:
            return ref  # the gateway already has this id: an earlier attempt got through
        if not response.ok:
            raise _http_error(response)
        try:
            return str(response.json().get("id") or ref)
        except ValueError:
            return ref


class KannelSender:
    """Kannel's ``sendsms`` interface: ``GET`` with username, password, to, text (and from)."""

    name = "kannel"

    def __init__(
        self,
        url: str,
        user: str | None,
        password: str | None,
        sender: str | None = None,
        timeout: float = TIMEOUT,
    ) -> None:
        self.url, self.user, self.password, self.sender, self.timeout = url, user, password, sender, timeout

    def send(self, to: str, text: str, ref: str = "") -> str:
        params = {"username": self.user or "", "password": self.password or "", "to": to, "text": text}
        if self.sender:
            params["from"] = self.sender
        try:
            response = requests.get(self.url, params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            raise SendError(f"{type(exc).__name__}: {exc}") from exc
        if not response.ok:  # 202 "0: Accepted for delivery" / "3: Queued for later delivery"
            raise _http_error(response)
        return ref  # Kannel gives no message id


class GammuSender:
    """Gammu SMSD: ``gammu-smsd-inject TEXT <to> [-unicode] -text <text>`` queues the SMS in the
    outbox of the gammu-smsd that drives the modem (gammu/gammu smsd/inject.c: exit status 0 and
    ``Written message with ID <id>`` when queued). ``command`` is the program with its options,
    e.g. ``gammu-smsd-inject -c /etc/gammu-smsdrc``; the worker must run where it can reach that
    gammu-smsd's storage (its files or its database)."""

    name = "gammu"

    def __init__(self, command: str, timeout: float = 60.0) -> None:
        self.command, self.timeout = shlex.split(command), timeout

    def send(self, to: str, text: str, ref: str = "") -> str:
        argv = [*self.command, "TEXT", to]
        if not all(char in GSM7_BASIC for char in text):
            argv.append("-unicode")
        argv += ["-text", text]
        try:
            result = subprocess.run(argv, capture_output=True, timeout=self.timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SendError(f"{self.command[0]}: {exc}") from exc
        output = result.stdout.decode("utf-8", "replace")
        if result.returncode != 0:
            detail = (output + result.stderr.decode("utf-8", "replace")).strip()[:200]
            raise SendError(f"{self.command[0]} exit {result.returncode}: {detail}")
        match = re.search(r"Written message with ID (\S+)", output)
        return match.group(1)[-128:] if match else ref


class TwilioSender:
    """Twilio's REST API, with a status callback that updates the outbound row."""

    name = "twilio"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_number: str,
        status_callback: str | None = None,
        base_url: str | None = None,
        timeout: float = TIMEOUT,
    ) -> None:
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        self.client = Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=timeout))
        if base_url:
            self.client.api.base_url = base_url.rstrip("/")
        self.from_number, self.status_callback = from_number, status_callback

    def send(self, to: str, text: str, ref: str = "") -> str:
        from twilio.base.exceptions import TwilioException, TwilioRestException

        options: dict[str, str] = {"to": to, "from_": self.from_number, "body": text}
        if self.status_callback:
            options["status_callback"] = self.status_callback
        try:
            message = self.client.messages.create(**options)
        except TwilioRestException as exc:
            permanent = not retryable(exc.status)
            raise SendError(f"Twilio {exc.status} {exc.code}: {exc.msg}"[:300], permanent=permanent) from exc
        except (TwilioException, requests.RequestException) as exc:
            raise SendError(f"{type(exc).__name__}: {exc}"[:300]) from exc
        return str(message.sid)


def configured(settings: Settings) -> Mapping[str, Sender]:
    """The senders the settings have credentials for, by provider name."""
    senders: dict[str, Sender] = {}
    if settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_from:
        callback = (
            f"{settings.public_url.rstrip('/')}/webhooks/twilio/status" if settings.public_url else None
        )
        senders["twilio"] = TwilioSender(
            settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_from, callback
        )
    if settings.android_url:
        senders["android"] = AndroidSender(
            settings.android_url, settings.android_user, settings.android_password
        )
    if settings.kannel_sendsms_url:
        senders["kannel"] = KannelSender(
            settings.kannel_sendsms_url, settings.kannel_user, settings.kannel_password, settings.kannel_from
        )
    if settings.gammu_inject:
        senders["gammu"] = GammuSender(settings.gammu_inject)
    return senders


#: What configures each provider's sender, for the reason a row without one fails.
SENDER_SETTINGS = {
    "twilio": "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM",
    "android": "SMSGATE_ANDROID_URL",
    "kannel": "SMSGATE_KANNEL_SENDSMS_URL",
    "gammu": "SMSGATE_GAMMU_INJECT",
}


def no_sender_reason(provider: str) -> str:
    """Why an SMS for ``provider`` cannot be sent by this worker."""
    setting = SENDER_SETTINGS.get(provider)
    hint = f"; set {setting}" if setting else ""
    return f"no sender configured for provider {provider}{hint}"
