"""The OpenAI-compatible routes: /v1/models, /v1/chat/completions, /v1/completions, /v1/embeddings.

Per request: the Bearer key is hashed and looked up in the in-process cache (no database read),
checked (enabled, not expired, model allowed), admitted by the Redis limiter (RPM, TPM, quota:
one script call), routed (local model → its FastChat workers, trying the next replica when one
cannot be reached before the first byte; external model → its upstream), and settled: the real
token count replaces the reservation and usage is recorded in memory, written in batches.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from aigc_admin.adapters import fastchat_openai as fc
from aigc_admin.gateway.keys import ChannelSnapshot, KeyCache, hash_key, looks_like_key
from aigc_admin.gateway.limits import Decision, Limiter
from aigc_admin.gateway.routing import Route, RoutingTable
from aigc_admin.gateway.usage import UsageRecorder

log = logging.getLogger(__name__)
DEFAULT_MAX_TOKENS = 256  # reserved when a request names no max_tokens (settled to the real count)


@dataclass
class Gateway:
    pepper: str
    keys: KeyCache
    limiter: Limiter
    usage: UsageRecorder
    routes: RoutingTable
    workers: fc.WorkerClient
    upstream: httpx.AsyncClient


class ApiError(Exception):
    def __init__(self, status: int, message: str, type_: str, code: str, *, retry_after: int | None = None,
                 param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code = status, message, type_, code
        self.retry_after, self.param = retry_after, param

    def response(self) -> JSONResponse:
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else None
        return JSONResponse({"error": {"message": self.message, "type": self.type, "param": self.param,
                                       "code": self.code}}, status_code=self.status, headers=headers)


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, message, "invalid_request_error", "invalid_api_key")


def _gateway(request: Request) -> Gateway:
    return request.app.state.gateway  # type: ignore[no-any-return]


async def _channel(request: Request) -> ChannelSnapshot:
    scheme, _, key = (request.headers.get("authorization") or "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise _unauthorized("Send your channel key as 'Authorization: Bearer sk-…'")
    if not looks_like_key(key):
        raise _unauthorized("Incorrect API key provided")
    gw = _gateway(request)
    snapshot = await gw.keys.get(hash_key(key, gw.pepper))
    if snapshot is None:
        raise _unauthorized("Incorrect API key provided")
    if not snapshot.enabled:
        raise _unauthorized("This key has been revoked (its channel is disabled)")
    if snapshot.expired():
        raise _unauthorized("This key has expired")
    return snapshot


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "The body is not valid JSON", "invalid_request_error", "invalid_json") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The body must be a JSON object", "invalid_request_error", "invalid_json")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise ApiError(400, "'model' is required", "invalid_request_error", "missing_model", param="model")
    return body


def _route(gw: Gateway, channel: ChannelSnapshot, model: str, kind: str) -> Route:
    route = gw.routes.get(model)
    if route is None:
        raise ApiError(404, f"The model '{model}' does not exist", "invalid_request_error", "model_not_found",
                       param="model")
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
    return len(json.dumps(source, ensure_ascii=False).encode()) + overhead + budget


async def _admit(gw: Gateway, channel: ChannelSnapshot, tokens: int) -> Decision:
    decision = await gw.limiter.admit_channel(channel, tokens)
    if not decision.allowed:
        what = {"rpm": "requests per minute", "tpm": "tokens per minute", "quota": "token quota"}
        message = (f"Rate limit reached ({what.get(decision.reason or '', 'limit')})" if decision.reason != "quota"
                   else "You exceeded this key's token quota")
        # a quota does not refill by itself: tell clients not to retry soon
        retry = 86_400 if decision.reason == "quota" else max(1, int(decision.retry_after or 1))
        raise ApiError(429, message, "rate_limit_error" if decision.reason != "quota" else "insufficient_quota",
                       "rate_limit_exceeded" if decision.reason != "quota" else "insufficient_quota",
                       retry_after=retry)
    return decision


async def _settle(gw: Gateway, channel: ChannelSnapshot, model: str, reserved: Decision,
                  usage: dict[str, int]) -> None:
    prompt, completion = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
    try:
        await gw.limiter.settle(channel.id, reserved=reserved.reserved, actual_tokens=prompt + completion,
                                window=reserved.window)
    except Exception:
        log.exception("could not settle channel %s", channel.id)
    gw.usage.record(channel.id, model, prompt, completion)


def _charged(reserved: Decision) -> dict[str, int]:
    """Usage to charge when an upstream answered without telling: the whole reservation."""
    return {"prompt_tokens": reserved.reserved, "completion_tokens": 0}


def _sse(data: dict[str, Any] | str) -> bytes:
    return f"data: {data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}\n\n".encode()


def _unavailable(exc: Exception) -> JSONResponse:
    log.exception("gateway request failed: %s", type(exc).__name__)
    return ApiError(503, "The gateway cannot serve this request right now (a backing service is unavailable); "
                         "try again", "server_error", "service_unavailable").response()


router = APIRouter(prefix="/v1")


@router.get("/models")
async def list_models(request: Request) -> Response:
    try:
        channel = await _channel(request)
    except ApiError as e:
        return e.response()
    except Exception as e:
        return _unavailable(e)
    data = [{"id": r.model, "object": "model", "created": 0, "owned_by": "aigc-admin"}
            for r in _gateway(request).routes.all() if r.serving and channel.allows(r.model)]
    return JSONResponse({"object": "list", "data": sorted(data, key=lambda m: m["id"])})


@router.post("/chat/completions")
async def chat_completions(request: Request) -> Response:
    try:
        return await _generate(request, "chat")
    except Exception as e:
        return _unavailable(e)


@router.post("/completions")
async def completions(request: Request) -> Response:
    try:
        return await _generate(request, "completion")
    except Exception as e:
        return _unavailable(e)


@router.post("/embeddings")
async def embeddings(request: Request) -> Response:
    try:
        return await _embeddings(request)
    except Exception as e:
        return _unavailable(e)


async def _embeddings(request: Request) -> Response:
    gw = _gateway(request)
    try:
        channel = await _channel(request)
        body = await _body(request)
        route = _route(gw, channel, body["model"], "embedding")
        reserved = await _admit(gw, channel, _estimate({**body, "max_tokens": 1}))
    except ApiError as e:
        return e.response()
    try:
        if route.local:
            inputs = fc.embedding_inputs(body)
            result = await _on_any_worker(gw, route, lambda w: gw.workers.embeddings(w, inputs, model=route.model))
            answer = fc.embedding_response(route.model, result)
        else:
            answer = await _upstream_json(gw, route, "/embeddings", body)
    except ApiError as e:
        await _settle(gw, channel, route.model, reserved, {})
        return e.response()
    except fc.FastChatOpenAIError as e:
        await _settle(gw, channel, route.model, reserved, {})
        return _engine_error(e).response()
    await _settle(gw, channel, route.model, reserved, answer.get("usage") or {})
    return JSONResponse(answer)


async def _generate(request: Request, kind: str) -> Response:
    gw = _gateway(request)
    try:
        channel = await _channel(request)
        body = await _body(request)
    except ApiError as e:
        return e.response()
    return await generate_for(gw, channel, body, kind)


async def generate_for(gw: Gateway, channel: ChannelSnapshot, body: dict[str, Any], kind: str) -> Response:
    """A chat or completion request of an authenticated channel (also used by the GraphQL playground)."""
    try:
        if not channel.usable():
            raise _unauthorized("This key has been revoked or has expired")
        route = _route(gw, channel, body["model"], kind)
    except ApiError as e:
        return e.response()
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
            answer = await _upstream_json(gw, route, path, body)
            await _settle(gw, channel, route.model, reserved, answer.get("usage") or _charged(reserved))
            return JSONResponse(answer)
        prepare = gw.workers.prepare_chat if kind == "chat" else gw.workers.prepare_completion

        async def params_on(worker: str) -> tuple[str, dict[str, Any]]:
            return worker, await prepare(worker, body, route.model)

        worker, params = await _on_any_worker(gw, route, params_on)
        # exact upper bound: the templated prompt's tokens plus the completion budget the worker gets
        reserved = await _admit(gw, channel, int(params["_prompt_tokens"]) + int(params["max_new_tokens"]))
        return await _local(gw, channel, route, worker, params, kind, stream, bool(
            (body.get("stream_options") or {}).get("include_usage")), reserved)
    except ApiError as e:
        if reserved is not None:
            await _settle(gw, channel, route.model, reserved, {})
        return e.response()
    except fc.FastChatOpenAIError as e:
        if reserved is not None:
            await _settle(gw, channel, route.model, reserved, {})
        return _engine_error(e).response()
    except Exception:
        if reserved is not None:  # never keep a reservation of a request that was not served
            await _settle(gw, channel, route.model, reserved, {})
        raise


def _engine_error(e: fc.FastChatOpenAIError) -> ApiError:
    if isinstance(e, fc.WorkerUnavailable):
        return ApiError(503, "No healthy worker could serve this model; try again", "server_error",
                        "no_healthy_worker")
    if isinstance(e, fc.InvalidRequest | fc.UnsupportedTemplate):
        return ApiError(400, str(e.message if hasattr(e, "message") else e), "invalid_request_error",
                        "invalid_request")
    return ApiError(502, "The model worker failed to answer", "server_error", "worker_error")


async def _on_any_worker(gw: Gateway, route: Route, call: Any) -> Any:
    """``call(worker)`` on the next worker; on a connection failure, on the next one (nothing was sent back
    yet, so a retry is safe)."""
    last: Exception | None = None
    for worker in gw.routes.workers_in_order(route):
        try:
            return await call(worker)
        except fc.WorkerUnavailable as e:
            last = e
            gw.routes.poke()  # the health monitor will have news; refresh soon
    raise last or fc.WorkerUnavailable(route.model, "no worker")


async def _local(gw: Gateway, channel: ChannelSnapshot, route: Route, worker: str, params: dict[str, Any],
                 kind: str, stream: bool, include_usage: bool, reserved: Decision) -> Response:
    if not stream:
        try:
            result = await gw.workers.generate(worker, params)
        except fc.WorkerUnavailable:
            # it went away since the prompt was prepared (nothing was answered yet): the next replica
            others = [w for w in gw.routes.workers_in_order(route) if w != worker]
            if not others:
                raise
            result = await _on_any_worker(gw, Route(route.model, route.model_type, True, tuple(others)),
                                          lambda w: gw.workers.generate(w, params))
        answer = (fc.chat_completion if kind == "chat" else fc.completion)(route.model, result)
        await _settle(gw, channel, route.model, reserved, answer["usage"])
        return JSONResponse(answer)

    pieces = fc.stream_pieces(gw.workers.generate_stream(worker, params))
    try:
        first = await anext(pieces)  # a worker that fails before its first byte is still an HTTP error
    except StopAsyncIteration:
        first = fc.StreamPiece("", "stop", {})
    request_id = fc.new_id("chatcmpl" if kind == "chat" else "cmpl")

    async def events() -> AsyncIterator[bytes]:
        usage: dict[str, int] = {}
        try:
            if kind == "chat":
                yield _sse(fc.chat_chunk(route.model, None, request_id, role="assistant"))
            piece: fc.StreamPiece | None = first
            while piece is not None:
                usage = piece.usage or usage
                if kind == "chat":
                    if piece.text:
                        yield _sse(fc.chat_chunk(route.model, piece.text, request_id))
                    if piece.finish_reason is not None:
                        yield _sse(fc.chat_chunk(route.model, None, request_id, piece.finish_reason))
                else:
                    yield _sse(fc.completion_chunk(route.model, piece.text, request_id, piece.finish_reason))
                piece = await anext(pieces, None)
            if include_usage:
                yield _sse({"id": request_id, "object": "chat.completion.chunk" if kind == "chat"
                            else "text_completion", "model": route.model, "choices": [], "usage": usage})
        except fc.FastChatOpenAIError as e:
            failure = _engine_error(e)
            yield _sse({"error": {"message": failure.message, "type": failure.type, "code": failure.code}})
        finally:
            await _settle(gw, channel, route.model, reserved, usage)
        yield _sse("[DONE]")

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _upstream_headers(route: Route) -> dict[str, str]:
    return {"Authorization": f"Bearer {route.credentials}"} if route.credentials else {}


async def _upstream_json(gw: Gateway, route: Route, path: str, body: dict[str, Any]) -> dict[str, Any]:
    try:
        r = await gw.upstream.post(route.base_url.rstrip("/") + path, json=body, headers=_upstream_headers(route))
    except httpx.HTTPError:
        raise ApiError(503, "The model's upstream cannot be reached", "server_error", "upstream_unavailable") from None
    if r.status_code >= 400:
        raise _upstream_failure(r.status_code, r.text)
    try:
        answer = r.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise ApiError(502, "The model's upstream sent an answer that is not a JSON object", "upstream_error",
                       "upstream_error")
    return answer


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


async def _upstream_stream(gw: Gateway, channel: ChannelSnapshot, route: Route, path: str, body: dict[str, Any],
                           reserved: Decision, *, forward_usage: bool) -> Response:
    request = gw.upstream.build_request("POST", route.base_url.rstrip("/") + path, json=body,
                                        headers=_upstream_headers(route))
    try:
        response = await gw.upstream.send(request, stream=True)
    except httpx.HTTPError:
        raise ApiError(503, "The model's upstream cannot be reached", "server_error", "upstream_unavailable") from None
    if response.status_code >= 400:
        text = (await response.aread()).decode(errors="replace")
        await response.aclose()
        raise _upstream_failure(response.status_code, text)

    async def passthrough() -> AsyncIterator[bytes]:
        usage: dict[str, int] = {}
        skip_blank = False
        try:
            async for line in response.aiter_lines():
                if skip_blank and not line:
                    skip_blank = False
                    continue
                if line.startswith("data: {") and '"usage"' in line:
                    try:
                        event = json.loads(line[6:])
                    except ValueError:
                        event = {}
                    usage = event.get("usage") or usage
                    if not forward_usage and not event.get("choices"):
                        skip_blank = True  # the usage-only chunk we asked for, not the client
                        continue
                yield (line + "\n").encode()
        finally:
            await response.aclose()
            await _settle(gw, channel, route.model, reserved, usage or _charged(reserved))

    return StreamingResponse(passthrough(), media_type="text/event-stream")
