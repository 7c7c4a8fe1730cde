"""The model registry."""

from __future__ import annotations

from datetime import datetime

import strawberry

from aigc_admin.domain.models import service as mdl

ModelProvider = strawberry.enum(mdl.Provider, description="Who serves a model.")
ModelType = strawberry.enum(mdl.ModelType, description="What a model does.")
ModelErrorCode = strawberry.enum(mdl.ModelErrorCode, description="Codes of model registry failures.")


@strawberry.type(description="A registered model. Credentials of external upstreams are never returned.")
class Model:
    id: strawberry.ID
    name: str
    provider: ModelProvider  # type: ignore[valid-type]
    model_type: ModelType  # type: ignore[valid-type]
    max_tokens: int
    parameters: float
    enabled: bool
    remark: str
    is_fine_tuned: bool
    base_url: str
    has_credentials: bool
    model_path: str
    last_operator: str
    created_at: datetime
    tenant_ids: list[strawberry.ID]
    conversation_template: str = strawberry.field(description=(
        "Local models: a FastChat conversation template name that decides how chats become prompts (an override); "
        "empty: the model's own chat template when it has one (hasChatTemplate), else FastChat's template matched "
        "by the model's name."))
    has_chat_template: bool = strawberry.field(description="Its files carry a chat template (read when registered).")

    @classmethod
    def from_domain(cls, r: mdl.ModelRecord) -> Model:
        return cls(id=strawberry.ID(str(r.id)), name=r.name, provider=r.provider, model_type=r.model_type,
                   max_tokens=r.max_tokens, parameters=r.parameters, enabled=r.enabled, remark=r.remark,
                   is_fine_tuned=r.is_fine_tuned, base_url=r.base_url, has_credentials=r.has_credentials,
                   model_path=r.model_path, last_operator=r.last_operator, created_at=r.created_at,
                   tenant_ids=[strawberry.ID(str(t)) for t in r.tenant_ids],
                   conversation_template=r.conversation_template, has_chat_template=r.has_chat_template)


@strawberry.type(description="An expected failure of a model registry mutation.")
class ModelError:
    field: str | None
    code: ModelErrorCode  # type: ignore[valid-type]
    message: str


@strawberry.input
class CreateModelInput:
    name: str
    provider: ModelProvider = mdl.Provider.LOCAL  # type: ignore[valid-type]
    model_type: ModelType = mdl.ModelType.CHAT  # type: ignore[valid-type]
    max_tokens: int = 2048
    parameters: float = 0
    enabled: bool = True
    remark: str = ""
    base_url: str = strawberry.field(default="", description="External upstream only.")
    credentials: str = strawberry.field(default="", description="External upstream API key; stored encrypted.")
    model_path: str = strawberry.field(default="", description="Local models: directory of the weights.")
    tenant_ids: list[strawberry.ID] = strawberry.field(default_factory=list)
    conversation_template: str = strawberry.field(default="", description="A FastChat conversation template name "
                                                  "(e.g. vicuna_v1.1, qwen-7b-chat); empty: chosen by the model.")


@strawberry.input
class UpdateModelInput:
    id: strawberry.ID
    model_type: ModelType | None = None  # type: ignore[valid-type]
    max_tokens: int | None = None
    parameters: float | None = None
    enabled: bool | None = None
    remark: str | None = None
    base_url: str | None = None
    credentials: str | None = strawberry.field(default=None, description="\"\" clears them.")
    model_path: str | None = None
    tenant_ids: list[strawberry.ID] | None = None
    conversation_template: str | None = strawberry.field(default=None, description="\"\" goes back to choosing "
                                                         "by the model.")


@strawberry.input
class ModelFilter:
    search: str | None = None
    provider: ModelProvider | None = None  # type: ignore[valid-type]


@strawberry.type
class ModelPayload:
    model: Model | None = None
    errors: list[ModelError] = strawberry.field(default_factory=list)
