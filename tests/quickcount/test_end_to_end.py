"""The quick count through its real boundaries: the CLI on the test database, reports and QC
through signed Twilio webhooks, and GET /api/quickcount.

The world fixture has a handful of stations; on top of it each test builds a synthetic
province 62 (6 kabupaten x 3 kecamatan x 4 desa, 3-7 stations each) with the importers, then
draws the sample with ``smsgate sample draw`` and reports the sampled stations' counts by SMS
from the national coordinator (a coordinator's report is ``verified``).
"""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from smsgate.cli import main
from smsgate.importers import upsert_contacts
from smsgate.models import SampleDesign, SampleStation, SampleStratum
from smsgate.sms import is_single_gsm7_sms

from ..support import COORD_KALTIM, COORD_NATIONAL, COORD_PIN, VOLUNTEER_A
from .synthetic import simulate

AUTH = {"Authorization": "Bearer test-api-token"}
SIZE = 40


def cli(database_url: str, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args), env={"SMSGATE_DATABASE_URL": database_url})


def draw(database_url: str, seed: int = 7) -> None:
    args = ["--size", str(SIZE), "--strata", "kabkota", "--seed", str(seed), "--region", "62"]
    result = cli(database_url, "sample", "draw", *args)
    assert result.exit_code == 0, result.output
    assert f"{SIZE} of " in result.output and "6 kabkota strata" in result.output


def sampled(database) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """station id -> stratum code of the active design."""
    with database.read() as session:
        design = session.scalars(select(SampleDesign).where(SampleDesign.active.is_(True))).one()
        rows = session.execute(
            select(SampleStation.station_id, SampleStratum.code)
            .join(SampleStratum, SampleStratum.id == SampleStation.stratum_id)
            .where(SampleStation.design_id == design.id)
        ).all()
    return dict(rows)


def sampled_by_stratum(database) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    """stratum code -> the active design's stations in it, in station-ID order."""
    by_stratum = defaultdict(list)
    for station, stratum in sorted(sampled(database).items()):
        by_stratum[stratum].append(station)
    return by_stratum


def votes_of(frame, seed: int = 3) -> dict[str, list[int]]:  # type: ignore[no-untyped-def]
    election = simulate(frame, np.random.default_rng(seed))
    return {sid: [int(v) for v in row] for sid, row in zip(frame.station_ids, election.votes, strict=True)}


def report(
    sms, station: str, votes: list[int], phone: str = COORD_NATIONAL, invalid: int | None = None
) -> str:  # type: ignore[no-untyped-def]
    ts = "" if invalid is None else f" TS={invalid}"
    reply = sms(phone, f"TPS {station} 01={votes[0]} 02={votes[1]} 03={votes[2]}{ts} PIN {COORD_PIN}")
    assert reply is not None and reply.startswith("OK"), reply
    return reply


def test_draw_records_a_stratified_design_reproducibly(frame, database, database_url) -> None:
    draw(database_url, seed=7)
    first = sampled(database)
    assert len(first) == SIZE
    with database.read() as session:
        strata = session.scalars(select(SampleStratum).order_by(SampleStratum.code)).all()
        assert [s.code for s in strata] == frame.kab_codes
        assert sum(s.population for s in strata) == len(frame.station_ids)
        assert sum(s.sample_size for s in strata) == SIZE
        assert all(s.sample_size >= 2 for s in strata)
        # proportional to registered voters, to within rounding (and the 2-per-stratum floor)
        total = sum(s.registered for s in strata)
        for s in strata:
            assert abs(s.sample_size - SIZE * s.registered / total) <= 1.5
    counts = defaultdict(int)
    for station, stratum in first.items():
        assert station.startswith(stratum.replace(".", ""))
        counts[stratum] += 1
    assert dict(counts) == {s.code: s.sample_size for s in strata}
    draw(database_url, seed=7)
    assert sampled(database) == first  # same frame, same seed: same sample
    draw(database_url, seed=8)
    assert sampled(database) != first
    with database.read() as session:
        assert len(session.scalars(select(SampleDesign).where(SampleDesign.active.is_(True))).all()) == 1


