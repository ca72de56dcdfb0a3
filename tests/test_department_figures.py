"""The departments' figures and the blocker form, from plain rows: numbers to check by hand."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from flows.blockers import MAX_ESCALATED_TO, BlockerAction, check_action
from flows.department import QuestionFacts
from flows.municipality import Department, Municipality, Theme
from flows.reports import AnswerTotals, DepartmentFigures, department_figures
from flows.stalls import AMSTERDAM

TOWN = Municipality(
    code="GM0301",
    name="Testdorp",
    wijken=(),
    themes=(Theme("groen", "Groen", "Greenery"),),
    departments=(Department("verkeer", "Verkeer", 10), Department("groen", "Groen")),
    norms={"bij_gemeente": 20},
)
# Tuesday 17 November 2026, 10:00.
NOW = datetime(2026, 11, 17, 10, tzinfo=AMSTERDAM)


def asked(
    qid: int, department: str, day: date, state: str = "open", promised: date | None = None
) -> QuestionFacts:
    return QuestionFacts(qid, department, state, datetime.combine(day, time(10), AMSTERDAM), promised)


def test_each_department_in_the_configurations_order_with_unknown_codes_after() -> None:
    answers = [
        AnswerTotals("verkeer", True, 4, True, 3),  # three yes within the norm of 10
        AnswerTotals("verkeer", True, 15, False, 1),  # one late no
        AnswerTotals("verkeer", False, 1, None, 1),  # forwarded: a time, no verdict
        AnswerTotals("oud", True, 7, True, 1),
    ]
    active = [
        asked(1, "verkeer", date(2026, 10, 27)),  # 15 working days: past the norm of 10
        asked(2, "verkeer", date(2026, 11, 16)),  # 1 working day
        asked(3, "verkeer", date(2026, 9, 1), state="info"),  # waits on the broker: no clock
        asked(4, "groen", date(2026, 10, 27)),  # 15 of 20: within
        asked(5, "groen", date(2026, 11, 2), promised=date(2026, 11, 10)),  # the promised day passed
    ]

    found = department_figures(TOWN, answers, active, NOW)

    assert found == [
        DepartmentFigures(
            "verkeer", 10, open=3, overdue=1, judged=4, within_norm=3, answered=5, median_days=4
        ),
        DepartmentFigures(
            "groen", 20, open=2, overdue=1, judged=0, within_norm=0, answered=0, median_days=None
        ),
        DepartmentFigures("oud", 20, open=0, overdue=0, judged=1, within_norm=1, answered=1, median_days=7),
    ]
    assert [d.within_norm_share for d in found] == [75, None, 100]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        # Only to whom: recorded, not settled.
        ({"escalated_to": " wethouder  Jansen ", "outcome": "", "resolved": False},
         BlockerAction("wethouder Jansen", None, False)),
        # Only what came of it, and it settles the blocker.
        ({"escalated_to": "", "outcome": "Uitzondering\nverleend.", "resolved": True},
         BlockerAction(None, "Uitzondering\nverleend.", True)),
    ],
)  # fmt: skip
def test_a_blocker_action_needs_to_whom_or_what_came_of_it(fields: dict, expected: BlockerAction) -> None:
    assert check_action(**fields) == expected


def test_an_empty_or_too_long_blocker_action_is_explained_per_field() -> None:
    empty = check_action(escalated_to=" ", outcome="\n", resolved=True)
    assert isinstance(empty, dict) and set(empty) == {"escalated_to"}
    long = check_action(escalated_to="x" * (MAX_ESCALATED_TO + 1), outcome="", resolved=False)
    assert isinstance(long, dict) and long["escalated_to"].params == {"max": MAX_ESCALATED_TO}
