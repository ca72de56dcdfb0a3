"""Side effects a flow asks for; the dispatcher carries them out inside the update's transaction."""

from __future__ import annotations

from dataclasses import dataclass

from flows.intake import InitiativeDraft


@dataclass(frozen=True)
class SubmitInitiative:
    draft: InitiativeDraft


@dataclass(frozen=True)
class ShowMyInitiatives:
    pass


@dataclass(frozen=True)
class SetLanguage:
    language: str


Command = SubmitInitiative | ShowMyInitiatives | SetLanguage
