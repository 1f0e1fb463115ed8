"""One configuration: ``Settings`` reads every variable, gives each default once, and is what
the rest of smsgate reads (never ``os.environ``, ``app.config`` or a copy of the variables)."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from smsgate.config import ConfigError, Settings

ROOT = Path(__file__).parent.parent

#: Where the environment is still read, and why it is not smsgate configuration.
ALLOWED_ENVIRONMENT_READS = {
    # prometheus_client's own variable, set by ``serve`` before the app is imported.
    "smsgate/server.py",
    "smsgate/metrics.py",
    # The demo hands its own environment, plus the demo's settings, to the server it starts.
    "smsgate/demo.py",
    # A gateways or destinations file may name the variable holding a secret (``password_env``).
    "smsgate/outgoing/fleet.py",
    "smsgate/outgoing/destinations.py",
}


def test_the_defaults_are_written_once():
    """``from_env`` with nothing set is ``Settings()``: flood control included."""
    bare, from_nothing = Settings(), Settings.from_env({})
    differing = [
        f.name for f in dataclasses.fields(Settings) if getattr(bare, f.name) != getattr(from_nothing, f.name)
    ]
    assert differing == []
    assert (bare.flood_per_minute, bare.flood_replies_per_hour, bare.flood_duplicate_seconds) == (10, 30, 600)


def test_every_bad_value_is_a_config_error():
    for variable, value in [
        ("SMSGATE_TRUSTED_PROXIES", "-1"),
        ("SMSGATE_KANNEL_REPLY", "later"),
        ("SMSGATE_LOG_FORMAT", "xml"),
        ("SMSGATE_FLOOD_PER_MINUTE", "ten"),
        ("SMSGATE_TIMEZONE", "Mars/Olympus"),
        ("SMSGATE_POLLS_CLOSE", "14 Feb 2024 13:00"),
        ("SMSGATE_SEND_RATE", "android=fast"),
        ("SMSGATE_QUICKCOUNT_CARD_SECONDS", "-1"),
        ("SMSGATE_QUICKCOUNT_CARD_GRACE_SECONDS", "-1"),
        ("SMSGATE_QUICKCOUNT_CARD_GRACE_SECONDS", "nan"),
    ]:
        with pytest.raises(ConfigError, match=variable):
            Settings.from_env({variable: value})


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "Infinity"])
def test_the_card_interval_must_be_a_finite_number(value):
    """``float()`` reads these; the card's ``timedelta`` cannot, so every refresh would fail."""
    with pytest.raises(ConfigError, match="SMSGATE_QUICKCOUNT_CARD_SECONDS must be a finite number"):
        Settings.from_env({"SMSGATE_QUICKCOUNT_CARD_SECONDS": value})


FLOAT_SETTINGS = [
    "SMSGATE_LATE_HOURS",
    "SMSGATE_BROADCAST_TTL_MINUTES",
    "SMSGATE_REMIND_EVERY_HOURS",
    "SMSGATE_OUTBOX_TIMEOUT",
    "SMSGATE_OUTBOX_MAX_AGE_HOURS",
    "SMSGATE_OUTBOX_BACKOFF",
    "SMSGATE_OUTBOX_LEASE",
]


@pytest.mark.parametrize("variable", FLOAT_SETTINGS)
@pytest.mark.parametrize("value", ["nan", "inf", "-Infinity"])
def test_no_number_setting_takes_nan_or_infinity(variable, value):
    """Every setting read as a float refuses what ``float()`` reads but no range check catches."""
    with pytest.raises(ConfigError, match=f"{variable} must be a finite number"):
        Settings.from_env({variable: value})


def _environment_reads(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
        and node.attr in ("environ", "getenv")
    ]


def test_only_the_configuration_reads_the_environment():
    found = {}
    for package in ("grammar", "webhooks", "smsgate"):
        for path in sorted((ROOT / package).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            if name == "smsgate/config.py" or name in ALLOWED_ENVIRONMENT_READS:
                continue
            lines = _environment_reads(path)
            if lines:
                found[name] = lines
    assert found == {}


def test_settings_are_not_copied_into_flask_config(settings, database):
    from smsgate import create_app

    app = create_app(settings, database=database)
    assert app.extensions["smsgate.settings"] is settings
    assert not [key for key in app.config if key.startswith(("SMSGATE_", "TWILIO_"))]
