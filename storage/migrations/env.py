"""Alembic environment: runs migrations on a shared connection or on an async URL.

``storage.migrate.upgrade`` passes its open connection in ``config.attributes["connection"]``; the
developer path (``alembic_config(url)`` plus ``alembic.command``) sets ``sqlalchemy.url`` instead.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import JSON, Connection
from sqlalchemy.dialects.postgresql import JSONB

from storage.db import create_engine
from storage.models import Base, UTCDateTime

config = context.config
target_metadata = Base.metadata


def _render_item(type_: str, obj: object, autogen_context: AutogenContext) -> str | Literal[False]:
    """Render our column types as plain SQLAlchemy types, so revisions don't import the models."""
    if type_ != "type":
        return False
    if isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if isinstance(obj, JSON) and isinstance(getattr(obj, "_variant_mapping", {}).get("postgresql"), JSONB):
        # Alembic's own rendering of this variant leaves JSONB's astext_type unimported.
        autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
        return 'sa.JSON().with_variant(postgresql.JSONB(), "postgresql")'
    return False


def _configure(**kw: Any) -> None:
    context.configure(target_metadata=target_metadata, compare_type=True, render_item=_render_item, **kw)


def run_migrations_offline() -> None:
    """Write the migration SQL for ``sqlalchemy.url``'s dialect instead of running it."""
    _configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection: Connection) -> None:
    _configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


async def _run_on_url(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run_on)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    """Run the migrations on the caller's connection, or on a new engine for ``sqlalchemy.url``."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set config.attributes['connection'] or the sqlalchemy.url option")
    asyncio.run(_run_on_url(url))


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
