"""Echoing values back the way the sender should have typed them."""

from __future__ import annotations

from collections.abc import Mapping


def votes_text(votes: Mapping[str, int]) -> str:
    return " ".join(f"{code}={count}" for code, count in sorted(votes.items()))


def extras_text(valid: int | None, invalid: int | None, registered: int | None) -> str:
    parts = [
        f"{name}={value}"
        for name, value in (("SAH", valid), ("TS", invalid), ("DPT", registered))
        if value is not None
    ]
    return "".join(f" {part}" for part in parts)
