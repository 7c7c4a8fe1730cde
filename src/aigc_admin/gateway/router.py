"""The OpenAI-compatible routes: /v1/models, /v1/chat/completions, /v1/completions, /v1/embeddings.

Served as a plain ASGI app in front of the rest of the platform (``GatewayApp``; no framework routing or
middleware on this path: they cost more than the gateway's own work, see docs/performance.md).

Per request: the Bearer key is hashed and looked up in the in-process cache (no database read),
checked (enabled, not expired, model allowed), admitted by the Redis limiter (RPM, TPM, quota: one
batched script call), routed (local model → its FastChat workers, trying the next replica when one
cannot be reached before the first byte; external model → its upstream, whose answer passes through
as it came), and settled: the real token count replaces the reservation (sent with the next admission)
and usage is recorded in memory, written in batches.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import itertools
import logging
import random
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from opentelemetry.trace import SpanKind
from redis.exceptions import RedisError

from aigc_admin.adapters import metrics as pm
from aigc_admin.adapters import tracing
from aigc_admin.adapters.fastchat import errors as fce
from aigc_admin.adapters.fastchat import openai_mapping as fc
from aigc_admin.adapters.fastchat.conversation import UnsupportedTemplate
from aigc_admin.adapters.fastchat.worker_client import StreamPiece, WorkerClient, stream_pieces
from aigc_admin.gateway.admission import Admission, AdmissionRefused
from aigc_admin.gateway.keys import ChannelSnapshot, KeyCache, hash_key, looks_like_key
from aigc_admin.gateway.limits import Decision, Limiter
from aigc_admin.gateway.routing import Route, RoutingTable
from aigc_admin.gateway.upstream import UpstreamClient, UpstreamUnavailable
from aigc_admin.gateway.usage import UsageRecorder

log = logging.getLogger(__name__)
DEFAULT_MAX_TOKENS = 256  # reserved when a request names no max_tokens (settled to the real count)
MAX_BODY_BYTES = 32 * 1024 * 1024  # a request body larger than this is refused with 413
Headers = list[tuple[bytes, bytes]]


ASSISTANT_PREFIX = "assistant::"  # domain.assistants.entities.ASSISTANT_MODEL_PREFIX


class Assistants(Protocol):
    """Published assistants served as models (``gateway/assistants.py``)."""

    async def models(self, channel: ChannelSnapshot) -> list[str]: ...

    async def answer(self, channel: ChannelSnapshot, body: dict[str, Any]) -> Answer | Stream: ...


@dataclass
class Gateway:
    pepper: str
    keys: KeyCache
    limiter: Limiter
    usage: UsageRecorder
    routes: RoutingTable
    workers: WorkerClient
    upstream: UpstreamClient
    assistants: Assistants | None = None
    admission: Admission | None = None  # local models: shortest queue first, bounded fair waiting (admission.py)
    limits_fail_open: bool = False  # Redis down: serve without limits (True) or refuse with 503 (gateway.limits.*)
    metrics: bool = True  # count requests, overhead, tokens and refusals (metrics.enable)
    channel_label: bool = False  # token counts labelled with the channel (metrics.channel.label)
    trace_ratio: float = 0.0  # the share of requests given a span with the GenAI attributes (tracer.*)
    _hashes: dict[str, str] = field(default_factory=dict)  # key → its HMAC (bounded; saves the HMAC per request)

    def key_hash(self, key: str) -> str:
        digest = self._hashes.get(key)
        if digest is None:
            if len(self._hashes) >= 10_000:
                self._hashes.clear()
            digest = self._hashes[key] = hash_key(key, self.pepper)
        return digest


@dataclass(slots=True)
class Answer:
    """A whole JSON response; ``payload`` is the body parsed, when the gateway has it (for in-process callers)."""

    status: int
    body: bytes
    headers: Headers | None = None
    payload: dict[str, Any] | None = None


class Stream:
    """A streamed answer. ``events`` yields ready-made server-sent events (``data: …\n\n`` bytes, the /v1 wire
    form); a local model's stream also offers ``pieces``, the structured text deltas the events are made of, for
    in-process callers (take one or the other). Whoever takes a stream must ``aclose()`` it, read or not: that
    settles the reservation and frees the worker or upstream."""

    __slots__ = ("_events", "_render", "_source", "cleanup")

    def __init__(self, source: AsyncGenerator[Any, None], cleanup: Callable[[], None] | None = None,
                 render: Callable[[AsyncGenerator[Any, None]], AsyncGenerator[bytes, None]] | None = None) -> None:
        self._source = source  # SSE bytes as they came (upstream), or StreamPieces (local; rendered by ``render``)
        self._render = render
        self._events: AsyncGenerator[bytes, None] | None = None
        self.cleanup = cleanup  # idempotent; also run by the source's own finally

    @property
    def events(self) -> AsyncGenerator[bytes, None]:
        if self._events is None:
            self._events = self._render(self._source) if self._render is not None else self._source
        return self._events

    @property
    def pieces(self) -> AsyncGenerator[StreamPiece, None] | None:
        return self._source if self._render is not None else None

    async def aclose(self) -> None:
        try:
            if self._events is not None and self._events is not self._source:
                await self._events.aclose()
            await self._source.aclose()
        finally:
            if self.cleanup is not None:
                self.cleanup()


@dataclass(slots=True)
class Probe:
    """What one /v1 request's metrics need: its operation, its (registered) model, the time spent waiting for
    the worker or upstream."""

    operation: str
    metered: bool = True  # metrics on (a probe may exist for tracing alone)
    model: str = ""
    upstream: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0


_PROBE: ContextVar[Probe | None] = ContextVar("gateway_probe", default=None)
OPERATIONS = {"/v1/chat/completions": "chat", "/v1/completions": "text_completion", "/v1/embeddings": "embeddings",
              "/v1/models": "models"}  # gen_ai.operation.name


def _waited(started: float) -> None:
    """Count the time since ``started`` as waiting for the model (not the gateway's own)."""
    probe = _PROBE.get()
    if probe is not None:
        probe.upstream += time.perf_counter() - started


def json_answer(payload: Any, status: int = 200) -> Answer:
    return Answer(status, orjson.dumps(payload))


class ApiError(Exception):
    def __init__(self, status: int, message: str, type_: str, code: str, *, retry_after: int | None = None,
                 param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code = status, message, type_, code
        self.retry_after, self.param = retry_after, param

    def answer(self) -> Answer:
        headers = [(b"retry-after", str(self.retry_after).encode())] if self.retry_after is not None else None
        return Answer(self.status, orjson.dumps({"error": {"message": self.message, "type": self.type,
                                                           "param": self.param, "code": self.code}}), headers)


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, message, "invalid_request_error", "invalid_api_key")


def _header(headers: Headers, name: bytes) -> str:
    for k, v in headers:
        if k == name:
            return v.decode("latin-1")
    return ""


async def channel_of(gw: Gateway, headers: Headers) -> ChannelSnapshot:
    """The channel of the request's Bearer key (also ``/mcp``'s check); refusals raise ``ApiError`` 401."""
    scheme, _, key = _header(headers, b"authorization").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise _unauthorized("Send your channel key as 'Authorization: Bearer sk-…'")
    if not looks_like_key(key):
        raise _unauthorized("Incorrect API key provided")
    snapshot = await gw.keys.get(gw.key_hash(key))
    if snapshot is None:
        raise _unauthorized("Incorrect API key provided")
    if not snapshot.enabled:
        raise _unauthorized("This key has been revoked (its channel is disabled)")
    if snapshot.expired():
        raise _unauthorized("This key has expired")
    return snapshot


_channel = channel_of  # the /v1 handlers' name for it


async def _read(receive: Callable[[], Awaitable[dict[str, Any]]]) -> bytes:
    message = await receive()
    body = message.get("body", b"")
    if not message.get("more_body"):
        return body  # type: ignore[no-any-return]
    parts, size = [body], len(body)
    while message.get("more_body"):
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        parts.append(message.get("body", b""))
        size += len(parts[-1])
        if size > MAX_BODY_BYTES:
            raise ApiError(413, f"The body is larger than {MAX_BODY_BYTES} bytes", "invalid_request_error",
                           "request_too_large")
    return b"".join(parts)


def _body(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, f"The body is larger than {MAX_BODY_BYTES} bytes", "invalid_request_error",
                       "request_too_large")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, "The body is not valid JSON", "invalid_request_error", "invalid_json") from None
    return check_request(body)


