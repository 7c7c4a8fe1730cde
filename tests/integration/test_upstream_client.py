"""The gateway's lean HTTP/1.1 client (``aigc_admin.gateway.upstream``) against real local servers.

Every upstream here is a raw ``asyncio.start_server`` on 127.0.0.1 (or ::1) that writes exact bytes, so the
framing (Content-Length, chunked, until-close, malformed, truncated) is under the test's control; the servers
count the connections they accept, record the requests they read and notice when the client drops a connection.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import ipaddress
import random
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from aigc_admin.adapters.net import free_port
from aigc_admin.gateway.upstream import UpstreamClient, UpstreamResponse, UpstreamTimeout, UpstreamUnavailable

# --- raw servers ----------------------------------------------------------------------------------------------


@dataclass
class Request:
    """One request as a server read it off the wire."""

    conn: int
    line: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: bytes) -> list[bytes]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


@dataclass
class Peer:
    """The server's side of one accepted connection."""

    server: RawServer
    index: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    eof: asyncio.Event = field(default_factory=asyncio.Event)  # the client closed or reset the connection

    async def request(self) -> Request | None:
        """The next request on this connection (recorded by the server), or None when the client closed it."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            self.eof.set()
            return None
        line, *lines = head[:-4].split(b"\r\n")
        headers = [(k.strip(), v.strip()) for k, _, v in (h.partition(b":") for h in lines)]
        length = sum(int(v) for k, v in headers if k.lower() == b"content-length")
        body = await self.reader.readexactly(length)
        request = Request(self.index, line, headers, body)
        self.server.requests.append(request)
        return request

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def wait_eof(self) -> None:
        """Until the client closes (or resets) the connection; any bytes it sends meanwhile are dropped."""
        try:
            while await self.reader.read(65536):
                pass
        except (ConnectionError, ssl.SSLError):
            pass
        self.eof.set()

    def close(self) -> None:
        self.writer.close()


Handler = Callable[[Peer], Awaitable[None]]


class RawServer:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.peers: list[Peer] = []
        self.requests: list[Request] = []
        self.errors: list[BaseException] = []
        self.new_peer = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.host = "127.0.0.1"
        self.port = 0

    @property
    def accepted(self) -> int:
        return len(self.peers)

    def url(self, path: str = "/", *, scheme: str = "http") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}{path}"

    async def start(self, *, host: str = "127.0.0.1", ssl_context: ssl.SSLContext | None = None) -> RawServer:
        self.host = host
        self._server = await asyncio.start_server(self._on_connect, host, 0, ssl=ssl_context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        peer = Peer(self, len(self.peers), reader, writer)
        self.peers.append(peer)
        self.new_peer.set()
        try:
            await self.handler(peer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            peer.eof.set()  # the client went away while the server wrote or read
        except asyncio.CancelledError:
            pass  # close() stops handlers that still wait; 3.11's start_server would log a cancelled one
        except Exception as e:  # a broken handler must fail the test, not hide in the loop's log
            self.errors.append(e)
        finally:
            writer.close()
            self._tasks.discard(task)

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for peer in self.peers:
            peer.writer.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()


ServerFactory = Callable[..., Awaitable[RawServer]]


@pytest.fixture
async def serve() -> AsyncIterator[ServerFactory]:
    """Start raw servers: ``await serve(handler, host=..., ssl_context=...)``; all closed at teardown."""
    started: list[RawServer] = []

    async def start(handler: Handler, *, host: str = "127.0.0.1",
                    ssl_context: ssl.SSLContext | None = None) -> RawServer:
        server = await RawServer(handler).start(host=host, ssl_context=ssl_context)
        started.append(server)
        return server

    yield start
    for server in started:
        await server.close()
    errors = [e for server in started for e in server.errors]
    assert not errors, f"a test server's handler failed: {errors!r}"


@pytest.fixture
async def clients() -> AsyncIterator[Callable[..., UpstreamClient]]:
    """Make ``UpstreamClient``s (short timeouts by default); all closed at teardown."""
    made: list[UpstreamClient] = []

    def make(*, connect_timeout: float = 2.0, timeout: float = 5.0,
             ssl_context: ssl.SSLContext | None = None) -> UpstreamClient:
        client = UpstreamClient(connect_timeout=connect_timeout, timeout=timeout, ssl_context=ssl_context)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


@pytest.fixture
def client(clients: Callable[..., UpstreamClient]) -> UpstreamClient:
    return clients()


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's proxy settings must not divert the raw-server tests to httpx."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


# --- wire helpers -----------------------------------------------------------------------------------------------


def answer(body: bytes, *, status: bytes = b"200 OK", headers: bytes = b"", version: bytes = b"HTTP/1.1") -> bytes:
    return (version + b" " + status + b"\r\n" + headers + b"Content-Length: " + str(len(body)).encode()
            + b"\r\n\r\n" + body)


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n"
LAST_CHUNK = b"0\r\n\r\n"


async def echo_forever(peer: Peer) -> None:
    """Keep-alive: answer every request with its connection's index and its own body."""
    while (request := await peer.request()) is not None:
        await peer.send(answer(b"conn=%d body=" % peer.index + request.body,
                               headers=b"Content-Type: text/plain\r\nX-Conn: %d\r\n" % peer.index))


