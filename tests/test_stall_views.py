"""Every place that shows a norm or a stall reads the clocks as the watchdog does (flows.stalls), so the
case card, /zaken, /vastgelopen, /overzicht and the weekly digest agree with the alerts people get."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from bot.i18n import Translator
from bot.settings import BUNDLED_CONFIG_DIR, load_municipality
from flows import broker, coordinator
from flows.alerts import plan_alert
from flows.cases import CaseView, StaffRole, StaffView
from flows.events import Reply
from flows.lifecycle import Status, staff_label
from flows.stalls import Level, StallFacts, Track, due_alerts, due_at, norm_for, threshold

ZUTPHEN = load_municipality(BUNDLED_CONFIG_DIR / "zutphen.toml")
TR = Translator(("nl", "en"))
ENTERED = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday
ANNA = StaffView(id=1, telegram_user_id=2001, name="Anna Jansen", role=StaffRole.BROKER)
CARLA = StaffView(id=2, telegram_user_id=3001, name="Carla Smit", role=StaffRole.COORDINATOR)
# Every status with a status clock. bij_gemeente has none: the department's clock runs on its question
# (flows.department, the watchdog's department pass; tests/test_department_ladder.py).
NORMED = [
    (status.value, None) for status in Status if norm_for(ZUTPHEN, status, None) and status != "bij_gemeente"
]


def text(reply: Reply, language: str = "en") -> str:
    return "\n\n".join(TR.render(part, language) for part in (reply.text, *reply.extra))


def case(status: str, department: str | None, *, reference: str = "INI-2026-0001") -> CaseView:
    return CaseView(
        id=int(reference[-4:]),
        reference=reference,
        title="Bankjes in het park",
        description="Drie bankjes bij de speeltuin.",
        theme_code="groen",
        wijk_code="WK030101",
        own_contribution=None,
        needs=(),
        amount_cents=None,
        neighbours=None,
        photo_file_id=None,
        contact_name="Fatima",
        contact_phone=None,
        contact_email=None,
        status=status,
        status_changed_at=ENTERED,
        created_at=ENTERED,
        resident_user_id=1001,
        resident_chat_id=1001,
        broker_id=ANNA.id,
        broker_name=ANNA.name,
        department=department,
    )


@pytest.mark.parametrize(("status", "department"), NORMED, ids=[f"{s}-{d}" if d else s for s, d in NORMED])
def test_the_reminder_card_shows_the_norm_the_reminder_is_about(status: str, department: str | None) -> None:
    # bij_gemeente at Vergunningen: the reminder comes after 40 working days, and the card says 40 of 40.
    the_case = case(status, department)
    facts = StallFacts(status, ENTERED, department, ANNA.id, ENTERED, ENTERED)
    reminder_at = due_at(ENTERED, threshold(norm_for(ZUTPHEN, status, department) or 0, Level.REMINDER))
    (alert,) = [a for a in due_alerts(facts, ZUTPHEN, reminder_at, ()) if a.track is Track.STATUS]
    plan = plan_alert(
        the_case,
        alert,
        facts=facts,
        broker=ANNA,
        coordinators=[CARLA],
        ctx=broker.StaffContext(ZUTPHEN, reminder_at),
    )
    for language in ("en", "nl"):
        (note,) = plan.notifications
        shown = text(note.reply, language)
        heading = re.search(r"(\d+) (?:working days|werkdagen) .*\(norm (\d+)\)", shown)
        card = re.search(
            r"(\d+) (?:of|van) (\d+) (?:working days in this status|werkdagen in deze status)", shown
        )
        assert heading and card, shown
        assert card.groups() == heading.groups(), shown


@pytest.mark.parametrize(("status", "department"), NORMED, ids=[f"{s}-{d}" if d else s for s, d in NORMED])
def test_zaken_marks_a_case_when_the_watchdog_reminds_and_not_before(
    status: str, department: str | None
) -> None:
    norm = norm_for(ZUTPHEN, status, department)
    assert norm is not None
    reminder_at = due_at(ENTERED, norm)
    for moment, marked in ((reminder_at - timedelta(minutes=1), False), (reminder_at, True)):
        listed = text(
            broker.case_list(
                [case(status, department)], broker.StaffContext(ZUTPHEN, moment), title=broker.t("Your cases")
            )
        )
        label = TR.render(staff_label(status), "en")
        assert f"{label} · {norm}/{norm} working days" in listed
        assert ("⚠ INI-2026-0001" in listed) is marked, listed


def test_a_case_at_vergunningen_shows_no_status_norm() -> None:
    at_vergunningen = case("bij_gemeente", "vergunningen")
    ctx = broker.StaffContext(ZUTPHEN, ENTERED + timedelta(hours=1))
    *_, card = broker.case_card(at_vergunningen, ctx)
    # No status norm on the card or the list: the department's norm is on its question's clock.
    assert "Vergunningen" in text(card)
    assert "working days in this status" not in text(card)
    assert "/40" not in text(broker.case_list([at_vergunningen], ctx, title=broker.t("Your cases")), "nl")


def line(reference: str, status: str, changed: datetime, **kw: object) -> coordinator.CaseLine:
    values: dict[str, object] = {
        "reference": reference,
        "title": "Bankjes in het park",
        "wijk_code": "WK030101",
        "status": status,
        "status_changed_at": changed,
        "department": None,
        "broker_id": ANNA.id,
        "broker_name": ANNA.name,
        "broker_absent_until": None,
        "assigned_at": changed,
        "last_broker_action_at": changed,
        "created_at": changed,
        "first_contact_at": None,
    }
    return coordinator.CaseLine(**{**values, **kw})  # type: ignore[arg-type]


def test_the_coordinators_see_exactly_the_steps_the_watchdog_sends() -> None:
    now = datetime(2026, 4, 2, 9, 0, tzinfo=UTC)
    lines = [
        # toegewezen since 2 March: 23 working days, the urgent step (5 × 3) and no sign of life (15 × 1.5).
        line("INI-2026-0001", "toegewezen", ENTERED),
        # At Vergunningen for 23 working days: within its own norm of 40, so not stalled.
        line("INI-2026-0002", "bij_gemeente", ENTERED, department="vergunningen", last_broker_action_at=now),
        # At Verkeer for 23 working days: no status clock; the department's clock is on its question.
        line("INI-2026-0003", "bij_gemeente", ENTERED, department="verkeer", last_broker_action_at=now),
        # Being carried out (norm 40), but no sign of the broker for 23 working days: an escalation.
        line("INI-2026-0004", "in_uitvoering", ENTERED),
        # Nobody took it: ingediend since Monday 30 March, 3 working days, the escalation (2 × 1.5).
        line(
            "INI-2026-0005",
            "ingediend",
            datetime(2026, 3, 30, 8, tzinfo=UTC),
            broker_id=None,
            broker_name=None,
        ),
        # Fresh and fine.
        line("INI-2026-0006", "in_gesprek", now - timedelta(days=1)),
    ]
    sent = {
        (item.reference, alert.track.value, int(alert.level))
        for item in lines
        for alert in due_alerts(item.facts, ZUTPHEN, now, ())
        if not alert.skipped
    }
    assert sent == {
        ("INI-2026-0001", "status", 3),
        ("INI-2026-0001", "silence", 2),
        ("INI-2026-0004", "silence", 2),
        ("INI-2026-0005", "status", 2),
    }
    stalled = text(coordinator.stalled(lines, ZUTPHEN, now))
    blocks = stalled.split("\n\n")
    assert blocks[0] == "3 stalled initiatives, worst first:"
    steps = {"reminder": 1, "escalation": 2, "urgent escalation": 3}
    shown = {
        (
            block[:13],
            "silence" if row.startswith("No sign of life") else "status",
            steps[row.split("step: ")[1]],
        )
        for block in blocks[1:]
        for row in block.splitlines()
        if "step: " in row
    }
    assert shown == sent
    assert [block[:13] for block in blocks[1:]] == [
        "INI-2026-0001",
        "INI-2026-0004",
        "INI-2026-0005",
    ]
    assert "No sign of life for 23 working days (norm 15) · step: escalation" in stalled
    assert "1 working day over the norm of 2 · step: escalation" in stalled
    assert "Stalled: 3 ·" in text(coordinator.overview(lines, ZUTPHEN, now))
    assert "3 stalled now" in text(coordinator.weekly_digest(lines, ZUTPHEN, now))
