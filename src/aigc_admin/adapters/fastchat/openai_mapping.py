"""OpenAI requests and responses ↔ FastChat worker parameters and results (without openai_api_server).

A port of what FastChat 0.2.36's ``fastchat/serve/openai_api_server.py`` does between an OpenAI request
and a model worker, for the gateway to call workers itself. FastChat lives in the engine venv, never in
the platform's, so nothing here imports it: the worker's wire contract is spoken over HTTP and
``Conversation.get_prompt`` (``fastchat/conversation.py``) is ported.

Worker endpoints (all ``POST``, JSON bodies; ``fastchat/serve/base_model_worker.py``):

* ``/worker_get_conv_template`` → ``{"conv": {name, system_template, system_message, roles, messages,
  offset, sep_style, sep, sep2, stop_str, stop_token_ids}}``: the worker's ``Conversation`` as
  FastAPI encodes it (``sep_style`` the int value of ``SeparatorStyle``; ``messages`` few-shot
  ``[role, text]`` pairs; ``stop_str`` ``None``, a string or a list).
* ``/model_details`` → ``{"context_length": n}``; ``/count_token`` ``{"prompt"}`` → ``{"count", "error_code"}``.
* ``/worker_generate`` gen_params → one JSON object ``{"text", "error_code", "usage", "finish_reason",
  "logprobs"}``; ``/worker_generate_stream`` → the same objects, each followed by ``b"\\0"``, where
  ``text`` is the *cumulative* output so far (deltas are computed here, as openai_api_server does).
* ``/worker_get_embeddings`` ``{"model", "input": [str], "encoding_format"}`` →
  ``{"embedding": [[float]] | [base64], "token_num": n}``, or ``{"text", "error_code"}``.

gen_params the worker reads (``fastchat/serve/inference.py``): ``prompt``, ``temperature`` (< 1e-5:
greedy), ``top_p``, ``top_k`` (-1: off), ``repetition_penalty``, ``max_new_tokens``, ``echo``
(**defaults to True** in the worker: always sent), ``stop`` (str or list), ``stop_token_ids``,
``logprobs``. A ``null`` ``temperature``/``top_p``/``max_new_tokens`` crashes the worker's generator
(``float(None)``) mid-stream, so unset values get FastChat's request defaults here.

Deviation from FastChat, on purpose: the room left for generation is ``context_length - prompt_tokens
- 1`` (FastChat: ``- 0``). The worker keeps only the last ``context_length - max_new_tokens - 1``
prompt tokens, so FastChat's own value silently drops the prompt's first token (the BOS) whenever
``max_tokens`` is unset or large.
"""


from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from aigc_admin.adapters.fastchat.conversation import ConvTemplate, ModelChatTemplate, build_prompt
from aigc_admin.adapters.fastchat.errors import ContextOverflow, ErrorCode, InvalidRequest, WorkerError

WORKER_API_TIMEOUT = 100.0  # FastChat's FASTCHAT_WORKER_API_TIMEOUT default
EMBEDDING_BATCH_SIZE = 4  # FastChat's FASTCHAT_WORKER_API_EMBEDDING_BATCH_SIZE default
UNBOUNDED_MAX_TOKENS = 1024 * 1024  # openai_api_server's stand-in for "max_tokens not set"
DEFAULT_MAX_NEW_TOKENS = 256  # the worker's own default, used when the context length is unknown

CHAT_DEFAULTS: dict[str, Any] = {
    "temperature": 0.7, "top_p": 1.0, "top_k": -1, "presence_penalty": 0.0, "frequency_penalty": 0.0,
}
COMPLETION_DEFAULTS: dict[str, Any] = {**CHAT_DEFAULTS, "max_tokens": 16}


# ------------------------------------------------------------------------------------------ requests


def _number(request: Mapping[str, Any], name: str, defaults: Mapping[str, Any]) -> Any:
    value = request.get(name)
    return defaults.get(name) if value is None else value


def _check(request: Mapping[str, Any], defaults: Mapping[str, Any]) -> None:
    """openai_api_server's ``check_requests``, plus ``n > 1`` (not served here)."""
    max_tokens = _max_tokens(request, defaults)
    if max_tokens is not None and max_tokens <= 0:
        raise InvalidRequest(f"{max_tokens} is less than the minimum of 1 - 'max_tokens'")
    n = request.get("n")
    if n is not None and (not isinstance(n, int) or n <= 0):
        raise InvalidRequest(f"{n} is less than the minimum of 1 - 'n'")
    if n is not None and n > 1:
        raise InvalidRequest(f"n={n} is not supported for local models: only n=1")
    if request.get("best_of") not in (None, 1):
        raise InvalidRequest("best_of is not supported for local models")
    temperature = _number(request, "temperature", defaults)
    if not isinstance(temperature, int | float) or not 0 <= temperature <= 2:
        raise InvalidRequest(f"{temperature} is out of range [0, 2] - 'temperature'")
    top_p = _number(request, "top_p", defaults)
    if not isinstance(top_p, int | float) or not 0 <= top_p <= 1:
        raise InvalidRequest(f"{top_p} is out of range [0, 1] - 'top_p'")
    top_k = _number(request, "top_k", defaults)
    if not isinstance(top_k, int) or -1 < top_k < 1:
        raise InvalidRequest(f"{top_k} is out of Range. Either set top_k to -1 or >=1.")
    stop = request.get("stop")
    if stop is not None and not (isinstance(stop, str) or (isinstance(stop, list) and all(
            isinstance(s, str) for s in stop))):
        raise InvalidRequest(f"{stop} is not valid under any of the given schemas - 'stop'")


