"""What an admin types in the message log's text field, as conditions a trigram index serves
well on PostgreSQL.

The text is found anywhere in a message, whatever its case, character for character (``%`` and
``_`` are not wildcards). ``lower(body) LIKE '%tps 012%'`` says exactly that (``anywhere``), but
pg_trgm reads word boundaries into such a pattern: the space before ``012`` adds the trigrams of
a word starting ``0`` and ``01``, which nearly every report holds (``01=…``), and intersecting
those posting lists took 150 ms nationally even when no message matched. Each run of letters
and digits of the text is also in any matching message, so the index can be asked for the runs
alone (``candidates``: ``LIKE '%tps%' AND LIKE '%012%'``, 2 ms) and the exact text checked on
the rows found (``exactly``, which no index serves, so it stays a filter). How
``dashboard.queries`` combines them: ``queries._page``.

``candidates`` and ``exactly`` are for PostgreSQL; SQLite, which has no such index, compares
``anywhere`` row by row.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import ColumnElement, func

#: A trigram needs three characters: shorter runs give the index nothing to look up.
TRIGRAM = 3
_RUNS = re.compile(r"[^\W_]+")


def runs(text: str) -> list[str]:
    """The runs of letters and digits in ``text`` long enough to be looked up in the index."""
    return [run for run in _RUNS.findall(text) if len(run) >= TRIGRAM]


def anywhere(column: Any, text: str) -> ColumnElement[bool]:
    """``column`` holding ``text`` (already lower case) anywhere, whatever its case: a pattern
    the trigram index serves, boundary trigrams and all (the whole search on SQLite)."""
    return func.lower(column).contains(text, autoescape=True)


def candidates(column: Any, text: str) -> list[ColumnElement[bool]]:
    """Conditions every message holding ``text`` meets, one per run, for the trigram index
    alone (empty when no run is long enough). They find a superset: ``exactly`` decides."""
    # The runs hold only letters and digits: nothing a LIKE pattern would read as a wildcard.
    return [func.lower(column).like(f"%{run}%") for run in runs(text)]


def exactly(column: Any, text: str) -> ColumnElement[bool]:
    """``column`` holding ``text`` anywhere, as a function no index serves: a filter on the
    candidates, never a reason for the planner to go back to the index."""
    return func.strpos(func.lower(column), text) > 0
