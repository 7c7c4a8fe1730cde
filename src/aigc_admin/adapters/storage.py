"""Uploaded files on local disk: blobs stored atomically and hashed while written (``LocalFileStorage``), and
the lines of a stored file read back in chunks (``FileLines``)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Any

from aigc_admin.adapters.db import models as m
from aigc_admin.domain.errors import NotFound
from aigc_admin.domain.files.service import StorageLimitExceeded, StoredBlob

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

    async def delete_tree(self, key: str) -> None:
        path = self.path(key)
        if path.is_dir() and not path.is_symlink():
            await asyncio.to_thread(shutil.rmtree, path, True)

    async def exists(self, key: str) -> bool:
        return self.path(key).is_file()


class FileLines:
    """Lines of uploaded files: a File row's ``storage_path`` under the storage directory."""

    def __init__(self, storage_dir: Path, *, chunk_bytes: int = 1024 * 1024,
                 max_line_bytes: int = 8 * 1024 * 1024) -> None:
        self.storage_dir = storage_dir.resolve()
        self.chunk_bytes = chunk_bytes
        self.max_line_bytes = max_line_bytes

    async def _path(self, tenant_id: int, file_id: str) -> Path:
        row = await m.File.get_or_none(file_id=file_id)  # the public id, 'file-…'
        if row is None or row.tenant_id != tenant_id:
            raise NotFound("file", file_id, "fileId")  # another tenant's file looks missing
        path = (self.storage_dir / row.storage_path).resolve()
        if not path.is_relative_to(self.storage_dir) or not path.is_file():
            raise NotFound("file", file_id, "fileId")
        return path

    async def open_lines(self, tenant_id: int, file_id: str) -> AsyncIterator[bytes]:
        """The file's lines without their line ends, read in chunks off the event loop. A line longer than
        max_line_bytes comes out cut at that length (so that the reader can report it) and memory stays bounded."""
        path = await self._path(tenant_id, file_id)
        handle = await asyncio.to_thread(path.open, "rb")
        try:
            rest = b""
            skipping = False  # inside an overlong line already handed out
            while chunk := await asyncio.to_thread(handle.read, self.chunk_bytes):
                lines = (rest + chunk).split(b"\n")
                rest = lines.pop()
                for line in lines:
                    if not skipping:
                        yield line.rstrip(b"\r")
                    skipping = False
                if len(rest) > self.max_line_bytes:
                    if not skipping:
                        yield rest[: self.max_line_bytes + 1]
                    rest, skipping = b"", True
            if rest and not skipping:
                yield rest.rstrip(b"\r")
        finally:
            await asyncio.to_thread(handle.close)
