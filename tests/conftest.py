"""Shared fixtures: real Redis, MariaDB (throwaway database) and SQLite; the API app in-process."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support.mariadb import MariaDB, create_database, drop_database, ensure_mariadb
from tests.support.redis_server import RedisServer, start_redis

# Never let a developer's AIGC_* settings leak into the tests (the cache locations of prepared tools may stay).
KEEP = {"AIGC_ENGINE_VENV", "AIGC_TINY_MODEL", "AIGC_CACHE_DIR", "AIGC_KUBE_APISERVER"}
for _k in [k for k in os.environ if k.startswith("AIGC_") and k not in KEEP]:
    del os.environ[_k]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDB]:
    db = ensure_mariadb()
    yield db
    db.stop()


@pytest.fixture(scope="module")
def mysql_database(mariadb: MariaDB) -> Iterator[str]:
    name = create_database(mariadb)
    yield mariadb.url(name)
    drop_database(mariadb, name)


@pytest.fixture(params=["sqlite", "mysql"], scope="module")
def db_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
async def api(db_backend: str, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory,
              request: pytest.FixtureRequest) -> AsyncIterator[object]:
    """The API app with its lifespan running, on SQLite or a throwaway MariaDB database (with the settings a test
    module names in ``API_SETTINGS``)."""
    from tests.support.api import ApiHarness

    extra: dict[str, object] = dict(getattr(request.module, "API_SETTINGS", {}))
    if db_backend == "mysql":
        url = request.getfixturevalue("mysql_database")
        extra.update(mysql_flags(url))
    storage: Path = tmp_path_factory.mktemp(f"storage-{db_backend}")
    async with ApiHarness.running(storage=storage, redis_url=redis_server.url, extra=extra) as harness:
        yield harness


def mysql_flags(url: str) -> dict[str, object]:
    """Settings flags for a Tortoise mysql:// URL."""
    from urllib.parse import unquote, urlparse

    u = urlparse(url)
    return {"db.drive": "mysql", "db.mysql.host": u.hostname, "db.mysql.port": u.port or 3306,
            "db.mysql.user": unquote(u.username or ""), "db.mysql.password": unquote(u.password or ""),
            "db.mysql.database": u.path.lstrip("/")}
