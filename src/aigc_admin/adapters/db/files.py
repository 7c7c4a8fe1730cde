"""Uploaded files' rows (files)."""

from __future__ import annotations

import builtins

from tortoise.exceptions import IntegrityError

from aigc_admin.adapters.db import models as m
from aigc_admin.adapters.db.paging import page
from aigc_admin.domain.files.service import FileRecord, NewFile, Purpose


def _file(row: m.File) -> FileRecord:
    return FileRecord(id=row.id, file_id=row.file_id, tenant_id=row.tenant_id, name=row.name,
                      purpose=Purpose(row.purpose), size=row.size, file_type=row.file_type,
                      storage_path=row.storage_path, sha256=row.sha256, line_count=row.line_count,
                      token_count=row.token_count, creator_email=row.creator_email, created_at=row.created_at)


class FileRepo:
    async def get(self, file_id: str) -> FileRecord | None:
        row = await m.File.get_or_none(file_id=file_id)
        return _file(row) if row else None

    async def find(self, *, tenant_id: int, sha256: str, purpose: Purpose) -> FileRecord | None:
        row = await m.File.get_or_none(tenant_id=tenant_id, sha256=sha256, purpose=purpose.value)
        return _file(row) if row else None

    async def create(self, new: NewFile) -> FileRecord | None:
        try:
            row = await m.File.create(
                file_id=new.file_id, tenant_id=new.tenant_id, name=new.name, purpose=new.purpose.value,
                size=new.size, file_type=new.file_type, storage_path=new.storage_path, sha256=new.sha256,
                line_count=new.line_count, token_count=new.token_count, creator_email=new.creator_email)
        except IntegrityError:
            return None  # (tenant, sha256, purpose) is taken
        return _file(row)

    async def delete(self, file_id: str) -> None:
        await m.File.filter(file_id=file_id).delete()

    async def list(self, *, tenant_id: int, purpose: Purpose | None, offset: int,
                   limit: int) -> tuple[builtins.list[FileRecord], int]:
        qs = m.File.filter(tenant_id=tenant_id)
        if purpose is not None:
            qs = qs.filter(purpose=purpose.value)
        rows, total = await page(qs, offset=offset, limit=limit, order=("-id",))
        return [_file(r) for r in rows], total
