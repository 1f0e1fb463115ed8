from __future__ import annotations

from dataclasses import replace

import pytest

from tests.gateways.helpers import ANDROID_SECRET, KANNEL_SECRET


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    """The base test settings plus both Indonesian gateways (flood control off unless a test sets it)."""
    return replace(
        settings,
        android_secret=ANDROID_SECRET,
        kannel_secret=KANNEL_SECRET,
        kannel_allowed_ips=("127.0.0.1",),
    )
