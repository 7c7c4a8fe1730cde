"""Database wiring: Tortoise configuration, start-up, migrations."""

from aigc_admin.adapters.db.database import close_db, init_db, migrate, tortoise_config

__all__ = ["close_db", "init_db", "migrate", "tortoise_config"]
