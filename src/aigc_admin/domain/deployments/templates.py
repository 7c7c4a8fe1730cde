"""Inference templates: how an engine is started, rendered in a sandbox from explicit variables.

A template is JSON: ``{"image": str, "command": [str, ...], "env": {str: str}}``. Strings may use
``${name}`` for the variables the platform passes (nothing else: no expressions, no shell); an argv
element that is exactly ``${name}`` whose value is a list is spliced (e.g. ``${quantization_args}``).
``{host}`` and ``{port}`` are left for the runtime to fill per replica.
"""

from __future__ import annotations

import builtins
import json
import string
from dataclasses import dataclass, field
from typing import Any, Protocol

from aigc_admin.domain.errors import Invalid

VARIABLES = ("python", "model_path", "model_name", "controller_address", "device", "gpus", "quantization_args",
             "max_gpu_memory", "worker_args", "conv_template_args", "engine_args", "cpu_kv_cache_gib")

MODEL_WORKER = {
    "image": "${image}",
    "command": ["${python}", "-m", "fastchat.serve.model_worker", "--model-path", "${model_path}",
                "--model-names", "${model_name}", "--controller-address", "${controller_address}",
                "--worker-address", "http://{host}:{port}", "--host", "{host}", "--port", "{port}",
                "--device", "${device}", "--num-gpus", "${gpus}", "${conv_template_args}",
                "${quantization_args}", "${worker_args}"],
    "env": {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
}
VLLM_WORKER = {
    "image": "${image}",
    "command": ["${python}", "-m", "fastchat.serve.vllm_worker", "--model-path", "${model_path}",
                "--model-names", "${model_name}", "--controller-address", "${controller_address}",
                "--worker-address", "http://{host}:{port}", "--host", "{host}", "--port", "{port}",
                "--num-gpus", "${gpus}", "${conv_template_args}", "${quantization_args}", "${worker_args}"],
    "env": {"HF_HUB_OFFLINE": "1"},
}
# vLLM's OpenAI server: the gateway calls it directly, so the controller address is not passed. ${engine_args}
# holds the deployment's engine options (--tensor-parallel-size, --max-model-len, --quantization, --enable-lora...).
VLLM = {
    "image": "${image}",
    "command": ["${python}", "-m", "vllm.entrypoints.openai.api_server", "--model", "${model_path}",
                "--served-model-name", "${model_name}", "--host", "{host}", "--port", "{port}", "${engine_args}",
                "${worker_args}"],
    "env": {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
            "VLLM_CPU_KVCACHE_SPACE": "${cpu_kv_cache_gib}", "VLLM_NO_USAGE_STATS": "1"},
}
# The built-in templates before a model chose its conversation template (model_worker pinned Vicuna's for every
# model): a stored, unedited copy of one is brought up to date at start.
LEGACY = {
    "fastchat-model-worker": {
        "image": "${image}",
        "command": ["${python}", "-m", "fastchat.serve.model_worker", "--model-path", "${model_path}",
                    "--model-names", "${model_name}", "--controller-address", "${controller_address}",
                    "--worker-address", "http://{host}:{port}", "--host", "{host}", "--port", "{port}",
                    "--device", "${device}", "--num-gpus", "${gpus}", "--conv-template", "vicuna_v1.1",
                    "${quantization_args}", "${worker_args}"],
        "env": {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
    },
    "fastchat-vllm-worker": {
        "image": "${image}",
        "command": ["${python}", "-m", "fastchat.serve.vllm_worker", "--model-path", "${model_path}",
                    "--model-names", "${model_name}", "--controller-address", "${controller_address}",
                    "--worker-address", "http://{host}:{port}", "--host", "{host}", "--port", "{port}",
                    "--num-gpus", "${gpus}", "${quantization_args}", "${worker_args}"],
        "env": {"HF_HUB_OFFLINE": "1"},
    },
}
BUILTIN = {"fastchat-model-worker": ("model_worker", MODEL_WORKER),
           "fastchat-vllm-worker": ("vllm_worker", VLLM_WORKER),
           "vllm-openai": ("vllm", VLLM)}
INFERENCE_ENGINES = tuple(engine for engine, _ in BUILTIN.values())


@dataclass(frozen=True)
class Rendered:
    image: str
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)


# Training templates ("finetune" engine) render the training program's command from the job.
TRAIN_VARIABLES = ("python", "program", "base_model_path", "data_path", "output_dir", "epochs", "train_batch_size",
                   "eval_batch_size", "accumulation_steps", "learning_rate", "weight_decay", "warmup_ratio",
                   "model_max_length", "eval_steps", "save_steps", "save_total_limit", "logging_steps", "lora_args")
FINETUNE = {
    "image": "${image}",
    "command": ["${python}", "${program}", "--base-model-path", "${base_model_path}", "--data-path", "${data_path}",
                "--output-dir", "${output_dir}", "--epochs", "${epochs}", "--train-batch-size", "${train_batch_size}",
                "--eval-batch-size", "${eval_batch_size}", "--gradient-accumulation-steps", "${accumulation_steps}",
                "--learning-rate", "${learning_rate}", "--weight-decay", "${weight_decay}",
                "--warmup-ratio", "${warmup_ratio}", "--model-max-length", "${model_max_length}",
                "--eval-steps", "${eval_steps}", "--save-steps", "${save_steps}",
                "--save-total-limit", "${save_total_limit}", "--logging-steps", "${logging_steps}", "${lora_args}"],
    "env": {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"},
}
BUILTIN_TRAINING = {"aigc-finetune": FINETUNE}


def parse(content: str, allowed: tuple[str, ...] = VARIABLES) -> dict[str, Any]:
    """Validate a template's JSON shape (on create/update, so a bad one never reaches a deploy)."""
    try:
        data = json.loads(content)
    except json.JSONDecodeError as e:
        raise Invalid("content", f"template is not JSON: {e.msg} (line {e.lineno})") from None
    if not isinstance(data, dict) or set(data) - {"image", "command", "env"}:
        raise Invalid("content", "template must be an object with only image, command and env")
    command, env = data.get("command"), data.get("env", {})
    if not isinstance(command, list) or not command or not all(isinstance(a, str) for a in command):
        raise Invalid("content", "command must be a non-empty list of strings")
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise Invalid("content", "env must map strings to strings")
    if not isinstance(data.get("image", ""), str):
        raise Invalid("content", "image must be a string")
    for text in [data.get("image", ""), *command, *env.values()]:
        for _, name, braced, _ in string.Template.pattern.findall(text):
            var = name or braced
            if var and var not in (*allowed, "image"):
                raise Invalid("content", f"unknown variable ${{{var}}}; allowed: {', '.join(allowed)}, image")
    return data


def render(content: str, variables: dict[str, str | list[str]],
           allowed: tuple[str, ...] = VARIABLES) -> Rendered:
    data = parse(content, allowed)

    scalars = {k: v for k, v in variables.items() if isinstance(v, str)}

    def sub(text: str) -> str:
        # parse() allowed only known names; a "$" that starts no placeholder ("$(id)") stays literal
        for _, name, braced, _ in string.Template.pattern.findall(text):
            if (name or braced) and (name or braced) not in scalars:
                raise Invalid("content", f"template variable ${{{name or braced}}} has no value here")
        return string.Template(text).safe_substitute(scalars)

    command: list[str] = []
    for arg in data["command"]:
        name = arg[2:-1] if arg.startswith("${") and arg.endswith("}") else None
        value = variables.get(name) if name else None
        if isinstance(value, list):
            command.extend(value)
        else:
            command.append(sub(arg))
    return Rendered(image=sub(data.get("image", "")), command=command,
                    env={k: sub(v) for k, v in data.get("env", {}).items()})


@dataclass(frozen=True)
class InferenceTemplate:
    id: int
    name: str
    engine: str
    content: str
    enabled: bool
    remark: str


class TemplateRepository(Protocol):
    async def list_inference(self) -> list[InferenceTemplate]: ...
    async def get_inference(self, template_id: int) -> InferenceTemplate | None: ...
    async def name_taken(self, name: str) -> bool: ...
    async def save_inference(self, template_id: int | None, **values: Any) -> InferenceTemplate: ...
    async def delete_inference(self, template_id: int) -> None: ...


class TemplateService:
    """Inference templates are admin-only: they decide what command every worker runs."""

    def __init__(self, *, repo: TemplateRepository) -> None:
        self.repo = repo

    async def list(self) -> builtins.list[InferenceTemplate]:
        return await self.repo.list_inference()

    async def create(self, *, name: str, engine: str, content: str, enabled: bool = True,
                     remark: str = "") -> InferenceTemplate:
        from aigc_admin.domain.errors import Duplicate

        if not name.strip() or len(name) > 64:
            raise Invalid("name", "name must have 1 to 64 characters")
        if engine not in (*INFERENCE_ENGINES, "finetune"):
            raise Invalid("engine", "engine must be model_worker, vllm_worker, vllm or finetune (training)")
        parse(content, TRAIN_VARIABLES if engine == "finetune" else VARIABLES)
        if await self.repo.name_taken(name):
            raise Duplicate("name", f"a template named {name!r} exists")
        return await self.repo.save_inference(None, name=name, base_model=engine, content=content, enabled=enabled,
                                              remark=remark)

    async def update(self, template_id: int, *, content: str | None = None, enabled: bool | None = None,
                     remark: str | None = None) -> InferenceTemplate:
        from aigc_admin.domain.errors import NotFound

        existing = await self.repo.get_inference(template_id)
        if existing is None:
            raise NotFound("inference template", template_id)
        if content is not None:
            parse(content, TRAIN_VARIABLES if existing.engine == "finetune" else VARIABLES)
        changes = {k: v for k, v in {"content": content, "enabled": enabled, "remark": remark}.items()
                   if v is not None}
        return await self.repo.save_inference(template_id, **changes)

    async def delete(self, template_id: int) -> None:
        from aigc_admin.domain.errors import NotFound

        if await self.repo.get_inference(template_id) is None:
            raise NotFound("inference template", template_id)
        await self.repo.delete_inference(template_id)
