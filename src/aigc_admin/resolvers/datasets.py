"""Dataset fields: datasets and samples of the request's tenant, import from an uploaded file, JSONL export."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from aigc_admin.domain.datasets.formats import DatasetFormat
from aigc_admin.domain.datasets.service import (
    DatasetErrorCode,
    DatasetInput,
    ExportBuffer,
    ImportFailed,
    SampleInput,
)
from aigc_admin.domain.errors import DomainError
from aigc_admin.resolvers import permissions as perm
from aigc_admin.resolvers.common import ctx, page_args, parse_id, request_tenant, run_mutation
from aigc_admin.schema import datasets as d
from aigc_admin.schema import types as t

EXPORT_INLINE_MAX_BYTES = 10 * 1024 * 1024  # larger exports: GET /datasets/{id}/export (streamed)


async def _creator(info: Info) -> str:
    principal = ctx(info).principal
    if principal is None:
        return ""
    account = await ctx(info).loaders.account.load(principal.account_id)
    return (account.email if account is not None else "") or principal.username


def _dataset_payload(info: Info, action: Any) -> Any:
    return run_mutation(info, d.DatasetPayload, d.DatasetError, DatasetErrorCode, action)


def _sample_payload(info: Info, action: Any) -> Any:
    return run_mutation(info, d.DatasetSamplePayload, d.DatasetError, DatasetErrorCode, action)


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


def _expected(e: DomainError) -> GraphQLError:
    return GraphQLError(e.message, extensions={"code": str(e.code.value), "field": e.field})


@strawberry.type
class DatasetQueries:
    @strawberry.field(permission_classes=perm.TENANT_MEMBER, description="The tenant's datasets, newest first.")
    async def datasets(self, info: Info, pagination: t.Pagination | None = None,
                       search: str | None = None) -> t.Page[d.Dataset]:
        offset, limit = page_args(pagination)
        rows, total = await ctx(info).services.datasets.list(tenant_id=request_tenant(info), offset=offset, limit=limit,
                                                             search=search)
        return t.Page(items=[d.Dataset.from_domain(r) for r in rows], total_count=total, offset=offset, limit=limit)

    @strawberry.field(permission_classes=perm.TENANT_MEMBER)
    async def dataset(self, info: Info, id: strawberry.ID) -> d.Dataset | None:
        try:
            dataset = await ctx(info).services.datasets.get(parse_id(id), tenant_id=request_tenant(info))
            return d.Dataset.from_domain(dataset)
        except DomainError:
            return None

    @strawberry.field(permission_classes=perm.TENANT_MEMBER, description="A dataset's samples, oldest first.")
    async def dataset_samples(self, info: Info, dataset_id: strawberry.ID,
                              pagination: t.Pagination | None = None) -> t.Page[d.DatasetSample]:
        offset, limit = page_args(pagination)
        try:
            rows, total = await ctx(info).services.datasets.list_samples(
                parse_id(dataset_id, "datasetId"), tenant_id=request_tenant(info), offset=offset, limit=limit)
        except DomainError:
            rows, total = [], 0  # another tenant's dataset looks empty-and-missing, like a missing one
        return t.Page(items=[d.DatasetSample.from_domain(s) for s in rows], total_count=total, offset=offset,
                      limit=limit)

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
            raise _expected(e) from None


@strawberry.type
class DatasetMutations:
    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER)
    async def create_dataset(self, info: Info, input: d.CreateDatasetInput) -> d.DatasetPayload:
        async def action() -> dict[str, Any]:
            created = await ctx(info).services.datasets.create(_dataset_input(input), tenant_id=request_tenant(info),
                                                               creator_email=await _creator(info))
            return {"dataset": d.Dataset.from_domain(created)}
        return await _dataset_payload(info, action)

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER)
    async def update_dataset(self, info: Info, input: d.UpdateDatasetInput) -> d.DatasetPayload:
        async def action() -> dict[str, Any]:
            updated = await ctx(info).services.datasets.update(parse_id(input.id), _dataset_input(input),
                                                               tenant_id=request_tenant(info))
            return {"dataset": d.Dataset.from_domain(updated)}
        return await _dataset_payload(info, action)

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER, description="Delete a dataset and its samples.")
    async def delete_dataset(self, info: Info, id: strawberry.ID) -> d.DatasetPayload:
        async def action() -> dict[str, Any]:
            await ctx(info).services.datasets.delete(parse_id(id), tenant_id=request_tenant(info))
            return {}
        return await _dataset_payload(info, action)

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER)
    async def create_dataset_sample(self, info: Info, input: d.CreateDatasetSampleInput) -> d.DatasetSamplePayload:
        async def action() -> dict[str, Any]:
            sample = await ctx(info).services.datasets.create_sample(
                parse_id(input.dataset_id, "datasetId"), _sample_input(input, input.history),
                tenant_id=request_tenant(info), creator_email=await _creator(info))
            return {"sample": d.DatasetSample.from_domain(sample)}
        return await _sample_payload(info, action)

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER)
    async def update_dataset_sample(self, info: Info, input: d.UpdateDatasetSampleInput) -> d.DatasetSamplePayload:
        async def action() -> dict[str, Any]:
            sample = await ctx(info).services.datasets.update_sample(parse_id(input.id), _sample_input(input),
                                                                     tenant_id=request_tenant(info))
            return {"sample": d.DatasetSample.from_domain(sample)}
        return await _sample_payload(info, action)

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER)
    async def delete_dataset_sample(self, info: Info, id: strawberry.ID) -> d.DatasetSamplePayload:
        async def action() -> dict[str, Any]:
            await ctx(info).services.datasets.delete_sample(parse_id(id), tenant_id=request_tenant(info))
            return {}
        return await _sample_payload(info, action)

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER,
                         description="Add the records of an uploaded JSONL file (messages, alpaca or sharegpt lines, "
                                     "mixed) as samples: all of them, or none when a line is bad (errors name the "
                                     "lines).")
    async def import_dataset_file(self, info: Info, dataset_id: strawberry.ID,
                                  file_id: strawberry.ID) -> d.DatasetImportPayload:
        service = ctx(info).services.datasets
        try:
            dataset_pk = parse_id(dataset_id, "datasetId")
            imported = await service.import_file(dataset_pk, str(file_id), tenant_id=request_tenant(info),
                                                 creator_email=await _creator(info))
            dataset = await service.get(dataset_pk, tenant_id=request_tenant(info))
        except ImportFailed as e:
            ctx(info).mutation_errors.append(f"{e.code.value}: {e.message}")
            errors = [d.DatasetError(field="fileId", code=DatasetErrorCode.INVALID, message=x.message, line=x.line)
                      for x in e.errors]
            if e.more:
                errors.append(d.DatasetError(field="fileId", code=DatasetErrorCode.INVALID,
                                             message=f"{e.more} more bad lines not listed"))
            return d.DatasetImportPayload(errors=errors)
        except DomainError as e:
            ctx(info).mutation_errors.append(f"{e.code.value}: {e.message}")
            try:
                code = DatasetErrorCode(e.code.value)
            except ValueError:
                code = DatasetErrorCode.INVALID
            return d.DatasetImportPayload(errors=[d.DatasetError(field=e.field, code=code, message=e.message)])
        return d.DatasetImportPayload(dataset=d.Dataset.from_domain(dataset), imported=imported)