async def fetch(client: UpstreamClient, url: str, **kwargs: object) -> tuple[UpstreamResponse, bytes]:
    response = await client.request(str(kwargs.pop("method", "POST")), url, **kwargs)  # type: ignore[arg-type]
    return response, await response.read()


async def settle(event: asyncio.Event, timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        await event.wait()


# --- 1. Content-Length, keep-alive, the request on the wire -----------------------------------------------------


async def test_content_length_answer_and_one_connection_for_two_requests(serve: ServerFactory,
                                                                          client: UpstreamClient) -> None:
    async def handler(peer: Peer) -> None:
        while (request := await peer.request()) is not None:
            body = b'{"id":"%d","got":%d}' % (len(peer.server.requests), len(request.body))
            await peer.send(answer(body, status=b"201 Created",
                                   headers=b"Content-Type: application/json\r\nX-Answer: Forty-Two\r\n"))

    server = await serve(handler)
    r = await client.request("POST", server.url("/v1/chat/completions?api-version=2"), body=b'{"model":"m"}',
                             headers={"Authorization": "Bearer sk-1", "Content-Type": "application/json"})
    assert r.status == 201
    assert (b"x-answer", b"Forty-Two") in r.headers  # names lower-cased, values untouched
    assert (b"content-type", b"application/json") in r.headers
    assert all(isinstance(k, bytes) and isinstance(v, bytes) for k, v in r.headers)
    assert await r.read() == b'{"id":"1","got":13}'

    r2, body2 = await fetch(client, server.url("/v1/models"), method="GET", headers={"Accept": "application/json"})
    assert (r2.status, body2) == (201, b'{"id":"2","got":0}')
    assert server.accepted == 1  # the second request reused the first connection

    first, second = server.requests
    assert first.conn == second.conn == 0
    assert first.line == b"POST /v1/chat/completions?api-version=2 HTTP/1.1"
    assert first.header(b"host") == [f"127.0.0.1:{server.port}".encode()]  # a non-default port is named
    assert first.header(b"content-length") == [b"13"]
    assert first.header(b"authorization") == [b"Bearer sk-1"]
    assert first.header(b"content-type") == [b"application/json"]
    assert first.body == b'{"model":"m"}'
    assert second.line == b"GET /v1/models HTTP/1.1"
    assert second.header(b"content-length") == [b"0"]
    assert second.header(b"accept") == [b"application/json"]
    assert second.body == b""


async def test_large_request_body_arrives_intact(serve: ServerFactory, client: UpstreamClient) -> None:
    server = await serve(echo_forever)
    payload = random.Random(1).randbytes(300_000)  # above the size written together with the head
    r, body = await fetch(client, server.url("/big"), body=payload)
    assert r.status == 200
    assert body == b"conn=0 body=" + payload
    assert server.requests[0].header(b"content-length") == [b"300000"]
    _, again = await fetch(client, server.url("/small"), body=b"x")
    assert again == b"conn=0 body=x" and server.accepted == 1


async def test_concurrent_requests_use_separate_connections_then_reuse_them(serve: ServerFactory,
                                                                            client: UpstreamClient) -> None:
    all_in = asyncio.Event()

    async def handler(peer: Peer) -> None:
        while (request := await peer.request()) is not None:
            if len(peer.server.requests) == 4:
                all_in.set()
            await all_in.wait()  # the first four are answered only once all four are in flight
            await peer.send(answer(b"conn=%d body=" % peer.index + request.body))

    server = await serve(handler)
    async with asyncio.timeout(5):
        results = await asyncio.gather(*(fetch(client, server.url(), body=b"r%d" % i) for i in range(4)))
    for i, (_, body) in enumerate(results):
        assert body.endswith(b" body=r%d" % i)  # no answer went to another request
    assert server.accepted == 4
    for i in range(4, 8):
        _, body = await fetch(client, server.url(), body=b"r%d" % i)
        assert body.endswith(b" body=r%d" % i)
    assert server.accepted == 4  # the pooled connections were reused


# --- 2. chunked ---------------------------------------------------------------------------------------------------


async def test_chunked_answer_is_dechunked_and_the_connection_kept(serve: ServerFactory,
                                                                   client: UpstreamClient) -> None:
    async def handler(peer: Peer) -> None:
        while await peer.request() is not None:
            await peer.send(CHUNKED_HEAD + chunk(b"Hello, ") + b"6;ext=1\r\nworld!\r\n" + chunk(b"\r\n0\r\n")
                            + LAST_CHUNK)

    server = await serve(handler)
    r, body = await fetch(client, server.url())
    assert r.status == 200 and (b"transfer-encoding", b"chunked") in r.headers
    assert body == b"Hello, world!\r\n0\r\n"  # chunk extension dropped, CRLF inside data kept
    _, body2 = await fetch(client, server.url())
    assert body2 == body and server.accepted == 1


async def test_chunks_are_handed_over_before_the_rest_is_sent(serve: ServerFactory, client: UpstreamClient) -> None:
    gate = asyncio.Event()
    first, rest = b"data: first\n\n", [b"data: second\n\n", b"data: [DONE]\n\n"]

    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(CHUNKED_HEAD + chunk(first))
        await gate.wait()
        await peer.send(b"".join(chunk(c) for c in rest) + LAST_CHUNK)
        await peer.wait_eof()

    server = await serve(handler)
    r = await client.request("POST", server.url("/v1/chat/completions"), body=b"{}")
    assert r.status == 200  # status and headers before any of the body's end
    pieces: list[bytes] = []
    async with asyncio.timeout(5):  # a client that waits for the whole body would hang here
        async for piece in r.chunks():
            pieces.append(piece)
            if not gate.is_set() and b"".join(pieces) == first:
                gate.set()  # the server sends the rest only now
    assert gate.is_set()
    assert b"".join(pieces) == first + b"".join(rest)


# --- 3. until close; connections that say they will not be kept -------------------------------------------------


async def test_body_delimited_by_close_is_read_whole_and_not_reused(serve: ServerFactory,
                                                                    client: UpstreamClient) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npart one, ")
        await peer.send(b"part two #%d" % peer.index)
        peer.close()

    server = await serve(handler)
    r, body = await fetch(client, server.url())
    assert r.status == 200 and body == b"part one, part two #0"
    _, body2 = await fetch(client, server.url())
    assert body2 == b"part one, part two #1"
    assert server.accepted == 2


@pytest.mark.parametrize("reply", [
    answer(b"ten bytes!", version=b"HTTP/1.0"),
    answer(b"ten bytes!", headers=b"Connection: close\r\n"),
], ids=["http1.0", "connection-close"])
async def test_answer_that_closes_is_not_pooled(serve: ServerFactory, client: UpstreamClient, reply: bytes) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(reply)
        await peer.wait_eof()  # the server keeps it open: only the client can decide not to reuse it

    server = await serve(handler)
    for _ in range(2):
        r, body = await fetch(client, server.url())
        assert (r.status, body) == (200, b"ten bytes!")
    assert server.accepted == 2
    await settle(server.peers[0].eof)  # and the client closed the one it did not keep


# --- 4. closed keep-alive connections ----------------------------------------------------------------------------


async def test_idle_connection_closed_by_the_server_is_not_used(serve: ServerFactory, client: UpstreamClient) -> None:
    async def handler(peer: Peer) -> None:
        request = await peer.request()
        assert request is not None
        await peer.send(answer(b"conn=%d" % peer.index))
        peer.close()  # an idle timeout on the server's side

    server = await serve(handler)
    _, body = await fetch(client, server.url())
    assert body == b"conn=0"
    await asyncio.sleep(0.05)  # the client's loop sees the FIN while the connection sits in the pool
    _, body2 = await fetch(client, server.url())
    assert body2 == b"conn=1"
    assert server.accepted == 2


async def test_stale_connection_race_is_retried_once_on_a_fresh_connection(serve: ServerFactory,
                                                                           client: UpstreamClient) -> None:
    async def handler(peer: Peer) -> None:
        while (request := await peer.request()) is not None:
            if peer.index == 0 and len(peer.server.requests) == 2:
                peer.close()  # took the second request, then closed without a byte of answer
                return
            await peer.send(answer(b"conn=%d body=" % peer.index + request.body))

    server = await serve(handler)
    _, body = await fetch(client, server.url(), body=b"one")
    assert body == b"conn=0 body=one"
    _, body2 = await fetch(client, server.url(), body=b"two")
    assert body2 == b"conn=1 body=two"
    assert server.accepted == 2
    assert [(q.conn, q.body) for q in server.requests] == [(0, b"one"), (0, b"two"), (1, b"two")]


async def test_fresh_connection_closed_before_answering_is_not_retried(serve: ServerFactory,
                                                                       client: UpstreamClient) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        peer.close()

    server = await serve(handler)
    with pytest.raises(UpstreamUnavailable) as caught:
        await client.request("POST", server.url(), body=b"x")
    assert type(caught.value) is UpstreamUnavailable
    await asyncio.sleep(0.05)
    assert server.accepted == 1 and len(server.requests) == 1


async def test_retry_happens_once_only(serve: ServerFactory, client: UpstreamClient) -> None:
    async def handler(peer: Peer) -> None:
        if peer.index == 0:
            await peer.request()
            await peer.send(answer(b"ok"))
        await peer.request()
        peer.close()  # every later request is dropped unanswered

    server = await serve(handler)
    assert (await fetch(client, server.url()))[1] == b"ok"
    with pytest.raises(UpstreamUnavailable):
        await client.request("POST", server.url(), body=b"x")  # the reused one, then one fresh one: both fail
    await asyncio.sleep(0.05)
    assert server.accepted == 2 and [q.conn for q in server.requests] == [0, 0, 1]


async def test_reused_connection_that_started_answering_is_not_retried(serve: ServerFactory,
                                                                       client: UpstreamClient) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(answer(b"ok"))
        await peer.request()
        await peer.send(b"HTTP/1.1 200")  # the upstream got the request and began answering: no second try
        peer.close()

    server = await serve(handler)
    assert (await fetch(client, server.url()))[1] == b"ok"
    with pytest.raises(UpstreamUnavailable):
        await client.request("POST", server.url(), body=b"x")
    await asyncio.sleep(0.05)
    assert server.accepted == 1


# --- 5. refused, timeouts, truncated bodies -----------------------------------------------------------------------


async def test_connection_refused_fails_fast(clients: Callable[..., UpstreamClient]) -> None:
    client = clients(connect_timeout=10)
    async with asyncio.timeout(3):  # refused, not left to the connect timeout
        with pytest.raises(UpstreamUnavailable) as caught:
            await client.request("GET", f"http://127.0.0.1:{free_port()}/")
    assert type(caught.value) is UpstreamUnavailable


async def test_silent_upstream_times_out_and_its_connection_is_dropped(serve: ServerFactory,
                                                                       clients: Callable[..., UpstreamClient]) -> None:
    async def handler(peer: Peer) -> None:
        if peer.index == 0:
            await peer.request()
            await peer.wait_eof()  # never answers
        else:
            await echo_forever(peer)

    server = await serve(handler)
    client = clients(timeout=0.3)
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout):
        await client.request("POST", server.url(), body=b"x")
    assert 0.25 <= time.monotonic() - started < 3
    await settle(server.peers[0].eof)  # the client closed the connection that timed out
    _, body = await fetch(client, server.url(), body=b"y")
    assert body == b"conn=1 body=y"  # not pooled: a new connection
    assert server.accepted == 2


