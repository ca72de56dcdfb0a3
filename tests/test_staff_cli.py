"""`initiatiefbot staff …`: adding, inviting, listing, absence (and telling the coordinators), removing."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import staff_cli
from bot.__main__ import _parser
from bot.settings import Settings, resolve_config_path
from storage.models import OutboxMessage


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
    assert "Anna de Vries (WK030101; all themes, 0 open)" in said and "Cor Dinator (all wijken" in said

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