def _max_tokens(request: Mapping[str, Any], defaults: Mapping[str, Any]) -> int | None:
    value = request.get("max_tokens")
    if value is None:
        value = request.get("max_completion_tokens")  # the newer OpenAI name
    if value is None:
        value = defaults.get("max_tokens")
    if value is not None and not isinstance(value, int):
        raise InvalidRequest(f"{value!r} is not an integer - 'max_tokens'")
    return value


def _stops(*groups: str | Sequence[str] | None) -> list[str]:
    """FastChat merges request and template stops in a set; here in order, deduplicated, no empties."""
    out: list[str] = []
    for group in groups:
        for s in [group] if isinstance(group, str) else group or ():
            if s and s not in out:
                out.append(s)
    return out


def _gen_params(
    model: str, prompt: str, request: Mapping[str, Any], defaults: Mapping[str, Any], *,
    echo: bool, logprobs: int | None, stop: list[str], stop_token_ids: list[int] | None,
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "model": model,
        "prompt": prompt,
        "temperature": _number(request, "temperature", defaults),
        "logprobs": logprobs,
        "top_p": _number(request, "top_p", defaults),
        "top_k": _number(request, "top_k", defaults),
        "presence_penalty": _number(request, "presence_penalty", defaults),
        "frequency_penalty": _number(request, "frequency_penalty", defaults),
        "max_new_tokens": _max_tokens(request, defaults),
        "echo": echo,
        "stop_token_ids": stop_token_ids,
        "stop": stop,
    }
    if request.get("repetition_penalty") is not None:  # FastChat's /api/v1 extension
        params["repetition_penalty"] = request["repetition_penalty"]
    return params


def chat_params(request: Mapping[str, Any], conv: Mapping[str, Any] | None, model: str,
                template: ModelChatTemplate | None = None) -> dict[str, Any]:
    """gen_params for an OpenAI chat completion request, as openai_api_server's ``get_gen_params``: the prompt from
    the model's own chat ``template`` when it has one, else from the worker's conversation template ``conv``.

    ``max_new_tokens`` is the request's ``max_tokens`` (``None`` if unset): pass the result through
    :func:`fit_max_new_tokens` (or use :meth:`WorkerClient.prepare_chat`) before sending it.
    """
    _check(request, CHAT_DEFAULTS)
    messages = request.get("messages")
    if not isinstance(messages, list | str):
        raise InvalidRequest("'messages' must be a list of messages", ErrorCode.VALIDATION_TYPE_ERROR)
    if template is not None and isinstance(messages, list):
        # the worker stops at the tokenizer's end-of-sequence token by itself
        prompt, conv_stop, stop_token_ids = template.render(messages), None, None
    else:
        assert conv is not None
        prompt, conv_stop, stop_token_ids = build_prompt(conv, messages)
    return _gen_params(
        model, prompt, request, CHAT_DEFAULTS, echo=False, logprobs=None,
        stop=_stops(request.get("stop"), conv_stop), stop_token_ids=stop_token_ids,
    )


def completion_prompt(request: Mapping[str, Any]) -> str:
    """The one text prompt of an OpenAI completion request (a string or a one-string list)."""
    prompt = request.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        raise InvalidRequest("only one prompt per request is supported for local models")
    raise InvalidRequest("'prompt' must be a string (token arrays are not supported for local models)")


