"""The overview's figures from plain rows, with numbers you can check by hand on a calendar of 2026."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta

import pytest

from flows.lifecycle import Status
from flows.municipality import Department, Municipality, Theme
from flows.reports import (
    CaseFacts,
    Party,
    PeriodCount,
    SpellTotals,
    StatusCount,
    Waiter,
    calendar_ordinals,
    contact_buckets,
    default_period,
    first_contact,
    latest_start,
    level_counts,
    open_by_status,
    per_month,
    per_quarter,
    percentile,
    stalled,
    waiter,
    waits,
)
from flows.stalls import AMSTERDAM, Level, StallFacts, Track, stalled_standings, working_days_between

# Friday 15 May 2026, the day after Ascension, is the town hall's closing day.
TOWN = Municipality(
    code="GM0301",
    name="Testdorp",
    wijken=(),
    themes=(Theme("groen", "Groen", "Greenery"),),
    departments=(Department("verkeer", "Verkeer"), Department("groen", "Groen")),
    closing_days=(date(2026, 5, 15),),
)


def at(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=AMSTERDAM)


def test_the_calendar_counts_working_days_as_the_norms_do_over_holidays_and_closing_days() -> None:
    ordinal = dict(calendar_ordinals(TOWN, date(2026, 4, 1), date(2026, 6, 30)))
    # Friday 24 April -> Tuesday 28 April: Monday 27 April is King's Day, so only the Tuesday counts.
    assert ordinal[date(2026, 4, 28)] - ordinal[date(2026, 4, 24)] == 1
    # Wednesday 13 May -> Monday 18 May: Ascension (Thursday), the closing day (Friday), the weekend.
    assert ordinal[date(2026, 5, 18)] - ordinal[date(2026, 5, 13)] == 1
    # A day after itself: nothing.
    assert ordinal[date(2026, 5, 14)] - ordinal[date(2026, 5, 13)] == 0
    assert ordinal[date(2026, 4, 1)] == 0


def test_the_calendar_agrees_with_working_days_between_for_any_two_days() -> None:
    ordinal = dict(calendar_ordinals(TOWN, date(2025, 12, 1), date(2027, 1, 31)))
    days = sorted(ordinal)
    pick = random.Random(11)
    for _ in range(300):
        a, b = sorted(pick.sample(days, 2))
        assert ordinal[b] - ordinal[a] == working_days_between(at(a), at(b), TOWN.closing_days), (a, b)


def test_a_calendar_from_a_later_day_keeps_the_same_differences() -> None:
    early = dict(calendar_ordinals(TOWN, date(2026, 1, 1), date(2026, 12, 31)))
    late = dict(calendar_ordinals(TOWN, date(2026, 6, 1), date(2026, 12, 31)))
    a, b = date(2026, 7, 3), date(2026, 12, 28)
    assert early[b] - early[a] == late[b] - late[a]


@pytest.mark.parametrize(
    ("status", "department", "expected"),
    [
        ("ingediend", None, Waiter(Party.BROKER)),  # nobody assigned yet: the municipality's side
        ("toegewezen", None, Waiter(Party.BROKER)),
        ("in_gesprek", None, Waiter(Party.BROKER)),
        ("goedgekeurd", None, Waiter(Party.BROKER)),  # approved: the broker gets it going
        ("plan_in_uitwerking", None, Waiter(Party.RESIDENT)),
        ("in_uitvoering", None, Waiter(Party.RESIDENT)),
        ("bij_gemeente", "verkeer", Waiter(Party.DEPARTMENT, "verkeer")),
        ("bij_gemeente", None, Waiter(Party.DEPARTMENT, None)),  # not recorded
        ("afgewezen", None, None),  # nobody is expected to act
        ("gerealiseerd", None, None),
        ("gestopt", None, None),
        ("made_up", None, None),
    ],
)
def test_each_status_waits_on_one_party(status: str, department: str | None, expected: Waiter | None) -> None:
    assert waiter(status, department) == expected


def test_a_department_is_named_only_while_the_case_is_with_the_municipality() -> None:
    assert waiter("in_gesprek", "verkeer") == Waiter(Party.BROKER)


def test_open_cases_by_status_come_in_lifecycle_order_with_zeros() -> None:
    counts = {"in_uitvoering": 4, "ingediend": 2, "gerealiseerd": 9}
    assert open_by_status(counts) == [
        StatusCount("ingediend", 2),
        StatusCount("toegewezen", 0),
        StatusCount("in_gesprek", 0),
        StatusCount("plan_in_uitwerking", 0),
        StatusCount("bij_gemeente", 0),
        StatusCount("goedgekeurd", 0),
        StatusCount("in_uitvoering", 4),
    ]


def test_new_initiatives_per_month_include_empty_months_and_only_the_period() -> None:
    per_day = [
        (date(2026, 1, 31), 5),  # before the period
        (date(2026, 2, 1), 1),
        (date(2026, 2, 28), 2),
        (date(2026, 4, 30), 3),
        (date(2026, 5, 1), 7),  # after it
    ]
    assert per_month(per_day, date(2026, 2, 1), date(2026, 4, 30)) == [
        PeriodCount(date(2026, 2, 1), 3),
        PeriodCount(date(2026, 3, 1), 0),
        PeriodCount(date(2026, 4, 1), 3),
    ]


def test_a_period_across_new_year_has_its_months_in_order() -> None:
    months = per_month([], date(2025, 11, 15), date(2026, 2, 3))
    assert [m.start for m in months] == [
        date(2025, 11, 1),
        date(2025, 12, 1),
        date(2026, 1, 1),
        date(2026, 2, 1),
    ]


def test_realised_per_quarter() -> None:
    per_day = [(date(2025, 12, 31), 1), (date(2026, 1, 1), 2), (date(2026, 3, 31), 1), (date(2026, 7, 9), 4)]
    quarters = per_quarter(per_day, date(2025, 12, 1), date(2026, 8, 1))
    assert [(q.start, q.quarter, q.count) for q in quarters] == [
        (date(2025, 10, 1), 4, 1),
        (date(2026, 1, 1), 1, 3),
        (date(2026, 4, 1), 2, 0),
        (date(2026, 7, 1), 3, 4),
    ]


def test_percentiles_are_nearest_rank() -> None:
    values = {1: 2, 3: 1, 10: 1}  # 1, 1, 3, 10
    assert percentile(values, 50) == 1  # the 2nd of 4
    assert percentile(values, 75) == 3  # the 3rd
    assert percentile(values, 90) == 10  # the 4th: ceil(3.6)
    assert percentile({}, 50) is None
    assert percentile({4: 1}, 90) == 4


def test_first_contact_against_the_norm() -> None:
    # The norm a resident is promised: ingediend (2) plus toegewezen (5) working days.
    fc = first_contact({0: 1, 2: 3, 7: 2, 8: 3, 30: 1}, waiting=4, m=TOWN)
    assert fc.norm == 7
    assert (fc.contacted, fc.waiting) == (10, 4)
    assert fc.median == 7  # 0, 2, 2, 2, 7 | 7, 8, 8, 8, 30: the 5th value
    assert fc.p90 == 8  # the 9th value
    assert fc.within_norm == 6 and fc.within_norm_share == 60
    assert fc.histogram == ((0, 1), (2, 3), (7, 2), (8, 3), (30, 1))


def test_first_contact_without_any_contact() -> None:
    fc = first_contact({}, waiting=2, m=TOWN)
    assert (fc.median, fc.p90, fc.within_norm_share, fc.contacted) == (None, None, None, 0)


def test_the_first_contact_chart_gathers_the_long_tail() -> None:
    fc = first_contact({0: 1, 2: 3, 25: 1, 40: 2}, waiting=0, m=TOWN)
    bars = contact_buckets(fc, top=5)
    assert bars == [("0", 1), ("1", 0), ("2", 3), ("3", 0), ("4", 0), ("5", 0), ("6+", 3)]
    assert contact_buckets(first_contact({1: 2}, 0, TOWN)) == [("0", 0), ("1", 2)]


def test_waits_add_up_per_party_with_each_department_apart_longest_average_first() -> None:
    totals = [
        SpellTotals("ingediend", None, spells=10, days=20),
        SpellTotals("in_gesprek", None, spells=10, days=60, running=3),
        SpellTotals("plan_in_uitwerking", None, spells=5, days=100),
        SpellTotals("in_uitvoering", None, spells=5, days=50, running=5),
        SpellTotals("bij_gemeente", "verkeer", spells=2, days=50, running=1),
        SpellTotals("bij_gemeente", "groen", spells=4, days=20),
        SpellTotals("afgewezen", None, spells=9, days=900),  # nobody waited: left out
    ]
    found = waits(totals)
    assert [(w.waiter, w.spells, w.days, w.running) for w in found] == [
        (Waiter(Party.DEPARTMENT, "verkeer"), 2, 50, 1),  # 25 a spell
        (Waiter(Party.RESIDENT), 10, 150, 5),  # 15
        (Waiter(Party.DEPARTMENT, "groen"), 4, 20, 0),  # 5
        (Waiter(Party.BROKER), 20, 80, 3),  # 4
    ]
    assert found[1].average == 15.0


# Monday 20 April 2026; the cases are looked at on Thursday 30 April, at noon. Between them: 21-24 April
# (4 working days), King's Day on Monday 27 April, then 28, 29 and 30 April: 7 working days.
SINCE = at(date(2026, 4, 20), 9)
NOW = at(date(2026, 4, 30), 12)


def case(reference: str, status: Status, *, broker_id: int | None = None) -> CaseFacts:
    return CaseFacts(
        reference, f"Idee {reference}", None, None, StallFacts(status.value, SINCE, broker_id=broker_id)
    )


def test_stalled_cases_worst_first_with_the_step_they_reached() -> None:
    found = stalled(
        [
            case("A", Status.TOEGEWEZEN),  # norm 5: 7 days reach the reminder (escalation at 8)
            case("B", Status.INGEDIEND),  # norm 2: escalation at 3, urgent at 6: urgent
            case("C", Status.IN_GESPREK),  # norm 10: fine
        ],
        TOWN,
        NOW,
    )
    assert [(c.reference, c.level, c.track, c.days, c.norm, c.over) for c in found] == [
        ("B", Level.URGENT, Track.STATUS, 7, 2, 5),
        ("A", Level.REMINDER, Track.STATUS, 7, 5, 2),
    ]
    assert level_counts(found) == [(Level.REMINDER, 1), (Level.ESCALATION, 0), (Level.URGENT, 1)]


def test_a_stalled_case_shows_its_worst_clock() -> None:
    # In the status for 7 of its 20 days, but no sign of life from the broker for 16 working days.
    quiet = at(date(2026, 4, 7), 9)  # Tuesday 7 April: 8-10 April (3), 13-17 (5), 20-24 (5), 28-30 (3)
    facts = StallFacts(
        "plan_in_uitwerking", SINCE, broker_id=7, assigned_at=quiet, last_broker_action_at=quiet
    )
    (found,) = stalled([CaseFacts("D", "Idee D", None, "Bram", facts)], TOWN, NOW)
    assert (found.track, found.level, found.days, found.norm) == (Track.SILENCE, Level.REMINDER, 16, 15)


def test_equally_stalled_cases_longest_in_their_status_first() -> None:
    earlier = CaseFacts("Z", "Idee Z", None, None, StallFacts("ingediend", SINCE - timedelta(minutes=1)))
    found = stalled([case("B", Status.INGEDIEND), earlier], TOWN, NOW)
    assert [c.reference for c in found] == ["Z", "B"]


def test_the_default_period_is_the_last_twelve_months_this_month_included() -> None:
    assert default_period(date(2026, 11, 17)) == (date(2025, 12, 1), date(2026, 11, 17))
    assert default_period(date(2026, 1, 1)) == (date(2025, 2, 1), date(2026, 1, 1))


def test_the_stalled_list_agrees_with_the_watchdogs_rule_for_any_case() -> None:
    pick = random.Random(7)
    statuses = [s.value for s in Status]
    cases = []
    for n in range(400):
        started = NOW - timedelta(hours=pick.randrange(1, 24 * 120))
        acted = started - timedelta(hours=pick.randrange(0, 24 * 60)) if pick.random() < 0.7 else None
        facts = StallFacts(
            pick.choice(statuses),
            started,
            department=pick.choice([None, "verkeer", "groen"]),
            broker_id=pick.choice([None, 7]),
            assigned_at=acted,
            last_broker_action_at=acted if pick.random() < 0.5 else None,
        )
        cases.append(CaseFacts(f"R{n:03d}", "Idee", None, None, facts))
    found = {c.reference: c for c in stalled(cases, TOWN, NOW)}
    for case in cases:
        reached = stalled_standings(case.facts, TOWN, NOW)
        assert (case.reference in found) == bool(reached), case
        if reached:
            top = max(s.level or 0 for s in reached)
            mine = found[case.reference]
            assert mine.level == top
            assert any((s.track, s.days, s.norm) == (mine.track, mine.days, mine.norm) for s in reached)


def test_latest_start_is_the_last_day_a_clock_can_start_and_be_due() -> None:
    # Due at 09:00 on the 5th working day: on Thursday 30 April at noon, a clock of 5 days is due if it
    # started on or before Wednesday 22 April (23, 24, 28, 29, 30: King's Day skipped).
    assert latest_start(TOWN, 5, NOW) == date(2026, 4, 22)
    # Before 09:00 that day's step is not due yet.
    assert latest_start(TOWN, 5, at(date(2026, 4, 30), 8)) == date(2026, 4, 21)
