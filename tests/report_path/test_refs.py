"""Reference codes: ``new_code`` spells one uniform draw with ``code_for``, so every code of the
alphabet must come from exactly one number (then a uniform draw gives a uniform code)."""

from __future__ import annotations

from itertools import product

from smsgate.services.refs import ALPHABET, LENGTH, code_for, new_code


def test_code_for_spells_every_code_from_exactly_one_number() -> None:
    for length in (1, 2, 3):
        codes = [code_for(number, length) for number in range(len(ALPHABET) ** length)]
        assert sorted(codes) == sorted("".join(p) for p in product(ALPHABET, repeat=length))


def test_new_codes_are_of_the_alphabet_and_length() -> None:
    codes = {new_code() for _ in range(2000)}
    assert all(len(code) == LENGTH and set(code) <= set(ALPHABET) for code in codes)
    assert len(codes) > 1990  # 887 million codes: repeats in 2,000 draws are all but impossible
    assert {code[0] for code in codes} == set(ALPHABET)  # and the first character varies (31 of 31)
