"""The JSON Schemas of the event documents, one file per schema version (``schemas/event-v<N>.json``).

The files are the contract a tally team builds on; smsgate checks its own documents against
them in the tests, and the reference receiver (``smsgate receive``) checks every document it
receives against the version the document claims.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs

SCHEMAS = Path(__file__).parent / "schemas"


class UnknownVersion(ValueError):
    """A document claims a schema version this copy of smsgate has no schema for."""


def path(version: int) -> Path:
    return SCHEMAS / f"event-v{version}.json"


def versions() -> tuple[int, ...]:
    """The versions there is a schema file for, oldest first."""
    found = (p.stem.removeprefix("event-v") for p in SCHEMAS.glob("event-v*.json"))
    return tuple(sorted(int(v) for v in found if v.isdecimal()))


@cache
def schema(version: int) -> dict[str, Any]:
    if not path(version).is_file():
        raise UnknownVersion(f"no schema for version {version!r} (known: {versions()})")
    return json.loads(path(version).read_text(encoding="utf-8"))


@cache
def validator(version: int) -> jsonschema_rs.Draft202012Validator:
    """The compiled validator of ``version``, formats (``date-time``, ``uuid``) checked too."""
    return jsonschema_rs.Draft202012Validator(schema(version), validate_formats=True)


def errors(document: Any) -> list[str]:
    """Why ``document`` is not a valid event of the version it claims; empty when it is.

    Raises ``UnknownVersion`` when it claims a version without a schema file here (a receiver
    older than its sender: not the document's fault).
    """
    if not isinstance(document, dict):
        return ["not a JSON object"]
    version = document.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        return [f"schema_version must be a positive integer, not {version!r}"]
    found = validator(version).iter_errors(document)
    return [f"{'/'.join(map(str, e.instance_path)) or '(document)'}: {e.message}" for e in found]
