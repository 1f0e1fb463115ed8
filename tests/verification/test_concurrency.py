"""Many workers report for the same stations at once (PostgreSQL only): the region counters
must equal a recomputation from scratch over the station results and their reports."""

from __future__ import annotations

import os
import random
import threading
from collections import Counter

import pytest
from sqlalchemy import select

from smsgate.config import Settings
from smsgate.inbound import InboundSMS
from smsgate.models import Contact, Report, StationResult
from smsgate.regions import ancestor_keys
from smsgate.services import counters
from smsgate.services.ingest import Ingest
from smsgate.services.station_results import counter_values, current_reports, decide

from ..support import MANTUIL

pytestmark = pytest.mark.skipif(
    not os.environ.get("SMSGATE_TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="concurrency test needs PostgreSQL (SMSGATE_TEST_DATABASE_URL)",
)

WORKERS = 8
MESSAGES = 15
STATIONS = (1, 2, 12)


def test_concurrent_reports_keep_counters_exact(database, settings: Settings, world):
    phones = [f"+62853000000{n:02d}" for n in range(WORKERS)]
    with database.begin() as session:
        for phone in phones:  # volunteers of the desa, not tied to one TPS
            session.add(Contact(phone=phone, name=phone, role="volunteer", region_code=MANTUIL, lang="id"))
    ingest = Ingest(database, settings)
    errors: list[BaseException] = []
    barrier = threading.Barrier(WORKERS)

    def work(worker: int) -> None:
        rng = random.Random(worker)
        try:
            barrier.wait()
            for n in range(MESSAGES):
                tps = rng.choice(STATIONS)
                if n % 7 == 6:
                    body = "BATAL"
                else:
                    votes = [rng.choice((100, 101, 150)), rng.choice((80, 90)), 20]
                    body = f"TPS {tps:03d} 01={votes[0]} 02={votes[1]} 03={votes[2]}"
                reply = ingest.receive(
                    InboundSMS(
                        provider="twilio",
                        provider_message_id=f"SMconc{worker:02d}{n:04d}",
                        from_number=phones[worker],
                        to_number="+15005550006",
                        text=body,
                    )
                )
                assert reply.text and reply.text.startswith(("OK", "GAGAL")), reply
                assert reply.outcome != "error", reply
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors

    with database.read() as session:
        assert session.scalar(select(Report.id).limit(1)) is not None
        expected: dict[str, Counter[str]] = {}
        for result in session.scalars(select(StationResult)):
            decision = decide(current_reports(session, result.station_id))  # from the reports
            assert result.status == decision.status, result.station_id
            assert result.votes == decision.votes, result.station_id
            values = Counter(counter_values(result))
            values["stations"] += 1
            for key in ancestor_keys(result.station_id[:10]):
                expected.setdefault(key, Counter()).update(values)
        for key, values in expected.items():
            counted = {k: v for k, v in counters.read(session, key).items() if v}
            assert counted == {k: v for k, v in values.items() if v}, key
