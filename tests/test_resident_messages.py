"""Where a resident's message outside any question goes (flows.resident_messages.route), as a table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from flows.resident_messages import (
    Ask,
    Attachment,
    Forward,
    HeldMessage,
    ResidentCase,
    Talk,
    attachment_label,
    held_from_json,
    route,
)
from flows.text import Msg
from storage import resident_messages as resident_messages_store
from storage.explain import explain

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def case(
    ref: str,
    *,
    broker: str | None = "Bea",
    ago: timedelta | None = DAY,
    kind: str = "message_to_resident",
    is_open: bool = True,
) -> ResidentCase:
    return ResidentCase(ref, f"Idee {ref}", broker, is_open, NOW - ago if ago is not None else None, kind)


A, B = "INI-2026-0001", "INI-2026-0002"


@pytest.mark.parametrize(
    ("talk", "expected"),
    [
        # No case at all: a new idea.
        (Talk(), None),
        # Only a case without broker (still with the coordinators): a new idea, as before.
        (Talk((case(A, broker=None),)), None),
        # The broker wrote yesterday: the next line of that conversation.
        (Talk((case(A),)), Forward(A)),
        # The resident's own message an hour ago, or the assignment notice today, count as well.
        (Talk((case(A, ago=timedelta(hours=1), kind="message_from_resident"),)), Forward(A)),
        (Talk((case(A, ago=timedelta(hours=1), kind="assigned"),)), Forward(A)),
        # Nothing said for ten days: ask.
        (Talk((case(A, ago=10 * DAY),)), "ask A"),
        # A newer case without broker (just submitted) came after the broker's message: ask.
        (Talk((case(A), case(B, broker=None, ago=timedelta(hours=1), kind="status"))), "ask A"),
        # Two cases with brokers: ask, newest first …
        (Talk((case(A, ago=2 * DAY), case(B))), "ask B A"),
        # … unless the resident wrote to one of them a few minutes ago.
        (
            Talk((case(A, ago=2 * DAY), case(B, ago=timedelta(minutes=5), kind="message_from_resident"))),
            Forward(B),
        ),
        # An initiative that ended three days ago still takes a "thank you".
        (Talk((case(A, ago=3 * DAY, kind="status", is_open=False),)), Forward(A)),
        # One that ended long ago does not.
        (Talk((case(A, ago=30 * DAY, kind="status", is_open=False),)), None),
        # A swipe-reply to a case's message goes there, whatever else is true.
        (Talk((case(A), case(B)), answered=A), Forward(A)),
    ],
)
def test_where_a_message_goes(talk: Talk, expected: object) -> None:
    got = route(talk, NOW)
    if isinstance(expected, str):
        assert isinstance(got, Ask)
        assert [c.reference for c in got.cases] == [A if x == "A" else B for x in expected.split()[1:]]
    else:
        assert got == expected


def test_kept_messages_survive_the_conversation_row() -> None:
    held = (
        HeldMessage("Hoe staat het ervoor?"),
        HeldMessage("", Attachment("voice", "AwAC123", seconds=12), "voice"),
        HeldMessage("Het plan", Attachment("document", "BQAC9", name="plan.pdf"), "document"),
    )
    assert held_from_json([m.to_json() for m in held]) == held
    assert held_from_json("nonsense") == () and held_from_json([{"text": 3}]) == ()


@pytest.mark.parametrize(
    ("kind", "name", "seconds", "msgid", "params"),
    [
        ("photo", None, None, "📷 photo", {}),
        ("voice", None, 12, "🎤 voice note ({length})", {"length": "0:12"}),
        ("voice", None, 75, "🎤 voice note ({length})", {"length": "1:15"}),
        ("voice", None, None, "🎤 voice note", {}),
        ("document", "plan.pdf", None, "📄 {name}", {"name": "plan.pdf"}),
        ("document", None, None, "📄 document", {}),
    ],
)
def test_what_the_timeline_says_came_with_a_message(
    kind: str, name: str | None, seconds: int | None, msgid: str, params: dict[str, str]
) -> None:
    label = attachment_label(kind, name, seconds)
    assert isinstance(label, Msg) and (label.msgid, dict(label.params)) == (msgid, params)
    assert attachment_label(None) is None


async def test_the_message_a_swipe_reply_answers_is_found_on_its_index(engine: AsyncEngine) -> None:
    """A swipe-reply looks its message up in the outbox, which keeps every row: never a scan of it."""
    async with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # A tiny table is read whole; switching that off shows the index can serve the query.
            await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        plan = await explain(conn, resident_messages_store._SENT_PAYLOAD, {"chat_id": 7, "message_id": 42})
    assert "ix_outbox_chat_message" in plan, plan
    assert "Seq Scan" not in plan and "SCAN outbox\n" not in plan + "\n", plan
