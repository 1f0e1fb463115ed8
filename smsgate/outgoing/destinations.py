"""Where events go: the tally destinations configured for this deployment.

``SMSGATE_TALLY_URL`` + ``SMSGATE_TALLY_SECRET`` name one destination called ``tally``; the
``SMSGATE_DESTINATIONS`` file (JSON or TOML) lists more. Both may be set: the lists combine.
Each destination has a signing secret, optionally the previous one while a secret is being
rotated (requests then carry a signature with each), and the event schema version it reads.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import ConfigError, Settings
from ..services.outbox import SCHEMA_VERSION, SCHEMA_VERSIONS


@dataclass(frozen=True)
class Destination:
    name: str
    url: str
    secret: str
    timeout: float | None = None
    #: The secret being rotated out: signed with too, so a receiver that still only knows it verifies.
    previous_secret: str | None = None
    #: The event schema version this destination receives (``services.outbox.document``).
    schema_version: int = SCHEMA_VERSION

    @property
    def secrets(self) -> tuple[str, ...]:
        """The secrets requests are signed with: the current one first."""
        return (self.secret, self.previous_secret) if self.previous_secret else (self.secret,)


def _version(value: Any, where: str) -> int:
    if value in (None, ""):
        return SCHEMA_VERSION
    try:
        version = int(value)
    except (TypeError, ValueError):
        version = -1
    if version not in SCHEMA_VERSIONS or isinstance(value, bool):
        raise ConfigError(f"{where}: schema_version must be one of {list(SCHEMA_VERSIONS)}, not {value!r}")
    return version


def _secret(entry: dict[str, Any], key: str) -> str:
    """``entry[key]``, or the environment variable named by ``entry[key + "_env"]``."""
    return str(entry.get(key) or os.environ.get(str(entry.get(f"{key}_env") or ""), "") or "")


def load_destinations(settings: Settings) -> list[Destination]:
    """``SMSGATE_TALLY_URL`` + ``SMSGATE_TALLY_SECRET`` (named ``tally``; optionally
    ``SMSGATE_TALLY_PREVIOUS_SECRET`` and ``SMSGATE_TALLY_SCHEMA_VERSION``) and/or the entries of
    the ``SMSGATE_DESTINATIONS`` file (JSON or TOML: ``destinations = [{name, url, secret}]``;
    ``secret_env`` instead of ``secret`` reads the secret from that environment variable, and
    likewise ``previous_secret``/``previous_secret_env``; ``timeout``; ``schema_version``)."""
    found: list[Destination] = []
    if settings.tally_url:
        if not settings.tally_secret:
            raise ConfigError("SMSGATE_TALLY_URL is set but SMSGATE_TALLY_SECRET is not")
        found.append(
            Destination(
                "tally",
                settings.tally_url,
                settings.tally_secret,
                previous_secret=settings.tally_previous_secret or None,
                schema_version=_version(settings.tally_schema_version, "SMSGATE_TALLY_SCHEMA_VERSION"),
            )
        )
    if settings.destinations_file:
        path = Path(settings.destinations_file)
        text = path.read_text(encoding="utf-8")
        try:
            data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
        except ValueError as exc:
            raise ConfigError(
                f"{path}: not valid {'TOML' if path.suffix.lower() == '.toml' else 'JSON'}: {exc}"
            ) from exc
        entries = data.get("destinations", []) if isinstance(data, dict) else data
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ConfigError(
                f"{path}: expected a list of destinations (destinations = [{{name, url, secret}}])"
            )
        for entry in entries:
            secret = _secret(entry, "secret")
            if not entry.get("name") or not entry.get("url") or not secret:
                raise ConfigError(f"{path}: every destination needs name, url and secret (or secret_env)")
            found.append(
                Destination(
                    str(entry["name"]),
                    str(entry["url"]),
                    secret,
                    entry.get("timeout"),
                    previous_secret=_secret(entry, "previous_secret") or None,
                    schema_version=_version(entry.get("schema_version"), f"{path}: {entry['name']}"),
                )
            )
    names = [d.name for d in found]
    if len(set(names)) != len(names):
        raise ConfigError(f"destination names must be unique: {names}")
    if any(len(name) > 64 for name in names):
        raise ConfigError("destination names are at most 64 characters")
    return found
