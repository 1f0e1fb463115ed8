"""A coordinator's SMS (with the right PIN) cannot silently replace what a station's volunteers
agree on: the station becomes ``overridden``, the tally, the quick count and the events keep the
volunteers' reading and say so, the review queue names who changed what, and a reviewer accepts
or rejects it on the dashboard. Through signed Twilio webhooks, the dashboard and the API via the
Flask test client, and ``smsgate tally --verify``, on SQLite and PostgreSQL."""

from __future__ import annotations

import re

from click.testing import CliRunner
from sqlalchemy import select

from smsgate import event_schemas
from smsgate.cli import main
from smsgate.models import Flag, OutboxEvent, Report, StationResult
from smsgate.services import outbox

from ..support import (
    COORD_KOTA,
    COORD_NATIONAL,
    VOLUNTEER_A,
    VOLUNTEER_B,
    VOLUNTEER_C,
    WITH_PIN,
)
from .conftest import csrf_token

STATION = "6371011001012"  # Mantuil TPS 012
AGREED = {"01": 100, "02": 50, "03": 25}
COORDINATOR = {"01": 1, "02": 250, "03": 1}
AUTH = {"Authorization": "Bearer test-api-token"}


def state(database) -> tuple[str, dict[str, int], str | None]:  # type: ignore[no-untyped-def]
    with database.read() as session:
        row = session.get(StationResult, STATION)
        ref = session.get(Report, row.report_id).ref if row.report_id else None
        return row.status, dict(row.votes or {}), ref


def ref_of(database, votes: dict[str, int], coordinator: bool) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    """The newest current report with ``votes`` (the one the station counts for that reading)."""
    with database.read() as session:
        rows = session.scalars(
            select(Report)
            .where(
                Report.station_id == STATION,
                Report.by_coordinator.is_(coordinator),
                Report.superseded_at.is_(None),
                Report.cancelled_at.is_(None),
            )
            .order_by(Report.created_at.desc(), Report.id.desc())
        )
        report = next(r for r in rows if dict(r.votes) == votes)
        return report.id, report.ref


def station_events(database) -> list[OutboxEvent]:  # type: ignore[no-untyped-def]
    with database.read() as session:
        events = list(
            session.scalars(
                select(OutboxEvent).where(OutboxEvent.station_id == STATION).order_by(OutboxEvent.seq)
            )
        )
        session.expunge_all()
    return events


def latest_state_event(database) -> dict:  # type: ignore[no-untyped-def]
    return [e for e in station_events(database) if e.type == outbox.STATION_STATUS_CHANGED][-1].payload[
        "data"
    ]


def no_drift(database_url: str) -> None:
    result = CliRunner().invoke(main, ["tally", "--verify"], env={"SMSGATE_DATABASE_URL": database_url})
    assert result.exit_code == 0, result.output


def every_event_validates(database) -> None:  # type: ignore[no-untyped-def]
    for event in station_events(database):
        for version in event_schemas.versions():
            document = outbox.document(event, version)
            assert not event_schemas.errors(document), (version, document, event_schemas.errors(document))


def kota_tally(client) -> dict:  # type: ignore[no-untyped-def]
    response = client.get("/api/tally?region=63.71", headers=AUTH)
    assert response.status_code == 200
    return response.get_json()


def overridden_night(sms, database) -> None:  # type: ignore[no-untyped-def]
    """The reproduction: two volunteers agree on 100/50/25, then the kota coordinator's number
    (with the right PIN) sends 1/250/1."""
    for phone in (VOLUNTEER_A, VOLUNTEER_B):
        assert sms(phone, "TPS 012 01=100 02=50 03=25").startswith("OK TPS 012")
    assert state(database)[:2] == ("verified", AGREED)
    reply = sms(COORD_KOTA, f"TPS {STATION} 01=1 02=250 03=1{WITH_PIN}")
    assert reply.startswith(f"OK DITINJAU TPS {STATION} 01=1 02=250 03=1 Ref "), reply
    assert reply.endswith("Beda dgn kesepakatan 2 relawan: belum dihitung sampai dikonfirmasi di dasbor.")


