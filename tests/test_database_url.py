"""A wrong DATABASE_URL gets one line on stderr that says what is wrong and what a right one looks like."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from bot.__main__ import main
from storage.database_url import EXAMPLES, DatabaseUrlError, async_url

COMMANDS = [["run"], ["webhook"], ["shell"], ["staff", "list"], ["db", "current"], ["watchdog", "--once"]]


@pytest.fixture(autouse=True)
def keep_logging() -> Iterator[None]:
    """main() sets up logging on stderr; put the test run's handlers back afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_main(
    argv: list[str], url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:TEST-token")
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "test-secret")
    code = main(argv)
    return code, capsys.readouterr().err


def assert_one_clear_line(err: str, *expected: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("DATABASE_URL: ") and EXAMPLES in lines[0], lines[0]
    for part in expected:
        assert part in lines[0], lines[0]


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda argv: " ".join(argv))
@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql+asyncpg://bot@127.0.0.1:{port}/bot", "cannot reach PostgreSQL at 127.0.0.1:{port}"),
        ("sqlite+aiosqlite:///{tmp}/missing/bot.db", "/missing for the SQLite file bot.db does not exist"),
        ("postgresql+psycopg2://bot@localhost/bot", "the driver 'psycopg2' is not async"),
        ("mysql+aiomysql://bot@localhost/bot", "'mysql' databases are not supported"),
        ("not a url", "not a database URL"),
    ],
    ids=["unreachable-port", "missing-directory", "sync-driver", "other-database", "garbage"],
)
def test_a_wrong_database_url_is_one_line_and_exit_2_in_every_command(
    argv: list[str],
    url: str,
    says: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = free_port()
    code, err = run_main(argv, url.format(port=port, tmp=tmp_path), monkeypatch, capsys)
    assert code == 2
    assert_one_clear_line(err, says.format(port=port, tmp=tmp_path))


def test_a_missing_postgresql_database_is_named(
    postgres_admin_url: URL, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = postgres_admin_url.set(database=f"missing_{uuid.uuid4().hex[:8]}")
    code, err = run_main(["shell"], missing.render_as_string(hide_password=False), monkeypatch, capsys)
    assert code == 2
    assert_one_clear_line(err, f"the database '{missing.database}' does not exist")


def test_a_password_is_never_printed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run_main(
        ["staff", "list"], "postgresql+psycopg2://bot:hunter2@localhost/bot", monkeypatch, capsys
    )
    assert code == 2 and "hunter2" not in err


@pytest.mark.parametrize(
    ("raw", "read_as"),
    [
        ("postgres://bot:pw@db.example:5432/bot", "postgresql+asyncpg://bot:pw@db.example:5432/bot"),
        ("postgresql://bot@db.example/bot", "postgresql+asyncpg://bot@db.example/bot"),
        ("sqlite:///data/bot.db", "sqlite+aiosqlite:///data/bot.db"),
        ("postgresql+asyncpg://bot@db.example/bot", "postgresql+asyncpg://bot@db.example/bot"),
        ("sqlite+aiosqlite:///bot.db", "sqlite+aiosqlite:///bot.db"),
    ],
)
def test_platform_urls_without_a_driver_are_read_with_the_async_one(raw: str, read_as: str) -> None:
    url, note = async_url(raw)
    assert url == read_as
    assert (note is None) == (raw == read_as)
    assert note is None or "pw" not in note


def test_postgres_url_from_a_platform_works_with_a_note(
    postgres_admin_url: URL, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    platform_style = postgres_admin_url.set(drivername="postgres").render_as_string(hide_password=False)
    code, err = run_main(["db", "current"], platform_style, monkeypatch, capsys)
    assert code == 0, err
    assert "is read as postgresql+asyncpg://" in err


def test_sqlite_url_without_a_driver_works_with_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run_main(["db", "upgrade"], f"sqlite:///{tmp_path / 'bot.db'}", monkeypatch, capsys)
    assert code == 0, err
    assert "is read as sqlite+aiosqlite://" in err and (tmp_path / "bot.db").exists()


def test_a_command_that_stops_early_leaves_no_sqlite_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    assert main(["run"]) == 2  # no token
    assert "TELEGRAM_BOT_TOKEN" in capsys.readouterr().err
    assert not (tmp_path / "bot.db").exists()


def test_the_real_command_line_prints_no_traceback() -> None:
    env = {
        **os.environ,
        "DATABASE_URL": f"postgresql+asyncpg://bot@127.0.0.1:{free_port()}/bot",
        "TELEGRAM_BOT_TOKEN": "123456:TEST-token",
    }
    done = subprocess.run(
        [sys.executable, "-m", "bot", "run"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert_one_clear_line(done.stderr, "cannot reach PostgreSQL")


def test_the_error_is_a_value_the_caller_can_print() -> None:
    with pytest.raises(DatabaseUrlError) as caught:
        async_url("postgresql+psycopg2://x@y/z")
    assert caught.value.advice().startswith("DATABASE_URL: postgresql+psycopg2://x@y/z")