def check_request(body: Any) -> dict[str, Any]:
    """A request body the routes can take: a JSON object naming a model."""
    if not isinstance(body, dict):
        raise ApiError(400, "The body must be a JSON object", "invalid_request_error", "invalid_json")
    if "stream_options" in body and body["stream_options"] is not None and not isinstance(body["stream_options"], dict):
        raise ApiError(400, "'stream_options' must be an object", "invalid_request_error", "invalid_request",
                       param="stream_options")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise ApiError(400, "'model' is required", "invalid_request_error", "missing_model", param="model")
    return body


def _route(gw: Gateway, channel: ChannelSnapshot, model: str, kind: str) -> Route:
    route = gw.routes.get(model)
    if route is None:
        raise ApiError(404, f"The model '{model}' does not exist", "invalid_request_error", "model_not_found",
                       param="model")
    probe = _PROBE.get()
    if probe is not None:
        probe.model = route.model  # a registered model: a bounded label
    if not channel.allows(model):
        raise ApiError(403, f"This key may not use the model '{model}'", "invalid_request_error",
                       "model_not_allowed", param="model")
    if not route.serving:
        raise ApiError(404, f"The model '{model}' does not exist or is not deployed", "invalid_request_error",
                       "model_not_found", param="model")
    if kind == "embedding" and route.model_type != "embedding" and not route.local:
        raise ApiError(400, f"The model '{model}' does not make embeddings", "invalid_request_error",
                       "wrong_model_type", param="model")
    return route


