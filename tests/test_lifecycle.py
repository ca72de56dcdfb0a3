"""Who may move an initiative to which status, and what each step needs."""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.lifecycle import (
    FINAL,
    OPEN_STATUSES,
    TRANSITIONS,
    Actor,
    Allowed,
    Refused,
    Role,
    Status,
    check_transition,
    is_final,
    mermaid,
    needs_department,
    needs_reason,
    next_statuses,
    staff_label,
    status_label,
)
from flows.text import Msg

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

BROKER = Actor(Role.BROKER, is_assigned_broker=True)
OTHER_BROKER = Actor(Role.BROKER)
COORDINATOR = Actor(Role.COORDINATOR)
SYSTEM = Actor(Role.SYSTEM)
INITIATOR = Actor(Role.RESIDENT, is_initiator=True)
NEIGHBOUR = Actor(Role.RESIDENT)

NON_FINAL = [status for status in Status if status not in FINAL]
EDGES = [(current, target) for current, targets in TRANSITIONS.items() for target in sorted(targets)]

actors = st.builds(
    Actor, role=st.sampled_from(Role), is_assigned_broker=st.booleans(), is_initiator=st.booleans()
)
statuses = st.sampled_from(Status)
status_or_text = st.one_of(statuses.map(str), st.text(max_size=20))
notes = st.one_of(st.none(), st.text(max_size=40))


def refused_code(result: Allowed | Refused) -> str | None:
    return result.code if isinstance(result, Refused) else None


# ---- the table -------------------------------------------------------------------------------


def test_the_table_has_exactly_the_agreed_transitions() -> None:
    s = Status
    assert dict(TRANSITIONS) == {
        s.INGEDIEND: {s.TOEGEWEZEN, s.GESTOPT},
        s.TOEGEWEZEN: {s.IN_GESPREK, s.GESTOPT},
        s.IN_GESPREK: {s.PLAN_IN_UITWERKING, s.BIJ_GEMEENTE, s.GOEDGEKEURD, s.AFGEWEZEN, s.GESTOPT},
        s.PLAN_IN_UITWERKING: {s.BIJ_GEMEENTE, s.GOEDGEKEURD, s.IN_GESPREK, s.GESTOPT},
        s.BIJ_GEMEENTE: {s.GOEDGEKEURD, s.AFGEWEZEN, s.PLAN_IN_UITWERKING, s.GESTOPT},
        s.GOEDGEKEURD: {s.IN_UITVOERING, s.PLAN_IN_UITWERKING, s.GESTOPT},
        s.AFGEWEZEN: {s.PLAN_IN_UITWERKING, s.GESTOPT},
        s.IN_UITVOERING: {s.GEREALISEERD, s.GESTOPT},
        s.GEREALISEERD: set(),
        s.GESTOPT: set(),
    }


def test_only_realised_and_stopped_are_final() -> None:
    assert {Status.GEREALISEERD, Status.GESTOPT} == FINAL
    assert is_final("gerealiseerd") and is_final("gestopt")
    assert not is_final("afgewezen")
    assert not is_final("no-such-status")


def test_open_initiatives_are_those_someone_has_to_act_on() -> None:
    assert Status.AFGEWEZEN not in OPEN_STATUSES
    assert not FINAL & OPEN_STATUSES
    assert Status.INGEDIEND in OPEN_STATUSES and Status.IN_UITVOERING in OPEN_STATUSES
    assert len(OPEN_STATUSES) == len(Status) - 3


def test_every_status_has_a_label_for_staff_and_for_residents() -> None:
    staff = {staff_label(status).msgid for status in Status}
    residents = {status_label(status).msgid for status in Status}
    assert len(staff) == len(residents) == len(Status)
    assert staff_label("goedgekeurd") == Msg("Approved")
    assert staff_label("bogus").params == {"text": "bogus"}


def test_reasons_and_departments_are_needed_for_the_right_statuses() -> None:
    assert {s for s in Status if needs_reason(s)} == {Status.AFGEWEZEN, Status.GESTOPT}
    assert {s for s in Status if needs_department(s)} == {Status.BIJ_GEMEENTE}
    assert not needs_reason("bogus") and not needs_department("bogus")


# ---- who may ---------------------------------------------------------------------------------


def test_assigned_broker_moves_the_case_forward() -> None:
    assert check_transition("toegewezen", "in_gesprek", BROKER) == Allowed(Status.IN_GESPREK)


def test_coordinator_may_make_any_step_in_the_table() -> None:
    for current, target in EDGES:
        result = check_transition(current, target, COORDINATOR, note="omdat", department="verkeer")
        assert isinstance(result, Allowed), (current, target)


def test_broker_who_is_not_assigned_is_refused() -> None:
    assert refused_code(check_transition("toegewezen", "in_gesprek", OTHER_BROKER)) == "not_your_case"


