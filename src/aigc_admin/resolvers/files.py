"""Files: upload (GraphQL multipart request), list, look up and delete a tenant's files."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import strawberry
from strawberry.file_uploads import Upload
from strawberry.types import Info

from aigc_admin.domain.errors import DomainError
from aigc_admin.domain.files.service import FileErrorCode, Purpose
from aigc_admin.resolvers import permissions as perm
from aigc_admin.resolvers.common import ctx, page, page_args, request_tenant, typed_errors
from aigc_admin.schema import files as f
from aigc_admin.schema.common import Page, Pagination

READ_CHUNK = 1024 * 1024


async def upload_chunks(upload: Any, size: int = READ_CHUNK) -> AsyncIterator[bytes]:
    """The bytes of a Starlette UploadFile (spooled by the multipart parser), a chunk at a time."""
    while data := await upload.read(size):
        yield data


@strawberry.type
class FileQueries:
    @strawberry.field(permission_classes=perm.TENANT_MEMBER, description="The tenant's files, newest first.")
    async def files(self, info: Info, purpose: f.Purpose | None = None,  # type: ignore[valid-type]
                    pagination: Pagination | None = None) -> Page[f.File]:
        offset, limit = page_args(pagination)
        rows, total = await ctx(info).services.files.list(
            tenant_id=request_tenant(info), purpose=Purpose(purpose) if purpose is not None else None, offset=offset,
            limit=limit)
        return page([f.File.from_domain(r) for r in rows], total, offset, limit)

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
    @typed_errors
    async def upload_file(self, info: Info, file: Upload, purpose: f.Purpose) -> f.FilePayload:  # type: ignore[valid-type]
        c = ctx(info)
        if not callable(getattr(file, "read", None)):
            raise DomainError(FileErrorCode.INVALID, "file must be a file part of a multipart request", "file")
        assert c.principal is not None
        result = await c.services.files.upload(
            tenant_id=request_tenant(info), filename=getattr(file, "filename", None), purpose=Purpose(purpose),
            chunks=upload_chunks(file), creator=await c.services.identity.contact(c.principal))
        return f.FilePayload(file=f.File.from_domain(result.file), created=result.created)

    @strawberry.mutation(permission_classes=perm.TENANT_MAINTAINER,
                         description="Delete a file of the tenant and its stored content.")
    @typed_errors
    async def delete_file(self, info: Info, id: strawberry.ID) -> f.FilePayload:
        await ctx(info).services.files.delete(str(id), tenant_id=request_tenant(info))
        return f.FilePayload()
