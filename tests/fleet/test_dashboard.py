"""The dashboard's gateways page and the overview's warnings, for a logged-in coordinator."""

from __future__ import annotations

import pytest

from tests.dashboard.conftest import ADMIN, login
from tests.gateways.helpers import android_post, envelope
from tests.support import Statements

from .support import PHONE_B_ID, heartbeat_fleet_settings


@pytest.fixture
def settings(settings, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    return heartbeat_fleet_settings(settings, tmp_path, monkeypatch)


def test_gateways_page_and_overview_warn_about_a_silent_phone(app, client, users):  # type: ignore[no-untyped-def]
    browser = app.test_client()
    assert login(browser, ADMIN).status_code == 302
    assert (
        android_post(
            client, envelope("+6281100000001", "TPS 012 01=1 02=2 03=3", device=PHONE_B_ID)
        ).status_code
        == 200
    )

    page = browser.get("/dashboard/gateways").get_data(as_text=True)
    assert 'data-device="phone-a"' in page and 'data-device="modem-2"' in page
    assert "phone-a: down: no heartbeat yet" in page
    row = page.split('data-device="phone-b"')[1].split("</tr>")[0]
    assert "<td>1</td>" in row  # one reply queued for phone-b

    overview = browser.get("/dashboard/").get_data(as_text=True)
    assert 'id="gateway-warnings"' in overview and "phone-a: down: no heartbeat yet" in overview
    assert 'href="/dashboard/gateways"' in overview

    browser.post(
        "/dashboard/lang", data={"lang": "en", "next": "/dashboard/gateways", "csrf_token": _token(browser)}
    )
    english = browser.get("/dashboard/gateways").get_data(as_text=True)
    assert "SMS gateways" in english and "Reply lag p50/p95" in english


def test_the_overview_warns_as_the_fleet_status_does_without_counting_the_inbound_traffic(
    app, client, users, database
):  # type: ignore[no-untyped-def]
    """The overview shows exactly the warnings of ``fleet_status`` but never groups the night's
    inbound messages (2 million nationally) to count traffic it does not show."""
    from smsgate.models import utcnow
    from smsgate.outgoing.fleet import load_fleet
    from smsgate.outgoing.fleet_status import fleet_status, fleet_warnings

    browser = app.test_client()
    assert login(browser, ADMIN).status_code == 302
    fleet = load_fleet(app.extensions["smsgate.settings"])
    with database.read() as session:
        full = fleet_status(session, fleet, utcnow()).warnings
        assert fleet_warnings(session, fleet, utcnow()) == full
    assert full  # phone-a has sent no heartbeat yet
    with Statements() as statements:
        overview = browser.get("/dashboard/").get_data(as_text=True)
    sent = statements.lowered()
    assert all(w in overview for w in full)
    assert not [s for s in sent if "from inbound_messages group by" in s]


def test_a_wrong_gateways_file_is_shown_not_a_500(app, users, settings, tmp_path):  # type: ignore[no-untyped-def]
    with open(settings.gateways_file, "a", encoding="utf-8") as handle:
        handle.write('\n[[device]]\nname = "phone-a"\nprovider = "android"\nurl = "http://x"\n')
    browser = app.test_client()
    assert login(browser, ADMIN).status_code == 302
    page = browser.get("/dashboard/gateways")
    assert page.status_code == 200 and "device names must be unique" in page.get_data(as_text=True)
    assert "device names must be unique" in browser.get("/dashboard/").get_data(as_text=True)


def _token(browser) -> str:  # type: ignore[no-untyped-def]
    from tests.dashboard.conftest import csrf_token

    return csrf_token(browser, "/dashboard/gateways")


def test_metrics_carry_per_device_gauges(client):  # type: ignore[no-untyped-def]
    assert (
        android_post(
            client, envelope("+6281100000001", "TPS 012 01=1 02=2 03=3", device=PHONE_B_ID)
        ).status_code
        == 200
    )
    text = client.get("/metrics").get_data(as_text=True)
    assert 'smsgate_gateway_up{device="phone-a",provider="android"} 0.0' in text  # no heartbeat yet
    assert 'smsgate_gateway_warning{device="phone-a",provider="android"} 1.0' in text
    assert 'smsgate_gateway_up{device="phone-b",provider="android"} 1.0' in text
    assert 'smsgate_gateway_queue_depth{device="phone-b",provider="android"} 1.0' in text
    assert 'smsgate_gateway_last_seen_age_seconds{device="modem-1",provider="kannel"} -1.0' in text
