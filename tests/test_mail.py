"""E-mail goes out after commit, once, through a real SMTP server (aiosmtpd) or as .eml files, and
survives outages and restarts: nothing lost, nothing sent twice."""

from __future__ import annotations

import asyncio
import io
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.policy import default
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.mail import (
    MAIL_LEASE,
    EmlTransport,
    Mailer,
    Sender,
    default_mail_dir,
    mail_transport,
    queue,
    queued,
    terminal_echo,
)
from bot.settings import ConfigError, Settings, load_municipality, resolve_config_path
from bot.smtp import SmtpTarget, SmtpTransport, SmtpUrlError
from flows.municipality import Municipality
from storage import mail_outbox as mail_store
from storage.db import create_engine, session_factory
from storage.mail_outbox import MailRow, NewMail
from tests.smtp_support import Inbox, SmtpServer, running, self_signed

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
LEASE = MAIL_LEASE
LINK = "https://initiatieven.zutphen.example/afdeling/17-3f9a0c"
BODY = (
    "Beste Team Verkeer,\n\n"
    "Mogen de bloembakken aan de Spittaalstraat blijven staan? De bewoners zorgen zelf voor de planten.\n\n"
    f"Antwoord via deze link:\n{LINK}\n\n"
    "Met vriendelijke groet,\nAnna de Vries, initiatiefmakelaar — Zutphen"
)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A running SMTP server that accepts every mail (its ``inbox`` can be told to refuse some)."""
    with running() as server:
        yield server


@pytest.fixture(scope="module")
def zutphen() -> Municipality:
    return load_municipality(resolve_config_path("zutphen"))


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(engine)


def question(to: str = "verkeer@zutphen.example", name: str | None = "Team Verkeer") -> NewMail:
    return NewMail(
        to_address=to,
        to_name=name,
        subject="Vraag over INI-2026-0042: bloembakken in de Spittaalstraat — één vraag",
        body=BODY,
        kind="question",
    )


def text_of(message: Message) -> str:
    """The body as the reader sees it (the mail's lines end in CRLF, as SMTP wants)."""
    assert isinstance(message, EmailMessage)
    return str(message.get_content()).replace("\r\n", "\n").rstrip("\n")


async def queue_now(
    sessions: async_sessionmaker[AsyncSession], m: Municipality, now: datetime, *mails: NewMail
) -> list[MailRow]:
    async with sessions() as session, session.begin():
        rows = await queue(session, mails, m, now)
        assert queued(session)
    return rows


async def stored(sessions: async_sessionmaker[AsyncSession]) -> dict[int, MailRow]:
    async with sessions() as session:
        return {row.id: row for row in await mail_store.mails(session)}


def smtp_mailer(
    sessions: async_sessionmaker[AsyncSession],
    server: SmtpServer,
    clock: Clock,
    m: Municipality,
    **kw: object,
) -> Mailer:
    transport = SmtpTransport(SmtpTarget.parse(str(kw.pop("url", server.url))), timeout=5)
    return Mailer(sessions, transport, clock, sender=Sender.of(m), **kw)  # type: ignore[arg-type]


async def test_a_queued_mail_goes_out_once_with_its_headers_and_dutch_text(
    sessions: async_sessionmaker[AsyncSession], smtp_server: SmtpServer, clock: Clock, zutphen: Municipality
) -> None:
    [row] = await queue_now(sessions, zutphen, clock(), question())
    mailer = smtp_mailer(sessions, smtp_server, clock, zutphen)

    assert await mailer.flush() == 1
    assert await mailer.flush() == 0

    [got] = smtp_server.inbox.received
    assert got.sender == "initiatieven@zutphen.example"
    assert got.recipients == ["verkeer@zutphen.example"]
    message = got.message
    assert message["From"].addresses[0].display_name == "Bewonersinitiatieven Zutphen"
    assert message["To"].addresses[0].display_name == "Team Verkeer"
    assert message["Subject"] == question().subject
    assert message["Message-ID"] == row.message_id
    assert row.message_id.endswith("@zutphen.example>")
    assert message["Date"].datetime == T0
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"
    assert text_of(message) == BODY
    sent = (await stored(sessions))[row.id]
    assert (sent.status, sent.sent_at, sent.last_error) == ("sent", T0, None)


async def test_an_smtp_server_down_for_an_hour_delays_mail_but_loses_and_repeats_none(
    sessions: async_sessionmaker[AsyncSession], smtp_server: SmtpServer, clock: Clock, zutphen: Municipality
) -> None:
    rows = await queue_now(
        sessions, zutphen, clock(), *(question(f"afdeling{i}@zutphen.example") for i in range(3))
    )
    mailer = smtp_mailer(sessions, smtp_server, clock, zutphen)
    smtp_server.stop()

    tries = 0
    while clock() < T0 + timedelta(hours=1):  # a sweep every 30 seconds for an hour
        assert await mailer.flush() == 0
        tries += 1
        clock.advance(seconds=30)
    after_outage = await stored(sessions)
    assert all(row.status == "pending" for row in after_outage.values())
    # The oldest mail probes the server, backing off to every 5 minutes; the others wait behind it.
    probe = after_outage[rows[0].id]
    assert 12 <= probe.attempts <= 25 < tries
    assert "127.0.0.1" in (probe.last_error or "")
    assert [after_outage[row.id].attempts for row in rows[1:]] == [0, 0]

    smtp_server.start()
    clock.advance(minutes=5)  # the longest backoff
    assert await mailer.flush() == 3
    assert await mailer.flush() == 0
    ids = Counter(r.message["Message-ID"] for r in smtp_server.inbox.received)
    assert ids == Counter({row.message_id: 1 for row in rows})
    assert {row.status for row in (await stored(sessions)).values()} == {"sent"}


async def test_mail_undeliverable_for_longer_than_max_age_is_given_up(
    sessions: async_sessionmaker[AsyncSession], smtp_server: SmtpServer, clock: Clock, zutphen: Municipality
) -> None:
    [row] = await queue_now(sessions, zutphen, clock(), question())
    mailer = smtp_mailer(sessions, smtp_server, clock, zutphen, max_age=timedelta(days=3))
    smtp_server.stop()
    assert await mailer.flush() == 0
    clock.advance(days=3)
    assert await mailer.flush() == 0
    given_up = (await stored(sessions))[row.id]
    assert given_up.status == "failed"
    assert given_up.last_error is not None and given_up.last_error.startswith("gave up after 3 days")


async def test_after_a_restart_pending_mail_goes_once_and_sent_mail_never_again(
    engine: AsyncEngine, smtp_server: SmtpServer, clock: Clock, zutphen: Municipality
) -> None:
    sessions = session_factory(engine)
    first, second, third = await queue_now(
        sessions,
        zutphen,
        clock(),
        question("een@zutphen.example"),
        question("twee@zutphen.example"),
        question("drie@zutphen.example"),
    )
    # The first process sends one mail, claims the second (and dies while sending it), never sees
    # the third.
    before = smtp_mailer(sessions, smtp_server, clock, zutphen)
    async with sessions() as session, session.begin():
        [claimed] = await mail_store.claim(
            session, now=clock(), limit=1, until=clock() + timedelta(minutes=5)
        )
    assert claimed.id == first.id
    await before._send(claimed)
    async with sessions() as session, session.begin():
        [dying] = await mail_store.claim(session, now=clock(), limit=1, until=clock() + LEASE)
    assert dying.id == second.id
    del before

    # A new process on the same database: its own engine and mailer.
    restarted = create_engine(engine.url.render_as_string(hide_password=False))
    try:
        again = smtp_mailer(session_factory(restarted), smtp_server, clock, zutphen)
        assert await again.flush() == 1  # the third; the second is still leased to the dead sender
        assert await again.flush(take_leased=True) == 1  # at start-up, the only sender takes it back
        assert await again.flush(take_leased=True) == 0
    finally:
        await restarted.dispose()

    ids = Counter(r.message["Message-ID"] for r in smtp_server.inbox.received)
    assert ids == Counter({first.message_id: 1, second.message_id: 1, third.message_id: 1})


async def test_a_dead_senders_claim_runs_out_and_the_sweep_takes_the_mail_over(
    sessions: async_sessionmaker[AsyncSession], smtp_server: SmtpServer, clock: Clock, zutphen: Municipality
) -> None:
    [row] = await queue_now(sessions, zutphen, clock(), question())
    async with sessions() as session, session.begin():
        await mail_store.claim(session, now=clock(), limit=1, until=clock() + LEASE)
    mailer = smtp_mailer(sessions, smtp_server, clock, zutphen)
    assert await mailer.flush() == 0
    clock.advance(minutes=5)
    assert await mailer.flush() == 1
    assert [r.message["Message-ID"] for r in smtp_server.inbox.received] == [row.message_id]


async def test_a_refused_recipient_fails_for_good_a_busy_one_is_retried_and_others_still_go(
    sessions: async_sessionmaker[AsyncSession], smtp_server: SmtpServer, clock: Clock, zutphen: Municipality
) -> None:
    smtp_server.inbox.refuse["weg@zutphen.example"] = "550 5.1.1 no such user"
    smtp_server.inbox.busy["druk@zutphen.example"] = 1
    gone, busy, fine = await queue_now(
        sessions,
        zutphen,
        clock(),
        question("weg@zutphen.example"),
        question("druk@zutphen.example"),
        question("groen@zutphen.example"),
    )
    mailer = smtp_mailer(sessions, smtp_server, clock, zutphen)

    assert await mailer.flush() == 1
    rows = await stored(sessions)
    assert rows[gone.id].status == "failed" and "550" in (rows[gone.id].last_error or "")
    assert rows[busy.id].status == "pending" and rows[busy.id].attempts == 1
    assert "451" in (rows[busy.id].last_error or "")
    assert rows[fine.id].status == "sent"

    clock.advance(seconds=1)
    assert await mailer.flush() == 1
    assert await mailer.flush() == 0
    assert [r.recipients for r in smtp_server.inbox.received] == [
        ["groen@zutphen.example"],
        ["druk@zutphen.example"],
    ]
    assert (await stored(sessions))[gone.id].status == "failed"  # never retried


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # localhost, on purpose
async def test_credentials_in_the_url_are_used_to_log_in(
    sessions: async_sessionmaker[AsyncSession], clock: Clock, zutphen: Municipality
) -> None:
    inbox = Inbox(logins={"bot@zutphen.example": "gé heim:@/"})
    with running(inbox, auth=True) as server:
        url = f"smtp://bot%40zutphen.example:g%C3%A9%20heim%3A%40%2F@127.0.0.1:{server.port}?starttls=off"
        wrong = f"smtp://bot%40zutphen.example:fout@127.0.0.1:{server.port}?starttls=off"
        [row] = await queue_now(sessions, zutphen, clock(), question())

        assert await smtp_mailer(sessions, server, clock, zutphen, url=wrong).flush() == 0
        refused = (await stored(sessions))[row.id]
        assert refused.status == "pending"  # a login problem is the deployment's: the mail waits
        assert "535" in (refused.last_error or "") and "fout" not in (refused.last_error or "")

        clock.advance(seconds=1)
        assert await smtp_mailer(sessions, server, clock, zutphen, url=url).flush() == 1
        assert [r.login for r in inbox.received] == ["bot@zutphen.example"]


async def test_mail_as_eml_files_parses_back_and_the_shell_shows_it(
    sessions: async_sessionmaker[AsyncSession], clock: Clock, zutphen: Municipality, tmp_path: Path
) -> None:
    out = io.StringIO()
    folder = tmp_path / "mail"
    mailer = Mailer(sessions, EmlTransport(folder, echo=terminal_echo(out)), clock, sender=Sender.of(zutphen))
    [row] = await queue_now(sessions, zutphen, clock(), question())

    assert await mailer.flush() == 1

    [path] = folder.iterdir()  # no temporary file left behind
    assert path.name == f"20261125T100000Z-{row.id}.eml"
    message = BytesParser(policy=default).parsebytes(path.read_bytes())
    assert message["Subject"] == question().subject
    assert message["Message-ID"] == row.message_id
    assert message["From"].addresses[0].addr_spec == "initiatieven@zutphen.example"
    assert text_of(message) == BODY
    assert out.getvalue() == f"✉ to verkeer@zutphen.example: {question().subject}\n   {LINK}\n"


async def test_a_kick_sends_at_once_and_stop_ends_the_sweeper(
    sessions: async_sessionmaker[AsyncSession], smtp_server: SmtpServer, clock: Clock, zutphen: Municipality
) -> None:
    mailer = smtp_mailer(sessions, smtp_server, clock, zutphen)
    mailer.start(interval=3600)  # the sweep alone would wait an hour
    try:
        await queue_now(sessions, zutphen, clock(), question())
        mailer.kick()
        assert await asyncio.to_thread(smtp_server.inbox.arrived.wait, 10)
    finally:
        await mailer.stop()
    assert len(smtp_server.inbox.received) == 1


async def test_two_mailers_on_one_database_send_each_mail_once(
    engine: AsyncEngine, clock: Clock, zutphen: Municipality
) -> None:
    class Recorder:
        def __init__(self) -> None:
            self.sent: list[str] = []

        async def send(self, mail: MailRow, message: bytes, *, sender: str) -> None:
            await asyncio.sleep(0)  # let the other mailer claim meanwhile
            self.sent.append(mail.message_id)

    sessions = session_factory(engine)
    rows = await queue_now(
        sessions, zutphen, clock(), *(question(f"a{i}@zutphen.example") for i in range(20))
    )
    other = create_engine(engine.url.render_as_string(hide_password=False))
    try:
        recorder = Recorder()
        one = Mailer(sessions, recorder, clock)
        two = Mailer(session_factory(other), recorder, clock)
        counts = await asyncio.gather(one.flush(), two.flush(), one.flush(), two.flush())
    finally:
        await other.dispose()
    assert sum(counts) == 20
    assert Counter(recorder.sent) == Counter({row.message_id: 1 for row in rows})


# --- SMTP_URL ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # STARTTLS when the server offers it, on the protocol's port
        ("smtp://mail.zutphen.nl", SmtpTarget("mail.zutphen.nl", 25)),
        # submission port, credentials URL-decoded, STARTTLS or nothing
        (
            "smtp://bot%40zutphen.nl:p%40ss%2Fw%3Ard@mail.zutphen.nl:587?starttls=required",
            SmtpTarget("mail.zutphen.nl", 587, "bot@zutphen.nl", "p@ss/w:rd", starttls="required"),
        ),
        # a local relay without TLS
        ("smtp://localhost:1025?starttls=off", SmtpTarget("localhost", 1025, starttls="off")),
        # TLS from the first byte
        ("smtps://u:pw@mail.zutphen.nl", SmtpTarget("mail.zutphen.nl", 465, "u", "pw", implicit_tls=True)),
        ("SMTPS://mail.zutphen.nl:2465/", SmtpTarget("mail.zutphen.nl", 2465, implicit_tls=True)),
    ],
)
def test_smtp_url_is_read(url: str, expected: SmtpTarget) -> None:
    target = SmtpTarget.parse(url)
    assert target == expected
    assert target.password == expected.password


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://u:geheim@mail.zutphen.nl", "must start with smtp://"),
        ("mail.zutphen.nl:25", "must start with smtp://"),
        ("smtp://", "names no server"),
        ("smtp://u:geheim@mail.zutphen.nl:99999", "port must be a number"),
        ("smtp://u:geheim@mail.zutphen.nl:poort", "port must be a number"),
        ("smtp://:geheim@mail.zutphen.nl", "password but no user name"),
        ("smtp://u:geheim@mail.zutphen.nl?starttls=yes", "'required' or 'off'"),
        ("smtp://u:geheim@mail.zutphen.nl?tls=1", "unknown option 'tls'"),
        ("smtps://u:geheim@mail.zutphen.nl?starttls=off", "smtps:// is TLS already"),
        ("smtp://u:geheim@mail.zutphen.nl/inbox", "has a path"),
    ],
)
def test_a_nonsense_smtp_url_is_refused_without_showing_the_password(url: str, says: str) -> None:
    with pytest.raises(SmtpUrlError) as refused:
        SmtpTarget.parse(url)
    assert says in str(refused.value)
    assert "geheim" not in str(refused.value)
    with pytest.raises(ConfigError, match="SMTP_URL") as config:
        Settings.from_env({"SMTP_URL": url})
    assert "geheim" not in str(config.value)


