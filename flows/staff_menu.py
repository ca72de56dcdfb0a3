"""What a broker or coordinator sees as their menu: the /start and /help text with its buttons, and the
command list Telegram shows in their chat. One table drives both, so the two never disagree."""

from __future__ import annotations

from dataclasses import dataclass

from flows.cases import StaffRole, StaffView
from flows.events import Button, Reply
from flows.text import Msg, t

# Callback data of the menu's buttons: "s:<command>", handled as if the command was typed.
MENU_PREFIX = "s"
MENU_COMMANDS = frozenset({"start", "help", "hulp"})


@dataclass(frozen=True)
class StaffCommand:
    """One command in a staff member's menu; ``button`` labels it under the /start text, if it has one."""

    name: str
    description: Msg
    button: Msg | None = None


_START = StaffCommand("start", t("Your menu"))
_HELP = StaffCommand("help", t("What you can do here"))
_CASE = StaffCommand("zaak", t("Open one initiative by its reference"))
_DASHBOARD = StaffCommand("dashboard", t("A link to the staff website"), t("Staff website"))

BROKER_MENU: tuple[StaffCommand, ...] = (
    _START,
    StaffCommand("zaken", t("Your open initiatives, most urgent first"), t("My initiatives")),
    _CASE,
    _DASHBOARD,
    _HELP,
)
COORDINATOR_MENU: tuple[StaffCommand, ...] = (
    _START,
    StaffCommand(
        "onverdeeld", t("Initiatives without an initiatiefmakelaar"), t("Without initiatiefmakelaar")
    ),
    StaffCommand("vastgelopen", t("Initiatives that are stuck"), t("Stuck")),
    StaffCommand("overzicht", t("Overview per wijk"), t("Overview")),
    StaffCommand("makelaars", t("The initiatiefmakelaars and their work"), t("Initiatiefmakelaars")),
    StaffCommand("toewijzen", t("Choose the initiatiefmakelaar of an initiative")),
    _CASE,
    _DASHBOARD,
    _HELP,
)


def commands_for(role: StaffRole) -> tuple[StaffCommand, ...]:
    """The commands of a role, in the order Telegram's menu and the help text show them."""
    return COORDINATOR_MENU if role == StaffRole.COORDINATOR else BROKER_MENU


def menu_button(command: str) -> str:
    return f"{MENU_PREFIX}:{command}"


def menu_command(data: str) -> str | None:
    """The command a menu button stands for, or None for other callback data."""
    prefix, _, command = data.partition(":")
    return command if prefix == MENU_PREFIX and command else None


def staff_menu(staff: StaffView) -> Reply:
    """The answer to /start and /help for staff: who they are here, their commands, and buttons."""
    commands = commands_for(staff.role)
    greeting = (
        t("Hello {name}! You are a coordinator. These are your commands:", name=staff.name)
        if staff.is_coordinator
        else t("Hello {name}! You are an initiatiefmakelaar. These are your commands:", name=staff.name)
    )
    lines = [t("/{command} – {description}", command=c.name, description=c.description) for c in commands]
    listing = Msg(
        "\n".join(f"{{l{i}}}" for i in range(len(lines))), {f"l{i}": x for i, x in enumerate(lines)}
    )
    buttons = tuple((Button(c.button, menu_button(c.name)),) for c in commands if c.button is not None)
    cards = (
        t("New initiatives for you arrive here by themselves.")
        if not staff.is_coordinator
        else t("Stuck initiatives and initiatives without an initiatiefmakelaar arrive here by themselves.")
    )
    return Reply(
        greeting,
        extra=(
            listing,
            cards,
            t(
                "Under each initiative you find buttons: change the status, send a message, "
                "write a note, hand over, see the timeline."
            ),
            t("Do you want to share an idea yourself? Send /nieuw."),
            t("What do you want to do?"),
        ),
        buttons=buttons,
    )