def _estimate(body: dict[str, Any]) -> int:
    """An upper bound of the tokens a request to an upstream may use: a token is at least one byte of
    the input (plus a few per message for the chat format), and the completion gets max_tokens."""
    source = body.get("messages") or body.get("prompt") or body.get("input") or ""
    overhead = 8 * len(source) if isinstance(source, list) else 0
    budget = body.get("max_tokens") or body.get("max_completion_tokens") or DEFAULT_MAX_TOKENS
    budget = int(budget) if isinstance(budget, int) and budget > 0 else DEFAULT_MAX_TOKENS
    return len(orjson.dumps(source)) + overhead + budget


async def _admit(gw: Gateway, channel: ChannelSnapshot, tokens: int) -> Decision:
    try:
        decision = await gw.limiter.admit_channel(channel, tokens)
    except (RedisError, OSError) as e:
        # Redis is where every process counts the limits: without it, serve uncounted (fail open) or refuse
        if gw.metrics:
            pm.child(pm.LIMIT_REFUSALS, "limits_unavailable").inc()
        if gw.limits_fail_open:
            log.warning("limits unavailable (%s): channel %s served without its limits", type(e).__name__,
                        channel.id)
            return Decision(True)
        raise ApiError(503, "The gateway cannot check this key's limits right now; try again",
                       "server_error", "limits_unavailable", retry_after=getattr(e, "retry_after", 5)) from None
    if not decision.allowed:
        if gw.metrics:
            pm.child(pm.LIMIT_REFUSALS, decision.reason or "limit").inc()
        what = {"rpm": "requests per minute", "tpm": "tokens per minute", "quota": "token quota"}
        message = (f"Rate limit reached ({what.get(decision.reason or '', 'limit')})" if decision.reason != "quota"
                   else "You exceeded this key's token quota")
        # a quota does not refill by itself: tell clients not to retry soon
        retry = 86_400 if decision.reason == "quota" else max(1, int(decision.retry_after or 1))
        raise ApiError(429, message, "rate_limit_error" if decision.reason != "quota" else "insufficient_quota",
                       "rate_limit_exceeded" if decision.reason != "quota" else "insufficient_quota",
                       retry_after=retry)
    return decision


def _settle(gw: Gateway, channel: ChannelSnapshot, model: str, reserved: Decision, usage: dict[str, Any]) -> None:
    """Replace the reservation by the real count (sent with the next admission) and record the usage."""
    if not isinstance(usage, dict):
        usage = _charged(reserved)
    try:
        prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    except (TypeError, ValueError):
        prompt, completion = reserved.reserved, 0  # an upstream's garbage usage: charge the reservation
    prompt, completion = max(prompt, 0), max(completion, 0)
    gw.limiter.settle_soon(channel.id, reserved=reserved.reserved, actual_tokens=prompt + completion,
                           window=reserved.window)
    gw.usage.record(channel.id, model, prompt, completion)
    probe = _PROBE.get()
    if probe is not None:
        probe.input_tokens, probe.output_tokens = prompt, completion
    if gw.metrics:
        label = str(channel.id) if gw.channel_label else ""
        if probe is not None:  # a /v1 request, in the API process
            pm.GATEWAY.count_tokens(model, label, prompt, completion)
        else:  # the platform's own call (a job's too: counted in the node's shared files)
            pm.child(pm.MODEL_CALL_TOKENS, model, "input", label).inc(prompt)
            pm.child(pm.MODEL_CALL_TOKENS, model, "output", label).inc(completion)


def _charged(reserved: Decision) -> dict[str, int]:
    """Usage to charge when an upstream answered without telling: the whole reservation."""
    return {"prompt_tokens": reserved.reserved, "completion_tokens": 0}


def _sse(data: dict[str, Any] | str) -> bytes:
    return b"data: " + (data.encode() if isinstance(data, str) else orjson.dumps(data)) + b"\n\n"


_DONE = _sse("[DONE]")  # a stream's last event


def _unavailable(exc: Exception, trace: bytes = b"-") -> Answer:
    log.error("gateway request %s failed: %s: %s", trace.decode(), type(exc).__name__, exc, exc_info=exc)
    return ApiError(503, "The gateway cannot serve this request right now (a backing service is unavailable); "
                         "try again", "server_error", "service_unavailable").answer()


# --- the routes ------------------------------------------------------------------------------------------
async def list_models(gw: Gateway, headers: Headers, _body: bytes) -> Answer | Stream:
    channel = await _channel(gw, headers)
    data = [{"id": r.model, "object": "model", "created": 0, "owned_by": "aigc-admin"}
            for r in gw.routes.all() if r.serving and channel.allows(r.model)]
    if gw.assistants is not None:
        data += [{"id": name, "object": "model", "created": 0, "owned_by": "aigc-admin"}
                 for name in await gw.assistants.models(channel)]
    return json_answer({"object": "list", "data": sorted(data, key=lambda m: m["id"])})


