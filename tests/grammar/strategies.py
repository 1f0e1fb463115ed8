"""Hypothesis strategies for reports: canonical ones and the same reports typed carelessly."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

CANDIDATES = ("01", "02", "03")
DESA_CODES = st.from_regex(r"[1-9][0-9]{9}", fullmatch=True)


@dataclass(frozen=True)
class Values:
    """What a volunteer means to report, independent of how it is typed."""

    tps: int
    desa: str | None
    votes: tuple[int, ...]
    valid: bool
    invalid: int | None
    registered: int | None

    @property
    def total(self) -> int:
        return sum(self.votes)


values = st.builds(
    Values,
    tps=st.integers(1, 999),
    desa=st.none() | DESA_CODES,
    votes=st.tuples(*(st.integers(0, 3333) for _ in CANDIDATES)),
    valid=st.booleans(),
    invalid=st.none() | st.integers(0, 9999),
    registered=st.none() | st.integers(0, 9999),
)


def canonical(v: Values) -> str:
    """The canonical form: ``TPS 012 01=123 02=98 03=150 [SAH=..] [TS=..] [DPT=..]``."""
    station = f"{v.desa}{v.tps:03d}" if v.desa else f"{v.tps:03d}"
    parts = [f"TPS {station}", *(f"{code}={n}" for code, n in zip(CANDIDATES, v.votes, strict=True))]
    if v.valid:
        parts.append(f"SAH={v.total}")
    if v.invalid is not None:
        parts.append(f"TS={v.invalid}")
    if v.registered is not None:
        parts.append(f"DPT={v.registered}")
    return " ".join(parts)


@st.composite
def careless(draw: st.DrawFn, v: Values) -> str:
    """The same values typed with random separators, case, ``:``, leading zeros, order and O for 0."""
    gap = st.lists(st.sampled_from([" ", "#", "*", ",", ";"]), min_size=1, max_size=3).map("".join)
    assign = st.sampled_from(["=", ":", " = ", " :", "= "])

    def case(word: str) -> str:
        return "".join(draw(st.sampled_from([c.upper(), c.lower()])) for c in word)

    def o_for_zero(digits: str) -> str:
        return "".join(draw(st.sampled_from(["0", "O", "o"])) if c == "0" else c for c in digits)

    if v.desa and draw(st.booleans()):
        d = v.desa
        station = f"{d[:2]}.{d[2:4]}.{d[4:6]}.{d[6:]}/{v.tps:0{draw(st.integers(1, 3))}d}"
    elif v.desa:
        station = f"{v.desa}{v.tps:03d}"
    else:
        station = f"{v.tps:0{draw(st.integers(1, 3))}d}"
    station = o_for_zero(station)
    head = case("TPS") + ("" if draw(st.booleans()) else draw(gap)) + station
    pairs = [
        o_for_zero(f"{int(code):0{draw(st.integers(1, 3))}d}") + draw(assign) + o_for_zero(str(n))
        for code, n in zip(CANDIDATES, v.votes, strict=True)
    ]
    pairs = draw(st.permutations(pairs))
    extras = []
    if v.valid:
        extras.append(case("SAH") + draw(assign) + str(v.total))
    if v.invalid is not None:
        extras.append(case("TS") + draw(assign) + str(v.invalid))
    if v.registered is not None:
        extras.append(case("DPT") + draw(assign) + str(v.registered))
    words = [head, *pairs, *extras]
    text = "".join(word + draw(gap) for word in words[:-1]) + words[-1]
    return draw(st.sampled_from(["", " ", "#"])) + text + draw(st.sampled_from(["", " ", "#", ";"]))


# Text that looks like reports: the fast path and the grammar must agree on all of it.
REPORTISH_ALPHABET = "0123456789Oo=:#*,; ./-()|TPSADHNtpsahdxnQC?"
reportish_text = st.text(alphabet=REPORTISH_ALPHABET, max_size=60)

report_words = st.sampled_from(
    [
        "TPS",
        "tps",
        "TPS12",
        "TPSO12",
        "01",
        "1",
        "O1",
        "02",
        "03",
        "04",
        "=",
        ":",
        "==",
        "123",
        "98",
        "150",
        "0",
        "O",
        "SAH",
        "TS",
        "DPT",
        "6371011001012",
        "63.71.01.1001/12",
        "6371011001/12",
        "12a",
        "1.230",
        "-5",
        "99999",
        "x",
        "CEK",
        "REKAP",
        "BATAL",
        "HELP",
        "?",
        "PIN",
        "pin",
        "paslon",
        "No.",
        "no.1",
        "suara",
        "SUARA SAH",
        "TIDAK SAH",
        "JML SAH:",
        "terima kasih",
        "salam",
        "AMIN",
        "salah",
        "(01)",
        "1)",
        "01-",
        "-",
        "|",
        "/",
        "150.",
        "12:",
        "TPS.012",
        "TPS-12",
        "4821",
        "PIN=4821",
    ]
)
gaps = st.sampled_from([" ", "", "#", "  ", ",", ";", "*", " # "])
reportish_sequence = st.lists(st.tuples(report_words, gaps), max_size=12).map(
    lambda parts: "".join(word + gap for word, gap in parts)
)


NAMES = {"01": ("AMIN", "anies"), "02": ("PRABOWO", "Gibran"), "03": ("GANJAR", "mahfud")}
ALIASES = {word.upper(): code for code, words in NAMES.items() for word in words}


@st.composite
def volunteer_style(draw: st.DrawFn, v: Values) -> str:
    """The same values written the way volunteers copy the C.Hasil form: fillers, names, labels,
    ``-``/``)``/``(..)`` between code and count, ``|``/``/`` between pairs, a closing at the end."""
    pick = draw
    station = f"{v.desa}{v.tps:03d}" if v.desa else str(v.tps)
    head = pick(st.sampled_from(["TPS ", "Tps ", "TPS No. ", "TPS nomor ", "TPS.", "TPS-", "Hasil TPS "]))
    head += station + pick(st.sampled_from(["", ":", ".", ","]))
    lead = pick(st.sampled_from(["", " suara", " hasil:", " paslon"]))
    style = pick(st.sampled_from(["pairs", "spaced"]))
    between = st.sampled_from([" ", ", ", " | ", "/", "\n", "; "])
    pairs = []
    for code, n in zip(CANDIDATES, v.votes, strict=True):
        filler = pick(st.sampled_from(["", "paslon ", "no ", "calon ", "nomor urut "]))
        if style == "spaced":  # code and count apart by a gap alone: only in code order
            pairs.append(f"{filler}{pick(st.sampled_from([code, str(int(code))]))} {n}")
            continue
        kind = pick(st.sampled_from(["code", "paren", "bracket", "name"]))
        if kind == "code":
            sign = pick(st.sampled_from(["=", ":", " = ", "-", " - ", ": "]))
            pairs.append(f"{filler}{pick(st.sampled_from([code, str(int(code))]))}{sign}{n}")
        elif kind == "paren":
            pairs.append(f"{filler}({code}){pick(st.sampled_from(['', ' ', '=']))}{n}")
        elif kind == "bracket":
            pairs.append(f"{filler}{int(code)}){pick(st.sampled_from(['', ' ']))}{n}")
        else:
            pairs.append(
                f"{pick(st.sampled_from(NAMES[code]))}{pick(st.sampled_from(['=', ':', ' ', ' = ']))}{n}"
            )
    if style == "pairs":
        pairs = pick(st.permutations(pairs))
    text = head + lead + " " + pick(between).join(pairs)
    if v.valid:
        text += " " + pick(st.sampled_from(["SAH ", "SUARA SAH ", "JML SAH: ", "sah="])) + str(v.total)
    if v.invalid is not None:
        text += " " + pick(st.sampled_from(["TS ", "TIDAK SAH ", "TDK SAH : ", "suara tidak sah="]))
        text += str(v.invalid)
    if v.registered is not None:
        text += " " + pick(st.sampled_from(["DPT ", "DPT: ", "JML DPT "])) + str(v.registered)
    return text + pick(st.sampled_from(["", ".", " Terima kasih", ", mksh", "\nSalam", " tks."]))


@st.composite
def near_reports(draw: st.DrawFn) -> str:
    """A report as people type it, then up to two slips of the thumb: a character dropped,
    doubled, swapped with the next or replaced. Most stay reports the fast path answers, the
    rest are near misses it must decline or reject exactly as the grammar does."""
    v = draw(values)
    form = draw(st.sampled_from(["canonical", "careless", "volunteer"]))
    if form == "canonical":
        text = canonical(v)
    else:
        text = draw(careless(v) if form == "careless" else volunteer_style(v))
    for _ in range(draw(st.integers(0, 2))):
        if not text:
            break
        at = draw(st.integers(0, len(text) - 1))
        slip = draw(st.sampled_from(["drop", "double", "swap", "replace"]))
        if slip == "drop":
            text = text[:at] + text[at + 1 :]
        elif slip == "double":
            text = text[:at] + text[at] + text[at:]
        elif slip == "swap" and at + 1 < len(text):
            text = text[:at] + text[at + 1] + text[at] + text[at + 2 :]
        else:
            text = text[:at] + draw(st.sampled_from(REPORTISH_ALPHABET)) + text[at + 1 :]
    return text
