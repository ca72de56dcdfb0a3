"""Norms in Dutch working days and the escalation ladder for initiatives that stall."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta, timezone

import holidays
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.settings import BUNDLED_CONFIG_DIR, load_municipality
from flows.lifecycle import Status
from flows.municipality import Municipality, Theme
from flows.stalls import (
    AMSTERDAM,
    LADDER,
    AlertKey,
    DueAlert,
    Level,
    StallClock,
    StallFacts,
    Standing,
    Track,
    clocks,
    days_over,
    due_alerts,
    due_at,
    first_contact_days,
    is_stalled,
    is_working_day,
    next_due,
    norm_for,
    stalled_standings,
    standings,
    status_standing,
    sweep_steps,
    threshold,
    working_days_between,
)

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TOWN = Municipality(code="GM0301", name="Testdorp", wijken=(), themes=(Theme("groen", "Groen", "Greenery"),))
BROKER = 7


def ams(year: int, month: int, day: int, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=AMSTERDAM)


def nine(year: int, month: int, day: int) -> datetime:
    return ams(year, month, day, 9, 0)


def keys(alerts: list[DueAlert]) -> set[AlertKey]:
    return {alert.key for alert in alerts}


# --- Working days --------------------------------------------------------------------------------------


def test_koningsdag_is_no_working_day() -> None:
    assert not is_working_day(date(2026, 4, 27))  # a Monday
    assert is_working_day(date(2026, 4, 28))


def test_koningsdag_moves_to_saturday_when_27_april_is_a_sunday() -> None:
    nl = holidays.country_holidays("NL", years=2025)
    assert date(2025, 4, 26) in nl  # Saturday
    assert date(2025, 4, 27) not in nl  # Sunday
    # So the Monday after is an ordinary working day.
    assert is_working_day(date(2025, 4, 28))
    assert due_at(nine(2025, 4, 25), 1) == nine(2025, 4, 28)


def test_norm_straddling_koningsdag_skips_it() -> None:
    entered = ams(2026, 4, 24, 15, 30)  # Friday
    assert due_at(entered, 2) == nine(2026, 4, 29)  # Wednesday: Monday 27 April is Koningsdag
    assert working_days_between(entered, nine(2026, 4, 29)) == 2


def test_good_friday_follows_the_holidays_package() -> None:
    # The package lists Goede Vrijdag among the days of the Algemene termijnenwet (older releases of the
    # package filed it as optional). Whatever it says, our working days must agree with it.
    good_friday = date(2026, 4, 3)
    nl = holidays.country_holidays("NL", years=2026)
    assert is_working_day(good_friday) is (good_friday not in nl)
    assert good_friday in nl, "this holidays release treats Goede Vrijdag as a public holiday"
    assert not is_working_day(good_friday)


def test_easter_monday_is_no_working_day() -> None:
    assert not is_working_day(date(2026, 4, 6))
    # Entered on Maundy Thursday: Good Friday, the weekend and Tweede Paasdag are skipped.
    assert due_at(ams(2026, 4, 2, 11), 1) == nine(2026, 4, 7)


def test_ascension_day_is_no_working_day() -> None:
    assert not is_working_day(date(2026, 5, 14))
    assert due_at(ams(2026, 5, 13, 16), 1) == nine(2026, 5, 15)


def test_whit_monday_is_no_working_day() -> None:
    assert not is_working_day(date(2026, 5, 25))
    assert due_at(ams(2026, 5, 22, 10), 1) == nine(2026, 5, 26)


def test_christmas_and_new_year_are_no_working_days() -> None:
    assert not is_working_day(date(2025, 12, 25))
    assert not is_working_day(date(2025, 12, 26))
    assert not is_working_day(date(2026, 1, 1))
    assert due_at(ams(2025, 12, 24, 12), 1) == nine(2025, 12, 29)
    assert due_at(ams(2025, 12, 24, 12), 4) == nine(2026, 1, 2)  # 29, 30, 31 December, 2 January


def test_bevrijdingsdag_only_counts_in_a_lustrum_year() -> None:
    assert date(2025, 5, 5) in holidays.country_holidays("NL", years=2025)
    assert date(2026, 5, 5) not in holidays.country_holidays("NL", years=2026)
    assert not is_working_day(date(2025, 5, 5))  # Monday, lustrum
    assert is_working_day(date(2026, 5, 5))  # Tuesday, no lustrum
    assert due_at(ams(2025, 5, 2, 10), 1) == nine(2025, 5, 6)
    assert due_at(ams(2026, 5, 4, 10), 1) == nine(2026, 5, 5)


def test_municipality_closing_day_is_no_working_day() -> None:
    bridge_day = date(2026, 5, 15)  # the Friday after Ascension
    assert is_working_day(bridge_day)
    assert not is_working_day(bridge_day, (bridge_day,))
    assert due_at(ams(2026, 5, 13, 16), 1, (bridge_day,)) == nine(2026, 5, 18)
    assert working_days_between(ams(2026, 5, 13), nine(2026, 5, 18), (bridge_day,)) == 1


def test_working_days_agree_with_the_package_every_day() -> None:
    for year in (2025, 2026, 2027):
        nl = holidays.country_holidays("NL", years=year)
        day = date(year, 1, 1)
        while day.year == year:
            assert is_working_day(day) is (day.weekday() < 5 and day not in nl), day
            day += timedelta(days=1)


def test_due_moment_is_nine_in_the_morning_amsterdam_time() -> None:
    due = due_at(datetime(2026, 6, 1, 12, tzinfo=UTC), 1)
    assert due.tzinfo is not None
    assert due == datetime(2026, 6, 2, 7, tzinfo=UTC)  # 09:00 CEST


def test_the_amsterdam_date_counts_not_the_utc_date() -> None:
    # 23:30 UTC on Monday is already Tuesday in Amsterdam.
    started = datetime(2026, 6, 1, 23, 30, tzinfo=UTC)
    assert due_at(started, 1) == nine(2026, 6, 3)


def test_due_moment_across_the_spring_dst_change() -> None:
    # Summer time starts on Sunday 29 March 2026.
    assert due_at(ams(2026, 3, 27, 17), 1) == datetime(2026, 3, 30, 7, tzinfo=UTC)
    # 22:30 UTC on the Sunday is 00:30 CEST on Monday.
    assert due_at(datetime(2026, 3, 29, 22, 30, tzinfo=UTC), 1) == datetime(2026, 3, 31, 7, tzinfo=UTC)
    assert due_at(datetime(2026, 3, 28, 22, 30, tzinfo=UTC), 1) == datetime(2026, 3, 30, 7, tzinfo=UTC)


def test_due_moment_across_the_autumn_dst_change() -> None:
    # Winter time starts on Sunday 25 October 2026.
    assert due_at(ams(2026, 10, 23, 17), 1) == datetime(2026, 10, 26, 8, tzinfo=UTC)
    # 23:30 UTC on the Sunday is 00:30 CET on Monday.
    assert due_at(datetime(2026, 10, 25, 23, 30, tzinfo=UTC), 1) == datetime(2026, 10, 27, 8, tzinfo=UTC)
    assert due_at(datetime(2026, 10, 25, 22, 30, tzinfo=UTC), 1) == datetime(2026, 10, 26, 8, tzinfo=UTC)


def test_due_at_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        due_at(ams(2026, 6, 1), 0)
    with pytest.raises(ValueError):
        due_at(datetime(2026, 6, 1, 12), 1)  # naive


# --- Norms and the ladder --------------------------------------------------------------------------------


def test_default_norms_per_status() -> None:
    expected = {
        "ingediend": 2,
        "toegewezen": 5,
        "in_gesprek": 10,
        "plan_in_uitwerking": 20,
        "bij_gemeente": 20,
        "goedgekeurd": 10,
        "in_uitvoering": 40,
    }
    for status, days in expected.items():
        assert norm_for(TOWN, status, None) == days


def test_final_rejected_and_unknown_statuses_have_no_norm() -> None:
    for status in ("afgewezen", "gerealiseerd", "gestopt", "bogus", ""):
        assert norm_for(TOWN, status, None) is None


def test_vergunningen_and_subsidies_get_their_own_norm_at_the_municipality() -> None:
    assert norm_for(TOWN, "bij_gemeente", "vergunningen") == 40
    assert norm_for(TOWN, "bij_gemeente", "subsidies") == 40
    assert norm_for(TOWN, "bij_gemeente", "verkeer") == 20
    assert norm_for(TOWN, "bij_gemeente", "no_such_department") == 20


def test_department_norm_only_counts_while_with_the_municipality() -> None:
    assert norm_for(TOWN, "in_gesprek", "vergunningen") == 10
    assert norm_for(TOWN, "afgewezen", "vergunningen") is None


def test_bundled_configs_have_the_department_override() -> None:
    for name in ("zutphen.toml", "deventer.toml"):
        m = load_municipality(BUNDLED_CONFIG_DIR / name)
        assert norm_for(m, "bij_gemeente", "vergunningen") == 40
        assert norm_for(m, "bij_gemeente", "groen") == 20


def test_municipality_norms_override_the_defaults() -> None:
    m = replace(TOWN, norms={**TOWN.norms, "toegewezen": 3})
    assert norm_for(m, "toegewezen", None) == 3


def test_ladder_thresholds_for_a_norm_of_five() -> None:
    assert [threshold(5, level) for level in Level] == [5, 8, 15]
    assert [threshold(40, level) for level in Level] == [40, 60, 120]
    assert [threshold(1, level) for level in Level] == [1, 2, 3]
    assert [float(LADDER[level]) for level in Level] == [1.0, 1.5, 3.0]


# --- Clocks ---------------------------------------------------------------------------------------------

ENTERED = ams(2026, 3, 2, 10)  # Monday; nothing special in March 2026 before the DST change


def facts(status: str = "toegewezen", **changes: object) -> StallFacts:
    base = StallFacts(
        status=status,
        status_changed_at=ENTERED,
        department=None,
        broker_id=BROKER,
        assigned_at=ENTERED,
        last_broker_action_at=None,
    )
    return replace(base, **changes)


def test_new_initiative_without_broker_has_only_the_status_clock() -> None:
    f = facts("ingediend", broker_id=None, assigned_at=None)
    assert clocks(f, TOWN) == (StallClock(Track.STATUS, ENTERED, 2),)


def test_assigned_initiative_has_both_clocks() -> None:
    assert clocks(facts(), TOWN) == (
        StallClock(Track.STATUS, ENTERED, 5),
        StallClock(Track.SILENCE, ENTERED, 15),
    )


def test_silence_clock_starts_at_the_latest_broker_action() -> None:
    acted = ams(2026, 3, 4, 14)
    (_, silence) = clocks(facts(last_broker_action_at=acted), TOWN)
    assert silence.started_at == acted
    # A handover after the last action restarts it for the new broker.
    handed_over = ams(2026, 3, 5, 9)
    (_, silence) = clocks(facts(last_broker_action_at=acted, assigned_at=handed_over), TOWN)
    assert silence.started_at == handed_over


def test_silence_clock_uses_the_municipality_norm() -> None:
    m = replace(TOWN, no_sign_of_life_days=7)
    assert clocks(facts(), m)[1] == StallClock(Track.SILENCE, ENTERED, 7)


def test_closed_and_rejected_initiatives_have_no_clocks() -> None:
    for status in ("gerealiseerd", "gestopt", "afgewezen"):
        assert clocks(facts(status), TOWN) == ()


def test_case_with_the_municipality_has_no_status_clock_the_departments_question_has_one() -> None:
    # The department's own norm runs on its question (flows.department.clock, the watchdog's second pass).
    f = facts("bij_gemeente", department="vergunningen")
    assert [c.track for c in clocks(f, TOWN)] == [Track.SILENCE]


# --- Alerts ---------------------------------------------------------------------------------------------
# toegewezen, norm 5, entered Monday 2 March 2026: reminder Monday 9 March, escalation (8) Thursday
# 12 March, urgent (15) Monday 23 March. The silence clock (15) is due on 23 March and, at 23 working days,
# on Thursday 2 April.
REMINDER_AT = nine(2026, 3, 9)
ESCALATION_AT = nine(2026, 3, 12)
URGENT_AT = nine(2026, 3, 23)


def status_only() -> StallFacts:
    return facts(broker_id=None)


def test_nothing_is_due_before_the_norm() -> None:
    assert due_alerts(facts(), TOWN, REMINDER_AT - timedelta(minutes=1), ()) == []
    assert not is_stalled(facts(), TOWN, REMINDER_AT - timedelta(minutes=1))


def test_reminder_is_due_at_the_norm() -> None:
    alerts = due_alerts(facts(), TOWN, REMINDER_AT, ())
    assert alerts == [DueAlert(Track.STATUS, ENTERED, Level.REMINDER, REMINDER_AT)]
    assert alerts[0].key == ("status", ENTERED, 1)
    assert is_stalled(facts(), TOWN, REMINDER_AT)


def test_each_step_happens_once() -> None:
    sent: set[AlertKey] = set()
    fired: list[Level] = []
    moment = ENTERED
    while moment < URGENT_AT + timedelta(days=3):
        for alert in due_alerts(status_only(), TOWN, moment, sent):
            assert not alert.skipped
            fired.append(alert.level)
            sent.add(alert.key)
        moment += timedelta(hours=1)
    assert fired == [Level.REMINDER, Level.ESCALATION, Level.URGENT]


def test_escalation_follows_the_reminder() -> None:
    sent = {("status", ENTERED, 1)}
    assert due_alerts(status_only(), TOWN, ESCALATION_AT - timedelta(seconds=1), sent) == []
    assert due_alerts(status_only(), TOWN, ESCALATION_AT, sent) == [
        DueAlert(Track.STATUS, ENTERED, Level.ESCALATION, ESCALATION_AT)
    ]


def test_after_a_long_outage_only_the_highest_step_fires_and_the_others_are_skipped() -> None:
    alerts = due_alerts(status_only(), TOWN, nine(2026, 3, 25), ())
    assert alerts == [
        DueAlert(Track.STATUS, ENTERED, Level.REMINDER, REMINDER_AT, skipped=True),
        DueAlert(Track.STATUS, ENTERED, Level.ESCALATION, ESCALATION_AT, skipped=True),
        DueAlert(Track.STATUS, ENTERED, Level.URGENT, URGENT_AT),
    ]
    assert alerts[-1].overtook == (Level.REMINDER, Level.ESCALATION)  # what they carried goes with it
    # Once recorded, the skipped steps never come back.
    assert due_alerts(status_only(), TOWN, nine(2026, 6, 1), keys(alerts)) == []
    # A step sent before is not overtaken again.
    (urgent,) = [
        a for a in due_alerts(status_only(), TOWN, URGENT_AT, {("status", ENTERED, 2)}) if not a.skipped
    ]
    assert urgent.level is Level.URGENT and urgent.overtook == (Level.REMINDER,)


def test_a_lower_step_never_fires_after_a_higher_one() -> None:
    sent = {("status", ENTERED, 2)}
    alerts = due_alerts(status_only(), TOWN, ESCALATION_AT + timedelta(days=1), sent)
    assert alerts == [DueAlert(Track.STATUS, ENTERED, Level.REMINDER, REMINDER_AT, skipped=True)]


def test_a_status_change_starts_a_new_ladder() -> None:
    old = due_alerts(status_only(), TOWN, nine(2026, 3, 25), ())
    moved = ams(2026, 3, 25, 11)
    f = replace(status_only(), status="in_gesprek", status_changed_at=moved)
    assert due_alerts(f, TOWN, nine(2026, 4, 7), keys(old)) == []  # norm 10 not yet reached
    # in_gesprek, norm 10 from Wednesday 25 March: Good Friday 3 April and Easter Monday 6 April skipped.
    assert due_alerts(f, TOWN, nine(2026, 4, 10), keys(old)) == [
        DueAlert(Track.STATUS, moved, Level.REMINDER, nine(2026, 4, 10))
    ]


def test_a_broker_action_restarts_the_silence_clock() -> None:
    silent = due_alerts(facts(), TOWN, nine(2026, 3, 23), {("status", ENTERED, 1), ("status", ENTERED, 2)})
    assert [(a.track, a.level) for a in silent if not a.skipped] == [
        (Track.STATUS, Level.URGENT),
        (Track.SILENCE, Level.REMINDER),
    ]
    acted = ams(2026, 3, 20, 16)
    # The same status, but the broker sent a message on Friday: no silence alert, the status one stays.
    f = replace(facts(), last_broker_action_at=acted)
    alerts = due_alerts(f, TOWN, nine(2026, 3, 23), {("status", ENTERED, 1), ("status", ENTERED, 2)})
    assert [(a.track, a.level) for a in alerts] == [(Track.STATUS, Level.URGENT)]
    # Fifteen working days after Friday 20 March: Tuesday 14 April (Good Friday and Easter Monday skipped).
    assert next_due(f, TOWN, keys(alerts) | {("status", ENTERED, 1), ("status", ENTERED, 2)}) == nine(
        2026, 4, 14
    )


def test_next_due_is_the_first_unsent_step() -> None:
    f = status_only()
    assert next_due(f, TOWN, ()) == REMINDER_AT
    assert next_due(f, TOWN, {("status", ENTERED, 1)}) == ESCALATION_AT
    assert next_due(f, TOWN, {("status", ENTERED, 1), ("status", ENTERED, 2)}) == URGENT_AT
    assert next_due(f, TOWN, {("status", ENTERED, level) for level in (1, 2, 3)}) is None


def test_next_due_covers_both_clocks() -> None:
    all_status = {("status", ENTERED, level) for level in (1, 2, 3)}
    assert next_due(facts(), TOWN, all_status) == nine(2026, 3, 23)
    assert next_due(facts(), TOWN, all_status | {("silence", ENTERED, 1)}) == nine(2026, 4, 2)


def test_next_due_may_lie_in_the_past_until_the_step_is_recorded() -> None:
    # The watchdog loads initiatives with next_due <= now; a step it has not recorded must keep it there.
    assert next_due(status_only(), TOWN, {("status", ENTERED, 3)}) == REMINDER_AT


def test_closed_initiative_has_nothing_due() -> None:
    f = facts("gerealiseerd")
    assert next_due(f, TOWN, ()) is None
    assert due_alerts(f, TOWN, nine(2030, 1, 2), ()) == []
    assert days_over(f, TOWN, nine(2030, 1, 2)) is None
    assert not is_stalled(f, TOWN, nine(2030, 1, 2))


def test_keys_match_stored_utc_moments() -> None:
    # Storage gives moments back in UTC; the same instant must count as the same key.
    stored = {("status", ENTERED.astimezone(UTC), 1)}
    assert due_alerts(status_only(), TOWN, REMINDER_AT, stored) == []


def test_days_over_counts_working_days_past_the_norm() -> None:
    f = status_only()
    assert days_over(f, TOWN, ams(2026, 3, 3)) == 0
    assert days_over(f, TOWN, REMINDER_AT) == 0
    assert days_over(f, TOWN, ams(2026, 3, 12, 17)) == 3
    assert days_over(f, TOWN, ams(2026, 3, 15, 17)) == 4  # the weekend adds nothing
    assert days_over(facts("afgewezen"), TOWN, ams(2026, 3, 15)) is None


def test_a_silent_broker_stalls_a_case_within_its_status_norm() -> None:
    # in_uitvoering (norm 40) since Monday 2 March, the broker silent since: no sign of life (15) on 23 March.
    f = facts("in_uitvoering")
    assert not is_stalled(f, TOWN, URGENT_AT - timedelta(minutes=1))
    (standing,) = stalled_standings(f, TOWN, URGENT_AT)
    assert (standing.track, standing.level) == (Track.SILENCE, Level.REMINDER)
    assert (standing.days, standing.norm) == (15, 15)
    assert days_over(f, TOWN, URGENT_AT) == 0
    (status,) = [s for s in standings(f, TOWN, URGENT_AT) if s.track is Track.STATUS]
    assert (status.days, status.norm, status.level) == (15, 40, None)


def test_a_standing_counts_days_and_the_step_reached() -> None:
    f = status_only()  # toegewezen, norm 5
    # Monday 08:59: the day counts already, the step waits for 09:00.
    before = status_standing(f, TOWN, REMINDER_AT - timedelta(minutes=1))
    assert before == Standing(StallClock(Track.STATUS, ENTERED, 5), 5, None)
    assert status_standing(f, TOWN, ESCALATION_AT).level is Level.ESCALATION
    assert status_standing(f, TOWN, ESCALATION_AT).over == 3
    assert status_standing(facts("afgewezen"), TOWN, ESCALATION_AT) is None
    # With the municipality at Vergunningen: no status clock; the department's runs on its question.
    waiting = status_standing(
        replace(f, status="bij_gemeente", department="vergunningen"), TOWN, ESCALATION_AT
    )
    assert waiting is None


def test_the_first_contact_promise_adds_the_first_two_norms() -> None:
    assert first_contact_days(TOWN) == 2 + 5
    assert first_contact_days(replace(TOWN, norms={**TOWN.norms, "toegewezen": 3})) == 2 + 3


def test_stalled_cases_sort_worst_first() -> None:
    now = nine(2026, 3, 20)
    young = replace(status_only(), status_changed_at=ams(2026, 3, 5, 10))
    old = status_only()
    waiting = replace(status_only(), status="bij_gemeente", department="vergunningen")
    stalled = [f for f in (young, waiting, old) if is_stalled(f, TOWN, now)]
    ranked = sorted(stalled, key=lambda f: days_over(f, TOWN, now) or 0, reverse=True)
    assert ranked == [old, young]


# --- Properties -----------------------------------------------------------------------------------------

ZONES = st.sampled_from([UTC, AMSTERDAM, timezone(timedelta(hours=-5)), timezone(timedelta(hours=9))])
MOMENTS = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2034, 12, 31), timezones=ZONES)
DAY_OFFSETS = st.integers(min_value=0, max_value=400)
CLOSING = st.lists(st.dates(min_value=date(2020, 1, 1), max_value=date(2036, 12, 31)), max_size=8).map(tuple)
NORMS = st.integers(min_value=1, max_value=60)


@FAST
@given(MOMENTS, NORMS, CLOSING)
def test_due_moment_is_nine_on_a_working_day_after_the_start(
    started: datetime, n: int, closing: tuple[date, ...]
) -> None:
    due = due_at(started, n, closing)
    local = due.astimezone(AMSTERDAM)
    assert local.time() == time(9, 0)
    assert is_working_day(local.date(), closing)
    assert due > started
    assert local.date() > started.astimezone(AMSTERDAM).date()


@FAST
@given(MOMENTS, NORMS, CLOSING)
def test_due_moment_is_exactly_n_working_days_on(
    started: datetime, n: int, closing: tuple[date, ...]
) -> None:
    due = due_at(started, n, closing)
    assert working_days_between(started, due, closing) == n
    # And not a day later than needed.
    assert working_days_between(started, due - timedelta(days=1), closing) == n - 1


@FAST
@given(MOMENTS, NORMS, CLOSING, CLOSING)
def test_more_days_or_more_closing_days_never_make_a_norm_shorter(
    started: datetime, n: int, closing: tuple[date, ...], more: tuple[date, ...]
) -> None:
    assert due_at(started, n + 1, closing) > due_at(started, n, closing)
    assert due_at(started, n, closing + more) >= due_at(started, n, closing)


@FAST
@given(NORMS)
def test_ladder_steps_rise(norm: int) -> None:
    steps = [threshold(norm, level) for level in Level]
    assert steps[0] == norm
    assert steps == sorted(set(steps))
    for level, step in zip(Level, steps, strict=True):
        assert step >= LADDER[level] * norm > step - 1


STATUSES = st.sampled_from([status.value for status in Status])


@st.composite
def stall_facts(draw: st.DrawFn) -> StallFacts:
    changed = draw(MOMENTS)
    has_broker = draw(st.booleans())
    assigned = changed - timedelta(days=draw(st.integers(0, 30))) if has_broker else None
    acted = (
        changed + timedelta(hours=draw(st.integers(0, 24 * 60)))
        if has_broker and draw(st.booleans())
        else None
    )
    return StallFacts(
        status=draw(STATUSES),
        status_changed_at=changed,
        department=draw(st.sampled_from([None, "vergunningen", "verkeer", "onbekend"])),
        broker_id=BROKER if has_broker else None,
        assigned_at=assigned,
        last_broker_action_at=acted,
    )


def every_key(f: StallFacts) -> list[AlertKey]:
    return [(clock.track.value, clock.started_at, int(level)) for clock in clocks(f, TOWN) for level in Level]


@st.composite
def situations(draw: st.DrawFn) -> tuple[StallFacts, datetime, set[AlertKey]]:
    f = draw(stall_facts())
    now = f.status_changed_at + timedelta(days=draw(DAY_OFFSETS), minutes=draw(st.integers(0, 1440)))
    sent = set(draw(st.lists(st.sampled_from(every_key(f)), unique=True))) if every_key(f) else set()
    return f, now, sent


@FAST
@given(situations())
def test_watchdog_index_never_misses_a_due_step(
    situation: tuple[StallFacts, datetime, set[AlertKey]],
) -> None:
    f, now, sent = situation
    alerts = due_alerts(f, TOWN, now, sent)
    upcoming = next_due(f, TOWN, sent)
    assert bool(alerts) == (upcoming is not None and upcoming <= now)
    for alert in alerts:
        assert upcoming is not None and upcoming <= alert.due_at


@FAST
@given(situations())
def test_the_sweep_stores_the_next_moment_the_ladders_give_once_the_due_steps_are_recorded(
    situation: tuple[StallFacts, datetime, set[AlertKey]],
) -> None:
    f, now, sent = situation
    alerts, upcoming = sweep_steps(f, TOWN, now, sent)
    # The next moment is the one the watchdog stores once it has recorded the due steps.
    assert upcoming == next_due(f, TOWN, sent | keys(alerts))
    assert upcoming is None or upcoming > now


@FAST
@given(situations())
def test_due_steps_are_unsent_in_order_and_one_per_clock(
    situation: tuple[StallFacts, datetime, set[AlertKey]],
) -> None:
    f, now, sent = situation
    alerts = due_alerts(f, TOWN, now, sent)
    assert [a.due_at for a in alerts] == sorted(a.due_at for a in alerts)
    for alert in alerts:
        assert alert.due_at <= now
        assert alert.key not in sent
    for track in Track:
        mine = [a for a in alerts if a.track is track]
        firing = [a for a in mine if not a.skipped]
        assert len(firing) <= 1
        if firing:
            assert all(a.level < firing[0].level for a in mine if a.skipped)
            assert firing[0].overtook == tuple(a.level for a in mine if a.skipped)
    # Recording them all leaves nothing due at the same moment.
    assert due_alerts(f, TOWN, now, sent | keys(alerts)) == []


@FAST
@given(stall_facts(), st.lists(st.integers(0, 24 * 400), min_size=1, max_size=12))
def test_sweeps_send_each_step_at_most_once_and_never_step_down(
    f: StallFacts, offsets_in_hours: list[int]
) -> None:
    sent: set[AlertKey] = set()
    fired: list[DueAlert] = []
    for hours in sorted(offsets_in_hours):
        for alert in due_alerts(f, TOWN, f.status_changed_at + timedelta(hours=hours), sent):
            assert alert.key not in sent
            sent.add(alert.key)
            if not alert.skipped:
                fired.append(alert)
    for track in Track:
        levels = [a.level for a in fired if a.track is track]
        assert levels == sorted(set(levels))
    # The urgent step is never skipped once it is due.
    late = f.status_changed_at + timedelta(days=800)
    for alert in due_alerts(f, TOWN, late, set()):
        assert alert.skipped is (alert.level != Level.URGENT)


@FAST
@given(situations())
def test_stalled_means_the_watchdog_has_sent_a_step_and_shows_the_step_it_sent(
    situation: tuple[StallFacts, datetime, set[AlertKey]],
) -> None:
    f, now, _ = situation
    # A watchdog that swept at ``now`` (from scratch) sent the highest due step of each clock.
    sent = {(a.track, a.level) for a in due_alerts(f, TOWN, now, ()) if not a.skipped}
    assert {(s.track, s.level) for s in stalled_standings(f, TOWN, now)} == sent
    assert is_stalled(f, TOWN, now) == bool(sent)
    over = days_over(f, TOWN, now)
    if norm_for(TOWN, f.status, f.department) is None or f.status == "bij_gemeente":
        assert over is None
    else:
        assert over is not None and over >= 0
        if over > 0:
            assert (Track.STATUS, Level.REMINDER) <= max(sent)
