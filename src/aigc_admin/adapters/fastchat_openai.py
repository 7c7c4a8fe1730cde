"""OpenAI chat/completions/embeddings straight to FastChat model workers, without openai_api_server.

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

import json
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import httpx

WORKER_API_TIMEOUT = 100.0  # FastChat's FASTCHAT_WORKER_API_TIMEOUT default
EMBEDDING_BATCH_SIZE = 4  # FastChat's FASTCHAT_WORKER_API_EMBEDDING_BATCH_SIZE default
UNBOUNDED_MAX_TOKENS = 1024 * 1024  # openai_api_server's stand-in for "max_tokens not set"
DEFAULT_MAX_NEW_TOKENS = 256  # the worker's own default, used when the context length is unknown

CHAT_DEFAULTS: dict[str, Any] = {
    "temperature": 0.7, "top_p": 1.0, "top_k": -1, "presence_penalty": 0.0, "frequency_penalty": 0.0,
}
COMPLETION_DEFAULTS: dict[str, Any] = {**CHAT_DEFAULTS, "max_tokens": 16}


class ErrorCode(IntEnum):
    """FastChat's error codes (``fastchat/constants.py``), as workers put them in ``error_code``."""

    VALIDATION_TYPE_ERROR = 40001
    INVALID_AUTH_KEY = 40101
    INCORRECT_AUTH_KEY = 40102
    NO_PERMISSION = 40103
    INVALID_MODEL = 40301
    PARAM_OUT_OF_RANGE = 40302
    CONTEXT_OVERFLOW = 40303
    RATE_LIMIT = 42901
    QUOTA_EXCEEDED = 42902
    ENGINE_OVERLOADED = 42903
    INTERNAL_ERROR = 50001
    CUDA_OUT_OF_MEMORY = 50002
    GRADIO_REQUEST_ERROR = 50003
    GRADIO_STREAM_UNKNOWN_ERROR = 50004
    CONTROLLER_NO_WORKER = 50005
    CONTROLLER_WORKER_TIMEOUT = 50006


class SeparatorStyle(IntEnum):
    """``fastchat.conversation.SeparatorStyle`` (0.2.36): same names, same values (1..19)."""

    ADD_COLON_SINGLE = 1
    ADD_COLON_TWO = 2
    ADD_COLON_SPACE_SINGLE = 3
    NO_COLON_SINGLE = 4
    NO_COLON_TWO = 5
    ADD_NEW_LINE_SINGLE = 6
    LLAMA2 = 7
    CHATGLM = 8
    CHATML = 9
    CHATINTERN = 10
    DOLLY = 11
    RWKV = 12
    PHOENIX = 13
    ROBIN = 14
    FALCON_CHAT = 15
    CHATGLM3 = 16
    DEEPSEEK_CHAT = 17
    METAMATH = 18
    YUAN2 = 19


UNSUPPORTED_STYLES = frozenset({SeparatorStyle.RWKV, SeparatorStyle.YUAN2})


# --------------------------------------------------------------------------------------------- errors


class FastChatOpenAIError(Exception):
    """Base: ``code`` (FastChat's ErrorCode) and ``status_code`` for the gateway's HTTP answer."""

    status_code = 500
    error_type = "server_error"

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = int(code)
        self.message = message

    def to_openai(self) -> dict[str, Any]:
        """The OpenAI error body: ``{"error": {"message", "type", "param", "code"}}``."""
        return {"error": {"message": self.message, "type": self.error_type, "param": None, "code": self.code}}


class InvalidRequest(FastChatOpenAIError):
    """The OpenAI request cannot be served as asked (out-of-range parameter, ``n > 1``, images...)."""

    status_code = 400
    error_type = "invalid_request_error"

    def __init__(self, message: str, code: int = ErrorCode.PARAM_OUT_OF_RANGE) -> None:
        super().__init__(code, message)


class ContextOverflow(InvalidRequest):
    """The prompt leaves no room to generate in the model's context."""

    def __init__(self, context_length: int, prompt_tokens: int) -> None:
        super().__init__(
            f"This model's maximum context length is {context_length} tokens. However, your messages "
            f"resulted in {prompt_tokens} tokens. Please reduce the length of the messages.",
            ErrorCode.CONTEXT_OVERFLOW,
        )
        self.context_length = context_length
        self.prompt_tokens = prompt_tokens


