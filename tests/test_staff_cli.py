"""`initiatiefbot staff …`: adding, inviting, listing, absence (and telling the coordinators), removing."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import staff_cli
from bot.__main__ import _parser
from bot.settings import Settings, resolve_config_path
from storage import initiatives as initiatives_store
from storage import staff as staff_store
from storage.db import session_factory
from storage.models import Initiative, OutboxMessage
from tests.factories import new_initiative


def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, config_path=resolve_config_path("zutphen"))


async def staff(database_url: str, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = await staff_cli.run(settings(database_url), _parser().parse_args(["staff", *argv]), out=out)
    return code, out.getvalue()


async def test_add_invite_list_absent_and_remove(database_url: str, engine: AsyncEngine) -> None:
    code, said = await staff(
        database_url,
        "add",
        "--telegram-id",
        "42",
        "--role",
        "broker",
        "--name",
        "Anna de Vries",
        "--wijk",
        "WK030101",
    )
    assert code == 0 and "Anna de Vries is now broker" in said
    # Telegram lets a bot write only to people who opened it: say so, or nobody learns why nothing arrives.
    assert "Warning: Anna de Vries has not opened the bot yet" in said and "staff invite" in said
    code, said = await staff(
        database_url, "add", "--telegram-id", "43", "--role", "coordinator", "--name", "Cor Dinator"
    )
    assert code == 0
    code, said = await staff(
        database_url,
        "invite",
        "--role",
        "broker",
        "--name",
        "Bert",
        "--wijk",
        "WK030105",
        "--bot-username",
        "@gemeente_bot",
    )
    assert code == 0 and "https://t.me/gemeente_bot?start=" in said
    code, said = await staff(database_url, "list")
    assert "Anna de Vries (WK030101; all themes, 0 open, has not opened the bot yet)" in said
    assert "Cor Dinator (all wijken" in said

    code, said = await staff(database_url, "absent", "--telegram-id", "42", "--until", "2026-12-24")
    assert code == 0 and "absent until 2026-12-24" in said and "Told 1 coordinator(s)" in said
    async with engine.connect() as conn:  # the running bot's outbox sweep sends it
        queued = (await conn.execute(select(OutboxMessage.chat_id, OutboxMessage.status))).all()
    assert [(chat, status) for chat, status in queued] == [(43, "pending")]

    code, said = await staff(database_url, "remove", "--telegram-id", "42")
    assert code == 0 and "no longer has a staff role" in said
    code, _ = await staff(database_url, "absent", "--telegram-id", "42", "--back")
    assert code == 1


async def test_unknown_wijk_or_theme_is_refused_with_the_known_ones(
    database_url: str, engine: AsyncEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = await staff(
        database_url, "add", "--telegram-id", "42", "--role", "broker", "--name", "A", "--wijk", "WK999999"
    )
    assert code == 2 and "Known: WK030100 (Centrum–De Hoven)" in capsys.readouterr().err
    code, _ = await staff(
        database_url,
        "add",
        "--telegram-id",
        "42",
        "--role",
        "broker",
        "--name",
        "A",
        "--wijk",
        "WK030101",
        "--theme",
        "nope",
    )
    assert code == 2 and "Unknown theme nope" in capsys.readouterr().err
    code, _ = await staff(database_url, "add", "--telegram-id", "42", "--role", "broker", "--name", "A")
    assert code == 2 and "at least one --wijk" in capsys.readouterr().err


NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def initiative(resident: int, wijk: str) -> initiatives_store.NewInitiative:
    return new_initiative(
        municipality_code="0301",
        resident_user_id=resident,
        resident_chat_id=resident,
        title=f"Idee van {resident}",
        description="Bankjes bij de speeltuin, voor ouders en ouderen.",
        wijk_code=wijk,
        needs=(),
        amount_cents=None,
        neighbours=None,
        contact_name="Anna",
        consent_at=NOW,
    )


async def test_removing_a_broker_hands_their_open_initiatives_back_to_the_coordinators(
    database_url: str, engine: AsyncEngine
) -> None:
    await staff(database_url, *"add --telegram-id 42 --role broker --name Bea --wijk WK030101".split())
    await staff(database_url, *"add --telegram-id 43 --role coordinator --name Cor --wijk WK030101".split())
    await staff(database_url, *"add --telegram-id 44 --role coordinator --name Noor --wijk WK030102".split())
    async with session_factory(engine)() as session, session.begin():
        bea = await staff_store.load_staff(session, 42)
        assert bea is not None
        cases = [
            await initiatives_store.create_initiative(session, initiative(r, "WK030101"), NOW)
            for r in (701, 702)
        ]
        cases.append(await initiatives_store.create_initiative(session, initiative(703, "WK030101"), NOW))
        for case in cases:
            await initiatives_store.assign(
                session, case.id, broker_id=bea.id, by_staff_id=None, note=None, now=NOW
            )
        await initiatives_store.change_status(  # a finished one stays hers
            session,
            cases[2].id,
            status="gerealiseerd",
            now=NOW,
            actor_role="broker",
            actor_user_id=42,
            staff_id=bea.id,
            note=None,
            department=None,
        )
    first, second, done = (c.reference for c in cases)

    code, said = await staff(database_url, "remove", "--telegram-id", "42")

    assert code == 0 and "Bea no longer has a staff role." in said
    assert "2 open initiative(s) went back to the coordinators (1 told" in said
    async with engine.connect() as conn:
        brokers = dict((await conn.execute(select(Initiative.reference, Initiative.broker_id))).all())
        queued = (
            await conn.execute(
                select(OutboxMessage.chat_id, OutboxMessage.payload).order_by(OutboxMessage.id)
            )
        ).all()
    # Unassigned now, so /zaken, /onverdeeld, the overview and the watchdog all count them as such.
    assert brokers == {first: None, second: None, done: bea.id}
    by_chat: dict[int, list[dict[str, object]]] = {}
    for chat, payload in queued:
        by_chat.setdefault(chat, []).append(payload)
    assert sorted(by_chat) == [43, 701, 702]  # Noor covers another wijk; 703's initiative is done
    (told,) = by_chat[43]
    text = str(told["text"])
    assert "Bea is geen initiatiefmakelaar meer" in text and first in text and second in text
    assert done not in text
    buttons = [b["callback_data"] for row in told["reply_markup"]["inline_keyboard"] for b in row]  # type: ignore[index]
    assert buttons == [f"c:{first}:as", f"c:{second}:as"]
    for resident in (701, 702):
        (heard,) = by_chat[resident]
        assert "krijgt snel een nieuwe initiatiefmakelaar" in str(heard["text"])

    # Removing someone without open initiatives tells nobody.
    code, said = await staff(database_url, "remove", "--telegram-id", "43")
    assert code == 0 and "went back" not in said


async def test_department_contacts_are_added_listed_and_removed_without_telegram(
    database_url: str, engine: AsyncEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    add = ("add", "--role", "department", "--department", "verkeer", "--name", "Jan de Verkeersman")
    code, said = await staff(database_url, *add, "--email", "Jan@Zutphen.example")
    assert code == 0 and "Jan de Verkeersman <Jan@zutphen.example> now gets the questions for Verkeer" in said
    code, said = await staff(database_url, "list")
    assert code == 0
    verkeer = next(line for line in said.splitlines() if line.strip().startswith("verkeer"))
    assert "Team Verkeer <verkeer@zutphen.example> (config)" in verkeer
    assert "Jan de Verkeersman <Jan@zutphen.example> (added)" in verkeer
    assert "manager Marieke Jansen" in verkeer

    for argv, problem in [
        ((*add[:4], "nergens", *add[5:], "--email", "a@b.nl"), "needs --department, one of: verkeer"),
        ((*add, "--email", "geen-adres"), "is not an e-mail address"),
        (add, "needs --email"),
        (("add", "--role", "broker", "--name", "B", "--wijk", "WK030101"), "need --telegram-id"),
    ]:
        code, _ = await staff(database_url, *argv)
        assert code == 2 and problem in capsys.readouterr().err, argv

    code, said = await staff(database_url, "remove", "--email", "Jan@zutphen.example")
    assert code == 0 and "gets no more questions" in said
    code, said = await staff(database_url, "list")
    assert "Jan de Verkeersman" not in said
    code, _ = await staff(database_url, "remove", "--email", "Jan@zutphen.example")
    assert code == 1
