"""Short reference codes a volunteer can type back on a keypad (``BATAL K7Q2XM``)."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute, Session

#: No 0/O, 1/I/L: a code read off a tiny screen must survive being typed back.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
LENGTH = 6


def new_code(length: int = LENGTH) -> str:
    """A code drawn uniformly from the ``len(ALPHABET) ** length`` possible ones: one draw from
    the system's random source, spelled by ``code_for`` (not one draw, and one system call, per
    character: the same distribution for half the cost)."""
    return code_for(secrets.randbelow(len(ALPHABET) ** length), length)


def code_for(number: int, length: int = LENGTH) -> str:
    """``number`` (below ``len(ALPHABET) ** length``) as ``length`` characters of ``ALPHABET``,
    one to one: a uniform number gives a uniform code."""
    characters = []
    for _ in range(length):
        number, digit = divmod(number, len(ALPHABET))
        characters.append(ALPHABET[digit])
    return "".join(characters)


def unique_ref(session: Session, column: InstrumentedAttribute[str], length: int = LENGTH) -> str:
    """A code not yet used in ``column``; 31^6 ≈ 887 million codes make a retry rare."""
    while True:
        code = new_code(length)
        if session.scalar(select(column).where(column == code).limit(1)) is None:
            return code