class UnsupportedTemplate(FastChatOpenAIError):
    """The worker's conversation template has a separator style this port does not render."""

    def __init__(self, name: str, sep_style: object) -> None:
        try:
            style = SeparatorStyle(sep_style).name  # type: ignore[arg-type]
        except (ValueError, TypeError):
            style = repr(sep_style)
        super().__init__(
            ErrorCode.INTERNAL_ERROR,
            f"conversation template {name!r} uses separator style {style}, which the gateway cannot render "
            f"(supported: {', '.join(s.name for s in SeparatorStyle if s not in UNSUPPORTED_STYLES)})",
        )
        self.name = name
        self.sep_style = sep_style


class WorkerError(FastChatOpenAIError):
    """The worker answered with ``error_code != 0``, a non-200 status, or a body that is not FastChat's."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, message)
        self.status_code = 400 if 40000 <= self.code < 50000 else 500


class WorkerUnavailable(WorkerError):
    """The worker could not be reached (refused, reset, timed out)."""

    def __init__(self, worker: str, reason: str) -> None:
        super().__init__(ErrorCode.CONTROLLER_WORKER_TIMEOUT, f"model worker {worker} unavailable: {reason}")
        self.status_code = 503
        self.worker = worker


# ------------------------------------------------------------------------------------- conversation


@dataclass(slots=True)
class ConvTemplate:
    """A worker's conversation template (the ``conv`` of ``/worker_get_conv_template``)."""

    name: str
    system_template: str = "{system_message}"
    system_message: str = ""
    roles: tuple[str, ...] = ("USER", "ASSISTANT")  # user, assistant (some templates list a third: unused)
    messages: list[tuple[str, str | None]] = field(default_factory=list)
    offset: int = 0
    sep_style: SeparatorStyle = SeparatorStyle.ADD_COLON_SINGLE
    sep: str = "\n"
    sep2: str | None = None
    stop_str: str | list[str] | None = None
    stop_token_ids: list[int] | None = None

    @classmethod
    def from_json(cls, conv: Mapping[str, Any]) -> ConvTemplate:
        """Parse the worker's JSON (accepts the ``{"conv": {...}}`` wrapper too)."""
        if "conv" in conv and isinstance(conv["conv"], Mapping):
            conv = conv["conv"]
        name = str(conv.get("name", ""))
        raw_style = conv.get("sep_style")
        try:
            style = SeparatorStyle(int(raw_style))  # type: ignore[arg-type]
        except (ValueError, TypeError):
            raise UnsupportedTemplate(name, raw_style) from None
        if style in UNSUPPORTED_STYLES:
            raise UnsupportedTemplate(name, style)
        roles = tuple(conv.get("roles") or ("USER", "ASSISTANT"))
        if len(roles) < 2:
            raise UnsupportedTemplate(name, f"{style.name} with roles {roles!r}")
        messages: list[tuple[str, str | None]] = []
        for item in conv.get("messages") or ():
            role, text = item[0], item[1]
            if isinstance(text, list | tuple):  # a (text, images) few-shot message: keep the text
                text = text[0]
            messages.append((str(role), text))
        stop_str = conv.get("stop_str")
        stop_ids = conv.get("stop_token_ids")
        return cls(
            name=name,
            system_template=str(conv.get("system_template", "{system_message}")),
            system_message=str(conv.get("system_message") or ""),
            roles=tuple(str(r) for r in roles),
            messages=messages,
            offset=int(conv.get("offset") or 0),
            sep_style=style,
            sep=str(conv.get("sep", "\n")),
            sep2=conv.get("sep2"),
            stop_str=list(stop_str) if isinstance(stop_str, list | tuple) else stop_str,
            stop_token_ids=[int(t) for t in stop_ids] if stop_ids is not None else None,
        )

    def get_prompt(self) -> str:
        """``Conversation.get_prompt`` of FastChat 0.2.36, style by style."""
        system_prompt = self.system_template.format(system_message=self.system_message)
        style, sep, sep2 = self.sep_style, self.sep, self.sep2 or ""
        seps = [sep, sep2]
        msgs = self.messages
        ret = ""
        if style in (SeparatorStyle.ADD_COLON_SINGLE, SeparatorStyle.ADD_COLON_TWO):
            ret = system_prompt + sep
            for i, (role, message) in enumerate(msgs):
                end = seps[i % 2] if style == SeparatorStyle.ADD_COLON_TWO else sep
                ret += f"{role}: {message}{end}" if message else f"{role}:"
        elif style == SeparatorStyle.ADD_COLON_SPACE_SINGLE:
            ret = system_prompt + sep
            for role, message in msgs:
                ret += f"{role}: {message}{sep}" if message else f"{role}: "
        elif style == SeparatorStyle.ADD_NEW_LINE_SINGLE:
            ret = "" if system_prompt == "" else system_prompt + sep
            for role, message in msgs:
                ret += f"{role}\n{message}{sep}" if message else f"{role}\n"
        elif style in (SeparatorStyle.NO_COLON_SINGLE, SeparatorStyle.NO_COLON_TWO):
            ret = system_prompt
            for i, (role, message) in enumerate(msgs):
                end = seps[i % 2] if style == SeparatorStyle.NO_COLON_TWO else sep
                ret += f"{role}{message}{end}" if message else role
        elif style == SeparatorStyle.LLAMA2:
            ret = system_prompt if self.system_message else "[INST] "
            for i, (_, message) in enumerate(msgs):
                tag = self.roles[i % 2]
                if message:
                    ret += message + " " if i == 0 else f"{tag} {message}{seps[i % 2]}"
                else:
                    ret += tag
        elif style == SeparatorStyle.CHATGLM:
            round_add_n = 1 if self.name == "chatglm2" else 0
            ret = system_prompt + sep if system_prompt else ""
            for i, (role, message) in enumerate(msgs):
                if i % 2 == 0:
                    ret += f"[Round {i // 2 + round_add_n}]{sep}"
                ret += f"{role}：{message}{sep}" if message else f"{role}："
        elif style == SeparatorStyle.CHATML:
            ret = "" if system_prompt == "" else system_prompt + sep + "\n"
            for role, message in msgs:
                ret += f"{role}\n{message}{sep}\n" if message else f"{role}\n"
        elif style == SeparatorStyle.CHATGLM3:
            ret = system_prompt if self.system_message else ""
            for role, message in msgs:
                ret += f"{role}\n{message}" if message else role
        elif style == SeparatorStyle.CHATINTERN:
            ret = system_prompt
            for i, (role, message) in enumerate(msgs):
                if i % 2 == 0:
                    ret += "<s>"
                ret += f"{role}:{message}{seps[i % 2]}\n" if message else f"{role}:"
        elif style == SeparatorStyle.DOLLY:
            ret = system_prompt
            for i, (role, message) in enumerate(msgs):
                if message:
                    ret += f"{role}:\n{message}{seps[i % 2]}" + ("\n\n" if i % 2 == 1 else "")
                else:
                    ret += f"{role}:\n"
        elif style == SeparatorStyle.PHOENIX:
            ret = system_prompt
            for role, message in msgs:
                ret += f"{role}: <s>{message}</s>" if message else f"{role}: <s>"
        elif style == SeparatorStyle.ROBIN:
            ret = system_prompt + sep
            for role, message in msgs:
                ret += f"{role}:\n{message}{sep}" if message else f"{role}:\n"
        elif style == SeparatorStyle.FALCON_CHAT:
            ret = system_prompt + sep if self.system_message else ""
            for role, message in msgs:
                ret += f"{role}: {message}{sep}" if message else f"{role}:"
        elif style == SeparatorStyle.METAMATH:
            ret = "" if system_prompt == "" else system_prompt + sep
            for i, (role, message) in enumerate(msgs):
                starting_sep = ":\n" if i % 2 == 0 else ": " + sep2
                ending_sep = sep if i % 2 == 0 else ""
                ret += role + starting_sep + (message + ending_sep if message else "")
        elif style == SeparatorStyle.DEEPSEEK_CHAT:
            ret = system_prompt
            for i, (role, message) in enumerate(msgs):
                ret += f"{role}: {message}{seps[i % 2]}" if message else f"{role}:"
        else:
            raise UnsupportedTemplate(self.name, style)
        return ret

    def stop(self) -> list[str] | None:
        if not self.stop_str:
            return None
        return [self.stop_str] if isinstance(self.stop_str, str) else list(self.stop_str)

    def to_openai_api_messages(self) -> list[dict[str, str]]:
        """``Conversation.to_openai_api_messages``: the template's own turns (after ``offset``)."""
        ret = [{"role": "system", "content": self.system_message}] if self.system_message else []
        for i, (_, msg) in enumerate(self.messages[self.offset:]):
            if i % 2 == 0:
                ret.append({"role": "user", "content": msg or ""})
            elif msg is not None:
                ret.append({"role": "assistant", "content": msg})
        return ret


