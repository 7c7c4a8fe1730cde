"""One raw, pipelined Redis connection for a hot path's script runs.

Why: redis-py's asyncio client spends ~150 µs of CPU per command (connection pool, locks, its own command
packing) — as much as a whole proxied request. The usage journal runs one script per event-loop tick on every
gateway answer's path, so it talks to Redis through this: ``hiredis.pack_command`` builds the command,
``hiredis.Reader`` parses the replies, commands are written back to back on one connection and replies are
matched to calls in order (~15 µs per call).

Only what that needs: ``EVALSHA`` of scripts given at construction (loaded with ``SCRIPT LOAD`` on every new
connection, before any call), ``redis://``/``rediss://``/``unix://`` URLs with a password, user and database. The
connection is opened by the first call and again by the first call after it was lost; a lost connection fails
every call waiting on it (``ConnectionError``), a reply that is an error fails its call (``RedisReplyError``), and a
call gets no more than ``timeout`` seconds. A ``NOSCRIPT`` reply (the scripts were flushed) closes the connection,
so the next call reconnects and loads them again.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import ssl
from typing import Any
from urllib.parse import unquote, urlsplit

import hiredis


class RedisReplyError(Exception):
    """Redis answered the call with an error."""


def script_sha(script: str) -> str:
    return hashlib.sha1(script.encode()).hexdigest()  # noqa: S324 - Redis names scripts by their SHA-1


def _expire(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError("Redis did not answer in time"))


class _Protocol(asyncio.Protocol):
    __slots__ = ("closed", "reader", "transport", "waiters")

    def __init__(self) -> None:
        self.reader = hiredis.Reader()
        self.waiters: collections.deque[asyncio.Future[Any]] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            if not self.waiters:  # a reply nobody asked for: this connection cannot be trusted
                self.close()
                return
            waiter = self.waiters.popleft()
            if waiter.done():  # its caller gave up (timeout): the reply is dropped, the order is kept
                continue
            if isinstance(reply, hiredis.ReplyError):
                waiter.set_exception(RedisReplyError(str(reply)))
                if str(reply).startswith("NOSCRIPT"):
                    self.close()
            else:
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        error = ConnectionError(f"the Redis connection was lost ({exc or 'closed'})")
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class RedisPipe:
    def __init__(self, url: str, scripts: list[str], *, timeout: float = 2.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"unsupported Redis URL scheme {parts.scheme!r}")
        self._scheme = parts.scheme
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 6379
        self._path = parts.path
        self._user, self._password = unquote(parts.username or ""), unquote(parts.password or "")
        database = parts.path.strip("/") if parts.scheme != "unix" else ""
        if parts.scheme == "unix":
            query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
            database = query.get("db", "")
        self._db = int(database or 0)
        self._scripts = list(scripts)
        self._timeout = timeout
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Lock | None = None

    def call(self, sha: str, keys: list[str], args: list[Any]) -> asyncio.Future[Any]:
        """Run a script given at construction (``EVALSHA``): a future of its reply (hiredis's types: bytes, int,
        list), without a coroutine or task when connected (the hot path). It fails with TimeoutError after
        ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        command = hiredis.pack_command(("EVALSHA", sha, len(keys), *keys, *args))
        protocol = self._protocol
        if protocol is None or protocol.closed:
            return asyncio.ensure_future(self._connected_call(command))
        waiter = loop.create_future()
        protocol.waiters.append(waiter)
        assert protocol.transport is not None
        protocol.transport.write(command)
        timer = loop.call_later(self._timeout, _expire, waiter)
        waiter.add_done_callback(lambda _: timer.cancel())
        return waiter

    async def _connected_call(self, command: bytes) -> Any:
        protocol = await self._connect()
        waiter = asyncio.get_running_loop().create_future()
        protocol.waiters.append(waiter)
        assert protocol.transport is not None
        protocol.transport.write(command)
        async with asyncio.timeout(self._timeout):
            return await waiter

    async def _connect(self) -> _Protocol:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._protocol is not None and not self._protocol.closed:
                return self._protocol
            loop = asyncio.get_running_loop()
            async with asyncio.timeout(self._timeout):
                if self._scheme == "unix":
                    _, protocol = await loop.create_unix_connection(_Protocol, self._path)
                else:
                    context = ssl.create_default_context() if self._scheme == "rediss" else None
                    _, protocol = await loop.create_connection(_Protocol, self._host, self._port, ssl=context)
                setup: list[tuple[Any, ...]] = []
                if self._password:
                    setup.append(("AUTH", self._user, self._password) if self._user else ("AUTH", self._password))
                if self._db:
                    setup.append(("SELECT", self._db))
                setup += [("SCRIPT", "LOAD", script) for script in self._scripts]
                waiters = []
                for command in setup:
                    waiter = loop.create_future()
                    protocol.waiters.append(waiter)
                    waiters.append(waiter)
                    assert protocol.transport is not None
                    protocol.transport.write(hiredis.pack_command(command))
                try:
                    await asyncio.gather(*waiters)
                except BaseException:
                    protocol.close()
                    raise
            self._protocol = protocol
            return protocol

    def close(self) -> None:
        if self._protocol is not None:
            self._protocol.close()
            self._protocol = None
