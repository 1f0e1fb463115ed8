"""Who is often alone: per-volunteer outvoted rates, and the outliers within the viewer's scope."""

from __future__ import annotations

from ..support import KURIPAN, MANTUIL
from .conftest import KALTIM, login
from .test_review_by_impact import crowd, night  # noqa: F401  (fixture)

AUTH = {"Authorization": "Bearer test-api-token"}


def test_outliers_are_the_volunteers_most_often_outvoted(sms, crowd, client):  # noqa: F811
    night(sms, crowd)
    document = client.get("/api/outliers?region=63.71", headers=AUTH).get_json()
    assert document["outvoted_volunteers"] == 2
    listed = [
        (v["phone"], v["outvoted"], v["settled"], v["rate"], v["deviation"], v["favours"])
        for v in document["volunteers"]
    ]
    assert listed == [
        (crowd[MANTUIL][4], 2, 2, 1.0, 146, "02"),  # 02=86 at TPS 001, 01=30 02=150 at TPS 002
        (crowd[KURIPAN][3], 1, 1, 1.0, 1, "01"),
    ]
    assert document["volunteers"][0]["stations"] == ["6371011001001", "6371011001002"]
    kecamatan = client.get("/api/outliers?region=63.71.02", headers=AUTH).get_json()
    assert [v["phone"] for v in kecamatan["volunteers"]] == [crowd[KURIPAN][3]]

    # A correction at one station halves the rate; below one half a volunteer is not listed.
    sms(crowd[MANTUIL][4], "TPS 001 01=100 02=80 03=20")
    again = client.get("/api/outliers?region=63.71.01", headers=AUTH).get_json()["volunteers"]
    assert [(v["outvoted"], v["settled"], v["rate"]) for v in again] == [(1, 2, 0.5)]
    sms(crowd[MANTUIL][4], "TPS 002 01=100 02=80 03=20")
    assert client.get("/api/outliers?region=63.71.01", headers=AUTH).get_json()["volunteers"] == []


def test_outliers_answer_a_bad_limit_and_an_unknown_region_as_the_other_region_listings(client, world):
    for path in ("/api/outliers", "/api/flags"):
        assert client.get(f"{path}?region=63.71&limit=0", headers=AUTH).status_code == 400, path
        unknown = client.get(f"{path}?region=99.99", headers=AUTH)
        assert unknown.status_code == 404, path
        assert unknown.get_json() == {"error": "unknown region", "region": "99.99"}
        assert client.get(f"{path}?region=63.71&limit=2", headers=AUTH).get_json()["region"] == "63.71"


def test_the_dashboard_lists_outliers_in_the_viewers_scope_only(sms, crowd, app, admin, kota):  # noqa: F811
    night(sms, crowd)
    page = kota.get("/dashboard/volunteers").get_data(as_text=True)
    assert f'data-phone="{crowd[MANTUIL][4]}"' in page and f'data-phone="{crowd[KURIPAN][3]}"' in page
    assert page.index(crowd[MANTUIL][4]) < page.index(crowd[KURIPAN][3])
    kaltim = app.test_client()
    assert login(kaltim, KALTIM).status_code == 302
    page = kaltim.get("/dashboard/volunteers").get_data(as_text=True)
    assert "Sering sendirian" in page and crowd[MANTUIL][4] not in page
    history = admin.get(f"/dashboard/volunteers/{crowd[MANTUIL][4]}").get_data(as_text=True)
    assert '<span id="outvoted">2/2</span>' in history
