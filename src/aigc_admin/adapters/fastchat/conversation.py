"""How OpenAI chat messages become a prompt: FastChat's prompt building (``fastchat/conversation.py``, ported:
FastChat lives in the engine venv, never in the platform's) from a worker's conversation template, or a model's
own chat template (its tokenizer's Jinja template) when it has one."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from aigc_admin.adapters.fastchat.errors import ErrorCode, FastChatOpenAIError, InvalidRequest


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


# ------------------------------------------------------------------------------------ a model's own template


class ModelChatTemplate:
    """A model's own chat template (the Jinja template of its tokenizer files, as ``apply_chat_template`` renders
    it with ``add_generation_prompt``), in a sandbox: a template is data from the model's files, not code."""

    def __init__(self, template: str, *, bos_token: str = "", eos_token: str = "", add_bos_token: bool = False) -> None:
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(message: str) -> None:
            raise InvalidRequest(f"the model's chat template refused the messages: {message}")

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.globals["raise_exception"] = raise_exception
        self._template = env.from_string(template)
        self.bos_token, self.eos_token = bos_token, eos_token
        # a tokenizer that adds BOS itself would get it twice from a template that writes it too
        self.add_bos_token = add_bos_token

    @classmethod
    def from_json(cls, text: str) -> ModelChatTemplate:
        data = json.loads(text)
        return cls(data["template"], bos_token=data.get("bos_token", ""), eos_token=data.get("eos_token", ""),
                   add_bos_token=bool(data.get("add_bos_token")))

    def render(self, messages: Sequence[Mapping[str, Any]]) -> str:
        if not messages:
            raise InvalidRequest("'messages' must not be empty", ErrorCode.VALIDATION_TYPE_ERROR)
        plain = []
        for message in messages:
            role = message.get("role")
            if role == "developer":
                role = "system"
            if role not in ("system", "user", "assistant"):
                raise InvalidRequest(f"unsupported message role {role!r} (system, user and assistant are)")
            plain.append({"role": role, "content": _message_text(message) or ""})
        from jinja2 import TemplateError

        try:
            prompt = self._template.render(messages=plain, add_generation_prompt=True, bos_token=self.bos_token,
                                           eos_token=self.eos_token)
        except TemplateError as e:
            raise InvalidRequest(f"the model's chat template failed: {e}") from None
        if self.add_bos_token and self.bos_token and prompt.startswith(self.bos_token):
            prompt = prompt[len(self.bos_token):]
        return prompt
