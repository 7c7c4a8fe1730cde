"""Developer tool: write a migration for model changes (Tortoise-native autodetector)."""

from __future__ import annotations

from tortoise.context import TortoiseContext
from tortoise.migrations.autodetector import MigrationAutodetector

from aigc_admin.adapters.db.database import tortoise_config
from aigc_admin.settings import load_settings


async def pending_changes() -> list:
    """Migration writers for model changes not yet captured in a migration (empty when in sync)."""
    config = tortoise_config(load_settings(environ={}), db_url="sqlite://:memory:")
    async with TortoiseContext() as ctx:
        await ctx.init(config=config)
        assert ctx.apps is not None
        return list(await MigrationAutodetector(ctx.apps, config["apps"]).changes())


async def make_migrations(name: str | None = None) -> list[str]:
    written = []
    for writer in await pending_changes():
        if name:
            number = writer.name.split("_", 1)[0]
            writer.name = f"{number}_{name}"
        written.append(str(writer.write()))
    return written
