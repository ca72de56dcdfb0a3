"""The coordinators' blocker list: each "nee" blocked by a rule or a lack of mandate, and what was done
about it ("vraag aan de hogere laag")."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import sql
from storage.departments import QUESTION_COLUMNS, QuestionRow
from storage.tables import blocker_actions, department_questions, initiatives


@dataclass(frozen=True, slots=True)
class BlockerActionRow:
    id: int
    question_id: int
    at: datetime
    staff_id: int | None
    escalated_to: str | None
    outcome: str | None
    resolved: bool


_ACTION = sql.columns(blocker_actions, BlockerActionRow)
_QUESTION = QUESTION_COLUMNS


@dataclass(frozen=True, slots=True)
class BlockerRow:
    """A "nee" blocked by a rule or a lack of mandate, with its case and what was done about it."""

    question: QuestionRow
    reference: str
    title: str
    wijk_code: str | None
    actions: tuple[BlockerActionRow, ...]

    @property
    def resolved(self) -> bool:
        return any(a.resolved for a in self.actions)


async def blockers(
    session: AsyncSession,
    *,
    wijken: Collection[str] | None = None,
    where: ColumnElement[bool] | None = None,
) -> list[BlockerRow]:
    """Every blocked "nee", newest first (of these wijken, if given; of the cases ``where`` on
    ``initiatives`` keeps, e.g. a viewer's ``storage.reports.scope_clause``), with their actions oldest
    first."""
    conn = await session.connection()
    stmt = (
        select(*_QUESTION, initiatives.c.reference, initiatives.c.title, initiatives.c.wijk_code)
        .join(initiatives, initiatives.c.id == department_questions.c.initiative_id)
        .where(department_questions.c.blocked_by.is_not(None))
        .order_by(department_questions.c.answered_at.desc(), department_questions.c.id.desc())
    )
    if wijken is not None:
        stmt = stmt.where(initiatives.c.wijk_code.in_(sorted(wijken)))
    if where is not None:
        stmt = stmt.where(where)
    rows = list(await conn.execute(stmt))
    n = len(_QUESTION)
    ids = [row[0] for row in rows]
    actions: dict[int, list[BlockerActionRow]] = {qid: [] for qid in ids}
    if ids:
        result = await conn.execute(
            select(*_ACTION).where(blocker_actions.c.question_id.in_(ids)).order_by(blocker_actions.c.id)
        )
        for row in result:
            action = BlockerActionRow(*row)
            actions[action.question_id].append(action)
    return [
        BlockerRow(QuestionRow(*row[:n]), row[n], row[n + 1], row[n + 2], tuple(actions[row[0]]))
        for row in rows
    ]


async def add_blocker_action(
    session: AsyncSession,
    question_id: int,
    *,
    staff_id: int | None,
    escalated_to: str | None,
    outcome: str | None,
    resolved: bool,
    now: datetime,
) -> None:
    conn = await session.connection()
    await conn.execute(
        blocker_actions.insert().values(
            question_id=question_id,
            at=now,
            staff_id=staff_id,
            escalated_to=escalated_to,
            outcome=outcome,
            resolved=resolved,
        )
    )