def test_assignment_comes_from_the_system_or_a_coordinator_never_from_a_broker() -> None:
    assert check_transition("ingediend", "toegewezen", SYSTEM) == Allowed(Status.TOEGEWEZEN)
    assert check_transition("ingediend", "toegewezen", COORDINATOR) == Allowed(Status.TOEGEWEZEN)
    assert refused_code(check_transition("ingediend", "toegewezen", BROKER)) == "not_your_role"
    assert refused_code(check_transition("ingediend", "toegewezen", INITIATOR)) == "not_your_role"


def test_system_only_assigns() -> None:
    assert refused_code(check_transition("toegewezen", "in_gesprek", SYSTEM)) == "not_your_role"
    assert refused_code(check_transition("in_gesprek", "gestopt", SYSTEM, note="stil")) == "not_your_role"


def test_initiator_may_withdraw_from_any_open_status() -> None:
    for status in NON_FINAL:
        result = check_transition(status, "gestopt", INITIATOR, note="We verhuizen")
        assert result == Allowed(Status.GESTOPT, note="We verhuizen"), status


def test_initiator_may_not_make_other_steps() -> None:
    result = check_transition("toegewezen", "in_gesprek", INITIATOR)
    assert refused_code(result) == "not_your_role"


def test_resident_who_is_not_an_initiator_may_not_withdraw() -> None:
    assert refused_code(check_transition("in_gesprek", "gestopt", NEIGHBOUR, note="x")) == "not_your_case"


def test_step_not_in_the_table_is_refused() -> None:
    result = check_transition("ingediend", "goedgekeurd", COORDINATOR)
    assert refused_code(result) == "not_allowed"
    assert isinstance(result, Refused)
    assert result.reason.params == {"current": staff_label("ingediend"), "target": staff_label("goedgekeurd")}


def test_nothing_changes_after_a_final_status() -> None:
    assert refused_code(check_transition("gerealiseerd", "in_uitvoering", COORDINATOR)) == "final"
    assert refused_code(check_transition("gestopt", "gestopt", INITIATOR, note="x")) == "final"


def test_same_status_again_is_refused_as_unchanged() -> None:
    assert refused_code(check_transition("in_gesprek", "in_gesprek", BROKER)) == "unchanged"


def test_unknown_status_codes_are_refused() -> None:
    assert refused_code(check_transition("bogus", "gestopt", COORDINATOR, note="x")) == "unknown_status"
    assert refused_code(check_transition("in_gesprek", "Goedgekeurd", COORDINATOR)) == "unknown_status"


def test_rejected_initiative_can_be_tried_another_way() -> None:
    assert check_transition("afgewezen", "plan_in_uitwerking", BROKER) == Allowed(Status.PLAN_IN_UITWERKING)


# ---- what a step needs -----------------------------------------------------------------------


@pytest.mark.parametrize("target", ["afgewezen", "gestopt"])
@pytest.mark.parametrize("note", [None, "", "   \n\t ", "\u200b"])
def test_rejecting_or_stopping_needs_a_reason(target: str, note: str | None) -> None:
    assert refused_code(check_transition("in_gesprek", target, BROKER, note=note)) == "needs_reason"


def test_reason_is_cleaned() -> None:
    result = check_transition("bij_gemeente", "afgewezen", BROKER, note="  Past niet  in het   budget ")
    assert result == Allowed(Status.AFGEWEZEN, note="Past niet in het budget")


def test_sending_to_the_municipality_needs_a_department_and_a_question() -> None:
    without_department = check_transition("in_gesprek", "bij_gemeente", BROKER, note="Mag dit?")
    assert refused_code(without_department) == "needs_department"
    without_question = check_transition("in_gesprek", "bij_gemeente", BROKER, department="verkeer")
    assert refused_code(without_question) == "needs_question"
    result = check_transition("in_gesprek", "bij_gemeente", BROKER, department=" verkeer ", note="Mag dit?")
    assert result == Allowed(Status.BIJ_GEMEENTE, note="Mag dit?", department="verkeer")


def test_department_must_be_known_when_the_departments_are_given() -> None:
    result = check_transition(
        "in_gesprek", "bij_gemeente", BROKER, department="sport", note="Mag dit?", departments={"verkeer"}
    )
    assert refused_code(result) == "unknown_department"


def test_department_is_dropped_for_other_steps_and_a_note_is_kept_as_comment() -> None:
    result = check_transition("in_gesprek", "goedgekeurd", BROKER, department="verkeer", note="Top!")
    assert result == Allowed(Status.GOEDGEKEURD, note="Top!")


def test_resident_sees_resident_words_in_a_refusal() -> None:
    result = check_transition("in_gesprek", "gestopt", INITIATOR)
    assert isinstance(result, Refused)
    assert result.reason.params == {"status": status_label("gestopt")}


# ---- menus and drawing -----------------------------------------------------------------------