def test_the_smtp_target_is_described_without_its_password() -> None:
    target = SmtpTarget.parse("smtp://bot:geheim@mail.zutphen.nl:587")
    assert target.describe() == "smtp://bot@mail.zutphen.nl:587 (STARTTLS if offered)"
    assert "geheim" not in repr(target)


def test_mail_goes_to_smtp_when_configured_else_to_eml_files_beside_the_database(tmp_path: Path) -> None:
    smtp = mail_transport(Settings(smtp_url="smtps://mail.zutphen.nl"))
    assert isinstance(smtp, SmtpTransport) and smtp.target.implicit_tls
    eml = mail_transport(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/bot.db"))
    assert isinstance(eml, EmlTransport) and eml.folder == tmp_path / "mail"
    chosen = mail_transport(Settings(mail_dir=tmp_path / "post"))
    assert isinstance(chosen, EmlTransport) and chosen.folder == tmp_path / "post"
    assert default_mail_dir("postgresql+asyncpg://bot@db/bot") == Path("mail").resolve()
    assert default_mail_dir("sqlite+aiosqlite://") == Path("mail").resolve()


async def test_an_unwritable_mail_folder_keeps_the_mail_for_a_retry(
    sessions: async_sessionmaker[AsyncSession], clock: Clock, zutphen: Municipality, tmp_path: Path
) -> None:
    blocker = tmp_path / "mail"
    blocker.write_text("a file where the folder should be")
    [row] = await queue_now(sessions, zutphen, clock(), question())
    assert await Mailer(sessions, EmlTransport(blocker), clock).flush() == 0
    kept = (await stored(sessions))[row.id]
    assert kept.status == "pending" and kept.attempts == 1


async def test_a_busy_recipient_is_tried_once_per_sweep_even_at_start_up(
    sessions: async_sessionmaker[AsyncSession], smtp_server: SmtpServer, clock: Clock, zutphen: Municipality
) -> None:
    smtp_server.inbox.busy["druk@zutphen.example"] = 5
    busy, fine = await queue_now(
        sessions, zutphen, clock(), question("druk@zutphen.example"), question("groen@zutphen.example")
    )
    mailer = smtp_mailer(sessions, smtp_server, clock, zutphen)
    # Taking leased mail back looks a lease ahead, where the busy mail's retry already is.
    assert await mailer.flush(take_leased=True) == 1
    rows = await stored(sessions)
    assert (rows[busy.id].status, rows[busy.id].attempts) == ("pending", 1)
    assert rows[busy.id].not_before == T0 + timedelta(seconds=1)  # not held for a lease
    assert rows[fine.id].status == "sent"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # smtps: TLS all the way
@pytest.mark.parametrize("implicit_tls", [False, True], ids=["starttls", "smtps"])
async def test_mail_goes_over_tls_and_logs_in_only_then(
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    zutphen: Municipality,
    tmp_path: Path,
    implicit_tls: bool,
) -> None:
    server_tls, client_tls = self_signed(tmp_path)
    inbox = Inbox(logins={"bot": "geheim"})
    with running(inbox, auth=True, tls=server_tls, implicit_tls=implicit_tls) as server:
        scheme = "smtps" if implicit_tls else "smtp"
        target = SmtpTarget.parse(f"{scheme}://bot:geheim@127.0.0.1:{server.port}")
        mailer = Mailer(sessions, SmtpTransport(target, tls_context=client_tls, timeout=5), clock)
        [row] = await queue_now(sessions, zutphen, clock(), question())
        assert await mailer.flush() == 1
    assert [(r.login, r.message["Message-ID"]) for r in inbox.received] == [("bot", row.message_id)]


async def test_a_server_that_demands_starttls_gets_no_mail_without_it(
    sessions: async_sessionmaker[AsyncSession], clock: Clock, zutphen: Municipality, tmp_path: Path
) -> None:
    server_tls, _ = self_signed(tmp_path)
    with running(tls=server_tls) as server:
        target = SmtpTarget.parse(f"smtp://127.0.0.1:{server.port}?starttls=off")
        mailer = Mailer(sessions, SmtpTransport(target, timeout=5), clock)
        [row] = await queue_now(sessions, zutphen, clock(), question())
        assert await mailer.flush() == 0
        assert server.inbox.received == []
    waiting = (await stored(sessions))[row.id]
    assert waiting.status == "pending" and "530" in (waiting.last_error or "")