async def test_timeout_also_bounds_the_body(serve: ServerFactory, clients: Callable[..., UpstreamClient]) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nstarted...")
        await peer.wait_eof()

    server = await serve(handler)
    r = await clients(timeout=0.3).request("POST", server.url())
    with pytest.raises(UpstreamTimeout):
        await r.read()
    await settle(server.peers[0].eof)


@pytest.mark.parametrize("reply", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789",
    CHUNKED_HEAD + chunk(b"0123456789"),
    CHUNKED_HEAD + b"10\r\n0123456789",
], ids=["content-length", "chunked-between-chunks", "chunked-mid-chunk"])
async def test_upstream_closing_mid_body_fails_the_read(serve: ServerFactory, client: UpstreamClient,
                                                        reply: bytes) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(reply)
        peer.close()

    server = await serve(handler)
    r = await client.request("POST", server.url())
    assert r.status == 200
    with pytest.raises(UpstreamUnavailable) as caught:
        await r.read()
    assert type(caught.value) is UpstreamUnavailable

    r2 = await client.request("POST", server.url())
    got = b""
    with pytest.raises(UpstreamUnavailable):
        async for piece in r2.chunks():
            got += piece
    assert got == b"0123456789"  # what did arrive is handed over before the failure
    assert server.accepted == 2