def test_menu_offers_forward_steps_first_and_stopping_last() -> None:
    assert next_statuses("plan_in_uitwerking", BROKER) == (
        Status.BIJ_GEMEENTE,
        Status.GOEDGEKEURD,
        Status.IN_GESPREK,
        Status.GESTOPT,
    )
    assert next_statuses("bij_gemeente", BROKER) == (
        Status.GOEDGEKEURD,
        Status.AFGEWEZEN,
        Status.PLAN_IN_UITWERKING,
        Status.GESTOPT,
    )


def test_menu_never_offers_assignment() -> None:
    assert next_statuses("ingediend", BROKER) == (Status.GESTOPT,)
    assert next_statuses("ingediend", COORDINATOR) == (Status.GESTOPT,)


def test_menu_for_others_is_short_or_empty() -> None:
    assert next_statuses("in_gesprek", INITIATOR) == (Status.GESTOPT,)
    assert next_statuses("in_gesprek", OTHER_BROKER) == ()
    assert next_statuses("in_gesprek", NEIGHBOUR) == ()
    assert next_statuses("gerealiseerd", COORDINATOR) == ()
    assert next_statuses("bogus", COORDINATOR) == ()


def test_mermaid_starts_at_submitted_and_ends_in_the_final_statuses() -> None:
    drawing = mermaid()
    assert drawing.startswith("stateDiagram-v2\n    [*] --> ingediend\n")
    assert "    gerealiseerd --> [*]" in drawing
    assert "    gestopt --> [*]" in drawing
    assert "afgewezen --> [*]" not in drawing


# ---- properties ------------------------------------------------------------------------------


@FAST
@given(current=st.sampled_from(sorted(FINAL)), target=status_or_text, actor=actors, note=notes)
def test_nothing_leaves_a_final_status(current: Status, target: str, actor: Actor, note: str | None) -> None:
    assert not TRANSITIONS[current]
    assert isinstance(check_transition(current, target, actor, note=note, department="verkeer"), Refused)


def test_every_status_is_reachable_from_submitted() -> None:
    seen = {Status.INGEDIEND}
    queue = deque(seen)
    while queue:
        for target in TRANSITIONS[queue.popleft()]:
            if target not in seen:
                seen.add(target)
                queue.append(target)
    assert seen == set(Status)


def test_every_open_status_can_stop_directly() -> None:
    for status in NON_FINAL:
        assert Status.GESTOPT in TRANSITIONS[status], status


@FAST
@given(current=status_or_text, target=status_or_text, actor=actors, note=notes, department=notes)
def test_check_transition_never_raises(
    current: str, target: str, actor: Actor, note: str | None, department: str | None
) -> None:
    result = check_transition(current, target, actor, note=note, department=department)
    assert isinstance(result, Allowed | Refused)
    if isinstance(result, Refused):
        assert result.code and result.reason.msgid


@FAST
@given(current=statuses, target=statuses, is_initiator=st.booleans(), note=notes, department=notes)
def test_a_resident_can_only_ever_stop(
    current: Status, target: Status, is_initiator: bool, note: str | None, department: str | None
) -> None:
    actor = Actor(Role.RESIDENT, is_initiator=is_initiator, is_assigned_broker=True)
    result = check_transition(current, target, actor, note=note, department=department)
    if isinstance(result, Allowed):
        assert result.target is Status.GESTOPT and is_initiator


@FAST
@given(
    current=status_or_text, target=status_or_text, is_initiator=st.booleans(), note=notes, department=notes
)
def test_a_broker_not_assigned_is_always_refused(
    current: str, target: str, is_initiator: bool, note: str | None, department: str | None
) -> None:
    actor = Actor(Role.BROKER, is_assigned_broker=False, is_initiator=is_initiator)
    assert isinstance(check_transition(current, target, actor, note=note, department=department), Refused)


@FAST
@given(current=status_or_text, actor=actors)
def test_menu_only_offers_allowed_targets(current: str, actor: Actor) -> None:
    offered = next_statuses(current, actor)
    assert len(set(offered)) == len(offered)
    assert Status.TOEGEWEZEN not in offered
    for target in offered:
        result = check_transition(current, target, actor, note="Omdat het moet", department="verkeer")
        assert isinstance(result, Allowed), (current, target)


@FAST
@given(current=statuses, actor=actors)
def test_menu_offers_every_allowed_target_except_assignment(current: Status, actor: Actor) -> None:
    allowed = {
        target
        for target in Status
        if target is not Status.TOEGEWEZEN
        and isinstance(check_transition(current, target, actor, note="x", department="verkeer"), Allowed)
    }
    assert set(next_statuses(current, actor)) == allowed


@pytest.mark.parametrize(("current", "target"), EDGES)
def test_mermaid_draws_every_edge(current: Status, target: Status) -> None:
    lines = mermaid().splitlines()
    assert any(line.strip().split(" : ")[0] == f"{current} --> {target}" for line in lines)


def test_mermaid_draws_no_other_edges() -> None:
    drawn = {
        tuple(line.strip().split(" : ")[0].split(" --> "))
        for line in mermaid().splitlines()[1:]
        if "[*]" not in line
    }
    assert drawn == {(str(current), str(target)) for current, target in EDGES}
