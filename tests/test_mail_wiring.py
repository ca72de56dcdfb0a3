"""An update whose transaction queued mail says so (``Handled.mail``), and the terminal shell then
writes the mail as an .eml file and prints it."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import default
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.dispatcher import Dispatcher
from bot.i18n import Translator
from bot.mail import queue
from bot.settings import Settings, load_municipality, resolve_config_path
from bot.shell import run_shell
from flows.events import Event, EventKind
from storage import mail_outbox
from storage.db import session_factory
from storage.mail_outbox import NewMail

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)

LINK = "http://localhost:8080/afdeling/1-abc"
MAIL = NewMail(
    to_address="verkeer@zutphen.example",
    to_name="Team Verkeer",
    subject="Vraag over INI-2026-0001",
    body=f"Mogen de bloembakken blijven staan?\n\nAntwoord hier:\n{LINK}\n",
    kind="question",
)


@pytest.fixture
def mailing_update(monkeypatch: pytest.MonkeyPatch) -> None:
    """The text "stuur mail" makes the update queue a department mail (as a broker's question will)."""
    original = Dispatcher._process

    async def process(
        self: Dispatcher, session: AsyncSession, tx: object, event: Event, now: datetime, trace: object
    ) -> list[object]:
        if event.text == "stuur mail":
            await queue(session, [MAIL], self._municipality, now)
            return []
        return await original(self, session, tx, event, now, trace)  # type: ignore[arg-type]

    monkeypatch.setattr(Dispatcher, "_process", process)


@pytest.mark.usefixtures("mailing_update")
async def test_the_shell_writes_an_updates_mail_as_eml_and_prints_it(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        config_path=resolve_config_path("zutphen"),
    )
    lines = iter(["hallo\n", "stuur mail\n", ""])
    out = io.StringIO()

    async def read_line() -> str:
        return next(lines)

    await run_shell(settings, user_id=7, language="nl", read_line=read_line, out=out)

    printed = out.getvalue()
    assert printed.count("✉ to verkeer@zutphen.example: Vraag over INI-2026-0001") == 1
    assert f"\n   {LINK}\n" in printed
    [eml] = (tmp_path / "mail").glob("*.eml")  # beside the SQLite file
    message = BytesParser(policy=default).parsebytes(eml.read_bytes())
    assert message["To"].addresses[0].addr_spec == "verkeer@zutphen.example"
    assert message["From"].addresses[0].display_name == "Bewonersinitiatieven Zutphen"


@pytest.mark.usefixtures("mailing_update")
async def test_an_update_that_queued_mail_says_so_after_commit(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    dispatcher = Dispatcher(
        sessions, load_municipality(resolve_config_path("zutphen")), Translator(("nl",)), lambda: T0
    )

    def said(text: str) -> Event:
        return Event(kind=EventKind.TEXT, text=text, user_id=7, chat_id=7, first_name="Sanne")

    assert not (await dispatcher.handle(said("hallo"), 1)).mail
    assert (await dispatcher.handle(said("stuur mail"), 2)).mail
    assert not (await dispatcher.handle(said("stuur mail"), 2)).mail  # the same update again: skipped
    async with sessions() as session:
        assert [m.status for m in await mail_outbox.mails(session)] == ["pending"]  # committed