# --- 6. refused input -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [
    {"Authorization": "Bearer k\r\nX-Injected: 1"},
    {"Authorization": "Bearer k\nX-Injected: 1"},
    {"X-Key": "a\rb"},
    {"X-Key": "a\0b"},
    {"X-Injected: 1\r\nX-Key": "v"},
], ids=["crlf", "lf", "cr", "nul", "in-name"])
async def test_header_injection_is_refused_before_sending(serve: ServerFactory, client: UpstreamClient,
                                                          headers: dict[str, str]) -> None:
    server = await serve(echo_forever)
    with pytest.raises(ValueError, match="line break"):
        await client.request("POST", server.url(), body=b"x", headers=headers)
    await asyncio.sleep(0.02)
    assert server.accepted == 0  # not even a connection

    await fetch(client, server.url(), body=b"a")  # now with a pooled connection
    with pytest.raises(ValueError):
        await client.request("POST", server.url(), body=b"x", headers=headers)
    _, body = await fetch(client, server.url(), body=b"b")
    assert body == b"conn=0 body=b"  # nothing was written in between: the connection still frames correctly
    assert [q.body for q in server.requests] == [b"a", b"b"]


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x", "file:///etc/passwd", "ws://127.0.0.1:1/", "http:///no-host",
                                 "127.0.0.1:8080/v1"])
