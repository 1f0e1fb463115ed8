"""Where events go: the tally destinations configured for this deployment.

``SMSGATE_TALLY_URL`` + ``SMSGATE_TALLY_SECRET`` name one destination called ``tally``; the
``SMSGATE_DESTINATIONS`` file (JSON or TOML) lists more. Both may be set: the lists combine.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..config import Settings


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Destination:
    name: str
    url: str
    secret: str
    timeout: float | None = None


def load_destinations(settings: Settings) -> list[Destination]:
    """``SMSGATE_TALLY_URL`` + ``SMSGATE_TALLY_SECRET`` (named ``tally``) and/or the entries of
    the ``SMSGATE_DESTINATIONS`` file (JSON or TOML: ``destinations = [{name, url, secret}]``,
    ``secret_env`` instead of ``secret`` reads the secret from that environment variable)."""
    found: list[Destination] = []
    if settings.tally_url:
        if not settings.tally_secret:
            raise ConfigError("SMSGATE_TALLY_URL is set but SMSGATE_TALLY_SECRET is not")
        found.append(Destination("tally", settings.tally_url, settings.tally_secret))
    if settings.destinations_file:
        path = Path(settings.destinations_file)
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
        entries = data.get("destinations", []) if isinstance(data, dict) else data
        for entry in entries:
            secret = entry.get("secret") or os.environ.get(entry.get("secret_env", ""), "")
            if not entry.get("name") or not entry.get("url") or not secret:
                raise ConfigError(f"{path}: every destination needs name, url and secret (or secret_env)")
            timeout = entry.get("timeout")
            found.append(Destination(str(entry["name"]), str(entry["url"]), secret, timeout))
    names = [d.name for d in found]
    if len(set(names)) != len(names):
        raise ConfigError(f"destination names must be unique: {names}")
    if any(len(name) > 64 for name in names):
        raise ConfigError("destination names are at most 64 characters")
    return found