def _message_text(message: Mapping[str, Any]) -> str | None:
    """An OpenAI message's content as text: a string, or the text parts of a list joined by newlines."""
    content = message.get("content")
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        texts: list[str] = []
        for part in content:
            kind = part.get("type") if isinstance(part, Mapping) else None
            if kind == "text":
                texts.append(str(part.get("text", "")))
            elif kind in ("image_url", "input_image", "image"):
                raise InvalidRequest("image content is not supported by local (FastChat) models")
            else:
                raise InvalidRequest(f"unsupported content part type {kind!r} (only 'text' is)")
        return "\n".join(texts)
    raise InvalidRequest(f"invalid message content of type {type(content).__name__}")


def build_prompt(
    conv: Mapping[str, Any], messages: Sequence[Mapping[str, Any]] | str
) -> tuple[str, list[str] | None, list[int] | None]:
    """The prompt, stop strings and stop token ids FastChat's ``get_gen_params`` builds for ``messages``.

    As FastChat: a ``system`` message replaces the template's system message, ``user`` messages take
    ``roles[0]`` and ``assistant`` ones ``roles[1]`` (alternation is not checked: FastChat renders what
    it is given), then an empty assistant turn is appended. A string ``messages`` is the prompt as is.
    List contents are joined text parts; images raise :class:`InvalidRequest`; other roles too.
    """
    template = ConvTemplate.from_json(conv)
    if isinstance(messages, str):
        return messages, template.stop(), template.stop_token_ids
    if not messages:
        raise InvalidRequest("'messages' must not be empty", ErrorCode.VALIDATION_TYPE_ERROR)
    for message in messages:
        role = message.get("role")
        text = _message_text(message)
        if role in ("system", "developer"):
            template.system_message = text or ""
        elif role == "user":
            template.messages.append((template.roles[0], text))
        elif role == "assistant":
            template.messages.append((template.roles[1], text))
        else:
            raise InvalidRequest(f"unsupported message role {role!r} (system, user and assistant are)")
    template.messages.append((template.roles[1], None))
    return template.get_prompt(), template.stop(), template.stop_token_ids


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