def test_quickcount_cli_matches_a_hand_computed_ratio_estimate(frame, database, database_url, sms) -> None:
    draw(database_url)
    truth = votes_of(frame)
    by_stratum = sampled_by_stratum(database)
    # three stations of every stratum report (every stratum has at least 2 in the sample...
    # and those with only 2 report both)
    reported = [s for stations in by_stratum.values() for s in stations[:3]]
    with_ts = reported[::2]  # the others send no TS: their invalid ballots are unknown, not 0
    for station in reported:
        report(sms, station, truth[station], invalid=3 if station in with_ts else None)
    result = cli(database_url, "quickcount", "62", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["stations"] == {
        "sample": SIZE,
        "counted": len(reported),
        "disputed": 0,
        "coverage": round(len(reported) / SIZE, 4),
    }
    assert document["collapsed_strata"] == []
    # p = sum_h (N_h / n_h) sum_i y_hi / sum_h (N_h / n_h) sum_i x_hi, computed here in plain Python
    population = {code: int((frame.strata == code).sum()) for code in frame.kab_codes}
    for k, code in enumerate(("01", "02", "03")):
        num = den = 0.0
        for stratum, stations in by_stratum.items():
            mine = [s for s in stations if s in reported]
            weight = population[stratum] / len(mine)
            num += weight * sum(truth[s][k] for s in mine)
            den += weight * sum(sum(truth[s]) for s in mine)
        assert document["estimate"][code]["value"] == pytest.approx(num / den, abs=1e-6)
        low, high = document["estimate"][code]["ci95"]
        assert low < num / den < high
    assert sum(r["value"] for r in document["estimate"].values()) == pytest.approx(1, abs=1e-5)
    assert 0.5 < document["turnout"]["value"] < 1
    assert document["turnout"]["stations"] == document["invalid"]["stations"] == len(with_ts)
    # invalid share: 3 per station over (valid + 3), the same ratio estimator over the TS stations
    assert 0 < document["invalid"]["value"] < 0.05
    # t intervals with the design's degrees of freedom: counted stations minus strata
    assert document["estimate"]["01"]["df"] == len(reported) - 6
    lead = document["lead"]
    ranked = sorted(document["estimate"], key=lambda c: -document["estimate"][c]["value"])
    assert [lead["first"], lead["second"]] == ranked[:2]
    first, second = (document["estimate"][c]["value"] for c in ranked[:2])
    assert lead["value"] == pytest.approx(first - second, abs=2e-6)
    assert document["call"] in ("called", "leading", "too close to call")
    assert document["indicative"] is False and document["presidential"] is None
    # the full tally has exactly these stations reported
    tally = document["comparison"]["tally"]
    assert tally["stations_reported"] == len(reported)
    assert tally["complete"] is False
    text = cli(database_url, "quickcount", "62")
    assert text.exit_code == 0, text.output
    assert "95% interval" in text.output and "01" in text.output


def test_low_coverage_collapse_and_disputed_stations(frame, database, database_url, sms) -> None:
    draw(database_url)
    truth = votes_of(frame)
    by_stratum = sampled_by_stratum(database)
    strata = sorted(by_stratum)
    # the first stratum: two; the second: one (collapsed with a neighbour); the rest: none
    for station in by_stratum[strata[0]][:2] + by_stratum[strata[1]][:1]:
        report(sms, station, truth[station])
    # a station of the first stratum reported differently by two volunteers: disputed
    argued = by_stratum[strata[0]][2]
    desa = f"{argued[:2]}.{argued[2:4]}.{argued[4:6]}.{argued[6:10]}"
    with database.begin() as session:
        upsert_contacts(
            session,
            [
                {
                    "phone": phone,
                    "name": "Saksi",
                    "role": "volunteer",
                    "region_code": desa,
                    "tps": None,
                    "lang": "id",
                }
                for phone in ("+6281300000001", "+6281300000002")
            ],
        )
    votes = truth[argued]
    report(sms, argued, votes, phone="+6281300000001")
    report(sms, argued, [votes[0] + 10, votes[1], votes[2]], phone="+6281300000002")
    document = cli(database_url, "quickcount", "62", "--json")
    assert document.exit_code == 0, document.output
    document = json.loads(document.output)
    assert document["stations"]["counted"] == 3
    assert document["stations"]["disputed"] == 1
    assert document["disputed"] == [{"station": argued, "stratum": strata[0]}]
    assert "low_coverage" in document["warnings"]
    assert "uneven_coverage" in document["warnings"]
    assert "collapsed_strata" in document["warnings"]
    assert "indicative" in document["warnings"] and document["indicative"] is True
    assert document["estimate"]["01"]["ci95"] is None and document["call"] == "too close to call"
    assert document["collapsed_strata"] and all(len(g) > 1 for g in document["collapsed_strata"])
    assert set(document["lagging_strata"]) == set(strata[2:])
    reply = sms(COORD_NATIONAL, "QC 62")
    # the call and every caution first; then numbers, as many as fit
    assert reply.startswith(
        "OK QC Provinsi Sintetis: BELUM BISA DIPASTIKAN AWAS: indikatif, data baru sedikit, "
        "sebaran tdk merata Beda 1. TPS sampel 3/40, +-95%: selisih "
    ), reply
    assert is_single_gsm7_sms(reply)
    text = cli(database_url, "quickcount", "62")
    assert text.exit_code == 0, text.output
    assert "INDICATIVE" in text.output and "WARNING" in text.output


def test_qc_by_sms_for_coordinators_only(frame, database, database_url, sms) -> None:
    assert sms(COORD_NATIONAL, "QC") == "GAGAL: sampel quick count belum dibuat."
    draw(database_url)
    design = sampled(database)
    truth = votes_of(frame)
    assert sms(COORD_NATIONAL, "QC 62").startswith(
        "OK QC Provinsi Sintetis: belum cukup TPS sampel melapor (0/40)"
    )
    for station in sorted(design):
        report(sms, station, truth[station])
    reply = sms(COORD_NATIONAL, "QC 62")
    document = json.loads(cli(database_url, "quickcount", "62", "--json").output)
    lead = document["lead"]
    words = {"called": f"PASTI: {lead['first']} unggul", "leading": f"{lead['first']} unggul sementara"}
    call = words.get(document["call"], "BELUM BISA DIPASTIKAN")
    assert reply.startswith(f"OK QC Provinsi Sintetis: {call}. TPS sampel 40/40, +-95%: selisih "), reply
    assert "AWAS" not in reply
    assert is_single_gsm7_sms(reply)
    # candidates from the largest share down
    ranked = sorted(document["estimate"], key=lambda c: -document["estimate"][c]["value"])
    assert reply.index(f" {ranked[0]} ") < reply.index(f" {ranked[-1]} ")
    # a kabupaten: a domain of the design
    reply = sms(COORD_NATIONAL, "QC 62.01")
    lead = json.loads(cli(database_url, "quickcount", "62.01", "--json").output)["lead"]
    assert reply.startswith("OK QC Kab 01: "), reply
    assert f"selisih {lead['first']}-{lead['second']} {100 * lead['value']:.1f}+-" in reply
    # the whole scope of the national coordinator: the design's 40 stations (the world has none);
    # nationally the presidential rule decides (three pairs, one province here)
    reply = sms(COORD_NATIONAL, "QC")
    assert "TPS sampel 40/40" in reply and is_single_gsm7_sms(reply)
    # English coordinator, outside their scope (Kalimantan Timur)
    assert sms(COORD_KALTIM, "QC 62").startswith("ERROR: 62 Provinsi Sintetis is outside your area")
    assert sms(COORD_KALTIM, "QC").startswith("ERROR: no sample station in")
    refused = sms(VOLUNTEER_A, "QC")
    assert refused == "GAGAL: perintah QC hanya untuk koordinator."


def test_api_quickcount(frame, database, database_url, client, sms) -> None:
    assert client.get("/api/quickcount?region=62").status_code == 401
    response = client.get("/api/quickcount?region=62", headers=AUTH)
    assert response.status_code == 404 and response.json["error"] == "no sample design"
    draw(database_url)
    truth = votes_of(frame)
    for station in sorted(sampled(database))[:20]:
        report(sms, station, truth[station])
    response = client.get("/api/quickcount?region=62", headers=AUTH)
    assert response.status_code == 200, response.data
    document = response.json
    assert set(document) >= {"region", "design", "rule", "stations", "estimate", "turnout", "warnings",
                             "collapsed_strata", "strata", "disputed", "comparison"}  # fmt: skip
    assert document["region"]["code"] == "62"
    for r in document["estimate"].values():
        assert r["ci99"][0] < r["ci95"][0] < r["value"] < r["ci95"][1] < r["ci99"][1]
        assert r["se"] > 0
    assert sum(s["reported"] for s in document["strata"]) == 20
    assert client.get("/api/quickcount?region=99", headers=AUTH).status_code == 404


def test_sample_import_and_size(frame, database, database_url, tmp_path) -> None:
    stations = list(frame.station_ids[:6])
    path = tmp_path / "sample.csv"
    path.write_text(
        "station_id,stratum\n" + "".join(f"{s},{s[:2]}.{s[2:4]}\n" for s in stations), encoding="utf-8"
    )
    result = cli(database_url, "sample", "import", str(path))
    assert result.exit_code == 0, result.output
    assert sampled(database) == {s: f"{s[:2]}.{s[2:4]}" for s in stations}
    bad = tmp_path / "bad.csv"
    bad.write_text("station_id,stratum\n6201012001001,62.02\n9999999999001,62.01\n", encoding="utf-8")
    result = cli(database_url, "sample", "import", str(bad))
    assert result.exit_code == 1
    assert "not inside stratum 62.02" in result.output and "unknown station" in result.output
    args = ["--moe", "0.01", "--shares", "0.25,0.58,0.17", "--deff", "10", "--voters", "200"]
    result = cli(database_url, "sample", "size", *args)
    assert result.exit_code == 0, result.output
    # 1.96^2 * 0.42 * 0.58 / 0.01^2 = 9358 voters; x 10 / 200 = 467.9 -> 468 stations
    assert "recommended sample: 468 stations" in result.output


def test_previous_results_import_and_adjusted_estimate(frame, database, database_url, sms, tmp_path) -> None:
    """With the previous election imported, the stations in are compared with those out on
    it, and the adjusted estimate regresses on it; a bad file imports nothing."""
    draw(database_url)
    design = sampled(database)
    truth = votes_of(frame)
    # the previous election: this one's votes, each moved by up to 20% (strongly correlated)
    rng = np.random.default_rng(4)
    before = {sid: [int(n * rng.uniform(0.8, 1.2)) for n in votes] for sid, votes in truth.items()}
    path = tmp_path / "previous.csv"
    lines = [f"{sid},{v[0]},{v[1]},{v[2]},{sum(v) + 5}" for sid, v in before.items()]
    path.write_text("station_id,01,02,03,valid\n" + "\n".join(lines) + "\n", encoding="utf-8")
    result = cli(database_url, "import", "previous", str(path))
    assert result.exit_code == 0, result.output
    assert f"previous: {len(before)} stations" in result.output
    # the stations where 02 did best last time report last: not at random
    ranked = sorted(design, key=lambda s: before[s][1] / sum(before[s]))
    for station in ranked[:26]:
        report(sms, station, truth[station])
    document = json.loads(cli(database_url, "quickcount", "62", "--json").output)
    checks = {c["variable"]: c for c in document["nonresponse"]}
    assert {"registered", "kelurahan", "previous:01", "previous:02", "previous:03"} <= set(checks)
    assert checks["previous:02"]["reported"] < checks["previous:02"]["missing"]
    assert checks["previous:02"]["z"] < -3 and checks["previous:02"]["warn"]
    assert "nonresponse_bias" in document["warnings"] and document["call"] != "called"
    test = document["nonresponse_test"]  # previous shares sum to one: one direction fewer
    assert test["reject"] and test["p_value"] <= test["level"] == 0.025 and test["df"] in (3, 4)
    adjusted = document["adjusted"]
    assert "regression on the previous result" in adjusted["method"]
    assert set(adjusted["estimate"]) == {"01", "02", "03"} and adjusted["lead"] is not None
    # the previous valid total counts 5 votes for parties without a current counterpart
    assert adjusted["estimate"]["02"]["value"] > document["estimate"]["02"]["value"]
    bad = tmp_path / "bad.csv"
    bad.write_text("station_id,01,02,04\n6201012001001,1,2,3\n9999999999001,x,1\n", encoding="utf-8")
    result = cli(database_url, "import", "previous", str(bad))
    assert result.exit_code == 1 and "unknown column(s) 04" in result.output
    bad.write_text("station_id,01,02\n6201012001001,1,2\n6201012001001,x,1\n", encoding="utf-8")
    result = cli(database_url, "import", "previous", str(bad))
    assert result.exit_code == 1 and "line 3" in result.output and "nothing imported" in result.output


def test_sample_size_for_the_lead_with_response_and_measured_design_effect(
    frame, database, database_url, tmp_path
) -> None:
    """For the lead: v = p1 + p2 - (p1 - p2)^2 = 0.58 + 0.25 - 0.33^2 = 0.7211;
    1.96^2 * 0.7211 / 0.02^2 = 6925.2 voters; x 10 / 200 = 346.26 stations; / 0.8 = 432.8 -> 433."""
    args = ["--moe", "0.02", "--shares", "0.25,0.58,0.17", "--deff", "10", "--voters", "200", "--lead"]
    result = cli(database_url, "sample", "size", *args, "--response", "0.8")
    assert result.exit_code == 0, result.output
    assert "recommended sample: 433 stations" in result.output
    assert "347 stations if all report" in result.output
    result = cli(database_url, "sample", "size", *args)
    assert "recommended sample: 347 stations" in result.output
    # --deff auto: measured on the previous results, by hand with numpy
    assert cli(database_url, "sample", "size", "--moe", "0.02", "--deff", "auto").exit_code == 1
    truth = votes_of(frame)
    path = tmp_path / "previous.csv"
    lines = [f"{sid},{v[0]},{v[1]},{v[2]}" for sid, v in truth.items()]
    path.write_text("station_id,01,02,03\n" + "\n".join(lines) + "\n", encoding="utf-8")
    assert cli(database_url, "import", "previous", str(path)).exit_code == 0
    ids = np.array(list(truth))
    votes = np.array([truth[s] for s in ids], dtype=float)
    valid = votes.sum(axis=1)
    shares = votes.sum(axis=0) / valid.sum()
    first, second = np.argsort(-shares)[:2]
    y = votes[:, first] - votes[:, second]
    e = y - y.sum() / valid.sum() * valid
    strata = np.array([s[:4] for s in ids])
    within = sum((strata == h).sum() * e[strata == h].var(ddof=1) for h in set(strata)) / len(ids)
    v = shares[first] + shares[second] - (shares[first] - shares[second]) ** 2
    deff = within / (valid.mean() * v)
    result = cli(
        database_url, "sample", "size", "--moe", "0.02", "--deff", "auto", "--lead", "--voters", "150"
    )
    assert result.exit_code == 0, result.output
    assert f"design effect {deff:.1f}" in result.output
    assert f"measured on the previous results of {len(ids)} stations (kabkota strata" in result.output