async def chat_completions(gw: Gateway, headers: Headers, raw: bytes) -> Answer | Stream:
    channel = await _channel(gw, headers)
    body = _body(raw)
    if body["model"].startswith(ASSISTANT_PREFIX):
        probe = _PROBE.get()
        if probe is not None:  # counted as one assistant request; its model calls inside are not /v1 requests
            probe.operation = "assistant"
            _PROBE.set(None)
        if gw.assistants is None:
            raise ApiError(404, f"The model '{body['model']}' does not exist", "invalid_request_error",
                           "model_not_found", param="model")
        return await gw.assistants.answer(channel, body)
    return await generate_for(gw, channel, body, "chat")


async def completions(gw: Gateway, headers: Headers, raw: bytes) -> Answer | Stream:
    channel = await _channel(gw, headers)
    return await generate_for(gw, channel, _body(raw), "completion")


async def embeddings(gw: Gateway, headers: Headers, raw: bytes) -> Answer | Stream:
    channel = await _channel(gw, headers)
    body = _body(raw)
    route = _route(gw, channel, body["model"], "embedding")
    reserved = await _admit(gw, channel, _estimate({**body, "max_tokens": 1}))
    try:
        if route.openai:  # a vLLM server run as an embedding model (its --runner pooling)
            replica = dataclasses.replace(route, base_url=f"{gw.routes.workers_in_order(route)[0]}/v1")
            raw_answer, answer = await _upstream_json(gw, replica, "/embeddings", body)
        elif route.local:
            inputs = fc.embedding_inputs(body)
            result = await _on_any_worker(gw, route, lambda w: gw.workers.embeddings(w, inputs, model=route.model))
            answer = fc.embedding_response(route.model, result)
            raw_answer = orjson.dumps(answer)
        else:
            raw_answer, answer = await _upstream_json(gw, route, "/embeddings", body)
    except ApiError:
        _settle(gw, channel, route.model, reserved, {})
        raise
    except fce.FastChatOpenAIError as e:
        _settle(gw, channel, route.model, reserved, {})
        raise engine_error(e) from None
    _settle(gw, channel, route.model, reserved, answer.get("usage") or {})
    return Answer(200, raw_answer)


Handler = Callable[[Gateway, Headers, bytes], Awaitable[Answer | Stream]]
ROUTES: dict[str, tuple[bytes, Handler]] = {
    "/v1/models": (b"GET", list_models),
    "/v1/chat/completions": (b"POST", chat_completions),
    "/v1/completions": (b"POST", completions),
    "/v1/embeddings": (b"POST", embeddings),
}


