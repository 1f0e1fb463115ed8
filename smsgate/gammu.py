"""Gammu SMSD: the RunOnReceive spool and ``smsgate gammu forward``.

Gammu runs ``RunOnReceive`` synchronously: reception waits for it, it is killed after about two
minutes, and it may be run again for the same message (gammu docs, smsd/run.rst). So the hook
(``contrib/gammu-smsd-runonreceive.sh``) only writes the message's environment to a spool file
and exits; this forwarder posts each spool file to ``/webhooks/gammu``, sends the reply with
``gammu-smsd-inject``, and deletes the file only then. A file that could not be stored stays and
is tried again; a rerun of the hook, or a retry after a lost answer, is deduplicated by smsgate.

A spool file is the NUL-separated ``NAME=value`` list of the hook's environment (``SMS_n_*``,
``DECODED_n_*``, ``PHONE_ID``) plus ``SMSGATE_IDS`` (the inbox ids Gammu passed as arguments)
and ``SMSGATE_SPOOLED_AT`` (Unix seconds).

Gammu's inbox ids are only unique within one Gammu database (every modem numbers from 1), so the
message id sent to smsgate is built from what Gammu really provides: ``PhoneID`` (or the host
name), the inbox ids and a digest of sender and text. The receiving time comes from the inbox
entry: the files backend names it ``IN<yyyymmdd>_<hhmmss>_…``; other backends use the time the
hook ran.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shlex
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .sms import GSM7_BASIC

log = logging.getLogger(__name__)

_FILES_BACKEND_NAME = re.compile(r"IN(\d{8})_(\d{6})_")
#: A refusal that will never become a success: the file moves to ``rejected/``.
_FINAL = {400, 403, 404, 413, 422}


@dataclass(frozen=True)
class SpooledSMS:
    """One received message as the hook spooled it, in the form smsgate takes."""

    message_id: str
    sender: str
    text: str
    device: str
    received_at: int

    def form(self) -> dict[str, str]:
        return {
            "id": self.message_id,
            "sender": self.sender,
            "text": self.text,
            "smsc": self.device,
            "time": str(self.received_at),
        }


def read_environment(raw: bytes) -> dict[str, str]:
    entries = {}
    for item in raw.split(b"\0"):
        name, sep, value = item.partition(b"=")
        if sep:
            entries[name.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
    return entries


def parse_spool(raw: bytes, host: str | None = None) -> SpooledSMS | None:
    """The message in a spool file, or None when it holds no sender (a status report)."""
    env = read_environment(raw)
    sender = env.get("SMS_1_NUMBER", "").strip()
    if not sender:
        return None
    if int(_digits(env.get("DECODED_PARTS"))) > 0 and env.get("DECODED_1_TEXT"):
        text = env["DECODED_1_TEXT"]
    else:
        parts = int(_digits(env.get("SMS_MESSAGES")) or 1)
        text = "".join(env.get(f"SMS_{n}_TEXT", "") for n in range(1, parts + 1))
    device = env.get("PHONE_ID", "").strip() or host or socket.gethostname()
    ids = env.get("SMSGATE_IDS", "").split()
    digest = hashlib.sha256(f"{sender}\x1f{text}".encode()).hexdigest()[:16]
    message_id = f"gammu:{device}:{','.join(ids) or '-'}:{digest}"
    return SpooledSMS(message_id, sender, text, device, _received_at(ids, env))


def _digits(value: str | None) -> str:
    value = (value or "").strip()
    return value if value.isascii() and value.isdigit() else "0"


def _received_at(ids: list[str], env: dict[str, str]) -> int:
    for inbox_id in ids:
        match = _FILES_BACKEND_NAME.search(inbox_id)
        if match:
            try:  # Gammu names inbox files in the modem host's local time
                return int(datetime.strptime("".join(match.groups()), "%Y%m%d%H%M%S").timestamp())
            except ValueError:
                break
    spooled = _digits(env.get("SMSGATE_SPOOLED_AT"))
    return int(spooled) if spooled != "0" else int(time.time())


@dataclass
class Forwarder:
    spool: Path
    url: str
    secret: str
    inject: str = "gammu-smsd-inject"
    timeout: float = 15.0

    def pending(self) -> list[Path]:
        files = [p for p in self.spool.iterdir() if p.is_file() and not p.name.startswith(".")]
        return sorted(files, key=lambda p: (p.stat().st_mtime, p.name))

    def forward_once(self) -> tuple[int, int]:
        """Post every spooled message once; (forwarded, left for a retry)."""
        done = left = 0
        for path in self.pending():
            if self.forward(path):
                done += 1
            else:
                left += 1
        return done, left

    def forward(self, path: Path) -> bool:
        """True when the file is finished with (stored and answered, or refused for good)."""
        sms = parse_spool(path.read_bytes())
        if sms is None:
            path.unlink()
            return True
        request = urllib.request.Request(
            self.url,
            data=urllib.parse.urlencode(sms.form()).encode(),
            headers={"X-Smsgate-Secret": self.secret, "Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                reply = response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as error:
            if error.code in _FINAL:
                rejected = self.spool / "rejected"
                rejected.mkdir(exist_ok=True)
                path.rename(rejected / path.name)
                log.error("smsgate refused %s (%s); moved to %s", path.name, error.code, rejected)
                return True
            log.warning("smsgate answered %s for %s; will retry", error.code, path.name)
            return False
        except OSError as error:
            log.warning("could not reach smsgate for %s (%s); will retry", path.name, error)
            return False
        if reply and not self._send(sms.sender, reply):
            return False  # posted again later: smsgate answers the redelivery alike
        path.unlink()
        return True

    def _send(self, to: str, text: str) -> bool:
        command = [*shlex.split(self.inject), "TEXT", to, "-text", text]
        if not all(char in GSM7_BASIC for char in text):
            command.insert(-2, "-unicode")
        try:
            result = subprocess.run(command, capture_output=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            log.warning("could not run %s: %s", command[0], error)
            return False
        if result.returncode != 0:
            log.warning(
                "%s failed (%s): %s", command[0], result.returncode, result.stderr.decode(errors="replace")
            )
            return False
        return True

    def run(self, interval: float = 2.0, max_backoff: float = 60.0) -> None:
        """Forward until interrupted; waits grow (to ``max_backoff``) while smsgate is unreachable."""
        wait = interval
        while True:
            _, left = self.forward_once()
            wait = min(max_backoff, wait * 2) if left else interval
            time.sleep(wait)
