"""Inference templates: sandboxed rendering from explicit variables only."""

from __future__ import annotations

import json

import pytest

from aigc_admin.domain.deployments.templates import BUILTIN, MODEL_WORKER, parse, render
from aigc_admin.domain.errors import Invalid

VARS: dict[str, str | list[str]] = {
    "python": "/venv/bin/python", "image": "img", "model_path": "/m", "model_name": "tiny",
    "controller_address": "http://c:21001", "device": "cpu", "gpus": "1", "quantization_args": ["--load-8bit"],
    "max_gpu_memory": "", "worker_args": [], "conv_template_args": ["--conv-template", "qwen-7b-chat"],
}


def test_builtin_model_worker_renders_to_an_argv() -> None:
    r = render(json.dumps(MODEL_WORKER), VARS)
    assert r.command[:3] == ["/venv/bin/python", "-m", "fastchat.serve.model_worker"]
    assert r.command[r.command.index("--model-names") + 1] == "tiny"
    assert "--load-8bit" in r.command and "${worker_args}" not in r.command  # lists are spliced
    assert r.command[r.command.index("--conv-template") + 1] == "qwen-7b-chat"
    assert "http://{host}:{port}" in r.command  # left for the runtime
    assert r.env["HF_HUB_OFFLINE"] == "1"
    assert set(BUILTIN) == {"fastchat-model-worker", "fastchat-vllm-worker", "vllm-openai"}


@pytest.mark.parametrize(("content", "needle"), [
    ("not json", "not JSON"),
    ('{"command": "python -m x"}', "list of strings"),
    ('{"command": ["x"], "shell": "rm -rf /"}', "only image, command and env"),
    ('{"command": ["${HOME}"]}', "unknown variable ${HOME}"),
    ('{"command": ["x"], "env": {"A": "${__import__}"}}', "unknown variable"),
    ('{"command": []}', "non-empty"),
])
def test_bad_templates_are_refused(content: str, needle: str) -> None:
    with pytest.raises(Invalid, match=needle.replace("$", r"\$").replace("{", r"\{").replace("}", r"\}")):
        parse(content)


def test_no_shell_no_expressions() -> None:
    r = render('{"command": ["echo", "$(id)", "`id`", "${model_name}; rm -rf /"]}', VARS)
    # nothing is evaluated: the runtime gets an argv, never a shell line
    assert r.command == ["echo", "$(id)", "`id`", "tiny; rm -rf /"]
