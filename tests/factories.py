"""Plain test data that several test modules build the same way."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from storage.initiatives import NewInitiative

CONSENT_AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)

_INITIATIVE = NewInitiative(
    municipality_code="0363",
    prefix="INI",
    resident_user_id=1001,
    resident_chat_id=1001,
    title="Bankjes bij de speeltuin",
    description="Twee bankjes zodat ouders kunnen zitten terwijl de kinderen spelen.",
    theme_code="groen",
    wijk_code="WK036301",
    own_contribution=None,
    needs=("geld",),
    amount_cents=45_000,
    neighbours=12,
    photo_file_id=None,
    contact_name="Fatima el Amrani",
    contact_phone=None,
    contact_email=None,
    consent_at=CONSENT_AT,
    language="nl",
)


def new_initiative(**changes: Any) -> NewInitiative:
    """A complete submission by Fatima (resident 1001), with ``changes`` to any field."""
    return dataclasses.replace(_INITIATIVE, **changes)
