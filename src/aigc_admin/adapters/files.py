"""Files: local storage of uploads (atomic, hashed while written), their Tortoise repository, the limits
from settings, and an optional tokenizer-based token counter."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import hashlib
import logging
import os
import re
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from tortoise.exceptions import IntegrityError

from aigc_admin.adapters.db import models as m
from aigc_admin.domain.files.service import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ERRORS,
    DEFAULT_MAX_LINE_BYTES,
    FileLimits,
    FileRecord,
    NewFile,
    Purpose,
    StorageLimitExceeded,
    StoredBlob,
)

log = logging.getLogger("aigc_admin.files")

CHUNK = 1024 * 1024
_KEY_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")


class LocalFileStorage:
    """Blobs under ``root`` by key (``files/<tenant>/<file id>``): keys are made by the service, and checked
    again here, so a client's file name can never become a path."""

    def __init__(self, root: Path | str, *, chunk_size: int = CHUNK) -> None:
        self.root = Path(root).expanduser().resolve()
        self.chunk_size = chunk_size

    def path(self, key: str) -> Path:
        parts = key.split("/")
        if not parts or not all(_KEY_PART.match(p) for p in parts):
            raise ValueError(f"bad storage key {key!r}")
        path = self.root.joinpath(*parts)
        if not path.resolve().is_relative_to(self.root):  # a symlink planted inside the storage dir
            raise ValueError(f"storage key {key!r} leaves the storage directory")
        return path

    async def save(self, key: str, chunks: AsyncIterable[bytes], *, max_bytes: int) -> StoredBlob:
        final = self.path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".upload-", suffix=".part", dir=final.parent)
        tmp = Path(tmp_name)
        digest = hashlib.sha256()
        size = 0
        pending = bytearray()

        def write(f: Any, data: bytes) -> None:
            digest.update(data)  # hashlib releases the GIL on large buffers
            f.write(data)

        try:
            with os.fdopen(fd, "wb") as f:
                try:
                    async for chunk in chunks:
                        size += len(chunk)
                        if size > max_bytes:
                            raise StorageLimitExceeded(max_bytes)
                        pending += chunk
                        if len(pending) >= self.chunk_size:
                            await asyncio.to_thread(write, f, bytes(pending))
                            pending.clear()
                finally:
                    aclose = getattr(chunks, "aclose", None)
                    if aclose is not None:
                        await aclose()
                if pending:
                    await asyncio.to_thread(write, f, bytes(pending))
                await asyncio.to_thread(f.flush)
                await asyncio.to_thread(os.fsync, f.fileno())
            os.replace(tmp, final)  # atomic: readers see the whole file or none
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        return StoredBlob(key=key, size=size, sha256=digest.hexdigest())

    async def open(self, key: str) -> AsyncIterator[bytes]:
        f = await asyncio.to_thread(self.path(key).open, "rb")  # FileNotFoundError now, not mid-response

        async def chunks() -> AsyncIterator[bytes]:
            try:
                while data := await asyncio.to_thread(f.read, self.chunk_size):
                    yield data
            finally:
                f.close()

        return chunks()

    async def delete(self, key: str) -> None:
        try:
            await asyncio.to_thread(self.path(key).unlink, True)
        except (OSError, ValueError):
            log.warning("could not delete stored file %s", key, exc_info=True)

    async def exists(self, key: str) -> bool:
        return self.path(key).is_file()


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
        total = await qs.count()
        return [_file(r) for r in await qs.order_by("-id").offset(offset).limit(limit)], total


def file_limits(settings: object) -> FileLimits:
    """files.max.bytes, files.max.line.bytes and files.max.errors (defaults where a setting is absent)."""
    return FileLimits(max_bytes=int(getattr(settings, "files_max_bytes", DEFAULT_MAX_BYTES)),
                      max_line_bytes=int(getattr(settings, "files_max_line_bytes", DEFAULT_MAX_LINE_BYTES)),
                      max_errors=int(getattr(settings, "files_max_errors", DEFAULT_MAX_ERRORS)))


class TokenizerCounter:
    """Counts with a Hugging Face ``tokenizer.json`` read from disk (the ``tokenizers`` package, when it is
    installed); nothing is downloaded."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def count(self, texts: Sequence[str]) -> int:
        if not texts:
            return 0
        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return sum(len(e.ids) for e in encodings)

    @classmethod
    def load(cls, path: str | Path) -> TokenizerCounter | None:
        """From a model directory or a tokenizer.json; None (the documented estimate is used) when the file
        or the ``tokenizers`` package is missing, or the file cannot be read."""
        p = Path(path).expanduser()
        if p.is_dir():
            p = p / "tokenizer.json"
        if not p.is_file():
            return None
        try:
            from tokenizers import Tokenizer
        except ImportError:
            log.info("the tokenizers package is not installed: token counts of uploads are estimated")
            return None
        try:
            return cls(Tokenizer.from_file(str(p)))
        except Exception:
            log.warning("cannot load the tokenizer %s: token counts of uploads are estimated", p, exc_info=True)
            return None


def token_counter(settings: object) -> TokenizerCounter | None:
    """The counter of files.tokenizer.path (the base model's directory or tokenizer.json), if any."""
    path = str(getattr(settings, "files_tokenizer_path", "") or "")
    return TokenizerCounter.load(path) if path else None
