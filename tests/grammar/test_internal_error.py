"""A bug inside the grammar is caught (``parse`` never raises) but never silent: it is logged
with its traceback and the text, PINs masked."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import grammar
from grammar.errors import INTERNAL_ERROR
from grammar.masking import mask


class Unreadable(Sequence[str]):
    """A candidate list that fails when read: an error raised inside ``parse``."""

    def __len__(self) -> int:
        raise RuntimeError("the candidate list cannot be read")

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        raise RuntimeError("the candidate list cannot be read")


def test_an_internal_error_is_logged_with_the_text_and_the_traceback(caplog):
    text = "TPS 012 01=123 02=98 03=150 PIN 4821"
    with caplog.at_level(logging.ERROR, logger="grammar"):
        result = grammar.parse(text, candidates=Unreadable())
    assert isinstance(result, grammar.ParseError)
    assert result.details == (INTERNAL_ERROR,)
    [record] = [r for r in caplog.records if r.name.startswith("grammar")]
    assert record.levelno == logging.ERROR
    assert "TPS 012 01=123 02=98 03=150 PIN ****" in record.getMessage()
    assert "4821" not in record.getMessage()
    assert record.exc_info is not None and "cannot be read" in str(record.exc_info[1])


def test_an_ordinary_mistake_logs_nothing(caplog):
    with caplog.at_level(logging.DEBUG, logger="grammar"):
        result = grammar.parse("TPS 012 01=12x")
    assert isinstance(result, grammar.ParseError) and result.details != (INTERNAL_ERROR,)
    assert [r for r in caplog.records if r.name.startswith("grammar")] == []


def test_masking_hides_every_pin_spelling():
    assert mask("TPS 1 1 2 3 PIN 4821") == "TPS 1 1 2 3 PIN ****"
    assert mask("PIN:4821") == "PIN:****"
    assert mask("pin 1111 2222") == "pin **** ****"
