"""Official results: the CSV import, discrepancies through signed webhooks, API and CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from smsgate.cli import main
from smsgate.db import Database
from smsgate.models import OfficialResult, RegionCounter
from smsgate.services import recount
from smsgate.services.official import parse_station_id

from ..support import (
    COORD_KOTA,
    COORD_NATIONAL,
    KELAYAN,
    MANTUIL,
    VOLUNTEER_A,
    VOLUNTEER_ALUH,
    VOLUNTEER_B,
    VOLUNTEER_EN,
)

AUTH = {"Authorization": "Bearer test-api-token"}
MANTUIL_12 = "6371011001012"
MANTUIL_1 = "6371011001001"
KELAYAN_1 = "6371011002001"
ALUH_1 = "6303012001001"
RAWA_1 = "6472011001001"


def cli(database_url: str, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args), env={"SMSGATE_DATABASE_URL": database_url})


def write(tmp_path: Path, text: str, name: str = "official.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def official(database: Database) -> dict[str, tuple[dict[str, int], int, int | None]]:
    with database.read() as session:
        return {o.station_id: (o.votes, o.valid, o.invalid) for o in session.scalars(select(OfficialResult))}


# -- import -----------------------------------------------------------------------------------


def test_station_id_forms() -> None:
    assert parse_station_id("6371011001012") == MANTUIL_12
    assert parse_station_id("63.71.01.1001/12") == MANTUIL_12
    assert parse_station_id(" 63.71.01.1001.012 ") == MANTUIL_12
    for bad in ("637101100101", "63.71.01.1001", "6371011001000", "63.71.01.1001/1000", "x"):
        with pytest.raises(ValueError):
            parse_station_id(bad)


def test_import_good_file_then_reimport_replaces(world, database, database_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = write(
        tmp_path,
        f"station_id,01,02,03,valid,invalid\n{MANTUIL_12},100,90,50,240,4\n63.71.01.1002/1,10,20,30,,\n",
    )
    result = cli(database_url, "import", "official", str(path))
    assert result.exit_code == 0, result.output
    assert "official: 2 created, 0 updated" in result.output
    assert official(database) == {
        MANTUIL_12: ({"01": 100, "02": 90, "03": 50}, 240, 4),
        KELAYAN_1: ({"01": 10, "02": 20, "03": 30}, 60, None),
    }
    # Columns in another order, candidate codes without the leading zero.
    again = write(tmp_path, f"valid,invalid,station_id,3,2,1\n240,5,{MANTUIL_12},51,90,99\n", "again.csv")
    result = cli(database_url, "import", "official", str(again))
    assert result.exit_code == 0, result.output
    assert "official: 0 created, 1 updated" in result.output
    stored = official(database)
    assert stored[MANTUIL_12] == ({"01": 99, "02": 90, "03": 51}, 240, 5)
    assert stored[KELAYAN_1][1] == 60


def test_bad_rows_are_named_by_line_and_nothing_is_imported(world, database, database_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    good = write(tmp_path, f"station_id,01,02,03,valid,invalid\n{MANTUIL_12},1,2,3,6,0\n", "good.csv")
    assert cli(database_url, "import", "official", str(good)).exit_code == 0
    path = write(
        tmp_path,
        "station_id,01,02,03,valid,invalid\n"
        f"{KELAYAN_1},10,20,30,60,1\n"  # fine, but must not be imported
        f"{MANTUIL_12},7,7,7,21,0\n"  # fine, must not replace the stored row
        "6371011001999,1,1,1,3,0\n"  # unknown station
        f"{ALUH_1},1,x,1,3,0\n"  # not a number
        f"{RAWA_1},1,2,3,7,0\n"  # valid is not the sum
        f"{KELAYAN_1},1,2,3,6,0\n"  # the same station twice
        "63.71.01,1,2,3,6,0\n",  # not a station id
    )
    result = cli(database_url, "import", "official", str(path))
    assert result.exit_code == 1
    output = result.output
    assert "line 5: candidate 02 must be a whole number" in output
    assert "line 6: valid=7 but the candidates' votes add up to 6" in output
    assert "line 7: station 6371011002001 is already on line 2" in output
    assert "line 8: not a station id" in output
    assert "nothing imported" in output
    assert official(database) == {MANTUIL_12: ({"01": 1, "02": 2, "03": 3}, 6, 0)}
    # Once the format is right, unknown stations are reported with their line too.
    path = write(
        tmp_path, f"station_id,01,02,03,valid,invalid\n{KELAYAN_1},1,1,1,3,0\n6371011001999,1,1,1,3,0\n"
    )
    result = cli(database_url, "import", "official", str(path))
    assert result.exit_code == 1
    assert "line 3: station 6371011001999 is not known" in result.output
    assert KELAYAN_1 not in official(database)


def test_wrong_header_is_refused(world, database, database_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path, f"station_id,01,02,04,valid,invalid\n{MANTUIL_12},1,2,3,6,0\n")
    result = cli(database_url, "import", "official", str(path))
    assert result.exit_code == 1
    assert "line 1: missing column(s) 03; unknown column(s) 04" in result.output
    assert official(database) == {}


# -- discrepancies through the real SMS path ----------------------------------------------------


@pytest.fixture
def reported(sms, database_url, tmp_path):  # type: ignore[no-untyped-def]
    """Mantuil 012 verified by two volunteers, Kelayan 001 confirmed by a coordinator,
    Mantuil 001 by the national coordinator, Aluh 001 reported by one volunteer only."""
    for phone in (VOLUNTEER_A, VOLUNTEER_B):
        assert sms(phone, "TPS 012 01=120 02=98 03=150").startswith("OK")
    assert sms(VOLUNTEER_EN, "TPS 001 01=40 02=60 03=20 TS=3").startswith("OK")
    assert sms(COORD_KOTA, f"TPS {KELAYAN_1} 01=40 02=60 03=20 TS=3 PIN 4821").startswith("OK")
    assert sms(COORD_NATIONAL, f"TPS {MANTUIL_1} 01=5 02=6 03=7 PIN 4821").startswith("OK")
    assert sms(VOLUNTEER_ALUH, "TPS 001 01=10 02=10 03=10").startswith("OK")
    path = write(
        tmp_path,
        "station_id,01,02,03,valid,invalid\n"
        f"{MANTUIL_12},100,98,150,348,2\n"  # 01 lost 20 votes: difference 20 (no TS from us)
        f"{KELAYAN_1},40,90,20,150,1\n"  # 02 gained 30, TS 3 -> 1: difference 32
        f"{MANTUIL_1},5,6,7,18,0\n"  # equal: not listed
        f"{ALUH_1},10,10,90,110,0\n",  # only reported by one volunteer
    )
    result = cli(database_url, "import", "official", str(path))
    assert result.exit_code == 0, result.output


def test_discrepancies_api_lists_verified_stations_largest_first(client, reported) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/api/discrepancies").status_code == 401
    response = client.get("/api/discrepancies", headers=AUTH)
    assert response.status_code == 200
    document = response.get_json()
    assert document["region"] == {"code": "", "name": "Indonesia", "level": "country"}
    assert document["status"] == "verified"
    assert document["total"] == 2
    first, second = document["discrepancies"]
    assert first == {
        "station_id": KELAYAN_1,
        "region_code": KELAYAN,
        "status": "verified",
        "difference": 32,
        "ours": {"votes": {"01": 40, "02": 60, "03": 20}, "valid": 120, "invalid": 3},
        "official": {"votes": {"01": 40, "02": 90, "03": 20}, "valid": 150, "invalid": 1},
        "diff": {"01": 0, "02": 30, "03": 0, "valid": 30, "invalid": -2},
    }
    assert second["station_id"] == MANTUIL_12 and second["region_code"] == MANTUIL
    assert second["difference"] == 20
    assert second["diff"] == {"01": -20, "02": 0, "03": 0, "valid": -20, "invalid": None}


def test_discrepancies_api_region_limit_and_status(client, reported) -> None:  # type: ignore[no-untyped-def]
    def get(query: str):  # type: ignore[no-untyped-def]
        return client.get(f"/api/discrepancies?{query}", headers=AUTH)

    ids = [d["station_id"] for d in get("region=63.71.01.1001").get_json()["discrepancies"]]
    assert ids == [MANTUIL_12]
    assert get("region=6371011002").get_json()["discrepancies"][0]["station_id"] == KELAYAN_1
    assert get("region=64").get_json() | {"region": None} == {
        "region": None,
        "status": "verified",
        "total": 0,
        "discrepancies": [],
    }
    limited = get("limit=1").get_json()
    assert limited["total"] == 2 and [d["station_id"] for d in limited["discrepancies"]] == [KELAYAN_1]
    everything = get("status=all").get_json()
    assert [(d["station_id"], d["status"]) for d in everything["discrepancies"]] == [
        (ALUH_1, "reported"),
        (KELAYAN_1, "verified"),
        (MANTUIL_12, "verified"),
    ]
    assert get("region=99").status_code == 404
    assert get("limit=0").status_code == 400
    assert get("limit=abc").status_code == 400
    assert get("status=disputed").status_code == 400


def test_discrepancies_cli(database_url, reported) -> None:  # type: ignore[no-untyped-def]
    result = cli(database_url, "discrepancies", "63.71")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("Kota Banjarmasin 63.71: 2 station(s) (verified) differ")
    assert lines[1] == f"{KELAYAN_1} {KELAYAN} verified difference 32"
    assert "02: ours     60  official     90  (+30)" in result.output
    assert f"{MANTUIL_12} {MANTUIL} verified difference 20" in result.output
    as_json = json.loads(cli(database_url, "discrepancies", "--json", "--all", "--limit", "1").output)
    assert as_json["total"] == 3 and as_json["discrepancies"][0]["station_id"] == ALUH_1
    assert cli(database_url, "discrepancies", "99").exit_code != 0


def test_correcting_our_count_to_the_official_one_clears_it(client, sms, reported) -> None:  # type: ignore[no-untyped-def]
    for phone in (VOLUNTEER_A, VOLUNTEER_B):
        assert sms(phone, "TPS 012 01=100 02=98 03=150 TS=2").startswith("OK")
    ids = [
        d["station_id"] for d in client.get("/api/discrepancies", headers=AUTH).get_json()["discrepancies"]
    ]
    assert ids == [KELAYAN_1]


# -- counters against a recomputation ----------------------------------------------------------


def test_tally_verify_finds_and_repairs_drift(database, database_url, reported) -> None:  # type: ignore[no-untyped-def]
    result = cli(database_url, "tally", "--verify")
    assert result.exit_code == 0, result.output
    assert "counters match" in result.output
    with database.read() as session:
        assert recount.recompute(session, "63.71.01")["v:01"] == 120 + 40 + 5
        assert recount.recompute(session, None)["stations"] == 9
    with database.begin() as session:  # a counter moved by hand: kecamatan only
        counter = session.scalars(
            select(RegionCounter).where(RegionCounter.region_key == "637101", RegionCounter.name == "v:02")
        ).first()
        counter.value += 7
    result = cli(database_url, "tally", "--verify", "63.71")
    assert result.exit_code == 1
    assert "drift 637101 v:02: counted 171, expected 164 (-7)" in result.output
    assert cli(database_url, "tally", "--verify", "64").exit_code == 0  # outside the drifted subtree
    result = cli(database_url, "tally", "--verify", "--repair")
    assert result.exit_code == 0 and "repaired 1 counter(s)" in result.output
    assert "counters match" in cli(database_url, "tally", "--verify").output
