"""The client of FastChat model workers (``/worker_*``): templates, token counts, generation (whole and
streamed), embeddings; worker streams turned into text deltas."""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from aigc_admin.adapters.fastchat.conversation import ModelChatTemplate
from aigc_admin.adapters.fastchat.errors import ErrorCode, InvalidRequest, WorkerError, WorkerUnavailable
from aigc_admin.adapters.fastchat.openai_mapping import (
    EMBEDDING_BATCH_SIZE,
    WORKER_API_TIMEOUT,
    chat_params,
    completion_params,
    fit_max_new_tokens,
    raise_for_error,
    usage_of,
)


@dataclass(slots=True)
class CumulativeText:
    """Deltas from the worker's cumulative ``text``, as openai_api_server computes them: U+FFFD (a
    partial UTF-8 character) is dropped and the text seen only grows."""

    text: str = ""

    def delta(self, cumulative: str) -> str:
        decoded = cumulative.replace("\ufffd", "")
        out = decoded[len(self.text):]
        if len(decoded) > len(self.text):
            self.text = decoded
        return out


@dataclass(frozen=True, slots=True)
class StreamPiece:
    """One step of a stream: new text (maybe ``""`` on the last), ``finish_reason`` on the last, usage so far."""

    text: str
    finish_reason: str | None
    usage: dict[str, int]
    logprobs: Mapping[str, Any] | None = None


async def stream_pieces(chunks: AsyncIterator[dict[str, Any]]) -> AsyncGenerator[StreamPiece, None]:
    """Worker stream chunks → text deltas. Chunks adding no text are skipped unless they carry the
    ``finish_reason`` (FastChat's rule); an error chunk raises :class:`WorkerError`."""
    seen = CumulativeText()
    async for chunk in chunks:
        raise_for_error(chunk)
        delta = seen.delta(str(chunk.get("text", "")))
        finish = chunk.get("finish_reason")
        if delta or finish is not None:
            yield StreamPiece(delta, finish, usage_of(chunk), chunk.get("logprobs"))


# ------------------------------------------------------------------------------------------- client


