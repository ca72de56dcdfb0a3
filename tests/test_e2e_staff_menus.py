"""Staff have their own menu: /start and /help show a broker's or coordinator's commands, and Telegram's
command menu in their chat lists them (set when their role begins or changes, removed when it ends),
while residents keep the residents' menu in their own language.

The real PTB Application against the fake Bot API, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio
from telegram import Bot, BotCommand, BotCommandScopeAllPrivateChats, BotCommandScopeChat
from telegram.error import BadRequest

from bot import staff_cli
from bot.__main__ import _parser
from storage import staff as staff_store
from tests.e2e import press, running_bot, say
from tests.fake_bot_api import ApiCall, FakeBotApi, FakeUser
from tests.test_e2e_cases import NOORDVEEN, add_staff, clock, database, text_of
from tests.test_staff_cli import settings

pytestmark = pytest.mark.timeout(60)

BROKER_COMMANDS = ["start", "zaken", "zaak", "dashboard", "help"]
COORDINATOR_COMMANDS = [
    "start",
    "onverdeeld",
    "vastgelopen",
    "overzicht",
    "makelaars",
    "toewijzen",
    "zaak",
    "dashboard",
    "help",
]
DUTCH_RESIDENT_COMMANDS = ["start", "nieuw", "mijn", "taal", "mijngegevens", "help", "stop", "vergeetmij"]
ENGLISH_RESIDENT_COMMANDS = ["start", "new", "mine", "language", "mydata", "help", "stop", "forgetme"]
RESIDENT_GREETING = "Do you have an idea for your neighbourhood?"


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as api:
        yield api


def names(commands: list[tuple[str, str]]) -> list[str]:
    return [name for name, _ in commands]


def scoped_to(user: FakeUser) -> Callable[[ApiCall], bool]:
    """A matcher for command-menu calls scoped to this user's chat."""
    return lambda call: (call.params.get("scope") or {}).get("chat_id") == user.chat_id and call.ok


async def test_a_broker_and_a_coordinator_see_their_own_commands_at_start_and_help(
    fake: FakeBotApi, database_url: str
) -> None:
    bea = fake.user(8101, "Bea", language_code="en")
    cora = fake.user(8102, "Cora", language_code="en")
    await add_staff(database_url, bea.id, "Bea Bakker")
    await add_staff(database_url, cora.id, "Cora Claassen", role="coordinator", wijken=[])

    async with running_bot(fake, database_url, clock=clock):
        menu = await say(bea, "/start", "Hello Bea Bakker! You are an initiative broker.")
        shown = text_of(menu)
        assert "/zaken – Your open initiatives, most urgent first" in shown
        assert "/dashboard – A link to the staff website" in shown
        assert "/vastgelopen" not in shown  # a coordinator's command
        assert RESIDENT_GREETING not in shown
        assert menu.button_labels == ["My initiatives", "Staff website"]
        await press(bea, "My initiatives", "You have no open initiatives.")
        again = await say(bea, "/help", "Hello Bea Bakker!")
        assert text_of(again) == shown

        menu = await say(cora, "/help", "Hello Cora Claassen! You are a coordinator.")
        shown = text_of(menu)
        for command in ("/onverdeeld", "/vastgelopen", "/overzicht", "/makelaars", "/toewijzen", "/zaak"):
            assert f"{command} – " in shown
        assert menu.button_labels == [
            "Without initiative broker",
            "Stuck",
            "Overview",
            "Initiative brokers",
            "Staff website",
        ]
        await press(cora, "Stuck", "No initiative is stalled.")
        await press(cora, "Without initiative broker", "Every open initiative has an initiative broker.")

        # Added with `staff add` before they opened the bot: their /start set their chat's menu too.
        await fake.wait_for_call("setMyCommands", scoped_to(bea))
        await fake.wait_for_call("setMyCommands", scoped_to(cora))
        assert names(fake.commands_seen(bea, "en")) == BROKER_COMMANDS
        assert names(fake.commands_seen(cora, "en")) == COORDINATOR_COMMANDS
        assert ("zaken", "Your open initiatives, most urgent first") in fake.commands_seen(bea, "en")


