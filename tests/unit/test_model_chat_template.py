"""A model's own chat template, rendered as transformers' apply_chat_template does, in a sandbox."""

from __future__ import annotations

import json

import pytest

from aigc_admin.adapters.fastchat.conversation import ModelChatTemplate
from aigc_admin.adapters.fastchat.errors import InvalidRequest

TINY = ("{{ bos_token }}{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] + ' ' }}"
        "{% elif message['role'] == 'user' %}{{ 'USER: ' + message['content'] + ' ' }}{% else %}"
        "{{ 'ASSISTANT: ' + message['content'] + eos_token }}{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}")


def test_renders_like_apply_chat_template_with_a_generation_prompt() -> None:
    t = ModelChatTemplate(TINY, bos_token="<s>", eos_token="</s>")
    messages = [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"}, {"role": "user", "content": [
                    {"type": "text", "text": "and"}, {"type": "text", "text": "now?"}]}]
    assert t.render(messages) == "<s>Be brief. USER: Hi ASSISTANT: Hello</s>USER: and\nnow? ASSISTANT:"


def test_a_tokenizer_that_adds_bos_itself_does_not_get_it_twice() -> None:
    stored = json.dumps({"template": TINY, "bos_token": "<s>", "eos_token": "</s>", "add_bos_token": True})
    assert ModelChatTemplate.from_json(stored).render([{"role": "user", "content": "Hi"}]) == "USER: Hi ASSISTANT:"


def test_refusals_are_clear_request_errors() -> None:
    strict = ModelChatTemplate("{% if messages[0]['role'] != 'user' %}{{ raise_exception('user first') }}{% endif %}"
                               "{{ messages[0]['content'] }}")
    with pytest.raises(InvalidRequest, match="user first"):
        strict.render([{"role": "assistant", "content": "x"}])
    with pytest.raises(InvalidRequest, match="role 'tool'"):
        strict.render([{"role": "tool", "content": "x"}])
    with pytest.raises(InvalidRequest, match="image"):
        strict.render([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}])
    with pytest.raises(InvalidRequest, match="must not be empty"):
        strict.render([])


def test_the_template_cannot_reach_python() -> None:
    sneaky = ModelChatTemplate("{{ messages.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(InvalidRequest, match="chat template failed"):
        sneaky.render([{"role": "user", "content": "x"}])
