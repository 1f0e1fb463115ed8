"""The message log's text search across the whole country: the same page whether it was found
among the newest messages, among the trigram candidates or by the whole pattern, newest first.

On the real database (SQLite and PostgreSQL): ``queries.message_log`` with a window and a
candidate limit small enough that a few hundred rows show each way the search ends (SQLite,
without a trigram index, has one way).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from smsgate.dashboard import queries
from smsgate.models import InboundMessage, OutboundMessage

from ..support import Statements

START = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
IN_ROWS, OUT_ROWS = 300, 200


def _body(i: int) -> str:
    """Every third message is from TPS 012; one in fifty is an odd one (a percent sign, a rare
    word), all of them early in the night."""
    if i % 50 == 7:
        return f"Tps 012 01=5% catatan langka {i}"
    return f"TPS {12 if i % 3 == 0 else 13:03d} 01={i} 02=1 03=2"


@pytest.fixture
def log(database):  # type: ignore[no-untyped-def]
    """300 inbound and 200 outbound messages, one a minute (several sharing a minute)."""
    with database.begin() as session:
        for i in range(IN_ROWS):
            session.add(
                InboundMessage(
                    provider="android",
                    provider_message_id=f"m{i}",
                    from_number=f"+628110000{i:04d}",
                    body=_body(i),
                    received_at=START + timedelta(minutes=i // 2),
                    outcome="accepted",
                )
            )
        for i in range(OUT_ROWS):
            session.add(
                OutboundMessage(
                    to_number=f"+628110000{i:04d}",
                    text=f"OK {_body(i)}",
                    provider="android",
                    status="sent",
                    created_at=START + timedelta(minutes=i // 2, seconds=30),
                )
            )
    return database


def _expected(word: str, page: int) -> list[tuple[str, int]]:
    """The page as the whole log answers it, newest first (outbound first on a tie)."""
    rows = [
        (START + timedelta(minutes=i // 2), True, i + 1, "in")
        for i in range(IN_ROWS)
        if word in _body(i).lower()
    ] + [
        (START + timedelta(minutes=i // 2, seconds=30), False, i + 1, "out")
        for i in range(OUT_ROWS)
        if word in f"ok {_body(i)}".lower()
    ]
    rows.sort(reverse=True)
    start = (page - 1) * queries.PAGE_SIZE
    return [(d, n) for _, _, n, d in rows[start : start + queries.PAGE_SIZE]]


@pytest.mark.parametrize("word", ["tps 012", "TPS 012 ", "01=5%", "langka", "012 0", "ok tps 01"])
@pytest.mark.parametrize("page", [1, 3])
@pytest.mark.parametrize(("window", "candidates"), [(10, 8), (160, 100_000), (100_000, 40)])
def test_the_page_is_the_same_whichever_way_it_is_found(log, word, page, window, candidates):
    with log.read() as session:
        entries, more = queries.message_log(
            session, None, queries.MessageFilter(text=word), page, window, candidates
        )
    assert [(e.direction, e.id) for e in entries] == _expected(word.strip().lower(), page)
    assert more == bool(_expected(word.strip().lower(), page + 1))


def _postgres(database) -> None:  # type: ignore[no-untyped-def]
    if database.engine.dialect.name != "postgresql":
        pytest.skip("the window and the trigram candidates are PostgreSQL's")


def _search(database, text: str, window: int, candidates: int) -> tuple[list, Statements]:  # type: ignore[no-untyped-def]
    with database.read() as session, Statements() as sent:
        entries, _ = queries.message_log(
            session, None, queries.MessageFilter(text=text), 1, window, candidates
        )
    return entries, sent


def test_a_common_word_stops_in_the_newest_window(log):
    """``TPS 012``, in one message of three: each side reads its newest 160 rows and is done."""
    _postgres(log)
    entries, sent = _search(log, "tps 012", 160, 40)
    assert len(entries) == queries.PAGE_SIZE
    for table in ("inbound_messages", "outbound_messages"):
        start, page = sent.reading(table)  # where the window starts, then the page within it
        assert "OFFSET" in start and "strpos" in page and "LIKE" not in page


def test_a_rare_word_is_read_among_its_candidates(log):
    """``langka`` (in 6 inbound and 4 outbound messages, all early): the window holds too few,
    the candidates all of them."""
    _postgres(log)
    entries, sent = _search(log, "Langka", 20, 40)
    assert len(entries) == 6 + 4
    for table in ("inbound_messages", "outbound_messages"):
        _, _, count, among = sent.reading(table)  # the window, the candidates' count, the page
        assert "count" in count and "MATERIALIZED" in among and "strpos" in among


def test_a_text_nothing_holds_is_not_searched_whole(log):
    """``TPS 099``: no candidate holds ``099``, so nothing more is read."""
    _postgres(log)
    entries, sent = _search(log, "tps 099", 20, 40)
    assert entries == []
    for table in ("inbound_messages", "outbound_messages"):
        assert "ESCAPE" not in sent.reading(table)[-1]


def test_a_common_word_is_searched_whole_when_its_candidates_overflow(log):
    """``TPS 012`` with a window of 10 (too few) and 40 candidates (too many): the whole pattern."""
    _postgres(log)
    entries, sent = _search(log, "tps 012", 10, 40)
    assert len(entries) == queries.PAGE_SIZE
    for table in ("inbound_messages", "outbound_messages"):
        *_, count, whole = sent.reading(table)
        assert "count" in count and "MATERIALIZED" not in whole and "ESCAPE" in whole


def test_percent_and_underscore_are_characters_not_wildcards(log):
    for window, candidates in ((10, 1), (100_000, 100_000)):
        entries, _ = _search(log, "01=5%", window, candidates)
        assert entries and all("01=5%" in e.text for e in entries)
        entries, _ = _search(log, "0_=1", window, candidates)
        assert entries == []  # "_" is not "any character" either ("01=1", "01=10"... are there)
