"""Inference and training templates (admin only)."""

from __future__ import annotations

import strawberry

from aigc_admin.schema.common import Error


@strawberry.type(description="How an engine's workers are started (admin only). See docs/deployments.md.")
class InferenceTemplate:
    id: strawberry.ID
    name: str
    engine: str
    content: str
    enabled: bool
    remark: str


@strawberry.type
class InferenceTemplatePayload:
    template: InferenceTemplate | None = None
    errors: list[Error] = strawberry.field(default_factory=list)


@strawberry.input
class CreateInferenceTemplateInput:
    name: str
    engine: str = strawberry.field(description="model_worker, vllm_worker, vllm or finetune")
    content: str = strawberry.field(description="JSON: {image, command: [...], env: {...}} with ${variables}")
    enabled: bool = True
    remark: str = ""


@strawberry.input
class UpdateInferenceTemplateInput:
    id: strawberry.ID
    content: str | None = None
    enabled: bool | None = None
    remark: str | None = None
