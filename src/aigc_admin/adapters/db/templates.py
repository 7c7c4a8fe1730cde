"""Runtime templates: inference and training rows of fine_tuning_template."""

from __future__ import annotations

import builtins
import json
from typing import Any

from aigc_admin.adapters.db import models as m
from aigc_admin.domain.deployments.entities import Engine
from aigc_admin.domain.deployments.templates import BUILTIN as BUILTIN_TEMPLATES
from aigc_admin.domain.deployments.templates import FINETUNE as TRAINING_TEMPLATE
from aigc_admin.domain.deployments.templates import LEGACY, InferenceTemplate


def _template(row: m.FineTuningTemplate) -> InferenceTemplate:
    return InferenceTemplate(id=row.id, name=row.name, engine=row.base_model, content=row.content,
                             enabled=row.enabled, remark=row.remark)


RUNTIME_TEMPLATE_TYPES = ["inference", "train"]


class TemplateRepo:
    """Runtime templates: inference ('inference') and training ('train') rows of fine_tuning_template."""

    async def list_inference(self) -> builtins.list[InferenceTemplate]:
        rows = await m.FineTuningTemplate.filter(template_type__in=RUNTIME_TEMPLATE_TYPES).order_by("id")
        return [_template(r) for r in rows]

    async def get_inference(self, template_id: int) -> InferenceTemplate | None:
        row = await m.FineTuningTemplate.get_or_none(id=template_id, template_type__in=RUNTIME_TEMPLATE_TYPES)
        return _template(row) if row else None

    async def training_template(self) -> str:
        row = await m.FineTuningTemplate.filter(template_type="train", enabled=True).order_by("-id").first()
        return row.content if row is not None else json.dumps(TRAINING_TEMPLATE)

    async def name_taken(self, name: str) -> bool:
        return await m.FineTuningTemplate.filter(name=name).exists()

    async def save_inference(self, template_id: int | None, **values: Any) -> InferenceTemplate:
        if template_id is None:
            kind = "train" if values.get("base_model") == "finetune" else "inference"
            row = await m.FineTuningTemplate.create(template_type=kind, **values)
            return _template(row)
        await m.FineTuningTemplate.filter(id=template_id).update(**values)
        return _template(await m.FineTuningTemplate.get(id=template_id))

    async def delete_inference(self, template_id: int) -> None:
        await m.FineTuningTemplate.filter(id=template_id, template_type__in=RUNTIME_TEMPLATE_TYPES).delete()

    async def ensure_builtin(self) -> None:
        for name, (engine, content) in BUILTIN_TEMPLATES.items():
            row, created = await m.FineTuningTemplate.get_or_create(
                name=name, defaults={"base_model": engine, "content": json.dumps(content, indent=2),
                                     "template_type": "inference", "enabled": True,
                                     "remark": f"{_ENGINE_NAMES.get(engine, engine)} (built in)"})
            if not created and name in LEGACY and _same_json(row.content, LEGACY[name]):
                # an untouched copy of an older built-in version: brought up to date (an edited one is left alone)
                await m.FineTuningTemplate.filter(id=row.id).update(content=json.dumps(content, indent=2))
        await m.FineTuningTemplate.get_or_create(
            name="aigc-finetune", defaults={
                "base_model": "finetune", "content": json.dumps(TRAINING_TEMPLATE, indent=2), "template_type": "train",
                "enabled": True, "remark": "aigc-admin's training program (built in)"})

    async def inference_template(self, engine: Engine) -> str:
        row = await m.FineTuningTemplate.filter(template_type="inference", base_model=engine.value,
                                                enabled=True).order_by("-id").first()
        if row is not None:
            return row.content
        for _name, (builtin_engine, content) in BUILTIN_TEMPLATES.items():
            if builtin_engine == engine.value:
                return json.dumps(content)
        raise ValueError(f"no inference template for engine {engine.value}")


_ENGINE_NAMES = {"model_worker": "FastChat model_worker", "vllm_worker": "FastChat vllm_worker",
                 "vllm": "vLLM's OpenAI server"}


def _same_json(text: str, value: object) -> bool:
    try:
        return bool(json.loads(text) == value)
    except ValueError:
        return False
