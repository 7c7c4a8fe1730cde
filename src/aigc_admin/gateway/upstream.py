"""A lean HTTP/1.1 client for the gateway's calls to external upstreams (the hot path of every request
to an external model).

Why not httpx: on the gateway's hot path httpx/httpcore took about half of the process's CPU (request
models, header normalisation, pool bookkeeping that grows with concurrency; see docs/performance.md).
This client does only what a proxy to an OpenAI-compatible upstream needs: ``POST``/``GET`` with a body
of bytes, keep-alive connections pooled per origin (plain TCP or TLS), responses parsed by ``httptools``
(llhttp, the parser uvicorn uses) with Content-Length, chunked or until-close bodies, and streamed bodies
handed over chunk by chunk as they arrive (with back-pressure).

Failures are ``UpstreamUnavailable`` (could not connect, the connection broke or timed out before the
whole response arrived). A pooled connection that the upstream closed while it was idle is detected
before reuse; a request whose reused connection breaks before a single response byte arrived is retried
once on a fresh connection (nothing was answered, so the upstream did not process it twice unless it
crashed mid-request).

Proxies: when ``HTTP(S)_PROXY`` applies to an origin (``urllib.request.getproxies`` / ``no_proxy``), the
request goes through httpx instead, which honours them; the gateway then pays httpx's cost for that origin.
"""

from __future__ import annotations

import asyncio
import ssl
import urllib.request
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httptools  # type: ignore[import-untyped]
import httpx

_HIGH_WATER = 1 << 20  # pause reading a streamed body once this much waits for the consumer
_MAX_IDLE_PER_ORIGIN = 256


class UpstreamUnavailable(ConnectionError):
    """The upstream could not be reached, or the connection failed before the response was complete."""


class UpstreamTimeout(UpstreamUnavailable):
    """The upstream sent nothing for the timeout (checked once per timeout, so between one and two
    timeouts of silence): a slow first byte or a stalled stream; a stream that keeps sending is not cut."""


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int

    @property
    def host_header(self) -> bytes:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]".encode() if ":" in self.host else self.host.encode("idna")  # an IPv6 literal
        return host if self.port == default else host + b":%d" % self.port