async def test_non_http_urls_are_refused(client: UpstreamClient, url: str) -> None:
    with pytest.raises(UpstreamUnavailable, match="not an http"):
        await client.request("GET", url)


# --- 7. back-pressure and early release ---------------------------------------------------------------------------


def streaming_handler(pieces: Callable[[], Iterator[bytes]], sent: dict[str, int]) -> Handler:
    """Answer each request with a chunked body of ``pieces()``; ``sent`` counts the bytes drained so far."""

    async def handler(peer: Peer) -> None:
        sock = peer.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)  # let the client's reading set the pace
        while await peer.request() is not None:
            await peer.send(CHUNKED_HEAD)
            for piece in pieces():
                if peer.reader.at_eof():
                    raise ConnectionResetError("the client went away")
                await peer.send(chunk(piece))
                sent["bytes"] = sent.get("bytes", 0) + len(piece)
            await peer.send(LAST_CHUNK)

    return handler


async def test_slow_reader_gets_a_large_stream_intact(serve: ServerFactory, client: UpstreamClient) -> None:
    data = random.Random(8).randbytes(8 << 20)
    sizes = random.Random(9)

    def pieces() -> Iterator[bytes]:
        at = 0
        while at < len(data):
            n = sizes.randint(1, 100_000)
            yield data[at:at + n]
            at += n

    sent: dict[str, int] = {}
    server = await serve(streaming_handler(pieces, sent))
    r = await client.request("GET", server.url("/stream"))
    digest, total, count = hashlib.sha256(), 0, 0
    async with asyncio.timeout(30):
        async for piece in r.chunks():
            digest.update(piece)
            total += len(piece)
            count += 1
            if count % 4 == 0:
                await asyncio.sleep(0.001)  # a slow consumer
    assert total == len(data)
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
    _, body = await fetch(client, server.url("/stream"), method="GET")
    assert len(body) == len(data) and server.accepted == 1  # read whole: pooled and reused