class GatewayApp:
    """The /v1 routes as a plain ASGI app; ``gateway()`` gives the running ``Gateway`` (None before start)."""

    def __init__(self, gateway: Callable[[], Gateway | None]) -> None:
        self._gateway = gateway
        # trace ids: unique per process start, then a counter (cheaper than a uuid4 per request)
        self._trace_prefix = uuid.uuid4().hex[:16].encode() + b"-"
        self._requests = itertools.count(1)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        trace = b"%s%x" % (self._trace_prefix, next(self._requests))
        path: str = scope["path"]
        path = path if not path.endswith("/") else path.rstrip("/")
        route = ROUTES.get(path)
        started = time.perf_counter()
        gw = self._gateway()
        parent: Any = None
        traced = False
        if gw is not None and gw.trace_ratio:
            parent = tracing.continued(scope["headers"])
            traced = parent is not None or gw.trace_ratio >= 1.0 or random.random() < gw.trace_ratio  # noqa: S311
        probe = (Probe(OPERATIONS.get(path, "other"), gw.metrics) if gw is not None and (gw.metrics or traced)
                 else None)
        token = _PROBE.set(probe)
        try:
            if traced and probe is not None:
                await self._traced(gw, scope, receive, send, trace, route, started, probe, parent)
            else:
                await self._serve(gw, scope, receive, send, trace, route, started, probe)
        finally:
            _PROBE.reset(token)

    async def _traced(self, gw: Gateway | None, scope: dict[str, Any], receive: Any, send: Any, trace: bytes,
                      route: tuple[bytes, Handler] | None, started: float, probe: Probe, parent: Any) -> None:
        """The request as a span with the GenAI semantic conventions' attributes."""
        with tracing.tracer.start_as_current_span(probe.operation, context=parent, kind=SpanKind.SERVER) as span:
            await self._serve(gw, scope, receive, send, trace, route, started, probe)
            span.update_name(f"{probe.operation} {probe.model}".rstrip())
            span.set_attribute("gen_ai.operation.name", probe.operation)
            span.set_attribute("aigc.trace_id", trace.decode())
            if probe.model:
                span.set_attribute("gen_ai.request.model", probe.model)
                span.set_attribute("gen_ai.usage.input_tokens", probe.input_tokens)
                span.set_attribute("gen_ai.usage.output_tokens", probe.output_tokens)

    async def _serve(self, gw: Gateway | None, scope: dict[str, Any], receive: Any, send: Any, trace: bytes,
                     route: tuple[bytes, Handler] | None, started: float, probe: Probe | None) -> None:
        path: str = scope["path"]
        result: Answer | Stream
        error = ""
        try:
            if route is None:
                raise ApiError(404, f"Invalid URL ({scope['method']} {path})", "invalid_request_error", "unknown_url")
            if route[0] != scope["method"].encode():
                raise ApiError(405, f"{path} takes {route[0].decode()}, not {scope['method']}",
                               "invalid_request_error", "method_not_allowed")
            if gw is None:
                raise ApiError(503, "The gateway is starting; try again", "server_error", "service_unavailable")
            result = await route[1](gw, scope["headers"], await _read(receive))
        except ApiError as e:
            result, error = e.answer(), e.code
        except Exception as e:
            result, error = _unavailable(e, trace), "service_unavailable"
        metered = probe if probe is not None and probe.metered else None
        if isinstance(result, Answer):
            if gw is not None and result.status == 200:
                await gw.usage.durable()  # a process killed after answering must not lose the usage
            if metered is not None:
                _record(metered, result.status, error, time.perf_counter() - started)
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(result.body)).encode()),
                       (b"x-trace-id", trace)]
            if result.headers:
                headers += result.headers
            await send({"type": "http.response.start", "status": result.status, "headers": headers})
            await send({"type": "http.response.body", "body": result.body})
            return
        handed_on = time.perf_counter()
        if metered is not None:  # a stream's own overhead ends where it is handed on
            pm.GATEWAY.overhead.observe(metered.operation, max(0.0, handed_on - started - metered.upstream))
            if metered.upstream:
                pm.GATEWAY.upstream.observe(metered.operation, metered.upstream)
        failed = await _send_stream(result, receive, send, trace, started if metered is not None else None,
                                    metered.model if metered is not None else "",
                                    durable=gw.usage.durable if gw is not None else None)
        if metered is not None:
            pm.GATEWAY.request(metered.operation, metered.model, "200", "stream_error" if failed else "")


def _record(probe: Probe, status: int, error: str, elapsed: float) -> None:
    stats = pm.GATEWAY
    stats.request(probe.operation, probe.model, str(status), error)
    stats.overhead.observe(probe.operation, max(0.0, elapsed - probe.upstream))
    if probe.upstream:
        stats.upstream.observe(probe.operation, probe.upstream)


