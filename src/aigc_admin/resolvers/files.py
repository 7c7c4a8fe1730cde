"""File fields: upload (GraphQL multipart request), list, look up and delete a tenant's files."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import strawberry
from strawberry.file_uploads import Upload
from strawberry.types import Info

from aigc_admin.domain.errors import DomainError
from aigc_admin.domain.files.service import FileErrorCode, FileValidationError, Purpose
from aigc_admin.resolvers import permissions as perm
from aigc_admin.resolvers.common import ctx, page_args, request_tenant, run_mutation
from aigc_admin.resolvers.context import Context
from aigc_admin.schema import files as f
from aigc_admin.schema import types as t

READ_CHUNK = 1024 * 1024


async def creator_of(context: Context) -> str:
    """The caller's e-mail (its username when it has none), kept with a file it uploads."""
    principal = context.principal
    if principal is None:
        return ""
    account = (await context.services.lookups.accounts_by_id([principal.account_id])).get(principal.account_id)
    return (account.email if account and account.email else principal.username)[:128]


async def upload_chunks(upload: Any, size: int = READ_CHUNK) -> AsyncIterator[bytes]:
    """The bytes of a Starlette UploadFile (spooled by the multipart parser), a chunk at a time."""
    while data := await upload.read(size):
        yield data


async def file_payload(info: Info, action: Callable[[], Awaitable[dict[str, Any]]]) -> f.FilePayload:
    """run_mutation, plus the line errors of INVALID_JSONL."""
    async def guarded() -> dict[str, Any]:
        try:
            return await action()
        except FileValidationError as e:
            ctx(info).mutation_errors.append(f"{e.code.value}: {e.message}")
            raise _Mapped(f.FilePayload(errors=[f.FileError(
                field=e.field, code=FileErrorCode.INVALID_JSONL, message=e.message,
                lines=[f.LineError(line=x.line, message=x.message) for x in e.lines])])) from None

    try:
        return await run_mutation(info, f.FilePayload, f.FileError, FileErrorCode, guarded)
    except _Mapped as mapped:
        return mapped.payload


class _Mapped(Exception):
    def __init__(self, payload: f.FilePayload) -> None:
        super().__init__("mapped")
        self.payload = payload


@strawberry.type
class FileQueries:
    @strawberry.field(permission_classes=perm.TENANT_MEMBER, description="The tenant's files, newest first.")
    async def files(self, info: Info, purpose: f.Purpose | None = None,  # type: ignore[valid-type]
                    pagination: t.Pagination | None = None) -> t.Page[f.File]:
        offset, limit = page_args(pagination)
        rows, total = await ctx(info).services.files.list(
            tenant_id=request_tenant(info), purpose=Purpose(purpose) if purpose is not None else None, offset=offset,
            limit=limit)
        return t.Page(items=[f.File.from_domain(r) for r in rows], total_count=total, offset=offset, limit=limit)

    @strawberry.field(permission_classes=perm.TENANT_MEMBER, description="A file of the tenant.")
    async def file(self, info: Info, id: strawberry.ID) -> f.File | None:
        try:
            return f.File.from_domain(await ctx(info).services.files.get(str(id), tenant_id=request_tenant(info)))
        except DomainError:
            return None


@strawberry.type
class FileMutations:
    @strawberry.mutation(permission_classes=perm.TENANT_MEMBER,
                         description="Upload a file (GraphQL multipart request). Fine-tuning purposes must be chat "
                                     "JSONL; identical content with the same purpose returns the existing file. "
                                     "Large files: POST /files.")
    async def upload_file(self, info: Info, file: Upload,
                          purpose: f.Purpose) -> f.FilePayload:  # type: ignore[valid-type]
        async def action() -> dict[str, Any]:
            c = ctx(info)
            if not callable(getattr(file, "read", None)):
                raise DomainError(FileErrorCode.INVALID, "file must be a file part of a multipart request", "file")
            result = await c.services.files.upload(
                tenant_id=request_tenant(info), filename=getattr(file, "filename", None), purpose=Purpose(purpose),
                chunks=upload_chunks(file), creator=await creator_of(c))
            return {"file": f.File.from_domain(result.file), "created": result.created}
        return await file_payload(info, action)

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER,
                         description="Delete a file of the tenant and its stored content.")
    async def delete_file(self, info: Info, id: strawberry.ID) -> f.FilePayload:
        async def action() -> dict[str, Any]:
            await ctx(info).services.files.delete(str(id), tenant_id=request_tenant(info))
            return {}
        return await file_payload(info, action)
