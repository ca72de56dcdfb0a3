"""The blocker list ("vraag aan de hogere laag"): a department's "nee" caused by a rule or a lack of
mandate waits there until a coordinator records that it is settled. Each record says to whom it was
escalated, what came of it, and whether that settles it; one of the first two is needed."""

from __future__ import annotations

from dataclasses import dataclass

from flows.text import Msg, t
from flows.validators import clean_text

MAX_ESCALATED_TO = 200
MAX_OUTCOME = 2000


@dataclass(frozen=True, slots=True)
class BlockerAction:
    """A checked record of what was done about a blocker."""

    escalated_to: str | None
    outcome: str | None
    resolved: bool


def check_action(*, escalated_to: str, outcome: str, resolved: bool) -> BlockerAction | dict[str, Msg]:
    """The form's fields as a ``BlockerAction``, or a friendly message per field that needs another look."""
    to = clean_text(escalated_to, keep_newlines=False)
    said = clean_text(outcome, keep_newlines=True)
    errors: dict[str, Msg] = {}
    if len(to) > MAX_ESCALATED_TO:
        errors["escalated_to"] = t("Please keep it under {max} characters.", max=MAX_ESCALATED_TO)
    if len(said) > MAX_OUTCOME:
        errors["outcome"] = t("Please keep it under {max} characters.", max=MAX_OUTCOME)
    if not to and not said and not errors:
        errors["escalated_to"] = t("Write to whom you escalated it, or what came of it (or both).")
    if errors:
        return errors
    return BlockerAction(to or None, said or None, resolved)