def test_a_coordinator_sms_against_the_volunteers_agreement_is_held_for_review(
    sms, client, admin, database, database_url
):  # type: ignore[no-untyped-def]
    overridden_night(sms, database)
    status, votes, counted_ref = state(database)
    _, volunteer_ref = ref_of(database, AGREED, coordinator=False)
    coordinator_id, coordinator_ref = ref_of(database, COORDINATOR, coordinator=True)
    assert (status, votes, counted_ref) == ("overridden", AGREED, volunteer_ref)

    # The tally keeps counting the volunteers' agreement; the counters stay exact.
    document = kota_tally(client)
    assert document["votes"] == AGREED
    assert document["stations"]["overridden"] == 1 and document["stations"]["verified"] == 0
    assert document["stations"]["reported"] == 1
    no_drift(database_url)

    # The event says which report's numbers it uses, and validates in every version.
    event = latest_state_event(database)
    assert event["status"] == "overridden" and event["previous_status"] == "verified"
    assert event["votes"] == AGREED and event["reference"] == volunteer_ref
    accepted = [e for e in station_events(database) if e.type == outbox.REPORT_ACCEPTED][-1]
    assert accepted.payload["data"]["report"]["ref"] == coordinator_ref
    assert accepted.payload["data"]["report"]["reporter_role"] == "coordinator"
    every_event_validates(database)
    v1 = outbox.document(
        [e for e in station_events(database) if e.type == outbox.STATION_STATUS_CHANGED][-1], 1
    )
    assert v1["data"]["status"] == "disputed"

    # The flag names who changed what, from which numbers to which.
    flags = client.get("/api/flags?region=63.71", headers=AUTH).get_json()["flags"]
    [flag] = [f for f in flags if f["kind"] == "override"]
    assert "Fajar" in flag["reason"] and COORD_KOTA in flag["reason"]
    assert "01=100 02=50 03=25 -> 01=1 02=250 03=1" in flag["reason"]
    assert flag["report"] == coordinator_ref

    # The review queue shows it with both decisions.
    page = admin.get("/dashboard/review").get_data(as_text=True)
    card = page[page.index(f'data-station="{STATION}"') :]
    assert "Diubah koordinator" in card[:2000]
    assert f'data-override="{coordinator_ref}"' in card
    assert "Koordinator Fajar +6281200000001 mengubah" in card
    assert re.search(r"01=100 02=50 03=25 </span> &rarr;\s*<span class=\"votes-to\">01=1 02=250 03=1", card)
    assert f'data-accept="{coordinator_ref}"' in card and f'data-reject="{coordinator_ref}"' in card
    assert f"Ref {volunteer_ref}" in card

    # STATUS by SMS says it too; REKAP counts it under "Beda".
    status_reply = sms(COORD_KOTA, f"STATUS {STATION}")
    assert status_reply.startswith(f"OK STATUS {STATION} diubah koord., ditinjau: 01=100 02=50 03=25"), (
        status_reply
    )
    assert sms(COORD_KOTA, "REKAP 63.71").endswith("Beda 1 Cek 0")

    # A volunteer who resends the agreed values does not settle it behind the reviewer's back.
    assert sms(VOLUNTEER_A, "TPS 012 01=100 02=50 03=25").startswith("OK")
    assert state(database)[0] == "overridden"
    with database.read() as session:
        open_flags = session.scalars(select(Flag).where(Flag.kind == "override", Flag.resolved_at.is_(None)))
        assert [f.report_id for f in open_flags] == [coordinator_id]
    no_drift(database_url)


def test_confirming_on_the_dashboard_accepts_the_coordinators_numbers(
    sms, client, admin, database, database_url
):  # type: ignore[no-untyped-def]
    overridden_night(sms, database)
    coordinator_id, coordinator_ref = ref_of(database, COORDINATOR, coordinator=True)
    token = csrf_token(admin, "/dashboard/review")
    response = admin.post(
        f"/dashboard/review/{STATION}/confirm", data={"report_id": str(coordinator_id), "csrf_token": token}
    )
    assert response.status_code == 302
    assert state(database) == ("verified", COORDINATOR, coordinator_ref)
    document = kota_tally(client)
    assert document["votes"] == COORDINATOR
    assert document["stations"]["overridden"] == 0 and document["stations"]["verified"] == 1
    event = latest_state_event(database)
    assert (event["status"], event["previous_status"], event["reference"]) == (
        "verified",
        "overridden",
        coordinator_ref,
    )
    every_event_validates(database)
    no_drift(database_url)
    with database.read() as session:
        assert not list(session.scalars(select(Flag).where(Flag.resolved_at.is_(None))))
    assert f'data-station="{STATION}"' not in admin.get("/dashboard/review").get_data(as_text=True)


