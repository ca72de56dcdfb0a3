"""The resident's data export without Telegram: how it is asked for, how a document is rendered, and how
the terminal shell hands it over."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

from bot.shell import TerminalTransport, documents_dir
from bot.telegram_io import CAPTION_LIMIT, render_reply
from flows.commands import ExportMyData
from flows.events import Document, EventKind, Reply
from flows.privacy import Retention, access_summary, export_categories
from flows.text import verbatim
from tests.test_intake_flow import TR, Chat, answer_until


def test_mijngegevens_and_mydata_ask_for_the_export_also_in_the_middle_of_an_idea() -> None:
    chat = Chat()
    chat.command("mijngegevens")
    chat.command("mydata")
    answer_until(chat, "own")
    out = chat.command("mijngegevens")
    assert chat.commands == [ExportMyData(), ExportMyData(), ExportMyData()]
    assert out.conversation.draft is not None and chat.step == "own"  # the draft stays as it was


def test_help_lists_the_command_and_has_a_my_data_button_under_it() -> None:
    chat = Chat()
    chat.command("help")
    assert "/mydata – see what we store about you" in chat.last()
    assert chat.buttons()[-2:] == [("My data", "menu:data"), ("Delete my data", "menu:forget")]
    chat.press("My data")
    assert chat.commands == [ExportMyData()]

    answer_until(chat, "idea")  # while sharing an idea: the button is on the help text itself
    chat.command("help")
    help_reply = chat.replies[-2]
    assert [b.data for row in help_reply.buttons for b in row] == ["menu:data", "menu:forget"]


def test_the_summary_states_the_periods_of_the_municipality() -> None:
    retention = Retention(retention_months=36, draft_reminder_days=60, draft_delete_days=7)
    summary = access_summary("Deventer", retention)
    text = "\n\n".join(TR.render(m, "nl") for m in (summary.text, *summary.extra))
    assert "de gemeente Deventer" in text
    assert "tot 36 maanden nadat je initiatief is afgelopen" in text
    assert "na 60 dagen krijg je een herinnering, 7 dagen later verwijderen we het" in text
    assert "/vergeetmij" in text
    assert " u " not in text and " uw " not in text
    keys = [c.key for c in export_categories(retention)]
    assert keys == ["profile", "draft", "initiatives", "messages", "consents", "sent_messages"]


def test_a_document_goes_out_as_one_upload_with_its_caption_and_buttons() -> None:
    document = Document("mijngegevens.json", '{"a": 1}')
    reply = Reply(verbatim("Al je gegevens"), document=document)
    (call,) = render_reply(reply, chat_id=5, message_id=None, tr=TR, language="nl")
    assert call.method == "sendDocument"
    assert call.payload == {
        "chat_id": 5,
        "document": {
            "file_name": "mijngegevens.json",
            "mime_type": "application/json",
            "content": '{"a": 1}',
        },
        "caption": "Al je gegevens",
    }
    json.dumps(call.payload)  # the outbox keeps it as JSON


def test_a_caption_too_long_for_a_document_follows_it_as_a_message() -> None:
    long = "x" * (CAPTION_LIMIT + 1)
    reply = Reply(verbatim(long), document=Document("a.json", "{}"))
    calls = render_reply(reply, chat_id=5, message_id=None, tr=TR, language="nl")
    assert [c.method for c in calls] == ["sendDocument", "sendMessage"]
    assert "caption" not in calls[0].payload and calls[1].payload["text"] == long


async def test_the_shell_writes_a_document_to_a_file_for_its_user_only(tmp_path: Path) -> None:
    out = io.StringIO()
    shell = TerminalTransport(me=9, out=out, documents=tmp_path / "documents")
    document = {"file_name": "../mijngegevens.json", "mime_type": "application/json", "content": '{"é": 1}'}
    await shell.deliver("sendDocument", {"chat_id": 9, "document": document, "caption": "Al je gegevens"})
    await shell.deliver("sendDocument", {"chat_id": 10, "document": document})

    (written,) = (tmp_path / "documents").iterdir()
    assert written.name == "9-mijngegevens.json"
    assert written.read_text(encoding="utf-8") == '{"é": 1}'
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    printed = out.getvalue()
    assert f"📄 Al je gegevens\n   {written}" in printed
    assert "↪ to 10: [document ../mijngegevens.json]" in printed


def test_the_shell_keeps_documents_beside_the_sqlite_database(tmp_path: Path) -> None:
    assert documents_dir(f"sqlite+aiosqlite:///{tmp_path}/bot.db") == tmp_path / "documents"


def test_no_data_is_sent_into_a_group_chat() -> None:
    chat = Chat()
    out = chat._event(EventKind.COMMAND, command="mijngegevens", text="/mijngegevens", private_chat=False)
    assert out.commands == ()
    assert "private chat" in TR.render(out.replies[0].text, "en")


def test_a_document_answering_a_button_is_sent_as_a_new_message() -> None:
    reply = Reply(verbatim("Al je gegevens"), document=Document("a.json", "{}"), edit=True)
    (call,) = render_reply(reply, chat_id=5, message_id=12, tr=TR, language="nl")
    assert call.method == "sendDocument" and "message_id" not in call.payload