class WorkerClient:
    """Async client of FastChat model workers (``/worker_*``), on a caller-owned ``httpx.AsyncClient``.

    Conversation templates and context lengths are cached per worker address for the life of this
    object (:meth:`forget` drops a worker's entries, e.g. once it is replaced).
    """

    def __init__(self, client: httpx.AsyncClient, *, timeout: float = WORKER_API_TIMEOUT) -> None:
        self._client = client
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        self._convs: dict[str, dict[str, Any]] = {}
        self._context: dict[str, int] = {}

    @staticmethod
    def _base(worker: str) -> str:
        return worker.rstrip("/")

    def forget(self, worker: str) -> None:
        self._convs.pop(self._base(worker), None)
        self._context.pop(self._base(worker), None)

    async def _post(self, worker: str, path: str, payload: Mapping[str, Any]) -> Any:
        url = self._base(worker) + path
        try:
            response = await self._client.post(url, json=payload, timeout=self._timeout)
        except httpx.TransportError as exc:
            raise WorkerUnavailable(worker, f"{type(exc).__name__}: {exc}") from exc
        return _json_body(response, url)

    async def queue_length(self, worker: str) -> int | None:
        """The requests the worker is running or holding (``worker_get_status``); None when it does not answer."""
        try:
            response = await self._client.post(self._base(worker) + "/worker_get_status", json={}, timeout=2.0)
            return int(response.json()["queue_length"]) if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return None

    async def conv_template(self, worker: str, model: str | None = None) -> dict[str, Any]:
        """The worker's conversation template (the inner ``conv`` object), cached per worker."""
        base = self._base(worker)
        if base not in self._convs:
            body = await self._post(base, "/worker_get_conv_template", {"model": model})
            if not isinstance(body, dict) or not isinstance(body.get("conv"), dict):
                raise WorkerError(ErrorCode.INTERNAL_ERROR, f"{base}/worker_get_conv_template: no 'conv' in {body!r}")
            self._convs[base] = body["conv"]
        return self._convs[base]

    async def context_length(self, worker: str, model: str | None = None) -> int:
        """``/model_details``' ``context_length``, cached per worker."""
        base = self._base(worker)
        if base not in self._context:
            body = await self._post(base, "/model_details", {"model": model})
            try:
                self._context[base] = int(body["context_length"])
            except (KeyError, TypeError, ValueError):
                raise WorkerError(ErrorCode.INTERNAL_ERROR, f"{base}/model_details: {body!r}") from None
        return self._context[base]

    async def count_tokens(self, worker: str, prompt: str, model: str | None = None) -> int:
        body = await self._post(worker, "/count_token", {"model": model, "prompt": prompt})
        raise_for_error(body)
        try:
            return int(body["count"])
        except (KeyError, TypeError, ValueError):
            raise WorkerError(ErrorCode.INTERNAL_ERROR, f"{worker}/count_token: {body!r}") from None

    async def prepare_chat(self, worker: str, request: Mapping[str, Any], model: str,
                           chat_template: str = "") -> dict[str, Any]:
        """Template + :func:`chat_params` + :func:`fit_max_new_tokens` (two worker calls the first time, then one).
        ``chat_template``: the model's own (JSON, as registered); without it, the worker's conversation template."""
        if chat_template:
            params = chat_params(request, None, model, _model_template(chat_template))
        else:
            params = chat_params(request, await self.conv_template(worker, model), model)
        return await self._fit(worker, params, model)

    async def prepare_completion(self, worker: str, request: Mapping[str, Any], model: str) -> dict[str, Any]:
        """Template + :func:`completion_params` + :func:`fit_max_new_tokens`."""
        params = completion_params(request, model, await self.conv_template(worker, model))
        return await self._fit(worker, params, model)

    async def _fit(self, worker: str, params: dict[str, Any], model: str) -> dict[str, Any]:
        context = await self.context_length(worker, model)
        tokens = await self.count_tokens(worker, params["prompt"], model)
        params["_prompt_tokens"] = tokens  # for the caller's token reservation; never sent to the worker
        return fit_max_new_tokens(params, context, tokens)

    @staticmethod
    def _payload(params: Mapping[str, Any]) -> dict[str, Any]:
        payload = {k: v for k, v in params.items() if not k.startswith("_") and not (
            v is None and k in ("max_new_tokens", "temperature", "top_p", "top_k"))}
        payload.setdefault("echo", False)  # the worker's default is True
        return payload

    async def generate(self, worker: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """``/worker_generate``: the final ``{"text", "usage", "finish_reason", ...}`` (errors raise)."""
        body = await self._post(worker, "/worker_generate", self._payload(params))
        if not isinstance(body, dict):
            raise WorkerError(ErrorCode.INTERNAL_ERROR, f"{worker}/worker_generate: {body!r}")
        raise_for_error(body)
        return counted(body, params)

    async def generate_stream(self, worker: str, params: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """``/worker_generate_stream``: each ``\\0``-terminated JSON chunk as soon as it arrives.

        ``text`` in each is cumulative (see :func:`stream_pieces`). An error chunk raises
        :class:`WorkerError` after the chunks before it were yielded.
        """
        url = self._base(worker) + "/worker_generate_stream"
        try:
            async with self._client.stream("POST", url, json=self._payload(params), timeout=self._timeout) as response:
                if response.status_code != 200:
                    await response.aread()
                    _json_body(response, url)  # raises
                buffer = b""
                async for raw in response.aiter_bytes():
                    buffer += raw
                    while (end := buffer.find(b"\0")) >= 0:
                        piece, buffer = buffer[:end], buffer[end + 1:]
                        if piece.strip():
                            chunk = _decode_chunk(piece, url)
                            raise_for_error(chunk)
                            yield counted(chunk, params)
                if buffer.strip():  # an unterminated last chunk: accept it
                    chunk = _decode_chunk(buffer, url)
                    raise_for_error(chunk)
                    yield counted(chunk, params)
        except httpx.TransportError as exc:
            raise WorkerUnavailable(worker, f"{type(exc).__name__}: {exc}") from exc

    async def embeddings(
        self, worker: str, inputs: Sequence[str], *, model: str | None = None,
        encoding_format: str | None = None, batch_size: int = EMBEDDING_BATCH_SIZE,
    ) -> dict[str, Any]:
        """``/worker_get_embeddings`` in batches of ``batch_size`` (as openai_api_server), merged:
        ``{"embedding": [...], "token_num": n}`` in input order."""
        if not inputs:
            raise InvalidRequest("no input to embed")
        vectors: list[Any] = []
        token_num = 0
        for start in range(0, len(inputs), batch_size):
            batch = list(inputs[start:start + batch_size])
            body = await self._post(
                worker, "/worker_get_embeddings", {"model": model, "input": batch, "encoding_format": encoding_format}
            )
            if not isinstance(body, dict):
                raise WorkerError(ErrorCode.INTERNAL_ERROR, f"{worker}/worker_get_embeddings: {body!r}")
            raise_for_error(body)
            got = body.get("embedding")
            if not isinstance(got, list) or len(got) != len(batch):
                raise WorkerError(ErrorCode.INTERNAL_ERROR,
                                  f"{worker}/worker_get_embeddings: {len(batch)} inputs, answer {str(body)[:200]}")
            vectors.extend(got)
            token_num += int(body.get("token_num") or 0)
        return {"embedding": vectors, "token_num": token_num}


@functools.lru_cache(maxsize=256)
def _model_template(text: str) -> ModelChatTemplate:
    return ModelChatTemplate.from_json(text)  # compiled once per template, not per request


def counted(result: dict[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """The usage of a result that stopped at ``max_new_tokens``, counted right: FastChat's generate loop reports the
    index of its last token (``max_tokens - 1``: 31 for 32) as ``completion_tokens`` when it runs out. A worker that
    counts right (vLLM) is left as it is."""
    usage = result.get("usage")
    wanted = params.get("max_new_tokens")
    if result.get("finish_reason") == "length" and isinstance(usage, dict) and isinstance(wanted, int):
        completion = int(usage.get("completion_tokens") or 0)
        if completion == wanted - 1:
            prompt = int(usage.get("prompt_tokens") or 0)
            result = {**result, "usage": {**usage, "completion_tokens": wanted, "total_tokens": prompt + wanted}}
    return result


def _json_body(response: httpx.Response, url: str) -> Any:
    if response.status_code != 200:
        detail = response.text[:500]
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("error_code"):
            raise WorkerError(int(body["error_code"]), str(body.get("text", detail)))
        raise WorkerError(ErrorCode.INTERNAL_ERROR, f"{url}: HTTP {response.status_code} {detail}")
    try:
        return response.json()
    except ValueError:
        raise WorkerError(ErrorCode.INTERNAL_ERROR, f"{url}: not JSON: {response.text[:200]!r}") from None


def _decode_chunk(raw: bytes, url: str) -> dict[str, Any]:
    try:
        chunk = json.loads(raw.decode())
    except (UnicodeDecodeError, ValueError):
        raise WorkerError(ErrorCode.INTERNAL_ERROR, f"{url}: bad stream chunk {raw[:200]!r}") from None
    if not isinstance(chunk, dict):
        raise WorkerError(ErrorCode.INTERNAL_ERROR, f"{url}: bad stream chunk {raw[:200]!r}")
    return chunk