async def test_residents_see_the_residents_commands_in_dutch_or_english(
    fake: FakeBotApi, database_url: str
) -> None:
    jan = fake.user(8201, "Jan", language_code="nl")
    jane = fake.user(8202, "Jane", language_code="en")
    bea = fake.user(8203, "Bea", language_code="en")
    await add_staff(database_url, bea.id, "Bea Bakker")

    async with running_bot(fake, database_url, clock=clock):
        greeting = await say(jane, "/start", "What do you want to do?")
        assert RESIDENT_GREETING in text_of(greeting)
        assert "New initiative" in greeting.button_labels
        await say(jan, "/help", "/nieuw")
        await say(bea, "/start", "You are an initiative broker.")
        await fake.wait_for_call("setMyCommands", scoped_to(bea))

    assert names(fake.commands_seen(jan, "nl")) == DUTCH_RESIDENT_COMMANDS
    assert names(fake.commands_seen(jane, "en")) == ENGLISH_RESIDENT_COMMANDS
    assert ("new", "Share a new idea") in fake.commands_seen(jane, "en")
    assert ("nieuw", "Deel een nieuw idee") in fake.commands_seen(jan, "nl")
    # Telegram apps in a language the bot has no list for get the Dutch default.
    assert names(fake.commands_seen(jane, "de")) == DUTCH_RESIDENT_COMMANDS
    # A staff chat's own list wins over every language's default list.
    assert names(fake.commands_seen(bea, "en")) == BROKER_COMMANDS
    assert names(fake.commands_seen(bea, "nl")) == BROKER_COMMANDS


async def test_an_invitation_sets_the_staff_menu_a_new_role_changes_it_and_removal_takes_it_away(
    fake: FakeBotApi, database_url: str
) -> None:
    dirk = fake.user(8301, "Dirk", language_code="en")
    async with database(database_url) as session:
        as_broker = await staff_store.create_invite(
            session, role="broker", name="Dirk Dekker", wijken=[NOORDVEEN], themes=[], now=clock()
        )
        as_coordinator = await staff_store.create_invite(
            session, role="coordinator", name="Dirk Dekker", wijken=[], themes=[], now=clock()
        )

    async with running_bot(fake, database_url, clock=clock):
        await say(dirk, f"/start {as_broker.code}", "Welcome, Dirk Dekker!")
        await fake.wait_for_call("setMyCommands", scoped_to(dirk))
        assert names(fake.commands_seen(dirk, "en")) == BROKER_COMMANDS

        seen = len(fake.calls("setMyCommands"))
        await say(dirk, f"/start {as_coordinator.code}", "You are now a coordinator.")
        await fake.wait_for_call("setMyCommands", scoped_to(dirk), after=seen)
        assert names(fake.commands_seen(dirk, "en")) == COORDINATOR_COMMANDS
        await say(dirk, "/start", "You are a coordinator.")

        # `initiatiefbot staff remove` runs beside the bot and queues the change in the outbox (sent by
        # the sweep; on the tests' standing clock, before the next message to the chat).
        args = _parser().parse_args(["staff", "remove", "--telegram-id", str(dirk.id)])
        assert await staff_cli.run(settings(database_url), args) == 0
        greeting = await say(dirk, "/start", "What do you want to do?")
        assert RESIDENT_GREETING in text_of(greeting)
        assert "coordinator" not in text_of(greeting)
        await fake.wait_for_call("deleteMyCommands", scoped_to(dirk))
        assert names(fake.commands_seen(dirk, "en")) == ENGLISH_RESIDENT_COMMANDS


