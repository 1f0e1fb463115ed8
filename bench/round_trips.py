"""Counting a database's round trips while something runs, for the benches that report them.

Kept apart from the benches' other helpers and free of smsgate imports, so that
``bench/ingest.py`` can count the round trips of an older revision's code with it too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, event


def count_round_trips(engine: Engine, action: Callable[[], object]) -> tuple[int, list[str]]:
    """Round trips to the database while ``action`` runs: every statement, ``BEGIN``, ``COMMIT``,
    ``ROLLBACK``, and the pool's pre-ping on each checkout (it bypasses the cursor events)."""
    seen: list[str] = []

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split())[:90])

    def on_begin(_conn: Any) -> None:
        if engine.dialect.name != "sqlite":  # psycopg's own BEGIN; smsgate sends SQLite's itself
            seen.append("BEGIN")

    def on_commit(_conn: Any) -> None:
        seen.append("COMMIT")

    def on_rollback(_conn: Any) -> None:
        seen.append("ROLLBACK")

    def on_checkout(*_: Any) -> None:
        if getattr(engine.pool, "_pre_ping", False):
            seen.append("(pool pre-ping)")

    hooks = [
        (engine, "before_cursor_execute", on_execute),
        (engine, "begin", on_begin),
        (engine, "commit", on_commit),
        (engine, "rollback", on_rollback),
        (engine.pool, "checkout", on_checkout),
    ]
    for target, name, fn in hooks:
        event.listen(target, name, fn)
    try:
        action()
    finally:
        for target, name, fn in hooks:
            event.remove(target, name, fn)
    return len(seen), seen
