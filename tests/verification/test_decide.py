"""The one-result-per-station rule (station_results.decide) and the pure flag checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from smsgate.models import Report
from smsgate.services.checks import one_digit_apart
from smsgate.services.station_results import DISPUTED, MISSING, OVERRIDDEN, REPORTED, VERIFIED, decide

T0 = datetime(2024, 2, 14, 14, 0, tzinfo=UTC)
_ids = iter(range(1, 10_000))


def report(contact: int, minute: int, votes: dict[str, int], coordinator: bool = False) -> Report:
    return Report(
        id=next(_ids),
        contact_id=contact,
        votes=votes,
        by_coordinator=coordinator,
        created_at=T0 + timedelta(minutes=minute),
    )


A = {"01": 100, "02": 80}
B = {"01": 100, "02": 60}


def test_no_reports_missing_one_reported():
    assert decide([]).status == MISSING
    only = report(1, 0, A)
    assert decide([only]).status == REPORTED and decide([only]).report is only


def test_two_independent_agree_verified_but_one_contact_twice_does_not():
    assert decide([report(1, 0, A), report(2, 1, A)]).status == VERIFIED
    assert decide([report(1, 0, A), report(1, 1, A)]).status == REPORTED  # same volunteer


def test_disagreement_majority_then_latest_on_tie():
    first, second = report(1, 0, A), report(2, 1, B)
    tie = decide([first, second])
    assert tie.status == DISPUTED and tie.report is second  # tie: the latest
    third = report(3, 2, A)
    majority = decide([first, second, third, report(4, 3, B), report(5, 4, A)])
    assert majority.status == DISPUTED and majority.votes == A


def test_coordinator_settles_volunteers_who_do_not_agree():
    coordinator = report(9, 3, B, coordinator=True)
    decision = decide([report(1, 1, A), coordinator])  # one volunteer: no agreement to contradict
    assert decision.status == VERIFIED and decision.report is coordinator
    decision = decide([report(1, 0, A), report(2, 1, B), report(9, 2, A, coordinator=True)])
    assert decision.status == VERIFIED and decision.votes == A  # a dispute settled


def test_coordinator_against_the_volunteers_agreement_is_overridden_not_counted():
    coordinator = report(9, 0, B, coordinator=True)
    agreed = report(2, 2, A)
    decision = decide([report(1, 1, A), agreed, coordinator])
    assert decision.status == OVERRIDDEN and decision.report is agreed and decision.override is coordinator
    assert decide([report(1, 1, A), agreed, coordinator], confirmed=coordinator).report is coordinator
    agreeing = report(8, 5, A, coordinator=True)  # a newer coordinator report that agrees
    assert decide([report(1, 1, A), agreed, coordinator, agreeing]).status == VERIFIED


def test_one_digit_apart():
    assert one_digit_apart(152, 652) and one_digit_apart(98, 93)
    assert not one_digit_apart(152, 152) and not one_digit_apart(152, 1152) and not one_digit_apart(152, 643)


def test_qualified_majority_verifies_despite_dissent():
    from smsgate.services.consensus import Rule

    six = [report(n, n, A) for n in range(1, 7)]
    decision = decide([*six, report(7, 7, B)])
    assert decision.status == VERIFIED and decision.votes == A and len(decision.voters) == 7
    assert decide([report(1, 0, A), report(2, 1, A), report(3, 2, B)]).status == DISPUTED  # 2 < 3 agreeing
    stricter = Rule(min_agree=7, share=Rule().share)
    assert decide([*six, report(7, 7, B)], rule=stricter).status == DISPUTED