def completion_params(
    request: Mapping[str, Any], model: str, conv: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """gen_params for an OpenAI (legacy) completion request; ``conv`` adds its stop strings/token ids
    as FastChat does. ``max_new_tokens`` defaults to 16 (OpenAI's and FastChat's default)."""
    _check(request, COMPLETION_DEFAULTS)
    if request.get("suffix"):
        raise InvalidRequest("suffix is not supported for local models")
    logprobs = request.get("logprobs")
    if logprobs is not None and (not isinstance(logprobs, int) or isinstance(logprobs, bool) or logprobs < 0):
        raise InvalidRequest(f"{logprobs!r} is not a valid 'logprobs'")
    template = ConvTemplate.from_json(conv) if conv is not None else None
    return _gen_params(
        model, completion_prompt(request), request, COMPLETION_DEFAULTS,
        echo=bool(request.get("echo") or False), logprobs=logprobs,
        stop=_stops(request.get("stop"), template.stop() if template else None),
        stop_token_ids=template.stop_token_ids if template else None,
    )


def fit_max_new_tokens(params: dict[str, Any], context_length: int | None, prompt_tokens: int | None) -> dict[str, Any]:
    """``max_new_tokens`` bounded by the room the context leaves (openai_api_server's ``check_length``).

    Unset ``max_new_tokens`` means "as much as fits". Unknown context → the worker's default (256)
    when unset. Raises :class:`ContextOverflow` when the prompt leaves no room. Returns ``params``.
    """
    requested = params.get("max_new_tokens")
    if context_length is None or prompt_tokens is None:
        if requested is None:
            params["max_new_tokens"] = DEFAULT_MAX_NEW_TOKENS
        return params
    room = context_length - prompt_tokens - 1  # see the module docstring: FastChat has no "- 1"
    if room <= 0:
        raise ContextOverflow(context_length, prompt_tokens)
    params["max_new_tokens"] = min(requested if requested is not None else UNBOUNDED_MAX_TOKENS, room)
    return params


def embedding_inputs(request: Mapping[str, Any]) -> list[str]:
    """An OpenAI embeddings request's ``input`` as texts (token arrays are not supported)."""
    value = request.get("input")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    raise InvalidRequest("'input' must be a string or a non-empty list of strings for local models")


# ----------------------------------------------------------------------------------------- responses


def new_id(prefix: str) -> str:
    """``chatcmpl-…`` / ``cmpl-…`` ids, like FastChat's (shortuuid there, uuid4 hex here)."""
    return f"{prefix}-{uuid.uuid4().hex}"


def raise_for_error(result: Mapping[str, Any]) -> None:
    code = result.get("error_code", 0)
    if code:
        raise WorkerError(int(code), str(result.get("text", "")))


def usage_of(result: Mapping[str, Any]) -> dict[str, int]:
    """OpenAI ``usage`` from a worker's ``usage`` (absent → zeros)."""
    usage = result.get("usage") or {}
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": int(usage.get("total_tokens") or prompt + completion)}


def chat_completion(model: str, result: Mapping[str, Any], request_id: str | None = None) -> dict[str, Any]:
    """A ``chat.completion`` from a ``/worker_generate`` result (raises :class:`WorkerError` on its error)."""
    raise_for_error(result)
    return {
        "id": request_id or new_id("chatcmpl"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": str(result.get("text", ""))},
            "finish_reason": result.get("finish_reason") or "stop",
        }],
        "usage": usage_of(result),
    }


def chat_chunk(
    model: str, delta_text: str | None, request_id: str, finish_reason: str | None = None, *,
    role: str | None = None, usage: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """A ``chat.completion.chunk``: ``role="assistant"`` for the opening one, ``delta_text=None`` for a
    content-less one (the closing one, with ``finish_reason``); ``usage`` adds a ``usage`` member."""
    delta: dict[str, str] = {}
    if role is not None:
        delta["role"] = role
    if delta_text is not None:
        delta["content"] = delta_text
    chunk: dict[str, Any] = {
        "id": request_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }
    if usage is not None:
        chunk["usage"] = dict(usage)
    return chunk


def completion(model: str, result: Mapping[str, Any], request_id: str | None = None) -> dict[str, Any]:
    """A ``text_completion`` from a ``/worker_generate`` result (raises :class:`WorkerError` on its error)."""
    raise_for_error(result)
    return {
        "id": request_id or new_id("cmpl"),
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{
            "index": 0,
            "text": str(result.get("text", "")),
            "logprobs": result.get("logprobs"),
            "finish_reason": result.get("finish_reason") or "stop",
        }],
        "usage": usage_of(result),
    }


def completion_chunk(
    model: str, delta_text: str, request_id: str, finish_reason: str | None = None, *,
    logprobs: Mapping[str, Any] | None = None, usage: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """A streamed ``text_completion`` chunk."""
    chunk: dict[str, Any] = {
        "id": request_id,
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "text": delta_text, "logprobs": logprobs, "finish_reason": finish_reason}],
    }
    if usage is not None:
        chunk["usage"] = dict(usage)
    return chunk


def embedding_response(model: str, result: Mapping[str, Any]) -> dict[str, Any]:
    """The OpenAI embeddings list from a ``/worker_get_embeddings`` result (``embedding``, ``token_num``)."""
    raise_for_error(result)
    tokens = int(result.get("token_num") or 0)
    return {
        "object": "list",
        "data": [{"object": "embedding", "embedding": e, "index": i} for i, e in enumerate(result["embedding"])],
        "model": model,
        "usage": {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens},
    }
