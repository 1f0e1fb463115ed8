"""A coordinator cannot get around the override rule by cancelling the volunteers first: volunteer
reports a coordinator cancelled (``BATAL <ref> PIN``) still stand as the volunteers' agreement while
the cancel's ``coordinator_cancel`` flag is open, so the coordinator's own numbers make the station
``overridden`` and are not counted until a reviewer decides. Through signed Twilio webhooks, the
dashboard and the API via the Flask test client, and ``smsgate tally --verify``, on SQLite and
PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select

from smsgate.models import Flag, Report
from smsgate.services import outbox

from ..support import COORD_KOTA, VOLUNTEER_A, VOLUNTEER_B, WITH_PIN
from .conftest import csrf_token
from .test_coordinator_override import (
    AGREED,
    AUTH,
    COORDINATOR,
    STATION,
    draw_sample,
    every_event_validates,
    kota_tally,
    no_drift,
    sampled_reading,
    state,
    station_events,
)


def cancel_then_report(sms, database) -> tuple[list[str], int, str]:  # type: ignore[no-untyped-def]
    """The reproduction: A and B agree 100/50/25, the kota coordinator BATALs both with the PIN,
    then sends 1/250/1 with the PIN. The volunteers' refs, the coordinator's report id and ref."""
    refs = []
    for phone in (VOLUNTEER_A, VOLUNTEER_B):
        reply = sms(phone, "TPS 012 01=100 02=50 03=25")
        assert reply.startswith("OK TPS 012"), reply
        refs.append(reply.split("Ref ")[1].split()[0])
    for ref in refs:
        assert sms(COORD_KOTA, f"BATAL {ref}{WITH_PIN}") == f"OK laporan {ref} TPS {STATION} dibatalkan."
    assert state(database) == ("missing", {}, None)
    reply = sms(COORD_KOTA, f"TPS {STATION} 01=1 02=250 03=1{WITH_PIN}")
    assert reply.startswith(f"OK DITINJAU TPS {STATION} 01=1 02=250 03=1 Ref "), reply
    assert reply.endswith("Beda dgn kesepakatan 2 relawan: belum dihitung sampai dikonfirmasi di dasbor.")
    with database.read() as session:
        mine = session.scalars(select(Report).where(Report.by_coordinator.is_(True))).one()
        return refs, mine.id, mine.ref


def test_cancelled_volunteers_still_stand_against_the_coordinators_numbers(
    sms, client, admin, database, database_url
):  # type: ignore[no-untyped-def]
    refs, _, coordinator_ref = cancel_then_report(sms, database)
    status, votes, counted_ref = state(database)
    assert (status, votes) == ("overridden", AGREED) and counted_ref in refs
    document = kota_tally(client)
    assert document["votes"] == AGREED
    assert document["stations"]["overridden"] == 1 and document["stations"]["verified"] == 0
    assert document["stations"]["flagged"] == 1
    no_drift(database_url)
    flags = client.get("/api/flags?region=63.71", headers=AUTH).get_json()["flags"]
    assert sorted(f["kind"] for f in flags) == ["coordinator_cancel", "coordinator_cancel", "override"]
    [override] = [f for f in flags if f["kind"] == "override"]
    assert "01=100 02=50 03=25 -> 01=1 02=250 03=1" in override["reason"]
    # The review card offers accept and reject for the coordinator's report.
    page = admin.get("/dashboard/review").get_data(as_text=True)
    card = page[page.index(f'data-station="{STATION}"') :]
    assert f'data-accept="{coordinator_ref}"' in card and f'data-reject="{coordinator_ref}"' in card
    assert f"Ref {counted_ref}" in card


def test_accepting_on_the_dashboard_counts_the_coordinators_numbers(
    sms, client, admin, database, database_url
):  # type: ignore[no-untyped-def]
    _, coordinator_id, coordinator_ref = cancel_then_report(sms, database)
    token = csrf_token(admin, "/dashboard/review")
    response = admin.post(
        f"/dashboard/review/{STATION}/confirm", data={"report_id": str(coordinator_id), "csrf_token": token}
    )
    assert response.status_code == 302
    assert state(database) == ("verified", COORDINATOR, coordinator_ref)
    assert kota_tally(client)["votes"] == COORDINATOR
    with database.read() as session:
        assert not list(session.scalars(select(Flag).where(Flag.resolved_at.is_(None))))
    no_drift(database_url)


def test_rejecting_on_the_dashboard_restores_the_cancelled_volunteers(
    sms, client, admin, database, database_url
):  # type: ignore[no-untyped-def]
    refs, coordinator_id, coordinator_ref = cancel_then_report(sms, database)
    token = csrf_token(admin, "/dashboard/review")
    response = admin.post(
        f"/dashboard/review/{STATION}/reject", data={"report_id": str(coordinator_id), "csrf_token": token}
    )
    assert response.status_code == 302
    flash = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Laporan koordinator {coordinator_ref} ditolak" in flash
    # Rejecting the override rejects the open cancels that stood against it: the volunteers'
    # reports count again, announced again, and nothing is left open.
    assert state(database) == ("verified", AGREED, refs[-1])
    document = kota_tally(client)
    assert document["votes"] == AGREED
    assert document["stations"]["verified"] == 1 and document["stations"]["flagged"] == 0
    with database.read() as session:
        assert not list(session.scalars(select(Flag).where(Flag.resolved_at.is_(None))))
        assert sorted(session.scalars(select(Report.ref).where(Report.cancelled_at.is_not(None)))) == [
            coordinator_ref
        ]
    events = station_events(database)
    assert [e.type for e in events[-4:]] == [
        outbox.REPORT_CANCELLED,
        outbox.REPORT_ACCEPTED,
        outbox.REPORT_ACCEPTED,
        outbox.STATION_STATUS_CHANGED,
    ]
    assert [e.payload["data"]["report"]["ref"] for e in events[-3:-1]] == refs
    every_event_validates(database)
    no_drift(database_url)
    # Later traffic does not bring the rejected report back.
    assert sms(VOLUNTEER_A, "TPS 012 01=100 02=50 03=25").startswith("OK")
    assert state(database)[:2] == ("verified", AGREED)
    no_drift(database_url)


def test_rejecting_keeps_a_volunteers_newer_report(sms, admin, database, database_url):  # type: ignore[no-untyped-def]
    refs, coordinator_id, _ = cancel_then_report(sms, database)
    assert sms(VOLUNTEER_A, "TPS 012 01=100 02=50 03=25").startswith("OK")
    token = csrf_token(admin, "/dashboard/review")
    admin.post(
        f"/dashboard/review/{STATION}/reject", data={"report_id": str(coordinator_id), "csrf_token": token}
    )
    with database.read() as session:
        current = session.scalars(
            select(Report).where(Report.cancelled_at.is_(None), Report.superseded_at.is_(None))
        ).all()
        assert len(current) == 2 and len({r.contact_id for r in current}) == 2
        assert refs[0] not in [r.ref for r in current] and refs[1] in [r.ref for r in current]
        assert not list(session.scalars(select(Flag).where(Flag.resolved_at.is_(None))))
    assert state(database)[:2] == ("verified", AGREED)
    no_drift(database_url)


def test_once_a_reviewer_has_decided_the_cancels_a_coordinators_report_settles_as_before(
    sms, admin, database, database_url
):  # type: ignore[no-untyped-def]
    """Held only while the cancel is open: after "Tandai sudah ditinjau" the cancels stand."""
    for phone in (VOLUNTEER_A, VOLUNTEER_B):
        sms(phone, "TPS 012 01=100 02=50 03=25")
    with database.read() as session:
        refs = list(session.scalars(select(Report.ref).order_by(Report.id)))
    for ref in refs:
        assert sms(COORD_KOTA, f"BATAL {ref}{WITH_PIN}").startswith("OK laporan")
    token = csrf_token(admin, "/dashboard/review")
    admin.post(f"/dashboard/review/{STATION}/resolve", data={"csrf_token": token})
    reply = sms(COORD_KOTA, f"TPS {STATION} 01=1 02=250 03=1{WITH_PIN}")
    assert reply.startswith(f"OK TPS {STATION}"), reply
    assert state(database)[:2] == ("verified", COORDINATOR)
    no_drift(database_url)


def test_the_quick_count_keeps_the_volunteers_reading(sms, client, database, database_url):  # type: ignore[no-untyped-def]
    draw_sample(database_url)
    cancel_then_report(sms, database)
    document = client.get("/api/quickcount?region=63", headers=AUTH).get_json()
    assert document["stations"]["counted"] == 1
    counted, _, votes = sampled_reading(database)
    assert counted and votes == AGREED
