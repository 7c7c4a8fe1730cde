"""Tortoise start-up and migrations (Tortoise-native migrations, module ``adapters.db.migrations``)."""

from __future__ import annotations

import logging
from typing import Any

from tortoise import Tortoise
from tortoise.backends.base.executor import EXECUTOR_CACHE
from tortoise.migrations.api import migrate as run_migrations

from aigc_admin.settings import Settings

MODELS_MODULE = "aigc_admin.adapters.db.models"
MIGRATIONS_MODULE = "aigc_admin.adapters.db.migrations"
log = logging.getLogger(__name__)


def tortoise_config(settings: Settings, *, db_url: str | None = None) -> dict[str, Any]:
    url = db_url or settings.db_url
    if url.startswith("sqlite://") and ":memory:" not in url:
        from pathlib import Path

        Path(url.removeprefix("sqlite://")).parent.mkdir(parents=True, exist_ok=True)
    return {
        "connections": {"default": url},
        "apps": {
            "models": {
                "models": [MODELS_MODULE],
                "default_connection": "default",
                "migrations": MIGRATIONS_MODULE,
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


async def init_db(settings: Settings, *, db_url: str | None = None) -> None:
    """Open Tortoise for this process. The context is also the global fallback so that request tasks
    (which do not inherit the lifespan task's context) see it; ``close_db`` clears it again."""
    await Tortoise.init(config=tortoise_config(settings, db_url=db_url), _enable_global_fallback=True)
    if settings.db_mysql_metrics:
        logging.getLogger("tortoise.db_client").setLevel(logging.DEBUG)


async def close_db() -> None:
    # Forget the models' bindings too, so that a later init in this process (tests switch between
    # SQLite and MariaDB) does not reuse the previous backend's query builders.
    await Tortoise._reset_apps()
    await Tortoise.close_connections()
    EXECUTOR_CACHE.clear()  # insert/update SQL cached per connection name, in the dialect of the old backend


async def migrate(settings: Settings, *, db_url: str | None = None) -> None:
    """Apply every pending migration (idempotent)."""
    await run_migrations(config=tortoise_config(settings, db_url=db_url))
    await Tortoise.close_connections()
