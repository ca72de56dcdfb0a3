"""The initiative's statuses, in plain words for residents."""

from __future__ import annotations

from enum import StrEnum

from flows.text import Msg, t


class Status(StrEnum):
    INGEDIEND = "ingediend"
    TOEGEWEZEN = "toegewezen"
    IN_GESPREK = "in_gesprek"
    PLAN_IN_UITWERKING = "plan_in_uitwerking"
    BIJ_GEMEENTE = "bij_gemeente"
    GOEDGEKEURD = "goedgekeurd"
    AFGEWEZEN = "afgewezen"
    IN_UITVOERING = "in_uitvoering"
    GEREALISEERD = "gerealiseerd"
    GESTOPT = "gestopt"


FINAL = frozenset({Status.GEREALISEERD, Status.GESTOPT})


def status_label(status: str) -> Msg:
    """What a status means, in words a resident understands."""
    labels = {
        Status.INGEDIEND: t("submitted"),
        Status.TOEGEWEZEN: t("an initiatiefmakelaar is assigned"),
        Status.IN_GESPREK: t("in conversation with your initiatiefmakelaar"),
        Status.PLAN_IN_UITWERKING: t("working out the plan"),
        Status.BIJ_GEMEENTE: t("with the municipality"),
        Status.GOEDGEKEURD: t("approved"),
        Status.AFGEWEZEN: t("not approved"),
        Status.IN_UITVOERING: t("being carried out"),
        Status.GEREALISEERD: t("done"),
        Status.GESTOPT: t("stopped"),
    }
    try:
        return labels[Status(status)]
    except ValueError:
        return Msg("{text}", {"text": status})
