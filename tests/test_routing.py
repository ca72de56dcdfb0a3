"""Which initiatiefmakelaar gets a new initiative."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.routing import BrokerLoad, choose_broker, is_present, route

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TODAY = date(2026, 3, 10)
NOON = datetime(2026, 3, 9, 12, 0)
CENTRUM = "WK030101"
NOORD = "WK030102"


def broker(
    staff_id: int,
    *,
    wijken: tuple[str, ...] = (CENTRUM,),
    themes: tuple[str, ...] = (),
    open_cases: int = 0,
    last_assigned_at: datetime | None = None,
    absent_until: date | None = None,
    reachable: bool = True,
) -> BrokerLoad:
    return BrokerLoad(
        staff_id=staff_id,
        name=f"Makelaar {staff_id}",
        wijken=frozenset(wijken),
        themes=frozenset(themes),
        open_cases=open_cases,
        last_assigned_at=last_assigned_at,
        absent_until=absent_until,
        reachable=reachable,
    )


def choose(*brokers: BrokerLoad, wijk: str | None = CENTRUM, theme: str = "groen") -> int | None:
    chosen = choose_broker(wijk_code=wijk, theme_code=theme, brokers=brokers, today=TODAY)
    return chosen.staff_id if chosen else None


def routing_code(*brokers: BrokerLoad, wijk: str | None = CENTRUM, theme: str = "groen") -> str:
    return route(wijk_code=wijk, theme_code=theme, brokers=brokers, today=TODAY).code


def test_initiative_goes_to_a_broker_of_its_wijk() -> None:
    assert choose(broker(1, wijken=(NOORD,)), broker(2, wijken=(CENTRUM, NOORD), open_cases=9)) == 2


def test_unknown_wijk_goes_to_the_coordinators() -> None:
    assert choose(broker(1), wijk=None) is None
    assert routing_code(broker(1), wijk=None) == "no_wijk"


def test_wijk_nobody_covers_gives_no_broker() -> None:
    assert choose(broker(1, wijken=(NOORD,)), wijk="WK039999") is None
    assert routing_code(broker(1, wijken=(NOORD,)), wijk="WK039999") == "nobody_in_wijk"


def test_no_brokers_at_all_gives_no_broker() -> None:
    assert choose() is None


def test_theme_specialist_goes_before_generalists_even_when_busier() -> None:
    assert choose(broker(1, open_cases=0), broker(2, themes=("groen",), open_cases=5)) == 2


def test_specialist_of_another_theme_does_not_take_it() -> None:
    assert choose(broker(1, themes=("verkeer",)), broker(2, open_cases=7)) == 2
    assert choose(broker(1, themes=("verkeer",))) is None
    assert routing_code(broker(1, themes=("verkeer",))) == "nobody_for_theme"


def test_generalist_takes_any_theme() -> None:
    assert choose(broker(1), theme="spelen") == 1


def test_fewest_open_cases_wins() -> None:
    assert choose(broker(1, open_cases=4), broker(2, open_cases=2), broker(3, open_cases=3)) == 2


def test_tie_goes_to_the_one_assigned_longest_ago() -> None:
    recent = broker(1, last_assigned_at=NOON)
    earlier = broker(2, last_assigned_at=NOON - timedelta(days=3))
    assert choose(recent, earlier) == 2


def test_never_assigned_counts_as_longest_ago() -> None:
    assert choose(broker(1, last_assigned_at=NOON - timedelta(days=300)), broker(2)) == 2


def test_aware_and_naive_times_compare_as_utc() -> None:
    amsterdam = timezone(timedelta(hours=1))
    # 12:30 in Amsterdam is 11:30 UTC, earlier than 12:00 UTC.
    half_past_in_amsterdam = NOON.replace(minute=30, tzinfo=amsterdam)
    assert choose(broker(1, last_assigned_at=NOON), broker(2, last_assigned_at=half_past_in_amsterdam)) == 2
    assert choose(broker(1, last_assigned_at=NOON.replace(tzinfo=UTC)), broker(2, last_assigned_at=NOON)) == 1


def test_full_tie_goes_to_the_lowest_staff_id() -> None:
    assert choose(broker(7, last_assigned_at=NOON), broker(3, last_assigned_at=NOON)) == 3
    assert choose(broker(7), broker(3)) == 3


def test_absent_broker_is_skipped_through_the_last_day_of_absence() -> None:
    assert choose(broker(1, absent_until=TODAY), broker(2, open_cases=5)) == 2
    assert choose(broker(1, absent_until=TODAY + timedelta(days=4)), broker(2, open_cases=5)) == 2
    assert choose(broker(1, absent_until=TODAY - timedelta(days=1)), broker(2, open_cases=5)) == 1
    assert not is_present(broker(1, absent_until=TODAY), TODAY)
    assert is_present(broker(1, absent_until=TODAY), TODAY + timedelta(days=1))


def test_everyone_absent_gives_no_broker() -> None:
    assert choose(broker(1, absent_until=TODAY)) is None
    assert routing_code(broker(1, absent_until=TODAY)) == "all_absent"


def test_absent_specialist_leaves_it_to_the_generalists() -> None:
    assert choose(broker(1, themes=("groen",), absent_until=TODAY), broker(2, open_cases=9)) == 2


def test_a_broker_the_bot_cannot_reach_is_skipped() -> None:
    # Added with `staff add` but never opened the bot, or blocked it: the case card would not arrive.
    assert choose(broker(1, reachable=False), broker(2, open_cases=5)) == 2
    assert choose(broker(1, themes=("groen",), reachable=False), broker(2, open_cases=5)) == 2


def test_only_unreachable_brokers_in_the_wijk_gives_no_broker_and_says_why() -> None:
    assert choose(broker(1, reachable=False)) is None
    assert routing_code(broker(1, reachable=False)) == "unreachable"
    reason = route(wijk_code=CENTRUM, theme_code="groen", brokers=[broker(1, reachable=False)], today=TODAY)
    assert "cannot reach" in reason.reason.msgid


def test_routing_says_whether_a_specialist_or_a_generalist_was_chosen() -> None:
    assert routing_code(broker(1, themes=("groen",))) == "specialist"
    assert routing_code(broker(1)) == "generalist"


# ---- properties ------------------------------------------------------------------------------

WIJKEN = ("WK1", "WK2", "WK3")
THEMES = ("groen", "verkeer", "spelen")


@st.composite
def broker_lists(draw: st.DrawFn) -> list[BrokerLoad]:
    ids = draw(st.lists(st.integers(1, 10_000), unique=True, max_size=8))
    return [
        BrokerLoad(
            staff_id=staff_id,
            name=f"B{staff_id}",
            wijken=draw(st.frozensets(st.sampled_from(WIJKEN))),
            themes=draw(st.frozensets(st.sampled_from(THEMES), max_size=2)),
            open_cases=draw(st.integers(0, 4)),
            last_assigned_at=draw(
                st.none() | st.datetimes(datetime(2025, 1, 1), datetime(2026, 12, 31), timezones=st.none())
            ),
            absent_until=draw(st.none() | st.dates(TODAY - timedelta(days=3), TODAY + timedelta(days=3))),
            reachable=draw(st.booleans()),
        )
        for staff_id in ids
    ]


def _eligible(brokers: list[BrokerLoad], wijk: str, theme: str) -> list[BrokerLoad]:
    present = [
        b
        for b in brokers
        if wijk in b.wijken and (b.absent_until is None or b.absent_until < TODAY) and b.reachable
    ]
    specialists = [b for b in present if theme in b.themes]
    return specialists or [b for b in present if not b.themes]


@FAST
@given(brokers=broker_lists(), wijk=st.sampled_from(WIJKEN), theme=st.sampled_from(THEMES))
def test_chosen_broker_covers_the_wijk_is_present_reachable_and_least_busy(
    brokers: list[BrokerLoad], wijk: str, theme: str
) -> None:
    chosen = choose_broker(wijk_code=wijk, theme_code=theme, brokers=brokers, today=TODAY)
    group = _eligible(brokers, wijk, theme)
    if chosen is None:
        assert not group
        return
    assert chosen in group
    assert wijk in chosen.wijken
    assert chosen.absent_until is None or chosen.absent_until < TODAY
    assert chosen.reachable
    assert not chosen.themes or theme in chosen.themes
    assert chosen.open_cases == min(b.open_cases for b in group)


@FAST
@given(
    brokers=broker_lists(),
    wijk=st.none() | st.sampled_from(WIJKEN),
    theme=st.sampled_from(THEMES),
    data=st.data(),
)
def test_choice_does_not_depend_on_input_order(
    brokers: list[BrokerLoad], wijk: str | None, theme: str, data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(brokers))
    first = choose_broker(wijk_code=wijk, theme_code=theme, brokers=brokers, today=TODAY)
    second = choose_broker(wijk_code=wijk, theme_code=theme, brokers=shuffled, today=TODAY)
    assert first == second
