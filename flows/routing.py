"""Which broker gets a new initiative: one who covers the wijk, is present, can get messages from the bot
and has the fewest open cases."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from flows.text import Msg, t


@dataclass(frozen=True)
class BrokerLoad:
    """A broker as routing sees them: where and on what they work, how busy and when they are away.

    ``themes`` empty means the broker takes any theme; ``absent_until`` is the last day of absence;
    ``reachable`` is False while the bot cannot write to them (they never opened it, or blocked it).
    """

    staff_id: int
    name: str
    wijken: frozenset[str]
    themes: frozenset[str]
    open_cases: int
    last_assigned_at: datetime | None
    absent_until: date | None
    reachable: bool = True


@dataclass(frozen=True)
class Routing:
    """The outcome of routing: the chosen broker (or None) and why, for the coordinator."""

    broker: BrokerLoad | None
    code: str  # specialist, generalist, no_wijk, nobody_in_wijk, all_absent, unreachable, nobody_for_theme
    reason: Msg


def is_present(broker: BrokerLoad, today: date) -> bool:
    """True unless the broker is absent today (absent *until* a date includes that date)."""
    return broker.absent_until is None or broker.absent_until < today


def _instant(moment: datetime | None) -> tuple[bool, datetime]:
    """Sort key for "assigned longest ago": never assigned comes first; naive times count as UTC."""
    if moment is None:
        return (False, datetime.min)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return (True, moment)


def _least_busy(candidates: Sequence[BrokerLoad]) -> BrokerLoad:
    """Fewest open cases, then assigned longest ago, then the lowest staff id."""
    return min(candidates, key=lambda b: (b.open_cases, _instant(b.last_assigned_at), b.staff_id))


def route(*, wijk_code: str | None, theme_code: str, brokers: Sequence[BrokerLoad], today: date) -> Routing:
    """Choose a broker for an initiative in ``wijk_code`` on ``theme_code`` and say why (or why nobody).

    Theme specialists for ``theme_code`` go before brokers without themes; without a wijk nobody is chosen,
    nor anyone the bot cannot write to (the case card would never reach them).
    """
    if wijk_code is None:
        return Routing(None, "no_wijk", t("The resident does not know the wijk, so a coordinator decides."))
    in_wijk = [b for b in brokers if wijk_code in b.wijken]
    if not in_wijk:
        return Routing(None, "nobody_in_wijk", t("No initiatiefmakelaar works in this wijk."))
    present = [b for b in in_wijk if is_present(b, today)]
    if not present:
        return Routing(None, "all_absent", t("The initiatiefmakelaars of this wijk are all absent."))
    present = [b for b in present if b.reachable]
    if not present:
        return Routing(
            None,
            "unreachable",
            t(
                "The bot cannot reach the initiatiefmakelaars of this wijk: "
                "they have not opened the bot yet, or they blocked it."
            ),
        )
    specialists = [b for b in present if theme_code in b.themes]
    if specialists:
        return Routing(
            _least_busy(specialists),
            "specialist",
            t("Works in this wijk on this theme and has the most room."),
        )
    generalists = [b for b in present if not b.themes]
    if generalists:
        return Routing(_least_busy(generalists), "generalist", t("Works in this wijk and has the most room."))
    return Routing(None, "nobody_for_theme", t("No initiatiefmakelaar in this wijk works on this theme."))


def choose_broker(
    *, wijk_code: str | None, theme_code: str, brokers: Sequence[BrokerLoad], today: date
) -> BrokerLoad | None:
    """The broker a new initiative goes to, or None when a coordinator has to decide (see ``route``)."""
    return route(wijk_code=wijk_code, theme_code=theme_code, brokers=brokers, today=today).broker
