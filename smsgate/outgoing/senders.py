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
from typing import Any, Protocol

import requests

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
    ``https://api.sms-gate.app/3rdparty/v1/messages`` (cloud, where ``deviceId`` picks the
    phone of the account; without it the cloud picks one at random). ``sim`` is the app's
    ``simNumber`` (1-based) for a phone with two SIMs."""

    def __init__(
        self,
        url: str,
        user: str | None,
        password: str | None,
        timeout: float = TIMEOUT,
        *,
        device_id: str | None = None,
        sim: int | None = None,
        name: str = "android",
    ) -> None:
        self.url, self.auth, self.timeout = url, (user or "", password or ""), timeout
        self.device_id, self.sim, self.name = device_id, sim, name

    def send(self, to: str, text: str, ref: str = "") -> str:
        body: dict[str, Any] = {"textMessage": {"text": text}, "phoneNumbers": [to]}
        if ref:
            body["id"] = ref
        if self.device_id:
            body["deviceId"] = self.device_id
        if self.sim:
            body["simNumber"] = int(self.sim)
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
    """Kannel's ``sendsms`` interface: ``GET`` with username, password, to, text (and from).
    ``smsc`` names the modem to send through (Kannel routes it with the SMSC group's
    ``smsc-id`` and ``allowed-smsc-id``/``preferred-smsc-id``)."""

    def __init__(
        self,
        url: str,
        user: str | None,
        password: str | None,
        sender: str | None = None,
        timeout: float = TIMEOUT,
        *,
        smsc: str | None = None,
        name: str = "kannel",
    ) -> None:
        self.url, self.user, self.password, self.sender, self.timeout = url, user, password, sender, timeout
        self.smsc, self.name = smsc, name

    def send(self, to: str, text: str, ref: str = "") -> str:
        params = {"username": self.user or "", "password": self.password or "", "to": to, "text": text}
        if self.sender:
            params["from"] = self.sender
        if self.smsc:
            params["smsc"] = self.smsc
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

    def __init__(self, command: str, timeout: float = 60.0, *, name: str = "gammu") -> None:
        self.command, self.timeout, self.name = shlex.split(command), timeout, name

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

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_number: str,
        status_callback: str | None = None,
        base_url: str | None = None,
        timeout: float = TIMEOUT,
        name: str = "twilio",
    ) -> None:
        self.name = name
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