def _split(url: str) -> tuple[Origin, bytes]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UpstreamUnavailable(f"not an http(s) URL: {parts.scheme}://{parts.hostname or ''}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Origin(parts.scheme, parts.hostname, port), target.encode()


def _header_bytes(headers: dict[str, str]) -> bytes:
    out = bytearray()
    for name, value in headers.items():
        if any(c in value or c in name for c in "\r\n\0"):
            raise ValueError(f"header {name!r} holds a line break")  # no header injection from stored values
        out += f"{name}: {value}\r\n".encode("latin-1")
    return bytes(out)


class _Connection(asyncio.Protocol):
    """One keep-alive connection; at most one request at a time."""

    __slots__ = ("closed", "got_bytes", "origin", "parser", "response", "transport")

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.parser: Any = None
        self.response: UpstreamResponse | None = None
        self.closed = False
        self.got_bytes = False  # any byte of the current response

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        response = self.response
        if response is None:  # bytes nobody asked for: this connection is not reusable
            self.abort()
            return
        self.got_bytes = True
        response._active = True
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as e:
            response._fail(UpstreamUnavailable(f"the upstream sent malformed HTTP: {e}"))
            self.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        response = self.response
        if response is not None and not response._complete:
            if response._headers_done and response._until_close:
                response._finish()  # a body delimited by the end of the connection
            else:
                response._fail(UpstreamUnavailable("the upstream closed the connection before answering fully"))

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    # --- httptools callbacks (current response) ---------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.response is not None
        self.response.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        response = self.response
        assert response is not None
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:  # an interim answer (100 Continue, 103 Early Hints): skip it
            response.headers.clear()
            return
        response.status = status
        names = {k for k, _ in response.headers}
        response._until_close = b"content-length" not in names and b"transfer-encoding" not in names
        response._headers_done = True
        response._wake()

    def on_body(self, body: bytes) -> None:
        assert self.response is not None
        self.response._feed(body)

    def on_message_complete(self) -> None:
        response = self.response
        assert response is not None
        if not response._headers_done:  # the end of an interim answer: the final one follows
            return
        response._keep_alive = self.parser.should_keep_alive()
        response._finish()


@dataclass(eq=False, slots=True)
class UpstreamResponse:
    """Status and headers as soon as they arrive; the body with ``read()`` or ``chunks()``. Always
    ``release()`` it (``read()`` does): the connection goes back to the pool only when the body was read."""

    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    _conn: _Connection | None = None
    _client: UpstreamClient | None = None
    _chunks: deque[bytes] = field(default_factory=deque)
    _buffered: int = 0
    _headers_done: bool = False
    _complete: bool = False
    _until_close: bool = False
    _keep_alive: bool = False
    _error: Exception | None = None
    _waiter: asyncio.Future[None] | None = None
    _timer: asyncio.TimerHandle | None = None
    _paused: bool = False
    _active: bool = False  # bytes arrived since the timer last looked
    _idle_timeout: float = 0.0
    _pump: asyncio.Task[None] | None = None  # the httpx fallback's reader

    # --- the connection's side ----------------------------------------------------------------------
    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _feed(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > _HIGH_WATER and not self._paused and self._conn and self._conn.transport:
            self._paused = True
            self._conn.transport.pause_reading()
        self._wake()

    def _finish(self) -> None:
        self._complete = True
        self._wake()

    def _fail(self, error: Exception) -> None:
        if self._error is None and not self._complete:
            self._error = error
        self._wake()

    # --- the caller's side --------------------------------------------------------------------------
    async def _wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def _headers(self) -> None:
        while not self._headers_done and self._error is None:
            await self._wait()
        if not self._headers_done:
            assert self._error is not None
            raise self._error

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives (chunked encoding already removed): each piece is all that arrived since
        the last one."""
        try:
            while True:
                while self._chunks:
                    # whatever has arrived goes out as one piece (one write downstream, not one per chunk)
                    chunk = self._chunks.popleft() if len(self._chunks) == 1 else b"".join(self._chunks)
                    self._chunks.clear()
                    self._buffered = 0
                    if self._paused and self._conn and self._conn.transport:
                        self._paused = False
                        self._conn.transport.resume_reading()
                    yield chunk
                if self._error is not None:
                    raise self._error
                if self._complete:
                    return
                await self._wait()
        finally:
            self.release()

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])

    def release(self) -> None:
        """Give the connection back (kept alive only if the whole body was read), or drop it."""
        conn, self._conn = self._conn, None
        if self._pump is not None and not self._pump.done():
            self._pump.cancel()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if conn is None:
            return
        conn.response = None
        reusable = self._complete and self._keep_alive and self._error is None and not conn.closed
        if reusable and self._client is not None:
            self._client._put(conn)
        else:
            conn.abort()

    def _timed_out(self) -> None:
        """The timeout is one of inactivity: a long stream that keeps sending is not cut off."""
        self._timer = None
        if self._active and not self._complete and self._conn is not None:
            self._active = False
            self._timer = asyncio.get_running_loop().call_later(self._idle_timeout, self._timed_out)
            return
        self._fail(UpstreamTimeout("the upstream did not answer in time"))
        if self._conn is not None:
            self._conn.abort()


class UpstreamClient:
    """Keep-alive connections per origin; ``request`` returns once the status line and headers arrived."""

    def __init__(self, *, connect_timeout: float = 3.0, timeout: float = 600.0,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self._connect_timeout = connect_timeout
        self._timeout = timeout
        self._ssl = ssl_context
        self._idle: dict[Origin, list[_Connection]] = {}
        self._proxied: dict[Origin, bool] = {}
        self._heads: dict[tuple[Any, ...], tuple[Origin, bytes]] = {}  # request line and headers, per call shape
        self._fallback: httpx.AsyncClient | None = None
        self._closed = False

    def _put(self, conn: _Connection) -> None:
        idle = self._idle.setdefault(conn.origin, [])
        if self._closed or len(idle) >= _MAX_IDLE_PER_ORIGIN:
            conn.abort()
        else:
            idle.append(conn)

    def _take(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()  # the most recently used: the least likely to have been closed by the upstream
            if not conn.closed and conn.transport is not None and not conn.transport.is_closing():
                return conn
        return None

    async def _connect(self, origin: Origin) -> _Connection:
        loop = asyncio.get_running_loop()
        context: ssl.SSLContext | None = None
        if origin.scheme == "https":
            context = self._ssl or ssl.create_default_context()
            self._ssl = context
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, conn = await loop.create_connection(lambda: _Connection(origin), origin.host, origin.port,
                                                       ssl=context, server_hostname=origin.host if context else None)
        except (OSError, TimeoutError, ssl.SSLError) as e:
            raise UpstreamUnavailable(f"cannot connect to {origin.host}:{origin.port}: "
                                      f"{type(e).__name__}: {e}") from None
        return conn

    def _uses_proxy(self, origin: Origin) -> bool:
        proxied = self._proxied.get(origin)
        if proxied is None:
            proxies = urllib.request.getproxies()
            proxied = bool(proxies.get(origin.scheme) or proxies.get("all")) and not urllib.request.proxy_bypass(
                origin.host)
            self._proxied[origin] = proxied
        return proxied

    async def request(self, method: str, url: str, *, body: bytes = b"",
                      headers: dict[str, str] | None = None) -> UpstreamResponse:
        if self._closed:
            raise UpstreamUnavailable("the gateway is shutting down")
        key = (method, url, *headers.items()) if headers else (method, url)
        cached = self._heads.get(key)
        if cached is None:
            origin, target = _split(url)
            cached = origin, (method.encode() + b" " + target + b" HTTP/1.1\r\nHost: " + origin.host_header
                              + b"\r\n" + _header_bytes(headers or {}))
            if len(self._heads) >= 1024:
                self._heads.clear()
            self._heads[key] = cached
        origin, prefix = cached
        if self._uses_proxy(origin):
            return await self._via_httpx(method, url, body, headers or {})
        head = prefix + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        for attempt in (0, 1):
            conn = self._take(origin) if attempt == 0 else None
            reused = conn is not None
            if conn is None:
                conn = await self._connect(origin)
            response = UpstreamResponse(_conn=conn, _client=self, _idle_timeout=self._timeout)
            conn.response, conn.got_bytes = response, False
            conn.parser = httptools.HttpResponseParser(conn)
            response._timer = asyncio.get_running_loop().call_later(self._timeout, response._timed_out)
            assert conn.transport is not None
            conn.transport.write(head + body if len(body) < 65536 else head)
            if len(body) >= 65536:
                conn.transport.write(body)
            try:
                await response._headers()
            except UpstreamTimeout:
                response.release()
                raise
            except UpstreamUnavailable:
                response.release()
                if reused and not conn.got_bytes and attempt == 0:
                    continue  # the upstream had closed the idle connection: once more on a fresh one
                raise
            except BaseException:  # cancelled while waiting: drop the connection (the upstream sees it go)
                response.release()
                raise
            return response
        raise AssertionError("unreachable")

    async def _via_httpx(self, method: str, url: str, body: bytes, headers: dict[str, str]) -> UpstreamResponse:
        if self._fallback is None:
            self._fallback = httpx.AsyncClient(timeout=httpx.Timeout(self._timeout, connect=self._connect_timeout))
        request = self._fallback.build_request(method, url, content=body, headers=headers)
        try:
            r = await self._fallback.send(request, stream=True)
        except httpx.HTTPError as e:
            raise UpstreamUnavailable(f"{type(e).__name__}: {e}") from None
        response = UpstreamResponse(status=r.status_code, headers=[(k.lower(), v) for k, v in r.headers.raw],
                                    _headers_done=True)

        async def pump() -> None:
            try:
                async for chunk in r.aiter_bytes():
                    response._feed(chunk)
                response._finish()
            except httpx.HTTPError as e:
                response._fail(UpstreamUnavailable(f"{type(e).__name__}: {e}"))
            finally:
                await r.aclose()

        response._pump = asyncio.get_running_loop().create_task(pump())
        return response

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn.abort()
        self._idle.clear()
        if self._fallback is not None:
            await self._fallback.aclose()