async def test_unread_stream_pauses_the_upstream(serve: ServerFactory, client: UpstreamClient) -> None:
    block = random.Random(3).randbytes(65536)
    blocks = 768  # 48 MiB: more than the client's buffer plus any loopback socket buffers could hold

    def pieces() -> Iterator[bytes]:
        for i in range(blocks):
            yield i.to_bytes(4, "big") + block[4:]

    sent: dict[str, int] = {}
    server = await serve(streaming_handler(pieces, sent))
    r = await client.request("GET", server.url("/stream"))
    stream = r.chunks()
    try:
        digest = hashlib.sha256(await anext(stream))
        stalled_at, still = -1, 0
        async with asyncio.timeout(10):
            while still < 5:  # the consumer reads nothing: wait until the server cannot write any more
                await asyncio.sleep(0.02)
                now = sent.get("bytes", 0)
                still = still + 1 if now == stalled_at else 0
                stalled_at = now
        assert stalled_at < blocks * 65536 // 2, "the client kept reading while its consumer did not"
        async with asyncio.timeout(30):
            async for piece in stream:
                digest.update(piece)
    finally:
        r.release()  # on failure: the half-read stream's connection goes
    expected = hashlib.sha256(b"".join(pieces())).hexdigest()
    assert digest.hexdigest() == expected  # reading resumed and nothing was lost
    assert sent["bytes"] == blocks * 65536


@pytest.mark.parametrize("how", ["release", "break"])
async def test_releasing_a_stream_early_drops_the_connection(serve: ServerFactory, client: UpstreamClient,
                                                             how: str) -> None:
    block = b"x" * 65536

    def pieces() -> Iterator[bytes]:
        for _ in range(128):  # 8 MiB
            yield block

    server = await serve(streaming_handler(pieces, {}))
    r = await client.request("GET", server.url("/stream"))
    async for piece in r.chunks():
        assert piece
        break  # the caller lost interest after the first piece
    if how == "release":
        r.release()
    # "break": the abandoned generator's finally (release) runs when the loop finalises it
    await settle(server.peers[0].eof)  # the upstream sees the connection go (and can stop generating)
    r2 = await client.request("GET", server.url("/stream"))
    assert server.accepted == 2  # the half-read connection was not pooled
    r2.release()


# --- 8. malformed HTTP -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reply", [
    b"garbage\r\n\r\n",
    b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
    CHUNKED_HEAD + b"zz\r\nhello\r\n0\r\n\r\n",
], ids=["garbage", "bad-status", "bad-length", "bad-header", "bad-chunk-size"])
async def test_malformed_http_is_upstream_unavailable(serve: ServerFactory, client: UpstreamClient,
                                                      reply: bytes) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(reply)
        await peer.wait_eof()

    server = await serve(handler)
    async with asyncio.timeout(5):
        with pytest.raises(UpstreamUnavailable) as caught:
            await fetch(client, server.url())
    assert type(caught.value) is UpstreamUnavailable
    await settle(server.peers[0].eof)  # the connection was dropped, not pooled


