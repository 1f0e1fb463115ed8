"""``BATAL <ref> PIN <pin>``: a coordinator cancels someone else's report in their scope, through
signed Twilio webhooks. Without the PIN, with a wrong one (counted toward the lockout) or outside
the scope nothing changes; a cancellation goes out as events and lands in the review queue."""

from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import select

from smsgate import event_schemas
from smsgate.cli import main
from smsgate.dashboard.accounts import create_user
from smsgate.models import Flag, OutboxEvent, PinFailure, Report, StationResult, utcnow
from smsgate.services import outbox

from ..dashboard.conftest import ADMIN, PASSWORD, csrf_token, login
from ..support import COORD_KALTIM, COORD_KOTA, VOLUNTEER_A, VOLUNTEER_B, VOLUNTEER_C, WITH_PIN

STATION = "6371011001012"
AUTH = {"Authorization": "Bearer test-api-token"}


def reported(sms, database) -> str:  # type: ignore[no-untyped-def]
    """A and B agree on Mantuil TPS 012; the ref of A's report."""
    reply = sms(VOLUNTEER_A, "TPS 012 01=100 02=50 03=25")
    sms(VOLUNTEER_B, "TPS 012 01=100 02=50 03=25")
    with database.read() as session:
        ref = session.scalars(select(Report.ref).order_by(Report.id).limit(1)).one()
    assert ref in reply
    return ref


def cancelled(database) -> list[str]:  # type: ignore[no-untyped-def]
    with database.read() as session:
        return list(session.scalars(select(Report.ref).where(Report.cancelled_at.is_not(None))))


def test_a_coordinator_cancels_a_volunteers_report_with_the_pin(sms, client, database, database_url):  # type: ignore[no-untyped-def]
    ref = reported(sms, database)
    reply = sms(COORD_KOTA, f"BATAL {ref}{WITH_PIN}")
    assert reply == f"OK laporan {ref} TPS {STATION} dibatalkan."
    assert cancelled(database) == [ref]
    with database.read() as session:
        result = session.get(StationResult, STATION)
        assert (result.status, result.report_count, result.flagged) == ("reported", 1, True)
        events = list(
            session.scalars(
                select(OutboxEvent).where(OutboxEvent.station_id == STATION).order_by(OutboxEvent.seq)
            )
        )
        session.expunge_all()
    assert [e.type for e in events[-2:]] == [outbox.REPORT_CANCELLED, outbox.STATION_STATUS_CHANGED]
    assert events[-2].payload["data"]["report"]["ref"] == ref
    assert events[-1].payload["data"]["status"] == "reported" and events[-1].payload["data"]["flagged"]
    for event in events:
        for version in event_schemas.versions():
            assert not event_schemas.errors(outbox.document(event, version))
    # The review queue (and /api/flags) say who cancelled whose report.
    flags = client.get("/api/flags?region=63.71", headers=AUTH).get_json()["flags"]
    [flag] = [f for f in flags if f["kind"] == "coordinator_cancel"]
    assert flag["reason"] == (
        f"Koordinator Fajar {COORD_KOTA} membatalkan laporan {ref} (01=100 02=50 03=25) dari {VOLUNTEER_A}"
    )
    drift = CliRunner().invoke(main, ["tally", "--verify"], env={"SMSGATE_DATABASE_URL": database_url})
    assert drift.exit_code == 0, drift.output