def chat_params(request: Mapping[str, Any], conv: Mapping[str, Any], model: str) -> dict[str, Any]:
    """gen_params for an OpenAI chat completion request, as openai_api_server's ``get_gen_params``.

    ``max_new_tokens`` is the request's ``max_tokens`` (``None`` if unset): pass the result through
    :func:`fit_max_new_tokens` (or use :meth:`WorkerClient.prepare_chat`) before sending it.
    """
    _check(request, CHAT_DEFAULTS)
    messages = request.get("messages")
    if not isinstance(messages, list | str):
        raise InvalidRequest("'messages' must be a list of messages", ErrorCode.VALIDATION_TYPE_ERROR)
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


def _raise_for_error(result: Mapping[str, Any]) -> None:
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
    _raise_for_error(result)
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
    _raise_for_error(result)
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
    _raise_for_error(result)
    tokens = int(result.get("token_num") or 0)
    return {
        "object": "list",
        "data": [{"object": "embedding", "embedding": e, "index": i} for i, e in enumerate(result["embedding"])],
        "model": model,
        "usage": {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens},
    }


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
        _raise_for_error(chunk)
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
        _raise_for_error(body)
        try:
            return int(body["count"])
        except (KeyError, TypeError, ValueError):
            raise WorkerError(ErrorCode.INTERNAL_ERROR, f"{worker}/count_token: {body!r}") from None

    async def prepare_chat(self, worker: str, request: Mapping[str, Any], model: str) -> dict[str, Any]:
        """Template + :func:`chat_params` + :func:`fit_max_new_tokens` (two worker calls the first time, then one)."""
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
        _raise_for_error(body)
        return body

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
                            _raise_for_error(chunk)
                            yield chunk
                if buffer.strip():  # an unterminated last chunk: accept it
                    chunk = _decode_chunk(buffer, url)
                    _raise_for_error(chunk)
                    yield chunk
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
            _raise_for_error(body)
            got = body.get("embedding")
            if not isinstance(got, list) or len(got) != len(batch):
                raise WorkerError(ErrorCode.INTERNAL_ERROR,
                                  f"{worker}/worker_get_embeddings: {len(batch)} inputs, answer {str(body)[:200]}")
            vectors.extend(got)
            token_num += int(body.get("token_num") or 0)
        return {"embedding": vectors, "token_num": token_num}


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
