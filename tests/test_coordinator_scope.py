"""Which coordinator may act on which initiative: their wijken, or everywhere without wijken."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.i18n import Translator
from bot.settings import load_municipality, resolve_config_path
from flows import broker
from flows.cases import CaseView, StaffRole, StaffView
from flows.commands import ChangeStatus, ShowBrokers
from flows.events import Event, EventKind
from flows.resident import Conversation

ZUTPHEN = load_municipality(resolve_config_path("zutphen"))
TR = Translator(("en",))
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WATERKWARTIER, NOORDVEEN, LEESTEN = "WK030101", "WK030102", "WK030104"
CTX = broker.StaffContext(ZUTPHEN, NOW)


def coordinator(*wijken: str, coordinated: frozenset[str] | None = None) -> StaffView:
    return StaffView(
        1, 900, "Cees Claassen", StaffRole.COORDINATOR, wijken=wijken, coordinated_wijken=coordinated
    )


def case(wijk: str | None) -> CaseView:
    return CaseView(
        id=7,
        reference="INI-2026-0007",
        title="Bankjes in het park",
        description="Drie bankjes bij de speeltuin.",
        theme_code="groen",
        wijk_code=wijk,
        own_contribution=None,
        needs=(),
        amount_cents=None,
        neighbours=None,
        photo_file_id=None,
        contact_name="Anna",
        contact_phone="06 12345678",
        contact_email=None,
        status="toegewezen",
        status_changed_at=NOW,
        created_at=NOW,
        resident_user_id=100,
        resident_chat_id=100,
        broker_id=5,
    )


@pytest.mark.parametrize(
    ("staff", "wijk", "may"),
    [
        (coordinator(NOORDVEEN), NOORDVEEN, True),  # one of their wijken
        (coordinator(NOORDVEEN), WATERKWARTIER, False),  # another coordinator's wijk
        (coordinator(), WATERKWARTIER, True),  # no wijken: the whole municipality
        (coordinator(NOORDVEEN), None, True),  # the resident did not know the wijk: every coordinator's
        # Nobody has Leesten: its alerts go to every coordinator, so every coordinator may act on it.
        (coordinator(NOORDVEEN, coordinated=frozenset({NOORDVEEN, WATERKWARTIER})), LEESTEN, True),
        (coordinator(NOORDVEEN, coordinated=frozenset({NOORDVEEN, WATERKWARTIER})), WATERKWARTIER, False),
        # The assigned broker, and no other broker.
        (StaffView(5, 500, "Bea", StaffRole.BROKER, wijken=(WATERKWARTIER,)), WATERKWARTIER, True),
        (StaffView(6, 600, "Dirk", StaffRole.BROKER, wijken=(WATERKWARTIER,)), WATERKWARTIER, False),
    ],
)
def test_who_may_act_on_a_case(staff: StaffView, wijk: str | None, may: bool) -> None:
    assert broker.may_act(staff, case(wijk)) is may


def command(name: str, args: str = "") -> Event:
    return Event(EventKind.COMMAND, user_id=900, chat_id=900, command=name, command_args=args)


def button(data: str) -> Event:
    return Event(EventKind.BUTTON, user_id=900, chat_id=900, button=data, callback_query_id="q")


def texts(out: object) -> str:
    return "\n".join(TR.render(reply.text, "en") for reply in out.replies)  # type: ignore[attr-defined]


def test_a_coordinator_cannot_open_change_or_assign_a_case_outside_their_wijken() -> None:
    cees, other = coordinator(NOORDVEEN), case(WATERKWARTIER)
    for event in (
        command("zaak", other.reference),
        command("toewijzen", other.reference),
        button(f"c:{other.reference}:open"),
        button(f"c:{other.reference}:st:in_gesprek"),
        button(f"c:{other.reference}:nonote:in_gesprek"),
        button(f"c:{other.reference}:as:5"),
        button(f"c:{other.reference}:msg"),
    ):
        out = broker.handle(Conversation(), event, cees, other, CTX)
        assert out is not None
        said = texts(out)
        assert "This initiative is in Waterkwartier, which is not one of your neighbourhoods." in said, event
        assert "06 12345678" not in said and not out.commands, event  # no contact details, nothing done


def test_a_coordinator_acts_on_a_case_in_their_wijk_and_one_without_wijken_everywhere() -> None:
    for staff, wijk in ((coordinator(NOORDVEEN), NOORDVEEN), (coordinator(), WATERKWARTIER)):
        mine = case(wijk)
        card = broker.handle(Conversation(), command("zaak", mine.reference), staff, mine, CTX)
        assert card is not None and "06 12345678" in texts(card)
        out = broker.handle(Conversation(), command("toewijzen", mine.reference), staff, mine, CTX)
        assert out is not None and out.commands == (ShowBrokers(mine.reference, "as"),)
        out = broker.handle(Conversation(), button(f"c:{mine.reference}:nonote:in_gesprek"), staff, mine, CTX)
        assert out is not None and out.commands == (ChangeStatus(mine.reference, "in_gesprek", None, None),)
