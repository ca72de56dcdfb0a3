"""Schema migrations with alembic, configured in code (there is no alembic.ini).

The application calls :func:`upgrade` on its own engine at start-up. To add a revision, change
``storage/models.py`` and let alembic compare it with a database that is at head::

    from alembic import command
    from storage.migrate import alembic_config

    cfg = alembic_config("sqlite+aiosqlite:///dev.db")
    command.upgrade(cfg, "head")
    command.revision(cfg, message="add broker table", autogenerate=True, rev_id="0002")

This writes ``storage/migrations/versions/0002_add_broker_table.py``. Review it, name any new index or
constraint explicitly, and check it on both SQLite and PostgreSQL (``tests/test_migrations.py``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Arbitrary constant key for pg_advisory_xact_lock, so workers starting together migrate one at a time.
_PG_MIGRATION_LOCK = 0x1E17_1A7F


def alembic_config(url: str | None = None) -> Config:
    """Build the alembic configuration; with ``url`` set, env.py connects to that async URL itself."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    cfg.set_main_option("path_separator", "os")
    if importlib.util.find_spec("ruff") is not None:
        # New revision files come out ruff-clean (unused imports dropped, formatted).
        cfg.set_section_option("post_write_hooks", "hooks", "ruff_fix ruff_format")
        for hook, options in (
            ("ruff_fix", "check --fix --quiet REVISION_SCRIPT_FILENAME"),
            ("ruff_format", "format --quiet REVISION_SCRIPT_FILENAME"),
        ):
            cfg.set_section_option("post_write_hooks", f"{hook}.type", "module")
            cfg.set_section_option("post_write_hooks", f"{hook}.module", "ruff")
            cfg.set_section_option("post_write_hooks", f"{hook}.options", options)
    if url is not None:
        # The config is a ConfigParser, which treats "%" as interpolation.
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Migrate the database behind ``engine`` to ``revision`` in one transaction."""
    cfg = alembic_config()

    def _run(connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(_run)


async def current_revision(engine: AsyncEngine) -> str | None:
    """Return the revision the database is at, or None when it has never been migrated."""

    def _current(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(_current)


def head_revision() -> str:
    """Return the newest revision in ``storage/migrations/versions``."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("storage/migrations/versions holds no revisions")
    return head


async def is_up_to_date(engine: AsyncEngine) -> bool:
    """Tell whether the database is at the head revision."""
    return await current_revision(engine) == head_revision()