def test_without_the_pin_with_a_wrong_pin_or_outside_the_scope_nothing_is_cancelled(sms, database):  # type: ignore[no-untyped-def]
    ref = reported(sms, database)
    assert sms(COORD_KOTA, f"BATAL {ref}").startswith("GAGAL: perintah ini perlu PIN koordinator")
    assert sms(COORD_KOTA, f"BATAL {ref} PIN 0000") == "GAGAL: PIN salah, tidak disimpan (sisa 4 kali coba)."
    with database.read() as session:
        assert len(list(session.scalars(select(PinFailure)))) == 1  # counts toward the lockout
    assert sms(COORD_KALTIM, f"CANCEL {ref}{WITH_PIN}") == f"ERROR: TPS {STATION} is outside your area."
    assert (
        sms(COORD_KOTA, f"BATAL ZZZZZZ{WITH_PIN}")
        == "GAGAL: laporan ZZZZZZ tidak ditemukan atau bukan milik Anda."
    )
    # A volunteer still cancels only their own reports.
    assert sms(VOLUNTEER_C, f"BATAL {ref}") == f"GAGAL: laporan {ref} tidak ditemukan atau bukan milik Anda."
    assert cancelled(database) == []
    with database.read() as session:
        assert not list(session.scalars(select(Flag).where(Flag.kind == "coordinator_cancel")))


def test_the_lockout_holds_for_batal_too(sms, database):  # type: ignore[no-untyped-def]
    ref = reported(sms, database)
    for left in (4, 3, 2, 1):
        assert sms(COORD_KOTA, f"BATAL {ref} PIN 1111").endswith(f"(sisa {left} kali coba).")
    assert sms(COORD_KOTA, f"BATAL {ref} PIN 1111").startswith("GAGAL: terlalu banyak PIN salah.")
    assert sms(COORD_KOTA, f"BATAL {ref}{WITH_PIN}").startswith("GAGAL: terlalu banyak PIN salah.")
    assert cancelled(database) == []


def test_a_coordinator_cancelling_their_own_report_is_not_flagged(sms, database):  # type: ignore[no-untyped-def]
    assert sms(COORD_KOTA, f"TPS {STATION} 01=1 02=2 03=3{WITH_PIN}").startswith("OK")
    assert sms(COORD_KOTA, f"BATAL{WITH_PIN}").startswith("OK laporan ")
    with database.read() as session:
        assert not list(session.scalars(select(Flag).where(Flag.kind == "coordinator_cancel")))
        assert session.get(StationResult, STATION).status == "missing"


def test_a_station_emptied_by_a_coordinator_stays_in_the_queue_until_marked_reviewed(
    sms, app, database, database_url
):  # type: ignore[no-untyped-def]
    """Cancelling a station's only report leaves nothing to confirm: the review queue offers
    "Tandai sudah ditinjau" (resolve the flags) instead, through the dashboard's test client."""
    with database.begin() as session:
        create_user(session, email=ADMIN, password=PASSWORD, role="admin", region=None, now=utcnow())

    reply = sms(VOLUNTEER_A, "TPS 012 01=100 02=50 03=25")
    ref = reply.split("Ref ")[1].split()[0]
    assert sms(COORD_KOTA, f"BATAL {ref}{WITH_PIN}").startswith("OK laporan")
    with database.read() as session:
        result = session.get(StationResult, STATION)
        assert (result.status, result.flagged) == ("missing", True)
    admin = app.test_client()
    assert login(admin, ADMIN).status_code == 302
    page = admin.get("/dashboard/review").get_data(as_text=True)
    assert f'data-resolve="{STATION}"' in page and "membatalkan laporan" in page
    token = csrf_token(admin, "/dashboard/review")
    response = admin.post(f"/dashboard/review/{STATION}/resolve", data={"csrf_token": token})
    assert "1 tanda TPS" in admin.get(response.headers["Location"]).get_data(as_text=True)
    with database.read() as session:
        assert session.get(StationResult, STATION).flagged is False
        [flag] = session.scalars(select(Flag).where(Flag.kind == "coordinator_cancel"))
        assert flag.resolved_by == "admin@example.org (dasbor)"
    assert f'data-station="{STATION}"' not in admin.get("/dashboard/review").get_data(as_text=True)
    drift = CliRunner().invoke(main, ["tally", "--verify"], env={"SMSGATE_DATABASE_URL": database_url})
    assert drift.exit_code == 0, drift.output