def test_rejecting_on_the_dashboard_restores_the_volunteers_agreement(
    sms, client, admin, database, database_url
):  # type: ignore[no-untyped-def]
    overridden_night(sms, database)
    coordinator_id, coordinator_ref = ref_of(database, COORDINATOR, coordinator=True)
    _, volunteer_ref = ref_of(database, AGREED, coordinator=False)
    token = csrf_token(admin, "/dashboard/review")
    response = admin.post(
        f"/dashboard/review/{STATION}/reject", data={"report_id": str(coordinator_id), "csrf_token": token}
    )
    assert response.status_code == 302
    flash = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Laporan koordinator {coordinator_ref} ditolak" in flash
    assert state(database) == ("verified", AGREED, volunteer_ref)
    assert kota_tally(client)["votes"] == AGREED
    kinds = [e.type for e in station_events(database)]
    assert kinds[-2:] == [outbox.REPORT_CANCELLED, outbox.STATION_STATUS_CHANGED]
    cancelled = station_events(database)[-2].payload["data"]["report"]
    assert cancelled["ref"] == coordinator_ref and cancelled["cancelled_at"] is not None
    assert latest_state_event(database)["previous_status"] == "overridden"
    every_event_validates(database)
    no_drift(database_url)
    with database.read() as session:
        [flag] = session.scalars(select(Flag).where(Flag.kind == "override"))
        assert flag.resolved_by == "admin@example.org (dasbor, ditolak)"
    # Later volunteer traffic does not bring the rejected report back ...
    assert sms(VOLUNTEER_B, "TPS 012 01=100 02=50 03=25").startswith("OK")
    assert state(database)[:2] == ("verified", AGREED)
    # ... and a second reject of the same report changes nothing.
    again = admin.post(
        f"/dashboard/review/{STATION}/reject", data={"report_id": str(coordinator_id), "csrf_token": token}
    )
    assert "tidak berlaku lagi" in admin.get(again.headers["Location"]).get_data(as_text=True)
    # The coordinator can send again: held for review again.
    assert sms(COORD_KOTA, f"TPS {STATION} 01=1 02=250 03=1{WITH_PIN}").startswith("OK DITINJAU")
    assert state(database)[0] == "overridden"
    no_drift(database_url)


def test_a_coordinator_who_agrees_or_settles_a_dispute_still_verifies(sms, database, database_url):  # type: ignore[no-untyped-def]
    for phone in (VOLUNTEER_A, VOLUNTEER_B):
        sms(phone, "TPS 012 01=100 02=50 03=25")
    assert sms(COORD_KOTA, f"TPS {STATION} 01=100 02=50 03=25{WITH_PIN}").startswith(f"OK TPS {STATION}")
    assert state(database)[:2] == ("verified", AGREED)
    # The volunteers fall out (no qualified majority): the coordinator's report settles it.
    assert sms(VOLUNTEER_C, "TPS 012 01=90 02=60 03=25").startswith("OK")
    assert sms(VOLUNTEER_B, "TPS 012 01=90 02=60 03=25").startswith("OK")
    assert sms(COORD_KOTA, f"TPS {STATION} 01=1 02=250 03=1{WITH_PIN}").startswith(f"OK TPS {STATION}")
    assert state(database)[:2] == ("verified", COORDINATOR)
    # Once the volunteers agree again (2 of 3 is not qualified; 3 identical and no dissent is),
    # the coordinator's different numbers no longer win silently.
    assert sms(VOLUNTEER_A, "TPS 012 01=90 02=60 03=25").startswith("OK")
    assert state(database)[:2] == ("overridden", {"01": 90, "02": 60, "03": 25})
    # Another coordinator who agrees with the volunteers settles it (their report is newest).
    assert sms(COORD_NATIONAL, f"TPS {STATION} 01=90 02=60 03=25{WITH_PIN}").startswith(f"OK TPS {STATION}")
    assert state(database)[:2] == ("verified", {"01": 90, "02": 60, "03": 25})
    with database.read() as session:
        assert not list(
            session.scalars(select(Flag).where(Flag.kind == "override", Flag.resolved_at.is_(None)))
        )
    no_drift(database_url)
    every_event_validates(database)


def draw_sample(database_url: str) -> None:
    """``smsgate sample draw``: 8 stations of Kalimantan Selatan by kabupaten/kota, seed 1 (the
    sample holds ``STATION``)."""
    drawn = CliRunner().invoke(
        main,
        ["sample", "draw", "--size", "8", "--strata", "kabkota", "--seed", "1", "--region", "63"],
        env={"SMSGATE_DATABASE_URL": database_url},
    )
    assert drawn.exit_code == 0, drawn.output


def sampled_reading(database) -> tuple[bool, bool, dict[str, int]]:  # type: ignore[no-untyped-def]
    """What the quick count takes for ``STATION``: counted, disputed, and its votes."""
    from smsgate.quickcount import service
    from smsgate.services.tally import region_info

    with database.read() as session:
        loaded = service.load(session, service.active_design(session), region_info(session, "63"))
    row = list(loaded.sample.station_ids).index(STATION)
    votes = dict(zip(loaded.sample.candidates, loaded.sample.votes[row].tolist(), strict=True))
    return bool(loaded.sample.counted[row]), bool(loaded.sample.disputed[row]), votes


def test_the_quick_count_uses_the_volunteers_reading_while_overridden(sms, client, database, database_url):  # type: ignore[no-untyped-def]
    draw_sample(database_url)
    overridden_night(sms, database)
    document = client.get("/api/quickcount?region=63", headers=AUTH).get_json()
    assert document["stations"]["counted"] == 1 and document["stations"]["disputed"] == 0
    assert "overridden" in document["rule"]
    # The values the estimate takes for the station: the volunteers' agreed reading.
    assert sampled_reading(database) == (True, False, AGREED)
