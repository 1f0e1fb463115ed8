"""The message language, case by case: every tolerated form, every error code, every command.

Each row is what a volunteer or coordinator might really send and exactly what ``parse`` must
answer. Errors are checked on the attributes that matter for the reply (code, field, token,
position, numbers), so a row reads like the reply the sender will get.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from grammar import (
    ERROR_CODES,
    Broadcast,
    Cancel,
    Check,
    Confirm,
    Help,
    Incident,
    Message,
    Missing,
    ParseError,
    Pin,
    QuickCount,
    RegionRef,
    Register,
    Report,
    StationRef,
    Status,
    Totals,
    parse,
)

DESA = "6371011001"


def report(
    tps: int | None,
    v1: int = 123,
    v2: int = 98,
    v3: int = 150,
    *,
    desa: str | None = None,
    valid: int | None = None,
    invalid: int | None = None,
    registered: int | None = None,
    notes: tuple[str, ...] = (),
    pin: str | None = None,
) -> Report:
    station = StationRef(tps, desa) if tps is not None else None
    return Report(station, {"01": v1, "02": v2, "03": v3}, valid, invalid, registered, notes, pin)


@dataclass(frozen=True)
class Err:
    """The parts of a ParseError a row cares about; ``...`` means "not checked"."""

    code: str
    token: object = ...
    field: object = ...
    position: object = ...
    expected: object = ...
    actual: object = ...
    details: object = ...

    def matches(self, error: ParseError) -> bool:
        return all(want is ... or getattr(error, name) == want for name, want in vars(self).items())


CANONICAL = report(12)
SEP_COLON = ("separators", "colon_as_equals", "leading_zeros_added")

TOLERATED: list[tuple[str, Message]] = [
    # canonical and whitespace
    ("TPS 012 01=123 02=98 03=150", CANONICAL),
    ("tps 012 01=123 02=98 03=150", CANONICAL),
    ("Tps 12 01=123 02=98 03=150", CANONICAL),
    ("TPS 12 01=123 02=98 03=150", CANONICAL),
    ("  TPS   012   01=123   02=98  03=150  ", CANONICAL),
    ("TPS 012 01 = 123 02 = 98 03 = 150", CANONICAL),
    ("TPS 012 01= 123 02 =98 03=150", CANONICAL),
    ("TPS 012\n01=123\n02=98\n03=150", CANONICAL),
    ("TPS 012\r\n01=123\r\n02=98\r\n03=150\r\n", CANONICAL),
    ("TPS\t012\t01=123\t02=98\t03=150", CANONICAL),
    # any order
    ("TPS 012 03=150 01=123 02=98", CANONICAL),
    ("TPS 012 02=98 03=150 01=123", CANONICAL),
    # colon
    ("TPS 012 01:123 02:98 03:150", report(12, notes=("colon_as_equals",))),
    ("TPS 012 01=123 02:98 03=150", report(12, notes=("colon_as_equals",))),
    ("TPS 012 01 : 123 02 : 98 03 : 150", report(12, notes=("colon_as_equals",))),
    # no spaces
    ("TPS012 01=123 02=98 03=150", report(12, notes=("no_spaces",))),
    ("tps12 01=123 02=98 03=150", report(12, notes=("no_spaces",))),
    ("TPS012#01=123#02=98#03=150", report(12, notes=("no_spaces", "separators"))),
    # separators
    ("TPS#012#01=123#02=98#03=150", report(12, notes=("separators",))),
    ("TPS*012*01=123*02=98*03=150", report(12, notes=("separators",))),
    ("TPS 012,01=123,02=98,03=150", report(12, notes=("separators",))),
    ("TPS 012;01=123;02=98;03=150", report(12, notes=("separators",))),
    ("TPS 012, 01=123, 02=98, 03=150", report(12, notes=("separators",))),
    ("#TPS#012#01=123#02=98#03=150#", report(12, notes=("separators",))),
    ("TPS##012##01=123##02=98##03=150", report(12, notes=("separators",))),
    ("TPS 012 01=123;02=98;03=150;", report(12, notes=("separators",))),
    # leading zeros
    ("TPS 012 1=123 2=98 3=150", report(12, notes=("leading_zeros_added",))),
    ("TPS 012 1=123 02=98 3=150", report(12, notes=("leading_zeros_added",))),
    ("TPS 012 001=123 002=98 003=150", report(12, notes=("leading_zeros_removed",))),
    ("TPS 12 01=0123 02=098 03=0150", CANONICAL),
    ("TPS 0012 01=123 02=98 03=150", CANONICAL),
    # letter O for zero
    ("TPS O12 01=123 02=98 03=150", report(12, notes=("letter_o_as_zero",))),
    ("TPS o12 01=123 02=98 03=150", report(12, notes=("letter_o_as_zero",))),
    ("TPS 012 O1=123 O2=98 O3=150", report(12, notes=("letter_o_as_zero",))),
    ("TPS 012 01=1O3 02=98 03=15O", report(12, 103, notes=("letter_o_as_zero",))),
    ("TPS 012 01=O 02=98 03=150", report(12, 0, notes=("letter_o_as_zero",))),
    ("TPSO12 01=123 02=98 03=150", report(12, notes=("no_spaces", "letter_o_as_zero"))),
    ("TPS OO1 01=1 02=2 03=3", report(1, 1, 2, 3, notes=("letter_o_as_zero",))),
    # zeros
    ("TPS 1 01=0 02=0 03=0", report(1, 0, 0, 0)),
    ("TPS 999 01=9999 02=9999 03=9999", report(999, 9999, 9999, 9999)),
    ("TPS 901 01=5 02=6 03=7", report(901, 5, 6, 7)),
    # positional
    ("TPS#012#123#98#150", report(12, notes=("separators", "positional"))),
    ("TPS 012 123 98 150", report(12, notes=("positional",))),
    ("TPS 12 123 98 150 SAH=371", report(12, valid=371, notes=("positional",))),
    ("TPS*12*123*98*150", report(12, notes=("separators", "positional"))),
    ("TPS 12 O 98 150", report(12, 0, notes=("letter_o_as_zero", "positional"))),
    # no station
    ("01=123 02=98 03=150", report(None)),
    ("1=123 2=98 3=150", report(None, notes=("leading_zeros_added",))),
    ("01:123#02:98#03:150", report(None, notes=("separators", "colon_as_equals"))),
    # full station ID
    ("TPS 6371011001012 01=123 02=98 03=150", report(12, desa=DESA)),
    ("TPS 63.71.01.1001/12 01=123 02=98 03=150", report(12, desa=DESA)),
    ("TPS 6371011001/12 01=123 02=98 03=150", report(12, desa=DESA)),
    ("TPS 6371011001/012 01=123 02=98 03=150", report(12, desa=DESA)),
    ("TPS#6371011001012#123#98#150", report(12, desa=DESA, notes=("separators", "positional"))),
    ("TPS 63.71.O1.1OO1/12 01=123 02=98 03=150", report(12, desa=DESA, notes=("letter_o_as_zero",))),
    # extras
    ("TPS 012 01=123 02=98 03=150 SAH=371", report(12, valid=371)),
    ("TPS 012 01=123 02=98 03=150 SAH=371 TS=5 DPT=290", report(12, valid=371, invalid=5, registered=290)),
    (
        "TPS 012 01=123 02=98 03=150 sah:371 ts:5 dpt:290",
        report(12, valid=371, invalid=5, registered=290, notes=("colon_as_equals",)),
    ),
    ("TPS 012 01=123 02=98 03=150 TS=0", report(12, invalid=0)),
    ("TPS 012 DPT=290 01=123 02=98 03=150", report(12, registered=290)),
    ("TPS 012 01=123 02=98 03=150 SAH = 371", report(12, valid=371)),
    # Unicode from phones and gateways
    ("ＴＰＳ　０１２ ０１＝１２３ ０２＝９８ ０３＝１５０", report(12, notes=("unicode_normalised",))),
    ("TPS\u00a0012\u00a001=123\u00a002=98\u00a003=150", report(12, notes=("unicode_normalised",))),
    ("TPS 012 01\uff1d123 02=98 03=150", report(12, notes=("unicode_normalised",))),
    ("\ufeffTPS 012 01=123 02=98 03=150", report(12, notes=("unicode_normalised",))),
    ("TPS 012 01=123\x00 02=98 03=150", report(12, notes=("unicode_normalised",))),
    ("TPS 012 01=12\u200b3 02=98 03=150", report(12, notes=("unicode_normalised",))),
    ("TPS 012 01=123 02=98 03=150 \U0001f44d", Err("unexpected_token", token="\U0001f44d", position=28)),
    # words that carry no value, and closings after a complete report
    ("TPS 12 paslon 1: 123, paslon 2: 98, paslon 3: 150", report(12, notes=(*SEP_COLON, "words_ignored"))),
    ("TPS 012 SUARA 01=123 02=98 03=150", report(12, notes=("words_ignored",))),
    ("Hasil TPS 12: 01=123 02=98 03=150", report(12, notes=("words_ignored", "punctuation"))),
    (
        "TPS 12 nomor urut 1=123 no. 2=98 calon 3=150",
        report(12, notes=("leading_zeros_added", "words_ignored")),
    ),
    ("TPS 012 01=123 02=98 03=150 terima kasih", report(12, notes=("words_ignored",))),
    ("TPS 012 01=123 02=98 03=150 Terima kasih.", report(12, notes=("words_ignored",))),
    ("TPS 012 01=123 02=98 03=150, mksh", report(12, notes=("separators", "words_ignored"))),
    ("TPS 012 01=123 02=98 03=150\nSalam", report(12, notes=("words_ignored",))),
    # the station as people write it
    ("TPS No. 12 01=123 02=98 03=150", report(12, notes=("words_ignored", "punctuation"))),
    ("TPS nomor 12 01=123 02=98 03=150", report(12, notes=("words_ignored",))),
    ("TPS.012 01=123 02=98 03=150", report(12, notes=("punctuation",))),
    ("TPS-012 01=123 02=98 03=150", report(12, notes=("punctuation",))),
    ("TPS 12: 01=123 02=98 03=150", report(12, notes=("punctuation",))),
    ("TPS 12. 01=123 02=98 03=150", report(12, notes=("punctuation",))),
    # separators between a code and its count, and between pairs
    ("TPS 12 01 123 02 98 03 150", report(12, notes=("codes_and_counts",))),
    ("TPS 12 1 123 2 98 3 150", report(12, notes=("leading_zeros_added", "codes_and_counts"))),
    ("TPS 12 03 150 01 123 02 98", report(12, notes=("codes_and_counts",))),
    ("TPS 012 01-123 02-98 03-150", report(12, notes=("punctuation",))),
    ("TPS 012 (01) 123 (02) 98 (03) 150", report(12, notes=("punctuation",))),
    ("TPS 012 1)123 2)98 3)150", report(12, notes=("leading_zeros_added", "punctuation"))),
    ("Tps 012, 01 = 123, 02 = 98, 03 = 150.", report(12, notes=("separators", "punctuation"))),
    ("TPS 12 01=123 | 02=98 | 03=150", report(12, notes=("punctuation",))),
    ("TPS 12 01=123/02=98/03=150", report(12, notes=("punctuation",))),
    # the form's own labels for the extras
    ("TPS 12 01=123 02=98 03=150 SAH 371 TIDAK SAH 5", report(12, valid=371, invalid=5)),
    ("TPS 12 01=123 02=98 03=150 TDK SAH : 5", report(12, invalid=5, notes=("colon_as_equals",))),
    ("TPS 12 01=123 02=98 03=150 JML SAH 371 DPT 290", report(12, valid=371, registered=290)),
    ("TPS 12 01=123 02=98 03=150 suara sah=371 suara tidak sah=5", report(12, valid=371, invalid=5)),
    ("TPS 12 01=123 02=98 03=150 JUMLAH SELURUH SUARA SAH 371", report(12, valid=371)),
    (
        "TPS 12 01 123 02 98 03 150 SAH 371 TS 5",
        report(12, valid=371, invalid=5, notes=("codes_and_counts",)),
    ),
]

ERRORS: list[tuple[str, Err]] = [
    # empty
    ("", Err("empty", token=None, position=None)),
    ("   ", Err("empty")),
    ("#*,;", Err("empty")),
    ("...", Err("empty")),
    ("\x00\x00", Err("empty")),
    ("\u00a0\u3000", Err("empty")),
    # unknown command
    ("HALO", Err("unknown_command", token="HALO", position=0)),
    ("selamat pagi", Err("unknown_command", token="selamat", position=0)),
    ("  XYZ 01=123", Err("unknown_command", token="XYZ", position=2)),
    ("CEKK", Err("unknown_command", token="CEKK")),
    ("REGS abc", Err("unknown_command", token="REGS")),
    ("YAA 123", Err("unknown_command", token="YAA")),
    ("TPD 012 01=123 02=98 03=150", Err("unknown_command", token="TPD")),
    ("\U0001f600", Err("unknown_command", token="\U0001f600")),
    ("BANTUANNYA", Err("unknown_command", token="BANTUANNYA")),
    # unknown candidate
    ("TPS 012 04=5 01=123 02=98 03=150", Err("unknown_candidate", field="04", token="04", position=8)),
    ("TPS 012 4=5 01=123 02=98 03=150", Err("unknown_candidate", field="04", token="4")),
    ("TPS 012 00=5 01=123 02=98 03=150", Err("unknown_candidate", field="00", token="00")),
    ("TPS 012 01=123 02=98 03=150 123=4", Err("unknown_candidate", field="123", token="123")),
    ("01=1 02=2 03=3 99999999999999999999=1", Err("unknown_candidate", field="99999999999999999999")),
    # missing candidate
    ("TPS 012 01=123 02=98", Err("missing_candidate", field="03", details=("03",), token=None)),
    ("TPS 012 01=123", Err("missing_candidate", field="02", details=("02", "03"))),
    ("TPS 012", Err("missing_candidate", field="01", details=("01", "02", "03"))),
    ("TPS 012 02=98 SAH=98", Err("missing_candidate", field="01", details=("01", "03"))),
    ("01=123 03=150", Err("missing_candidate", field="02")),
    # duplicate candidate
    ("TPS 012 01=123 01=123 02=98 03=150", Err("duplicate_candidate", field="01", position=15)),
    ("TPS 012 01=123 1=124 02=98 03=150", Err("duplicate_candidate", field="01", token="1")),
    ("TPS 012 01=123 02=98 03=150 O3=150", Err("duplicate_candidate", field="03", token="O3")),
    # bad numbers: malformed, negative, too large, ambiguous
    ("TPS 012 01==123 02=98 03=150", Err("bad_number", field="01", token="=123", position=11)),
    ("TPS 012 01== 02=98 03=150", Err("bad_number", field="01", token="=")),
    ("TPS 012 01= 02=98 03=150", Err("bad_number", field="01", token="", position=11)),
    ("TPS 012 01=", Err("bad_number", field="01", token="")),
    ("TPS 012 01=1,230 02=98 03=150", Err("bad_number", field="01", token="1,230", position=11)),
    ("TPS 012 01=12 3 02=98 03=150", Err("bad_number", field="01", token="12 3")),
    ("TPS 012 01=1.230 02=98 03=150", Err("bad_number", field="01", token="1.230")),
    ("TPS 012 01=1 230 02=98 03=150", Err("bad_number", field="01", token="1 230")),
    ("TPS 012 01=-5 02=98 03=150", Err("bad_number", field="01", token="-5")),
    ("TPS 012 01=10000 02=98 03=150", Err("bad_number", field="01", token="10000")),
    ("TPS 012 01=123 02=98 03=99999999999999999999999", Err("bad_number", field="03")),
    ("TPS 012 01=12a 02=98 03=150", Err("bad_number", field="01", token="12a")),
    ("TPS 012 01=123 02=9l8 03=150", Err("bad_number", field="02", token="9l8")),
    ("TPS 012 01=123 02=98 03=1 50", Err("bad_number", field="03", token="1 50")),
    ("TPS 012 01=123 02=98 03=150#5", Err("bad_number", field="03", token="150#5")),
    ("TPS 012 01=12302=98 03=150", Err("bad_number", field="01", token="")),
    ("TPS 012 01=123 02=98 03=150 SAH=3 71", Err("bad_number", field="SAH", token="3 71")),
    ("TPS 012 01=123 02=98 03=150 SAH=", Err("bad_number", field="SAH", token="")),
    ("TPS 012 01=123 02=98 03=150 TS=-1", Err("bad_number", field="TS", token="-1")),
    ("TPS 012 01=123 02=98 03=150 DPT=10000", Err("bad_number", field="DPT", token="10000")),
    ("TPS 12 123 98 15000", Err("bad_number", field="03", token="15000")),
    # sum mismatch
    ("TPS 012 01=123 02=98 03=150 SAH=370", Err("sum_mismatch", field="SAH", expected=370, actual=371)),
    ("TPS 12 123 98 150 SAH=0", Err("sum_mismatch", expected=0, actual=371, token="SAH=0")),
    # no station
    ("TPS 01=123 02=98 03=150", Err("no_station", token="TPS", position=0)),
    ("TPS", Err("no_station", token="TPS")),
    ("TPS# 01=123 02=98 03=150", Err("no_station")),
    ("123 98 150", Err("no_station", token="123", position=0)),
    ("12 01=123 02=98 03=150", Err("no_station", token="12")),
    ("TPS 1201=123 02=98 03=150", Err("no_station", token="TPS")),
    ("STATUS 12", Err("no_station", token="12", position=7)),
    ("STATUS TPS 12", Err("no_station", token="TPS 12")),
    ("CEK TPS", Err("no_station", token="TPS")),
    # bad station
    ("TPS 1000 01=123 02=98 03=150", Err("bad_station", token="1000", position=4)),
    ("TPS 000 01=123 02=98 03=150", Err("bad_station", token="000")),
    ("TPS 0 01=123 02=98 03=150", Err("bad_station", token="0")),
    ("TPS 637101100101 01=123 02=98 03=150", Err("bad_station", token="637101100101")),
    ("TPS 63710110010123 01=1 02=2 03=3", Err("bad_station", token="63710110010123")),
    ("TPS 6371011001000 01=1 02=2 03=3", Err("bad_station", token="6371011001000")),
    ("TPS 63.71.01/12 01=1 02=2 03=3", Err("bad_station", token="63.71.01/12")),
    ("TPS 63.71.01.1001/1000 01=1 02=2 03=3", Err("bad_station", token="63.71.01.1001/1000")),
    ("TPS 6371011001/ 01=1 02=2 03=3", Err("bad_station", token="6371011001/")),
    ("TPS 12a 01=1 02=2 03=3", Err("bad_station", token="12a")),
    ("TPS 1.2 01=1 02=2 03=3", Err("bad_station", token="1.2")),
    ("CEK TPS 1000", Err("bad_station", token="1000")),
    # positional count
    ("TPS#012#123#98", Err("positional_count", expected=3, actual=2, token="123#98", position=8)),
    ("TPS#012#123#98#150#7", Err("positional_count", expected=3, actual=4)),
    ("TPS 12 5", Err("positional_count", expected=3, actual=1)),
    # missing argument
    ("LAPOR", Err("missing_argument", field="LAPOR", token="LAPOR", position=0)),
    ("INCIDENT   ", Err("missing_argument", field="LAPOR")),
    ("LAPOR #", Err("missing_argument", field="LAPOR")),
    ("DAFTAR", Err("missing_argument", field="DAFTAR")),
    ("REG ABC123", Err("missing_argument", field="DAFTAR", token="REG")),
    ("STATUS", Err("missing_argument", field="STATUS")),
    ("SIARAN", Err("missing_argument", field="SIARAN")),
    ("BROADCAST", Err("missing_argument", field="SIARAN")),
    ("YA", Err("missing_argument", field="YA")),
    ("yes", Err("missing_argument", field="YA", token="yes")),
    # unexpected tokens
    (
        "TPS 012 01=123 02=98 03=150 SAH=371 SAH=371",
        Err("unexpected_token", field="SAH", token="SAH=371", position=36),
    ),
    ("TPS 12 123 01=98 02=5 03=6", Err("unexpected_token", token="01=98")),
    ("TPS 012 01=123 02=98 03=150 TPS 13", Err("unexpected_token", token="TPS")),
    # words around a report are no licence: an unknown word or a number after it still fails
    ("TPS 012 01=123 02=98 03=150 salah", Err("unexpected_token", token="salah", position=28)),
    ("TPS 012 01=123 02=98 03=150 terima kasih salah", Err("unexpected_token", token="salah")),
    ("TPS 012 01=123 02=98 03=150 terima kasih 5", Err("unexpected_token", token="5")),
    ("TPS 012 01=5 02=6 03=7 suara 1 2 3", Err("unexpected_token", token="1")),
    ("TPS 012 paslon=5 01=123 02=98 03=150", Err("unexpected_token", token="paslon")),
    ("terima kasih TPS 012 01=123 02=98 03=150", Err("unknown_command", token="terima")),
    ("HALO 5", Err("unknown_command", token="HALO")),
    ("TPS 12 AMIN=123 PRABOWO=98 GANJAR=150", Err("unexpected_token", token="AMIN")),  # no aliases here
    ("TPS 12 1 2 3 3 2 1", Err("positional_count", expected=3, actual=6)),  # six counts, or codes?
    ("TPS 12 01 123 02 98", Err("positional_count", expected=3, actual=4)),
    ("TPS 12 01=123 02 98 03=150", Err("bad_number", field="01", token="123 02 98")),
    ("TPS 12 01=1.123 02=98 03=150", Err("bad_number", field="01", token="1.123")),
    ("TPS 12 01=123.98 03=150", Err("bad_number", field="01", token="123.98")),
    ("TPS 12 01=123 02=98 03=150 SAH", Err("bad_number", field="SAH", token="")),
    ("TPS 12 01=123 02=98 03=150 TIDAK SAH TS=5", Err("bad_number", field="TS")),
    ("TPS 12 01=123 02=98 03=150 JML SAH 370", Err("sum_mismatch", expected=370, actual=371)),
    ("01 123 02 98 03 150", Err("no_station")),
    ("TPS No. 01=123 02=98 03=150", Err("no_station")),
    ("TPS 012 =123 02=98 03=150", Err("no_station", token="TPS")),  # "012 =123" reads as a pair too
    ("TPS 012 01=123 02=98 03=150 =5", Err("bad_number", field="03", token="")),  # "150 =5" is a pair too
    ("TPS 012 01=123 02=98 03=150#=5", Err("unexpected_token", token="=5", position=28)),
    ("BATAL A B", Err("unexpected_token", token="B", position=8)),
    ("CEK TPS 12 01=5", Err("unexpected_token", token="01=5")),
    ("REKAP @@@", Err("unexpected_token", token="@@@", position=6)),
    ("REKAP 637", Err("unexpected_token", token="637")),
    ("REKAP 63.7", Err("unexpected_token", token="63.7")),
    ("REKAP 63 71", Err("unexpected_token", token="71")),
    ("QC 63.71.01.1001.5", Err("unexpected_token")),
    ("YA ABC DEF", Err("unexpected_token", token="DEF")),
    ("STATUS 6371011001012 x", Err("unexpected_token", token="x")),
    # positions are in the original text, before Unicode normalisation
    ("\u00a0\u00a0TPS 012 04=1", Err("unknown_candidate", position=10, token="04")),
    ("ＴＰＳ ０１２ ０４＝１", Err("unknown_candidate", position=8, token="０４", field="04")),
    ("\x00\x00HALO", Err("unknown_command", position=2, token="HALO")),
    ("TPS 012 01=1\u00a0230 02=98 03=150", Err("bad_number", token="1\u00a0230", position=11)),
]

COMMANDS: list[tuple[str, Message]] = [
    ("BANTUAN", Help()),
    ("HELP", Help()),
    ("help", Help()),
    ("INFO", Help()),
    ("info tps", Help()),
    ("?", Help()),
    ("??", Help()),
    (" bantuan ", Help()),
    ("BANTUN", Help(("keyword_typo",))),
    ("BNTUAN", Help(("keyword_typo",))),
    ("HELO", Help(("keyword_typo",))),
    ("ＨＥＬＰ", Help(("unicode_normalised",))),
    ("BATAL", Cancel()),
    ("CANCEL", Cancel()),
    ("batal k7x2", Cancel("K7X2")),
    ("CANCEL K7X2", Cancel("K7X2")),
    ("BATL K7X2", Cancel("K7X2", ("keyword_typo",))),
    ("BATAL#K7X2", Cancel("K7X2")),
    ("CEK", Check()),
    ("CHECK", Check()),
    ("CEK TPS 12", Check(StationRef(12))),
    ("cek tps012", Check(StationRef(12))),
    ("CHECK TPS 6371011001012", Check(StationRef(12, DESA))),
    ("CEK 6371011001012", Check(StationRef(12, DESA))),
    ("CEK 12", Check(StationRef(12))),
    ("LAPOR Saksi diusir dari TPS 12", Incident("Saksi diusir dari TPS 12")),
    ("INCIDENT  form C1  missing ", Incident("form C1 missing")),
    ("lapor: kotak suara rusak", Incident("kotak suara rusak")),
    ("LAPOR\u201cintimidasi\u201d di TPS", Incident('"intimidasi" di TPS', ("unicode_normalised",))),
    ("LAPOR \u201cintimidasi\u201d di TPS", Incident('"intimidasi" di TPS', ("unicode_normalised",))),
    ("LAPORR ada intimidasi", Incident("ada intimidasi", ("keyword_typo",))),
    ("LAPOR line one\nline two", Incident("line one line two")),
    ("DAFTAR AB12CD Budi Santoso", Register("AB12CD", "Budi Santoso")),
    ("REG ab12cd budi", Register("AB12CD", "budi")),
    ("REGISTER AB12CD Siti Aminah", Register("AB12CD", "Siti Aminah")),
    ("DAFTRA AB12CD Budi", Err("unknown_command", token="DAFTRA")),
    ("DAFTR AB12CD Budi", Register("AB12CD", "Budi", ("keyword_typo",))),
    ("REKAP", Totals()),
    ("TOTAL", Totals()),
    ("REKAP 63", Totals(RegionRef("63"))),
    ("REKAP 6371", Totals(RegionRef("63.71"))),
    ("REKAP 637101", Totals(RegionRef("63.71.01"))),
    ("REKAP 6371011001", Totals(RegionRef("63.71.01.1001"))),
    ("REKAP 63.71.01", Totals(RegionRef("63.71.01"))),
    ("total 63.71", Totals(RegionRef("63.71"))),
    ("REKAPP 63.71", Totals(RegionRef("63.71"), ("keyword_typo",))),
    ("REKAP KAB. BANJAR", Totals(RegionRef(name="BANJAR", level="kabupaten"))),
    ("REKAP kabupaten  banjar", Totals(RegionRef(name="BANJAR", level="kabupaten"))),
    ("REKAP KOTA BANJARMASIN", Totals(RegionRef(name="BANJARMASIN", level="kota"))),
    ("REKAP KEC BANJARMASIN UTARA", Totals(RegionRef(name="BANJARMASIN UTARA", level="kecamatan"))),
    ("REKAP Banjarmasin Utara", Totals(RegionRef(name="BANJARMASIN UTARA"))),
    ("REKAP PROV KALIMANTAN SELATAN", Totals(RegionRef(name="KALIMANTAN SELATAN", level="provinsi"))),
    ("REKAP KEL SUNGAI JINGAH", Totals(RegionRef(name="SUNGAI JINGAH", level="desa"))),
    ("REKAP DESA SUNGAI JINGAH", Totals(RegionRef(name="SUNGAI JINGAH", level="desa"))),
    ("REKAP KEC 63.71.01", Totals(RegionRef("63.71.01", level="kecamatan"))),
    ("BELUM", Missing()),
    ("MISSING", Missing()),
    ("BELUM 63.71", Missing(RegionRef("63.71"))),
    ("belom 63.71", Missing(RegionRef("63.71"), ("keyword_typo",))),
    ("MISSING KOTA BANJARMASIN", Missing(RegionRef(name="BANJARMASIN", level="kota"))),
    ("STATUS 6371011001012", Status(StationRef(12, DESA))),
    ("STATUS 63.71.01.1001/12", Status(StationRef(12, DESA))),
    ("STATUS TPS 6371011001012", Status(StationRef(12, DESA))),
    ("status 6371011001/12", Status(StationRef(12, DESA))),
    ("STATU 6371011001012", Status(StationRef(12, DESA), ("keyword_typo",))),
    ("QC", QuickCount()),
    ("qc 63", QuickCount(RegionRef("63"))),
    ("QC KAB BANJAR", QuickCount(RegionRef(name="BANJAR", level="kabupaten"))),
    ("SIARAN Rapat koordinasi jam 19.00", Broadcast("Rapat koordinasi jam 19.00")),
    ("BROADCAST Please send C1 photos", Broadcast("Please send C1 photos")),
    ("SIARN rapat", Broadcast("rapat", ("keyword_typo",))),
    ("YA 4821", Confirm("4821")),
    ("YES ab12", Confirm("AB12")),
    # the coordinator PIN: a command of its own, and a suffix after any complete message
    ("PIN 4821", Pin("4821")),
    ("pin 482100", Pin("482100")),
    ("PIN 4821 9911", Pin("9911", old="4821")),
    ("PIN 4821 PIN 9911", Pin("4821", pin="9911")),
    ("REKAP PIN 4821", Totals(pin="4821")),
    ("REKAP 63.71 PIN 4821", Totals(RegionRef("63.71"), pin="4821")),
    ("REKAP KOTA BANJARMASIN pin:4821", Totals(RegionRef(name="BANJARMASIN", level="kota"), pin="4821")),
    ("BELUM 6371 PIN = 123456", Missing(RegionRef("63.71"), pin="123456")),
    ("QC#PIN#4821#", QuickCount(pin="4821")),
    ("STATUS 6371011001012 PIN 4821", Status(StationRef(12, DESA), pin="4821")),
    ("SIARAN Rapat jam 7 PIN 4821", Broadcast("Rapat jam 7", pin="4821")),
    ("SIARAN Ganti PIN ATM", Broadcast("Ganti PIN ATM")),
    ("LAPOR saksi minta PIN 12", Incident("saksi minta PIN 12")),
    ("YA 4821 PIN 9911", Confirm("4821", pin="9911")),
    ("BANTUAN PIN 4821", Help(pin="4821")),
    ("TPS 012 01=123 02=98 03=150 PIN 4821", report(12, pin="4821")),
    ("TPS 012 01=123 02=98 03=150 SAH=371 pin 907311", report(12, valid=371, pin="907311")),
    ("PIN", Err("missing_argument", field="PIN", token="PIN")),
    ("PIN 12", Err("bad_number", field="PIN", token="12", position=4)),
    ("PIN 1234567", Err("bad_number", field="PIN", token="1234567")),
    ("PIN abcd", Err("bad_number", field="PIN", token="abcd")),
    ("PIN 4821 9911 7", Err("unexpected_token", token="7")),
    ("REKAP 63.71 PIN 48", Err("bad_number", field="PIN", token="48")),
    ("REKAP PIN 4821 63.71", Err("unexpected_token", token="63.71", position=15)),
    ("TPS 012 01=123 02=98 03=150 PIN", Err("bad_number", field="PIN", token="", position=31)),
    ("TPS 012 01=123 02=98 03=150 PIN 4821 terima", Err("unexpected_token", token="terima")),
    ("TPS 012 01=123 PIN 4821 02=98 03=150", Err("unexpected_token", token="02=98")),
]

CASES = [*TOLERATED, *ERRORS, *COMMANDS]


def test_corpus_is_large_and_covers_every_error_code() -> None:
    assert len(CASES) >= 150
    codes = {want.code for _, want in CASES if isinstance(want, Err)}
    assert codes == set(ERROR_CODES)


@pytest.mark.parametrize(("text", "want"), CASES, ids=[repr(text)[:60] for text, _ in CASES])
def test_corpus(text: str, want: Message | Err) -> None:
    got = parse(text)
    if isinstance(want, Err):
        assert isinstance(got, ParseError), got
        assert want.matches(got), got
    else:
        assert got == want


def test_other_candidate_lists() -> None:
    legislative = tuple(f"{n:02d}" for n in range(1, 19))
    text = " ".join(f"{n}={n * 10}" for n in range(1, 19))
    got = parse(f"TPS 5 {text}", legislative)
    assert isinstance(got, Report)
    assert got.votes == {f"{n:02d}": n * 10 for n in range(1, 19)}
    assert parse("TPS 5 1=4 2=5", ("1", "2")) == Report(StationRef(5), {"1": 4, "2": 5})
    assert parse("TPS 5#4#5", ("2", "1")) == Report(
        StationRef(5), {"1": 4, "2": 5}, normalisations=("separators", "positional")
    )


@pytest.mark.parametrize("weird", [None, b"TPS 12 01=1 02=2 03=3", 12, 3.5, object(), ["TPS"], b"\xff\xfe"])
def test_not_a_string_never_raises(weird: object) -> None:
    got = parse(weird)  # type: ignore[arg-type]
    assert isinstance(got, Report | ParseError)


def test_bytes_are_decoded() -> None:
    assert parse(b"TPS 12 01=123 02=98 03=150") == CANONICAL  # type: ignore[arg-type]


def test_long_incident_text_is_kept() -> None:
    words = "Saksi kami tidak diberi salinan formulir C.Hasil oleh KPPS. " * 26
    got = parse("LAPOR " + words)
    assert isinstance(got, Incident)
    assert got.text == words.strip()
    assert len(got.text) > 1500


def test_error_tokens_are_short_enough_to_quote() -> None:
    got = parse("TPS 12 01=" + "9" * 1500 + " 02=1 03=1")
    assert isinstance(got, ParseError)
    assert got.code == "bad_number"
    assert got.token == "9" * 40


def test_reports_beyond_the_length_limit_are_refused_at_the_first_word_beyond() -> None:
    text = "TPS 12 01=1 02=2 03=3 " + "#" * 2000 + "SAH=6"
    got = parse(text)
    assert isinstance(got, ParseError)
    assert (got.code, got.token, got.position, got.details) == (
        "unexpected_token",
        "SAH=6",
        2022,
        ("too_long",),
    )


ALIASES = {"AMIN": "01", "ANIES": "01", "PRABOWO": "02", "GANJAR": "03"}


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("TPS 012 AMIN=123 PRABOWO=98 GANJAR=150", report(12, notes=("candidate_names",))),
        ("TPS 12 anies 123 prabowo 98 ganjar 150", report(12, notes=("candidate_names",))),
        (
            "TPS 12 Amin: 123, 02=98, Ganjar: 150",
            report(12, notes=("separators", "colon_as_equals", "candidate_names")),
        ),
        ("AMIN=123 PRABOWO=98 GANJAR=150", report(None, notes=("candidate_names",))),
        ("TPS 12 AMIN=123 01=5 02=98 03=150", Err("duplicate_candidate", field="01", token="01")),
        ("TPS 12 ANIES=123 AMIN=123 PRABOWO=98 GANJAR=150", Err("duplicate_candidate", token="AMIN")),
        ("TPS 12 AMIN=123 PRABOWO=98", Err("missing_candidate", field="03")),
        ("TPS 12 JOKOWI=5 PRABOWO=98 GANJAR=150", Err("unexpected_token", token="JOKOWI")),
        ("TPS 12 AMIN 123 4 PRABOWO=98 GANJAR=150", Err("bad_number", field="01", token="123 4")),
        ("JOKOWI 5", Err("unknown_command", token="JOKOWI")),
    ],
)
def test_candidates_by_name(text: str, want: Message | Err) -> None:
    got = parse(text, ("01", "02", "03"), ALIASES)
    if isinstance(want, Err):
        assert isinstance(got, ParseError), got
        assert want.matches(got), got
    else:
        assert got == want