async def test_bytes_on_an_idle_connection_make_it_unusable(serve: ServerFactory, client: UpstreamClient) -> None:
    async def handler(peer: Peer) -> None:
        while (request := await peer.request()) is not None:
            await peer.send(answer(b"conn=%d body=" % peer.index + request.body))
            if peer.index == 0:
                await asyncio.sleep(0.01)
                await peer.send(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")  # unasked for
                await peer.wait_eof()

    server = await serve(handler)
    assert (await fetch(client, server.url(), body=b"a"))[1] == b"conn=0 body=a"
    await settle(server.peers[0].eof)  # the client dropped it on the unexpected bytes
    assert (await fetch(client, server.url(), body=b"b"))[1] == b"conn=1 body=b"


# --- 9. TLS -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aigc-admin test upstream")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


@pytest.fixture
async def tls_server(serve: ServerFactory, certificate: tuple[Path, Path]) -> RawServer:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return await serve(echo_forever, ssl_context=context)


async def test_tls_with_a_trusted_certificate(tls_server: RawServer, certificate: tuple[Path, Path],
                                              clients: Callable[..., UpstreamClient]) -> None:
    client = clients(ssl_context=ssl.create_default_context(cafile=str(certificate[0])))
    r, body = await fetch(client, tls_server.url("/v1/x", scheme="https"), body=b"secret")
    assert (r.status, body) == (200, b"conn=0 body=secret")
    _, body2 = await fetch(client, tls_server.url("/v1/x", scheme="https"), body=b"again")
    assert body2 == b"conn=0 body=again" and tls_server.accepted == 1  # kept alive over TLS too
    assert tls_server.requests[0].header(b"host") == [f"127.0.0.1:{tls_server.port}".encode()]


async def test_tls_with_an_untrusted_certificate_is_refused(tls_server: RawServer,
                                                            clients: Callable[..., UpstreamClient]) -> None:
    client = clients()  # the default context: the system's CAs, which do not know the test's certificate
    with pytest.raises(UpstreamUnavailable) as caught:
        await client.request("POST", tls_server.url("/v1/x", scheme="https"), body=b"secret")
    assert type(caught.value) is UpstreamUnavailable
    assert "SSLCertVerificationError" in str(caught.value)
    assert tls_server.requests == []  # nothing was sent to it


# --- 10. proxies (the httpx fallback) -----------------------------------------------------------------------------


@pytest.fixture
async def proxied(serve: ServerFactory, monkeypatch: pytest.MonkeyPatch) -> tuple[RawServer, RawServer, asyncio.Event]:
    """(a proxy that HTTP_PROXY names, the upstream behind it, the gate of the proxy's second piece)."""
    gate = asyncio.Event()

    async def proxy(peer: Peer) -> None:
        while await peer.request() is not None:
            await peer.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Via: test-proxy\r\n\r\n"
                            + chunk(b"from the proxy, "))
            await gate.wait()
            await peer.send(chunk(b"second piece") + LAST_CHUNK)

    proxy_server = await serve(proxy)
    upstream = await serve(echo_forever)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy_server.port}")
    return proxy_server, upstream, gate


async def test_proxy_from_the_environment_is_used(proxied: tuple[RawServer, RawServer, asyncio.Event],
                                                  clients: Callable[..., UpstreamClient]) -> None:
    proxy, upstream, gate = proxied
    gate.set()
    client = clients()
    url = upstream.url("/v1/chat/completions?x=1")
    r = await client.request("POST", url, body=b'{"q":1}', headers={"Authorization": "Bearer k"})
    assert r.status == 200
    assert (b"x-via", b"test-proxy") in r.headers
    assert await r.read() == b"from the proxy, second piece"
    request = proxy.requests[0]
    assert request.line == f"POST {url} HTTP/1.1".encode()  # an absolute URI: a proxy request
    assert request.header(b"authorization") == [b"Bearer k"]
    assert request.body == b'{"q":1}'
    assert upstream.accepted == 0


async def test_proxied_answer_streams(proxied: tuple[RawServer, RawServer, asyncio.Event],
                                      clients: Callable[..., UpstreamClient]) -> None:
    proxy, upstream, gate = proxied
    r = await clients().request("GET", upstream.url("/v1/models"))
    pieces: list[bytes] = []
    async with asyncio.timeout(5):
        async for piece in r.chunks():
            pieces.append(piece)
            if not gate.is_set() and b"".join(pieces) == b"from the proxy, ":
                gate.set()
    assert gate.is_set() and b"".join(pieces) == b"from the proxy, second piece"
    assert proxy.requests[0].line == f"GET {upstream.url('/v1/models')} HTTP/1.1".encode()


