"""Kannel's request shapes as Kannel builds them, and text arriving as it was sent.

From Kannel's source (gw/smsbox.c ``obey_request``, gw/urltrans.c) and user guide ("Kannel
POST", "Parameters (Escape Codes)"):
- ``post-url``: the message is the request body; ``Content-Type: text/plain; charset="UTF-16BE"``
  for a UCS-2 message (coding 2), else the message's charset (UTF-8 by default);
  ``X-Kannel-To``, ``X-Kannel-Time`` (``YYYY-MM-DD HH:MM:SS``, UTC), ``X-Kannel-SMSC``,
  ``X-Kannel-Coding``; ``X-Kannel-From`` only with ``send-sender = true``. Escape codes in the
  post-url itself are expanded, so ``?sender=%p`` carries the sender without it.
- ``get-url``: ``%a`` is the text percent-encoded as the message's raw bytes, ``%c`` the coding
  (0, 1, 2), ``%C`` the charset (``UTF-8`` for 7-bit, ``UTF-16BE`` for UCS-2, ``WINDOWS-1252`` or
  ``UTF-8`` after ``mo-recode``), ``%T`` Unix time, ``%I`` the message UUID, ``%i`` the smsc id.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request

from sqlalchemy import select

from smsgate.models import InboundMessage
from tests.support import VOLUNTEER_A

from .helpers import KANNEL_SECRET, smsgate_serve

JAVANESE = "ꦲꦏ꧀ꦱꦫꦗꦮ"  # aksara Jawa
EMOJI = "👍"
REPORT = "TPS 012 01=123 02=98 03=150"


def bodies(database) -> list[InboundMessage]:  # type: ignore[no-untyped-def]
    with database.read() as session:
        return list(session.scalars(select(InboundMessage).order_by(InboundMessage.id)))


def post_url(client, text: str, *, coding: str = "0", charset: str = "UTF-8", query: str = ""):  # type: ignore[no-untyped-def]
    """Kannel's post-url request without send-sender: sender only in the configured URL."""
    encoded = text.encode("utf-16-be" if coding == "2" else charset)
    url = f"/webhooks/kannel?secret={KANNEL_SECRET}&sender=%2B6281100000001&id=8f3c9d1e-{len(text)}{query}"
    return client.post(
        url,
        data=encoded,
        headers={
            "Content-Type": f'text/plain; charset="{"UTF-16BE" if coding == "2" else charset}"',
            "X-Kannel-To": "+6281300000000",
            "X-Kannel-Time": "2024-02-14 06:30:05",
            "X-Kannel-SMSC": "modem-1",
            "X-Kannel-Coding": coding,
            "User-Agent": "Kannel/1.4.5",
        },
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    )


def test_post_url_without_send_sender_takes_the_sender_from_the_url(client, database, world):  # type: ignore[no-untyped-def]
    response = post_url(client, REPORT)
    assert response.status_code == 200
    assert response.get_data(as_text=True).startswith("OK TPS 012 01=123")
    [row] = bodies(database)
    assert (row.from_number, row.body, row.device) == (VOLUNTEER_A, REPORT, "modem-1")
    assert row.received_at.isoformat().startswith("2024-02-14T06:30:05")


def test_post_url_ucs2_emoji_and_javanese_arrive_as_sent(client, database, world):  # type: ignore[no-untyped-def]
    text = f"LAPOR TPS 012 {JAVANESE} {EMOJI}"
    assert post_url(client, text, coding="2").status_code == 200
    assert bodies(database)[0].body == text


