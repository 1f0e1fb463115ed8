"""Webhook fuzzing against ``smsgate serve``: nothing acknowledged is lost, nothing is a 5xx.

Generates inputs across the Twilio, Android and Kannel webhooks, shaped as each gateway shapes
its requests but filled with random bytes and Unicode, lone surrogates, NUL, huge and empty
fields, malformed encodings and JSON, near-limit numbers and random command words; some are
unsigned, stale or forged, some are redeliveries. They go to a real ``smsgate serve`` (gunicorn)
on a scratch SQLite database, and afterwards the database is checked: every request answered
2xx as a received message must be stored, every reply must fit one GSM-7 SMS.

    .venv/bin/python bench/fuzz.py [--inputs 100000] [--concurrency 8] [--seed 11]

Prints the inputs, the answers by status, the 5xx (must be 0), the replies longer than one SMS
(must be 0) and the acknowledged-but-not-stored (must be 0); exits 1 if any must-be-0 is not.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path

from sqlalchemy import create_engine, text
from twilio.request_validator import RequestValidator

from smsgate.inbound import storable
from smsgate.sms import is_single_gsm7_sms
from webhooks.android import signature as android_signature

SMSGATE = str(Path(sys.executable).parent / "smsgate")
TOKEN, ANDROID_SECRET, KANNEL_SECRET = "fuzz-twilio-token", "fuzz-android-key", "fuzz-kannel-secret"
VOLUNTEERS = [f"+6281100{n:06d}" for n in range(50)]
WORDS = ["TPS", "CEK", "BATAL", "REKAP", "BELUM", "QC", "LAPOR", "DAFTAR", "SIARAN", "YA", "BANTUAN", "PIN"]
_MESSAGE = re.compile(r"<Message>(.*?)</Message>", re.S)


@dataclass
class Probe:
    """One request and what must be true of it."""

    provider: str
    method: str
    path: str
    body: bytes
    headers: dict[str, str]
    key: tuple[str, str] | None  # (provider, stored provider_message_id) when it is a message


@dataclass
class Results:
    statuses: Counter = field(default_factory=Counter)
    by_provider: Counter = field(default_factory=Counter)
    long_replies: list[str] = field(default_factory=list)
    acknowledged: set[tuple[str, str]] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


# -- generators ---------------------------------------------------------------------------------


def fuzz_text(rng: random.Random) -> str:
    """Text a broken phone, a gateway bug or an attacker might send."""
    kind = rng.random()
    if kind < 0.25:  # something like a report, with near-limit numbers
        numbers = [
            rng.choice([0, 1, 99, 999, 1000, 99999, 2**31 - 1, 2**31, 2**63, 10**30]) for _ in range(3)
        ]
        votes = " ".join(f"0{i + 1}={n}" for i, n in enumerate(numbers))
        return f"TPS {rng.randint(0, 1000):03d} {votes}"
    if kind < 0.45:  # random command words
        return " ".join(
            rng.choice([*WORDS, "", "01=", "=", "x" * rng.randint(1, 40)]) for _ in range(rng.randint(1, 6))
        )
    if kind < 0.65:  # random code points, including surrogates and NUL
        return "".join(
            chr(rng.choice([0, 0xD83D, 0xDC80, 0xFFFD, 0xFFFF, rng.randint(1, 0x10FFFF)]))
            for _ in range(rng.randint(0, 80))
        )
    if kind < 0.8:  # scripts and emoji
        return "".join(rng.choice("ꦲꦏ꧀ꦱꦫ👍🏽é中ÄßΩ\n\t ") for _ in range(rng.randint(0, 300)))
    if kind < 0.9:
        return ""
    return "A" * rng.choice([159, 160, 161, 1600, 4000, 4001, 20000])


def fuzz_phone(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.5:
        return rng.choice(VOLUNTEERS)
    if kind < 0.7:
        return f"+62{rng.randint(0, 10**12)}"
    if kind < 0.85:
        return "".join(chr(rng.randint(1, 0x2FFF)) for _ in range(rng.randint(1, 30)))
    return rng.choice(["0", "+", "08123", "1" * 60, "-1", " +62 811 "])


def twilio_probe(n: int, rng: random.Random, base: str, seen: list) -> Probe:
    if seen and rng.random() < 0.05:  # redelivery of an earlier message
        sid, phone, body = rng.choice(seen)
    else:
        sid, phone, body = f"SMfz{n:08d}{rng.getrandbits(32):08x}", fuzz_phone(rng), fuzz_text(rng)
        seen.append((sid, phone, body))
    params = {"MessageSid": sid, "From": phone, "To": "+15005550006", "Body": storable(body), "NumMedia": "0"}
    if rng.random() < 0.03:
        params.pop(rng.choice(list(params)))
    url = f"{base}/webhooks/twilio"
    signature = RequestValidator(TOKEN).compute_signature(url, params)
    if rng.random() < 0.04:
        signature = rng.choice(["", "é", "0" * 28, signature[::-1]])
    payload = urllib.parse.urlencode(params).encode()
    if rng.random() < 0.02:  # malformed encoding
        payload = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200)))
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature}
    key = ("twilio", sid) if params.get("MessageSid") and params.get("From", "").strip() else None
    return Probe("twilio", "POST", "/webhooks/twilio", payload, headers, key)


def android_probe(n: int, rng: random.Random) -> Probe:
    envelope_id = f"fz{n:08d}-" + "".join(chr(rng.randint(33, 0x2FFF)) for _ in range(rng.randint(0, 20)))
    if rng.random() < 0.01:
        envelope_id = envelope_id + "x" * 200  # longer than the column: stored as a digest
    phone = fuzz_phone(rng)
    payload = {
        "messageId": "abc",
        "message": fuzz_text(rng),
        "sender": phone,
        "recipient": "+6281300000000",
        "phoneNumber": phone,
        "simNumber": 1,
        "receivedAt": rng.choice(["2024-02-14T15:46:11.000+07:00", "x", None, 5]),
    }
    if rng.random() < 0.1:
        payload.pop(rng.choice(["sender", "phoneNumber", "message", "recipient"]))
    data: object = {
        "deviceId": f"dev{rng.randint(0, 3)}",
        "event": "sms:received",
        "id": envelope_id,
        "payload": payload,
    }
    shape = rng.random()
    if shape < 0.03:
        data = rng.choice([[], "sms:received", 7, None, {"event": "sms:received", "payload": []}])
    elif shape < 0.05:
        data = {
            "event": rng.choice(["sms:sent", "sms:delivered", "sms:failed", "system:ping"]),
            "id": envelope_id,
            "payload": {"messageId": rng.choice(["smsgate-1", "x", 5, None]), "reason": "é"},
        }
    body = json.dumps(data).encode()  # lone surrogates become \\udXXX escapes, as in Java's JSON
    if rng.random() < 0.01:
        body = b"[" * 20000 + b"]" * 20000
    elif rng.random() < 0.01:
        body = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 300)))
    stamp = str(int(time.time()) + rng.choice([0, 0, 0, 0, 0, 0, 0, 0, -3600, 10**6]))
    sig = android_signature(ANDROID_SECRET, body, stamp)
    if rng.random() < 0.04:
        sig = rng.choice(["", "é", "0" * 64, sig.upper()])
    if rng.random() < 0.01:
        stamp = rng.choice(["²", "", "9" * 30, "-5"])
    key = None
    if (
        isinstance(data, dict)
        and data.get("event") == "sms:received"
        and isinstance(data.get("payload"), dict)
    ):
        sender = data["payload"].get("sender") or data["payload"].get("phoneNumber")
        if isinstance(sender, str) and sender.strip():
            stored_id = storable(envelope_id)
            if len(stored_id) > 128:
                stored_id = "sha256:" + hashlib.sha256(stored_id.encode()).hexdigest()
            key = ("android", stored_id)
    return Probe(
        "android",
        "POST",
        "/webhooks/android",
        body,
        {"Content-Type": "application/json", "X-Signature": sig, "X-Timestamp": stamp},
        key,
    )


def kannel_probe(n: int, rng: random.Random) -> Probe:
    message_id = f"fz{n:08d}-{rng.getrandbits(64):016x}"
    phone = fuzz_phone(rng)
    text = fuzz_text(rng)
    coding = rng.choice(["0", "0", "2", "1", "", "7"])
    charset = {"0": rng.choice(["UTF-8", "", "WINDOWS-1252", "GSM"]), "2": "UTF-16BE", "1": "8-BIT"}.get(
        coding, rng.choice(["", "bogus", "latin-1"])
    )
    codec = {"UTF-16BE": "utf-16-be", "WINDOWS-1252": "cp1252"}.get(charset, "utf-8")
    raw = text.encode(codec, "surrogatepass" if codec == "utf-8" else "replace")
    if rng.random() < 0.05:
        raw = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200)))
    moment = rng.choice(["1707900000", "2024-02-14 06:30:05", "", "²", "9" * 30])
    query = {
        "secret": KANNEL_SECRET if rng.random() > 0.03 else "wrong",
        "sender": phone,
        "receiver": "+6281300000000",
        "smsc": f"modem{rng.randint(0, 3)}",
        "id": message_id,
        "coding": coding,
        "charset": charset,
    }
    if moment:
        query["time"] = moment
    if rng.random() < 0.5:  # post-url: text as the body
        path = "/webhooks/kannel?" + urllib.parse.urlencode(query)
        headers = {"Content-Type": f'text/plain; charset="{charset or "UTF-8"}"', "X-Kannel-Coding": coding}
        probe = Probe("kannel", "POST", path, raw, headers, None)
    else:  # get-url: text percent-encoded as raw bytes
        path = (
            "/webhooks/kannel?"
            + urllib.parse.urlencode(query)
            + "&text="
            + urllib.parse.quote_from_bytes(raw[:1200])
        )
        probe = Probe("kannel", "GET", path, b"", {}, None)
    if phone.strip():
        probe.key = ("kannel", message_id)
    return probe


def probes(count: int, seed: int, base: str):  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    seen: list = []
    for n in range(count):
        which = n % 3
        if which == 0:
            yield twilio_probe(n, rng, base, seen)
        elif which == 1:
            yield android_probe(n, rng)
        else:
            yield kannel_probe(n, rng)
        if n % 5000 == 4999 and rng.random() < 0.5:  # a body far over the limit now and then
            yield Probe(
                "android",
                "POST",
                "/webhooks/android",
                b"x" * 200_000,
                {"X-Signature": "0" * 64, "X-Timestamp": "1"},
                None,
            )


# -- running ------------------------------------------------------------------------------------


def send_all(port: int, items, concurrency: int, results: Results) -> int:  # type: ignore[no-untyped-def]
    lock, sent = threading.Lock(), [0]
    iterator = iter(items)

    def worker() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                probe = next(iterator, None)
                if probe is None:
                    break
                sent[0] += 1
            try:
                connection.request(probe.method, probe.path, body=probe.body or None, headers=probe.headers)
                response = connection.getresponse()
                status, body = response.status, response.read()
                if status == 413 or response.getheader("Connection", "").lower() == "close":
                    # the server does not read a refused body: it closes that connection
                    connection.close()
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                with results.lock:
                    results.errors.append(f"{probe.provider}: {type(error).__name__}: {error}")
                continue
            record(probe, status, body, results)
        connection.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sent[0]


def record(probe: Probe, status: int, body: bytes, results: Results) -> None:
    reply: str | None = None
    acknowledged = False
    if 200 <= status < 300 and probe.key is not None:
        if probe.provider == "twilio":
            match = _MESSAGE.search(body.decode("utf-8", "replace"))
            reply = unescape(match.group(1)) if match else None
            acknowledged = True
        elif probe.provider == "kannel":
            reply = body.decode("utf-8", "replace") or None
            acknowledged = True
        else:
            try:
                acknowledged = "outcome" in json.loads(body)
            except ValueError:
                acknowledged = False
    with results.lock:
        results.statuses[status] += 1
        results.by_provider[(probe.provider, status)] += 1
        if acknowledged and probe.key is not None:
            results.acknowledged.add(probe.key)
        if reply is not None and not is_single_gsm7_sms(reply):
            results.long_replies.append(reply)


def prepare(folder: Path, url: str) -> None:
    (folder / "regions.csv").write_text(
        "code,name\n63,Kalimantan Selatan\n63.71,Kota Banjarmasin\n"
        "63.71.01,Banjarmasin Selatan\n63.71.01.1001,Mantuil\n"
    )
    (folder / "stations.csv").write_text(
        "region_code,tps,registered_voters\n" + "".join(f"63.71.01.1001,{t},300\n" for t in range(1, 51))
    )
    (folder / "volunteers.csv").write_text(
        "phone,name,role,region_code,tps,lang\n"
        + "".join(f"{p},Relawan {i},volunteer,63.71.01.1001,{i + 1},id\n" for i, p in enumerate(VOLUNTEERS))
    )
    (folder / "candidates.csv").write_text("code,name\n01,Satu\n02,Dua\n03,Tiga\n")
    env = {**os.environ, "SMSGATE_DATABASE_URL": url}
    subprocess.run([SMSGATE, "init"], env=env, check=True, capture_output=True)
    for kind in ("regions", "stations", "candidates", "volunteers"):
        subprocess.run(
            [SMSGATE, "import", kind, str(folder / f"{kind}.csv")], env=env, check=True, capture_output=True
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="smsgate-fuzz-") as tmp:
        folder = Path(tmp)
        url = f"sqlite:///{folder / 'fuzz.db'}"
        prepare(folder, url)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "SMSGATE_DATABASE_URL": url,
            "TWILIO_AUTH_TOKEN": TOKEN,
            "SMSGATE_PUBLIC_URL": base,
            "SMSGATE_ANDROID_SECRET": ANDROID_SECRET,
            "SMSGATE_KANNEL_SECRET": KANNEL_SECRET,
        }
        log = open(folder / "server.log", "wb")  # noqa: SIM115 (open for the server's lifetime)
        server = subprocess.Popen([SMSGATE, "serve", "--port", str(port)], env=env, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit("smsgate serve did not start") from None
                    time.sleep(0.2)
            results = Results()
            started = time.monotonic()
            sent = send_all(port, probes(args.inputs, args.seed, base), args.concurrency, results)
            elapsed = time.monotonic() - started
        finally:
            server.terminate()
            server.wait(30)
            log.close()
        engine = create_engine(url)
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT provider, provider_message_id FROM inbound_messages"))
            stored = {(provider, message_id) for provider, message_id in rows}
            queued = [t for (t,) in connection.execute(text("SELECT text FROM outbound_messages"))]
        engine.dispose()

    lost = sorted(results.acknowledged - stored)
    long_replies = results.long_replies + [t for t in queued if not is_single_gsm7_sms(t)]
    server_errors = sum(n for status, n in results.statuses.items() if status >= 500)
    print(f"command: {' '.join([Path(sys.executable).name, 'bench/fuzz.py', *sys.argv[1:]])}")
    print(f"inputs sent: {sent} in {elapsed:.0f} s ({sent / elapsed:.0f}/s) against smsgate serve on SQLite")
    print("answers by status: " + ", ".join(f"{s}: {n}" for s, n in sorted(results.statuses.items())))
    for provider in ("twilio", "android", "kannel"):
        line = ", ".join(f"{s}: {n}" for (p, s), n in sorted(results.by_provider.items()) if p == provider)
        print(f"  {provider}: {line}")
    print(f"non-2xx: {sum(n for s, n in results.statuses.items() if not 200 <= s < 300)}")
    print(f"5xx: {server_errors} (must be 0)")
    print(f"replies longer than one SMS: {len(long_replies)} (must be 0)")
    print(
        f"acknowledged as received: {len(results.acknowledged)}; stored: {len(results.acknowledged & stored)}"
    )
    print(f"acknowledged but not stored: {len(lost)} (must be 0)")
    print(f"connection errors: {len(results.errors)} (must be 0)")
    for example in lost[:3] + long_replies[:3] + results.errors[:3]:
        print(f"  e.g. {example!r}")
    if server_errors or long_replies or lost or results.errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