async def test_the_fake_bot_api_checks_command_menus_and_resolves_them_like_telegram(
    fake: FakeBotApi,
) -> None:
    anna = fake.user(8401, "Anna", language_code="en")
    await anna.send_text("hoi")  # Telegram knows a private chat only once the person wrote
    async with Bot(fake.token, base_url=fake.base_url, base_file_url=fake.base_file_url) as bot:
        await bot.set_my_commands([BotCommand("start", "Beginnen")])
        assert fake.commands_seen(anna, "en") == [("start", "Beginnen")]
        await bot.set_my_commands([BotCommand("start", "Start")], language_code="en")
        assert fake.commands_seen(anna, "en") == [("start", "Start")]
        await bot.set_my_commands([BotCommand("all", "Private")], scope=BotCommandScopeAllPrivateChats())
        assert fake.commands_seen(anna, "en") == [("all", "Private")]  # all private chats beat default+en
        assert fake.commands_seen(anna, "nl") == [("all", "Private")]
        await bot.set_my_commands([BotCommand("mine", "Anna's")], scope=BotCommandScopeChat(anna.chat_id))
        assert fake.commands_seen(anna, "en") == [("mine", "Anna's")]
        await bot.set_my_commands(
            [BotCommand("mijn", "Van Anna")], scope=BotCommandScopeChat(anna.chat_id), language_code="nl"
        )
        assert fake.commands_seen(anna, "nl") == [("mijn", "Van Anna")]
        assert fake.commands_seen(anna, "en") == [("mine", "Anna's")]
        assert await bot.get_my_commands(scope=BotCommandScopeChat(anna.chat_id)) == (
            BotCommand("mine", "Anna's"),
        )
        await bot.delete_my_commands(scope=BotCommandScopeChat(anna.chat_id))
        await bot.delete_my_commands(scope=BotCommandScopeChat(anna.chat_id), language_code="nl")
        assert fake.commands_seen(anna, "nl") == [("all", "Private")]

        with pytest.raises(BadRequest, match=r"(?i)bot_command_invalid"):
            await bot.set_my_commands([BotCommand("zaak-open", "Streepje")])
        with pytest.raises(BadRequest, match="exceed 32"):
            await bot.set_my_commands([BotCommand("a" * 33, "Te lang")])
        with pytest.raises(BadRequest, match="256"):
            await bot.set_my_commands([BotCommand("lang", "x" * 257)])
        with pytest.raises(BadRequest, match=r"(?i)too_much"):
            await bot.set_my_commands([BotCommand(f"c{i}", "Eén") for i in range(101)])
        with pytest.raises(BadRequest, match="Chat not found"):
            await bot.set_my_commands([BotCommand("x", "Niemand")], scope=BotCommandScopeChat(999_999))
        await bot.set_my_commands([BotCommand(f"c{i}", "Eén") for i in range(100)])
        await bot.set_my_commands([BotCommand("a" * 32, "x" * 256)], language_code="de")


async def test_a_staff_members_menu_follows_the_language_they_choose(
    fake: FakeBotApi, database_url: str
) -> None:
    bea = fake.user(8601, "Bea", language_code="en")
    await add_staff(database_url, bea.id, "Bea Bakker")

    async with running_bot(fake, database_url, clock=clock):
        await say(bea, "/start", "You are an initiative broker.")
        await fake.wait_for_call("setMyCommands", scoped_to(bea))
        assert ("zaken", "Your open initiatives, most urgent first") in fake.commands_seen(bea, "en")
        seen = len(fake.calls("setMyCommands"))
        await say(bea, "/taal", "Which language")
        await press(bea, "Nederlands", "Nederlands")
        await fake.wait_for_call("setMyCommands", scoped_to(bea), after=seen)
        # Her Telegram app is still English: the chat's own list wins, now in Dutch.
        assert ("zaken", "Je open initiatieven, de meest dringende eerst") in fake.commands_seen(bea, "en")
        menu = await say(bea, "/help", "Hallo Bea Bakker! Je bent initiatiefmakelaar.")
        assert menu.button_labels == ["Mijn initiatieven", "Website voor medewerkers"]


async def test_a_telegram_outage_delays_the_staff_menu_and_does_not_lose_it(
    fake: FakeBotApi, database_url: str
) -> None:
    dirk = fake.user(8701, "Dirk", language_code="en")
    async with database(database_url) as session:
        invite = await staff_store.create_invite(
            session, role="broker", name="Dirk Dekker", wijken=[NOORDVEEN], themes=[], now=clock()
        )

    async with running_bot(fake, database_url, clock=clock):
        fake.fail_next("setMyCommands", error_code=500)
        # The menu goes after the welcome: a failing menu call holds up no message.
        await say(dirk, f"/start {invite.code}", "Welcome, Dirk Dekker!")
        failed = await fake.wait_for_call("setMyCommands", lambda call: call.status == 500)
        assert names(fake.commands_seen(dirk, "en")) == ENGLISH_RESIDENT_COMMANDS  # not yet
        # Not /start (that sets the menu anew): the chat's next message takes the retry along.
        await say(dirk, "/zaken", "You have no open initiatives.")
        retried = await fake.wait_for_call("setMyCommands", scoped_to(dirk))
        assert retried.params == failed.params
        assert names(fake.commands_seen(dirk, "en")) == BROKER_COMMANDS