def test_get_url_decodes_by_kannel_charset_and_coding(client, database, world):  # type: ignore[no-untyped-def]
    def get(raw: bytes, **params: str):  # type: ignore[no-untyped-def]
        query = urllib.parse.urlencode({"secret": KANNEL_SECRET, "sender": VOLUNTEER_A, **params})
        query += "&text=" + urllib.parse.quote_from_bytes(raw)
        return client.get(f"/webhooks/kannel?{query}", environ_base={"REMOTE_ADDR": "127.0.0.1"})

    ucs2 = f"CEK {JAVANESE} {EMOJI}"
    responses = [
        get(ucs2.encode("utf-16-be"), id="u1", coding="2", charset="UTF-16BE"),
        get(ucs2.encode("utf-16-be"), id="u2", coding="2"),  # %c alone
        get("CEK café".encode("cp1252"), id="u3", coding="0", charset="WINDOWS-1252"),  # mo-recode
        get("CEK café".encode(), id="u4", coding="0", charset="UTF-8"),
        get(b"CEK caf\xe9", id="u5"),  # not UTF-8 and no charset: kept, not refused
    ]
    assert [r.status_code for r in responses] == [200] * 5
    assert [r.body for r in bodies(database)] == [ucs2, ucs2, "CEK café", "CEK café", "CEK caf\ufffd"]


def test_a_ten_part_ucs2_sms_arrives_whole_through_the_documented_post_url(database, database_url, world):  # type: ignore[no-untyped-def]
    """Against ``smsgate serve`` (gunicorn): a 670-character UCS-2 message (10 concatenated
    parts of 67) in a GET query string passes gunicorn's 4,094-byte request line limit and is
    refused 414; as post-url's body it arrives whole."""
    text = (JAVANESE * 100)[:670]  # 670 UTF-16 code units: 10 parts of 67
    assert len(text.encode("utf-16-be")) == 1340
    encoded = text.encode("utf-16-be")
    with smsgate_serve(database_url) as url:
        get_url = (
            f"{url}/webhooks/kannel?secret={KANNEL_SECRET}&sender=%2B6281100000001&id=get-1&coding=2"
            f"&charset=UTF-16BE&text={urllib.parse.quote_from_bytes(encoded)}"
        )
        assert len(get_url) > 4094
        try:
            urllib.request.urlopen(get_url, timeout=30)
            status = 200
        except urllib.error.HTTPError as error:
            status = error.code
        assert status == 414  # why the README documents post-url
        request = urllib.request.Request(
            f"{url}/webhooks/kannel?secret={KANNEL_SECRET}&sender=%2B6281100000001&id=post-1",
            data=encoded,
            headers={
                "Content-Type": 'text/plain; charset="UTF-16BE"',
                "X-Kannel-Coding": "2",
                "X-Kannel-Time": "2024-02-14 06:30:05",
                "X-Kannel-SMSC": "modem-1",
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
    [row] = bodies(database)
    assert row.body == text


def test_a_message_without_id_is_keyed_without_its_pin(client, database, world):  # type: ignore[no-untyped-def]
    """The dedupe digest of a message Kannel sent without ``id`` hashes the PIN-masked text: the
    stored key does not depend on the PIN's digits, so it cannot be brute-forced from the
    database; a redelivery still finds the first delivery."""
    import hashlib

    def deliver(text: str):  # type: ignore[no-untyped-def]
        return client.post(
            f"/webhooks/kannel?secret={KANNEL_SECRET}&sender=%2B6281100000001",
            data=text.encode(),
            headers={
                "Content-Type": 'text/plain; charset="UTF-8"',
                "X-Kannel-To": "+6281300000000",
                "X-Kannel-Time": "2024-02-14 06:30:05",
                "X-Kannel-SMSC": "modem-1",
                "X-Kannel-Coding": "0",
            },
            environ_base={"REMOTE_ADDR": "127.0.0.1"},
        )

    text = "STATUS TPS 012 PIN 4821"
    first = deliver(text)
    assert first.status_code == 200
    again = deliver(text)
    assert again.get_data() == first.get_data()
    [row] = bodies(database)
    assert "4821" not in row.body
    fields = ["modem-1", "+6281100000001", "+6281300000000", "2024-02-14 06:30:05"]
    with_pin = hashlib.sha256("\x1f".join([*fields, text]).encode()).hexdigest()[:40]
    masked = hashlib.sha256("\x1f".join([*fields, "STATUS TPS 012 PIN ****"]).encode()).hexdigest()[:40]
    assert row.provider_message_id == "h:" + masked != "h:" + with_pin