async def test_no_proxy_host_is_reached_directly(proxied: tuple[RawServer, RawServer, asyncio.Event],
                                                 clients: Callable[..., UpstreamClient],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    proxy, upstream, _ = proxied
    monkeypatch.setenv("NO_PROXY", "example.com,127.0.0.1")
    _, body = await fetch(clients(), upstream.url("/v1/x"), body=b"direct")
    assert body == b"conn=0 body=direct"
    assert proxy.accepted == 0 and upstream.requests[0].line == b"POST /v1/x HTTP/1.1"


async def test_unreachable_proxy_is_upstream_unavailable(serve: ServerFactory, monkeypatch: pytest.MonkeyPatch,
                                                         clients: Callable[..., UpstreamClient]) -> None:
    upstream = await serve(echo_forever)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(UpstreamUnavailable):
        await clients().request("POST", upstream.url(), body=b"x")
    assert upstream.accepted == 0


async def test_proxy_closing_mid_body_fails_the_read(serve: ServerFactory, monkeypatch: pytest.MonkeyPatch,
                                                     clients: Callable[..., UpstreamClient]) -> None:
    async def proxy(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
        peer.close()

    proxy_server = await serve(proxy)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy_server.port}")
    r = await clients().request("POST", f"http://127.0.0.1:{free_port()}/x", body=b"x")
    with pytest.raises(UpstreamUnavailable):
        await r.read()


# --- 11. aclose ---------------------------------------------------------------------------------------------------


async def test_aclose_closes_pooled_connections_and_refuses_requests(serve: ServerFactory,
                                                                     clients: Callable[..., UpstreamClient]) -> None:
    server = await serve(echo_forever)
    client = clients()
    await fetch(client, server.url(), body=b"a")
    await client.aclose()
    await settle(server.peers[0].eof)
    with pytest.raises(UpstreamUnavailable, match="shutting down"):
        await client.request("POST", server.url(), body=b"b")
    assert server.accepted == 1


async def test_response_in_flight_during_aclose_is_not_pooled(serve: ServerFactory,
                                                              clients: Callable[..., UpstreamClient]) -> None:
    gate = asyncio.Event()

    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(CHUNKED_HEAD + chunk(b"begun "))
        await gate.wait()
        await peer.send(chunk(b"and done") + LAST_CHUNK)
        await peer.wait_eof()

    server = await serve(handler)
    client = clients()
    r = await client.request("POST", server.url())
    await client.aclose()
    gate.set()
    assert await r.read() == b"begun and done"  # what was under way still completes
    await settle(server.peers[0].eof)  # but its connection is closed, not pooled into a closed client


# --- found by these tests and fixed: cancellation, interim answers, IPv6 literals ------------------------------


async def test_cancelled_request_drops_its_connection(serve: ServerFactory, client: UpstreamClient) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.wait_eof()  # a slow upstream, still generating

    server = await serve(handler)
    task = asyncio.create_task(client.request("POST", server.url(), body=b"x"))
    await settle(server.new_peer)
    while not server.requests:
        await asyncio.sleep(0.005)
    task.cancel()  # the gateway's caller went away
    with pytest.raises(asyncio.CancelledError):
        await task
    await settle(server.peers[0].eof, timeout=1.0)


async def test_interim_answer_is_skipped(serve: ServerFactory, client: UpstreamClient) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        await asyncio.sleep(0.05)  # the interim answer and the final one in separate packets
        await peer.send(answer(b"final"))
        await peer.wait_eof()

    server = await serve(handler)
    async with asyncio.timeout(3):
        r, body = await fetch(client, server.url())
    assert (r.status, body) == (200, b"final")


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback")
async def test_ipv6_literal_host_header(serve: ServerFactory, client: UpstreamClient) -> None:
    server = await serve(echo_forever, host="::1")
    _, body = await fetch(client, server.url("/v1/x"), body=b"six")
    assert body == b"conn=0 body=six"
    assert server.requests[0].header(b"host") == [f"[::1]:{server.port}".encode()]
