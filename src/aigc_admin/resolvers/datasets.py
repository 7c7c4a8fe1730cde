"""Datasets: datasets and samples of the request's tenant, import from an uploaded file, JSONL export."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from aigc_admin.domain.chat_format import DatasetFormat
from aigc_admin.domain.datasets.service import DatasetErrorCode, DatasetInput, ExportBuffer, SampleInput
from aigc_admin.domain.errors import DomainError
from aigc_admin.resolvers import permissions as perm
from aigc_admin.resolvers.common import ctx, page, page_args, parse_id, request_tenant, typed_errors
from aigc_admin.schema import datasets as d
from aigc_admin.schema.common import Page, Pagination

EXPORT_INLINE_MAX_BYTES = 10 * 1024 * 1024  # larger exports: GET /datasets/{id}/export (streamed)


async def _creator(info: Info) -> str:
    c = ctx(info)
    assert c.principal is not None
    return await c.services.identity.contact(c.principal)


def _sample_input(i: d.DatasetSampleFields, history: list[list[str]] | None = None) -> SampleInput:
    if history is not None and any(len(pair) != 2 for pair in history):
        raise DomainError(DatasetErrorCode.INVALID, "history must be [question, answer] pairs", "history")
    return SampleInput(
        title=i.title, label=i.label, remark=i.remark, system=i.system,
        conversations=None if i.conversations is None else [(m.role, m.content) for m in i.conversations],
        instruction=i.instruction, input=i.input, output=i.output,
        history=None if history is None else [(p[0], p[1]) for p in history])


def _dataset_input(i: d.CreateDatasetInput | d.UpdateDatasetInput) -> DatasetInput:
    return DatasetInput(name=i.name, remark=i.remark, type=i.type,
                        format=None if i.format is None else DatasetFormat(i.format))


@strawberry.type
class DatasetQueries:
    @strawberry.field(permission_classes=perm.TENANT_MEMBER, description="The tenant's datasets, newest first.")
    async def datasets(self, info: Info, pagination: Pagination | None = None,
                       search: str | None = None) -> Page[d.Dataset]:
        offset, limit = page_args(pagination)
        rows, total = await ctx(info).services.datasets.list(tenant_id=request_tenant(info), offset=offset, limit=limit,
                                                             search=search)
        return page([d.Dataset.from_domain(r) for r in rows], total, offset, limit)

    @strawberry.field(permission_classes=perm.TENANT_MEMBER)
    async def dataset(self, info: Info, id: strawberry.ID) -> d.Dataset | None:
        try:
            dataset = await ctx(info).services.datasets.get(parse_id(id), tenant_id=request_tenant(info))
            return d.Dataset.from_domain(dataset)
        except DomainError:
            return None

    @strawberry.field(permission_classes=perm.TENANT_MEMBER, description="A dataset's samples, oldest first.")
    async def dataset_samples(self, info: Info, dataset_id: strawberry.ID,
                              pagination: Pagination | None = None) -> Page[d.DatasetSample]:
        offset, limit = page_args(pagination)
        try:
            rows, total = await ctx(info).services.datasets.list_samples(
                parse_id(dataset_id, "datasetId"), tenant_id=request_tenant(info), offset=offset, limit=limit)
        except DomainError:
            rows, total = [], 0  # another tenant's dataset looks empty-and-missing, like a missing one
        return page([d.DatasetSample.from_domain(s) for s in rows], total, offset, limit)

    @strawberry.field(permission_classes=perm.TENANT_MEMBER,
                      description="The dataset as JSONL in format (default: the dataset's), at most 10 MiB; "
                                  "larger ones: GET /datasets/{id}/export?format=… (streamed, same headers). "
                                  "Errors carry extensions.code NOT_FOUND, INVALID or TOO_LARGE.")
    async def export_dataset(self, info: Info, id: strawberry.ID, format: d.DatasetFormat | None = None) -> str:  # type: ignore[valid-type]
        try:
            lines = await ctx(info).services.datasets.export(
                parse_id(id), None if format is None else DatasetFormat(format), tenant_id=request_tenant(info))
            return await ExportBuffer(EXPORT_INLINE_MAX_BYTES).fill(lines)
        except DomainError as e:
            raise GraphQLError(e.message, extensions={"code": str(e.code.value), "field": e.field}) from None


@strawberry.type
class DatasetMutations:
    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER)
    @typed_errors
    async def create_dataset(self, info: Info, input: d.CreateDatasetInput) -> d.DatasetPayload:
        created = await ctx(info).services.datasets.create(_dataset_input(input), tenant_id=request_tenant(info),
                                                           creator_email=await _creator(info))
        return d.DatasetPayload(dataset=d.Dataset.from_domain(created))

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER)
    @typed_errors
    async def update_dataset(self, info: Info, input: d.UpdateDatasetInput) -> d.DatasetPayload:
        updated = await ctx(info).services.datasets.update(parse_id(input.id), _dataset_input(input),
                                                           tenant_id=request_tenant(info))
        return d.DatasetPayload(dataset=d.Dataset.from_domain(updated))

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER, description="Delete a dataset and its samples.")
    @typed_errors
    async def delete_dataset(self, info: Info, id: strawberry.ID) -> d.DatasetPayload:
        await ctx(info).services.datasets.delete(parse_id(id), tenant_id=request_tenant(info))
        return d.DatasetPayload()

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER)
    @typed_errors
    async def create_dataset_sample(self, info: Info, input: d.CreateDatasetSampleInput) -> d.DatasetSamplePayload:
        sample = await ctx(info).services.datasets.create_sample(
            parse_id(input.dataset_id, "datasetId"), _sample_input(input, input.history),
            tenant_id=request_tenant(info), creator_email=await _creator(info))
        return d.DatasetSamplePayload(sample=d.DatasetSample.from_domain(sample))

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER)
    @typed_errors
    async def update_dataset_sample(self, info: Info, input: d.UpdateDatasetSampleInput) -> d.DatasetSamplePayload:
        sample = await ctx(info).services.datasets.update_sample(parse_id(input.id), _sample_input(input),
                                                                 tenant_id=request_tenant(info))
        return d.DatasetSamplePayload(sample=d.DatasetSample.from_domain(sample))

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER)
    @typed_errors
    async def delete_dataset_sample(self, info: Info, id: strawberry.ID) -> d.DatasetSamplePayload:
        await ctx(info).services.datasets.delete_sample(parse_id(id), tenant_id=request_tenant(info))
        return d.DatasetSamplePayload()

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER,
                         description="Add the records of an uploaded JSONL file (messages, alpaca or sharegpt lines, "
                                     "mixed) as samples: all of them, or none when a line is bad (errors name the "
                                     "lines).")
    @typed_errors
    async def import_dataset_file(self, info: Info, dataset_id: strawberry.ID,
                                  file_id: strawberry.ID) -> d.DatasetImportPayload:
        service = ctx(info).services.datasets
        dataset_pk = parse_id(dataset_id, "datasetId")
        imported = await service.import_file(dataset_pk, str(file_id), tenant_id=request_tenant(info),
                                             creator_email=await _creator(info))
        dataset = await service.get(dataset_pk, tenant_id=request_tenant(info))
        return d.DatasetImportPayload(dataset=d.Dataset.from_domain(dataset), imported=imported)
