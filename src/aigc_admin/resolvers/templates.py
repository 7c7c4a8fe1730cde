"""Inference and training templates: what runs on the runtime (admin only: they decide the commands)."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from aigc_admin.resolvers import permissions as perm
from aigc_admin.resolvers.common import ctx, parse_id, typed_errors
from aigc_admin.schema import templates as te


def _template(x: Any) -> te.InferenceTemplate:
    return te.InferenceTemplate(id=strawberry.ID(str(x.id)), name=x.name, engine=x.engine, content=x.content,
                                enabled=x.enabled, remark=x.remark)


@strawberry.type
class TemplateQueries:
    @strawberry.field(permission_classes=perm.PLATFORM_ADMIN)
    async def inference_templates(self, info: Info) -> list[te.InferenceTemplate]:
        return [_template(x) for x in await ctx(info).services.templates.list()]


@strawberry.type
class TemplateMutations:
    @strawberry.mutation(permission_classes=perm.PLATFORM_ADMIN,
                         description="Add an inference template (validated: JSON shape and known variables only).")
    @typed_errors
    async def create_inference_template(self, info: Info,
                                        input: te.CreateInferenceTemplateInput) -> te.InferenceTemplatePayload:
        x = await ctx(info).services.templates.create(name=input.name, engine=input.engine, content=input.content,
                                                      enabled=input.enabled, remark=input.remark)
        return te.InferenceTemplatePayload(template=_template(x))

    @strawberry.mutation(permission_classes=perm.PLATFORM_ADMIN)
    @typed_errors
    async def update_inference_template(self, info: Info,
                                        input: te.UpdateInferenceTemplateInput) -> te.InferenceTemplatePayload:
        x = await ctx(info).services.templates.update(parse_id(input.id), content=input.content,
                                                      enabled=input.enabled, remark=input.remark)
        return te.InferenceTemplatePayload(template=_template(x))

    @strawberry.mutation(permission_classes=perm.PLATFORM_ADMIN)
    @typed_errors
    async def delete_inference_template(self, info: Info, id: strawberry.ID) -> te.InferenceTemplatePayload:
        await ctx(info).services.templates.delete(parse_id(id))
        return te.InferenceTemplatePayload()