async def _send_stream(stream: Stream, receive: Any, send: Any, trace: bytes, started: float | None = None,
                       model: str = "", durable: Callable[[], Awaitable[None]] | None = None) -> bool:
    """Send each event as it comes; stop (closing the source, which settles) when the client goes away. With
    ``started``, the time to the first event is observed. With ``durable``, the closing ``[DONE]`` waits until
    the stream has ended (settling its usage) and ``durable()`` returned. Returns whether the stream failed
    midway."""
    gone = asyncio.ensure_future(receive())  # the body was read: the next message is the disconnect
    failed = False
    held = b""
    try:
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"), (b"x-trace-id", trace)]})
        try:
            async for event in stream.events:
                if gone.done():
                    break
                if started is not None:
                    pm.GATEWAY.ttft.observe(model, time.perf_counter() - started)
                    started = None
                if held:
                    await send({"type": "http.response.body", "body": held, "more_body": True})
                    held = b""
                if durable is not None and event.endswith(_DONE):
                    held = event  # sent once the usage is durable (an upstream's stream settles after it)
                    continue
                await send({"type": "http.response.body", "body": event, "more_body": True})
            if held:
                await durable()  # type: ignore[misc]  # set whenever something is held
                await send({"type": "http.response.body", "body": held, "more_body": True})
        except Exception as e:  # the status went out already: end the stream with an error event
            failed = True
            failure = _unavailable(e, trace)
            await send({"type": "http.response.body", "body": b"data: " + failure.body + b"\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        gone.cancel()
        await stream.aclose()
    return failed


async def generate_for(gw: Gateway, channel: ChannelSnapshot, body: dict[str, Any], kind: str) -> Answer | Stream:
    """A chat or completion request of an authenticated channel (also used by the GraphQL playground).
    Refusals are raised as ``ApiError``."""
    if not channel.usable():
        raise _unauthorized("This key has been revoked or has expired")
    route = _route(gw, channel, body["model"], kind)
    stream = bool(body.get("stream"))
    reserved: Decision | None = None
    try:
        if not route.local:
            # the completion budget we reserve is the one the upstream gets: the quota cannot be overspent
            if not body.get("max_tokens") and not body.get("max_completion_tokens"):
                body["max_tokens"] = DEFAULT_MAX_TOKENS
            reserved = await _admit(gw, channel, _estimate(body))
            path = "/chat/completions" if kind == "chat" else "/completions"
            if stream:
                # ask for the usage chunk: without it a streamed answer could not be charged
                wanted = bool((body.get("stream_options") or {}).get("include_usage"))
                body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
                return await _upstream_stream(gw, channel, route, path, body, reserved, forward_usage=wanted)
            raw, answer = await _upstream_json(gw, route, path, body)
            _settle(gw, channel, route.model, reserved, answer.get("usage") or _charged(reserved))
            return Answer(200, raw, payload=answer)
        if route.openai:
            return await _openai_replicas(gw, channel, route, body, kind, stream)

        async def params_on(worker: str) -> tuple[str, dict[str, Any]]:
            if kind == "chat":
                return worker, await gw.workers.prepare_chat(worker, body, route.model, route.chat_template)
            return worker, await gw.workers.prepare_completion(worker, body, route.model)

        release = _no_release
        first: str | None = None
        if gw.admission is not None and route.workers:
            first = await _admitted(gw.admission, route, channel)
            release = _once(functools.partial(gw.admission.release, route.model, first))
        waiting = time.perf_counter()
        try:
            worker, params = await _on_any_worker(gw, route, params_on, first=first)
        except BaseException:
            release()
            raise
        finally:
            _waited(waiting)
        try:
            # exact upper bound: the templated prompt's tokens plus the completion budget the worker gets
            reserved = await _admit(gw, channel, int(params["_prompt_tokens"]) + int(params["max_new_tokens"]))
            served = await _local(gw, channel, route, worker, params, kind, stream, bool(
                (body.get("stream_options") or {}).get("include_usage")), reserved, release)
        except BaseException:
            release()
            raise
        if isinstance(served, Answer):
            release()
        return served
    except fce.FastChatOpenAIError as e:
        if reserved is not None:
            _settle(gw, channel, route.model, reserved, {})
        raise engine_error(e) from None
    except BaseException:
        if reserved is not None:  # never keep a reservation of a request that was not served
            _settle(gw, channel, route.model, reserved, {})
        raise


def _once(fn: Callable[[], None]) -> Callable[[], None]:
    """``fn`` run at most once: a stream's clean-up is called by its generator and by whoever closes it."""
    done = False

    def run() -> None:
        nonlocal done
        if not done:
            done = True
            fn()

    return run


def engine_error(e: fce.FastChatOpenAIError) -> ApiError:
    if isinstance(e, fce.WorkerUnavailable):
        return ApiError(503, "No healthy worker could serve this model; try again", "server_error",
                        "no_healthy_worker")
    if isinstance(e, fce.InvalidRequest | UnsupportedTemplate):
        return ApiError(400, str(e.message if hasattr(e, "message") else e), "invalid_request_error",
                        "invalid_request")
    return ApiError(502, "The model worker failed to answer", "server_error", "worker_error")


def _no_release() -> None:
    pass


async def _admitted(admission: Admission, route: Route, channel: ChannelSnapshot) -> str:
    """The replica admission control gives this request (it may wait), or a 429 with Retry-After."""
    try:
        return await admission.acquire(route.model, route.workers, channel.id)
    except AdmissionRefused as e:
        raise ApiError(429, f"Every replica of {route.model} is busy; try again in {e.retry_after} s",
                       "rate_limit_error", "model_overloaded", retry_after=e.retry_after) from None


async def _on_any_worker(gw: Gateway, route: Route, call: Any, *, first: str | None = None) -> Any:
    """``call(worker)`` on the next worker (``first`` when given); on a connection failure, on the next one
    (nothing was sent back yet, so a retry is safe)."""
    last: Exception | None = None
    order = gw.routes.workers_in_order(route)
    if first is not None and first in order:
        order = [first, *(w for w in order if w != first)]
    for worker in order:
        try:
            return await call(worker)
        except fce.WorkerUnavailable as e:
            last = e
            gw.routes.poke()  # the health monitor will have news; refresh soon
    raise last or fce.WorkerUnavailable(route.model, "no worker")


async def _local(gw: Gateway, channel: ChannelSnapshot, route: Route, worker: str, params: dict[str, Any],
                 kind: str, stream: bool, include_usage: bool, reserved: Decision,
                 release: Callable[[], None] = _no_release) -> Answer | Stream:
    """``release`` gives the replica back to admission control when the answer is done (a stream: when it
    ends or is closed); the caller releases a whole answer."""
    waiting = time.perf_counter()
    if not stream:
        try:
            result = await gw.workers.generate(worker, params)
        except fce.WorkerUnavailable:
            # it went away since the prompt was prepared (nothing was answered yet): the next replica
            others = [w for w in gw.routes.workers_in_order(route) if w != worker]
            if not others:
                raise
            result = await _on_any_worker(gw, Route(route.model, route.model_type, True, tuple(others)),
                                          lambda w: gw.workers.generate(w, params))
        finally:
            _waited(waiting)
        answer = (fc.chat_completion if kind == "chat" else fc.completion)(route.model, result)
        _settle(gw, channel, route.model, reserved, answer["usage"])
        return Answer(200, orjson.dumps(answer), payload=answer)

    async def opened(w: str) -> tuple[AsyncGenerator[StreamPiece, None], StreamPiece]:
        """The stream of ``w`` with its first piece read: a worker that fails before its first byte is
        still an HTTP error, or a reason to try the next replica (nothing was sent to the client yet)."""
        pieces = stream_pieces(gw.workers.generate_stream(w, params))
        try:
            return pieces, await anext(pieces)
        except StopAsyncIteration:
            return pieces, StreamPiece("", "stop", {})
        except BaseException:
            await pieces.aclose()
            raise

    try:
        pieces, first = await opened(worker)
    except fce.WorkerUnavailable:
        others = [w for w in gw.routes.workers_in_order(route) if w != worker]
        if not others:
            raise
        gw.routes.poke()
        pieces, first = await _on_any_worker(gw, Route(route.model, route.model_type, True, tuple(others)), opened)
    finally:
        _waited(waiting)
    request_id = fc.new_id("chatcmpl" if kind == "chat" else "cmpl")
    usage: dict[str, int] = {}
    def done() -> None:
        release()
        _settle(gw, channel, route.model, reserved, usage)

    finish = _once(done)

    async def deltas() -> AsyncGenerator[StreamPiece, None]:
        """The worker's text deltas; the reservation is settled with the last usage when it ends."""
        nonlocal usage
        try:
            piece: StreamPiece | None = first
            while piece is not None:
                usage = piece.usage or usage
                yield piece
                piece = await anext(pieces, None)
        finally:
            await pieces.aclose()
            finish()

    async def events(source: AsyncGenerator[StreamPiece, None]) -> AsyncGenerator[bytes, None]:
        """The deltas as OpenAI chunks, server-sent events."""
        try:
            if kind == "chat":
                yield _sse(fc.chat_chunk(route.model, None, request_id, role="assistant"))
            async for piece in source:
                if kind == "chat":
                    if piece.text:
                        yield _sse(fc.chat_chunk(route.model, piece.text, request_id))
                    if piece.finish_reason is not None:
                        yield _sse(fc.chat_chunk(route.model, None, request_id, piece.finish_reason))
                else:
                    yield _sse(fc.completion_chunk(route.model, piece.text, request_id, piece.finish_reason))
            if include_usage:
                yield _sse({"id": request_id, "object": "chat.completion.chunk" if kind == "chat"
                            else "text_completion", "model": route.model, "choices": [], "usage": usage})
        except fce.FastChatOpenAIError as e:
            failure = engine_error(e)
            yield _sse({"error": {"message": failure.message, "type": failure.type, "code": failure.code}})
        finally:
            await source.aclose()
        yield _sse("[DONE]")

    return Stream(deltas(), finish, events)


async def _openai_replicas(gw: Gateway, channel: ChannelSnapshot, route: Route, body: dict[str, Any], kind: str,
                           stream: bool) -> Answer | Stream:
    """A model served by the vllm engine: each replica is an OpenAI server, called like an upstream (the same
    reservation, usage and errors), on the replica admission control picks, then the next ones while a replica
    cannot be reached (nothing was answered yet, so trying another is safe)."""
    if not body.get("max_tokens") and not body.get("max_completion_tokens"):
        body["max_tokens"] = DEFAULT_MAX_TOKENS  # what we reserve is what the engine may generate
    reserved = await _admit(gw, channel, _estimate(body))
    path = "/chat/completions" if kind == "chat" else "/completions"
    wanted = bool((body.get("stream_options") or {}).get("include_usage"))
    if stream:
        body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    release, first = _no_release, None
    try:
        if gw.admission is not None:
            first = await _admitted(gw.admission, route, channel)
            release = _once(functools.partial(gw.admission.release, route.model, first))
        order = gw.routes.workers_in_order(route)
        if first is not None:
            order = [first, *(w for w in order if w != first)]
        for i, worker in enumerate(order):
            replica = dataclasses.replace(route, base_url=f"{worker}/v1", credentials="")
            try:
                if stream:
                    return await _upstream_stream(gw, channel, replica, path, body, reserved, forward_usage=wanted,
                                                  release=release)
                raw, answer = await _upstream_json(gw, replica, path, body)
                break
            except ApiError as e:
                if e.code != "upstream_unavailable" or i == len(order) - 1:
                    raise
                gw.routes.poke()  # the health monitor will have news; refresh soon
        else:
            raise ApiError(503, "No healthy worker could serve this model; try again", "server_error",
                           "no_healthy_worker")
    except BaseException:
        release()
        _settle(gw, channel, route.model, reserved, {})
        raise
    release()
    _settle(gw, channel, route.model, reserved, answer.get("usage") or _charged(reserved))
    return Answer(200, raw, payload=answer)


def _upstream_headers(route: Route, accept: str) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Accept": accept}
    if route.credentials:
        headers["Authorization"] = f"Bearer {route.credentials}"
    return headers


async def _upstream_json(gw: Gateway, route: Route, path: str, body: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """The upstream's answer as it came (bytes, passed through) and parsed (for its usage)."""
    started = time.perf_counter()
    try:
        r = await gw.upstream.request("POST", route.base_url.rstrip("/") + path, body=orjson.dumps(body),
                                      headers=_upstream_headers(route, "application/json"))
        raw = await r.read()
    except UpstreamUnavailable:
        raise _unreachable() from None
    finally:
        _waited(started)
    if r.status >= 400:
        raise _upstream_failure(r.status, raw.decode(errors="replace"))
    try:
        answer = orjson.loads(raw)
    except orjson.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict):
        raise ApiError(502, "The model's upstream sent an answer that is not a JSON object", "upstream_error",
                       "upstream_error")
    return raw, answer


def _unreachable() -> ApiError:
    return ApiError(503, "The model's upstream cannot be reached", "server_error", "upstream_unavailable")


def _upstream_failure(status: int, text: str) -> ApiError:
    """An upstream's error, without confusing it with the caller's own key or limits."""
    detail = text[:300]
    if status in (400, 404, 422):  # the request itself: the caller can fix it
        return ApiError(400, f"The upstream refused the request: {detail}", "invalid_request_error",
                        "upstream_bad_request")
    if status == 429:
        return ApiError(503, "The model's upstream is rate limiting the gateway; try again", "server_error",
                        "upstream_rate_limited", retry_after=5)
    # 401/403 (the stored credentials) and 5xx: the operator's problem, not the caller's
    return ApiError(502, f"The model's upstream failed ({status})", "upstream_error", "upstream_error")


def _event_end(buffer: bytes) -> int:
    """The end of the last complete SSE event in ``buffer`` (after its blank line), or -1."""
    lf, crlf = buffer.rfind(b"\n\n"), buffer.rfind(b"\r\n\r\n")
    return max(lf + 2 if lf >= 0 else -1, crlf + 4 if crlf >= 0 else -1)


def _usage_events(ready: bytes, forward_usage: bool, usage: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """Find the usage in complete events; drop the usage-only event the gateway asked for on its own."""
    kept: list[bytes] = []
    for event in ready.replace(b"\r\n", b"\n").split(b"\n\n"):
        if not event:
            continue
        if b'"usage"' in event and event.startswith(b"data: {"):
            try:
                parsed = orjson.loads(event[6:])
            except orjson.JSONDecodeError:
                parsed = {}
            if isinstance(parsed, dict):
                usage = parsed.get("usage") or usage
                if not forward_usage and not parsed.get("choices"):
                    continue  # the usage-only chunk we asked for, not the client
        kept.append(event + b"\n\n")
    return b"".join(kept), usage


async def _upstream_stream(gw: Gateway, channel: ChannelSnapshot, route: Route, path: str, body: dict[str, Any],
                           reserved: Decision, *, forward_usage: bool,
                           release: Callable[[], None] = _no_release) -> Stream:
    """The upstream's stream; ``release`` (a replica's admission slot) is called with the settlement when it ends.
    Raises before the stream starts (the caller settles the reservation then)."""
    started = time.perf_counter()
    try:
        response = await gw.upstream.request("POST", route.base_url.rstrip("/") + path, body=orjson.dumps(body),
                                             headers=_upstream_headers(route, "text/event-stream"))
        if response.status >= 400:
            text = (await response.read()).decode(errors="replace")
            raise _upstream_failure(response.status, text)
    except UpstreamUnavailable:
        raise _unreachable() from None
    finally:
        _waited(started)

    usage: dict[str, Any] = {}

    def release_and_settle() -> None:
        response.release()
        release()
        _settle(gw, channel, route.model, reserved, usage or _charged(reserved))

    finish = _once(release_and_settle)

    async def passthrough() -> AsyncGenerator[bytes, None]:
        """The upstream's events as they arrive, bytes untouched except the usage-only chunk we added."""
        nonlocal usage
        pending = b""
        try:
            async for chunk in response.chunks():
                if not pending and b'"usage"' not in chunk and chunk.endswith(b"\n\n"):
                    yield chunk  # the common case: whole events, nothing to look at
                    continue
                pending += chunk
                end = _event_end(pending)
                if end < 0:
                    continue
                ready, pending = pending[:end], pending[end:]
                ready, usage = _usage_events(ready, forward_usage, usage)
                if ready:
                    yield ready
            if pending:
                ready, usage = _usage_events(pending, forward_usage, usage)
                if ready:
                    yield ready
        except UpstreamUnavailable:
            yield _sse({"error": {"message": "The model's upstream failed while answering", "type": "upstream_error",
                                  "code": "upstream_error"}})
        finally:
            finish()

    return Stream(passthrough(), finish)
