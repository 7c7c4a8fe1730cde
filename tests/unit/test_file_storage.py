"""Local file storage (atomic, hashed, bounded) and the file service's failure paths, with a fake repository."""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aigc_admin.adapters.storage import LocalFileStorage
from aigc_admin.domain.errors import DomainError
from aigc_admin.domain.files.service import (
    FileLimits,
    FileRecord,
    FileService,
    FileValidationError,
    NewFile,
    Purpose,
    StorageLimitExceeded,
)


async def stream(*chunks: bytes) -> AsyncIterator[bytes]:
    for c in chunks:
        yield c


def files_in(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


async def test_save_is_atomic_and_hashed(tmp_path: Path) -> None:
    storage = LocalFileStorage(tmp_path)
    blob = await storage.save("files/1/file-a", stream(b"hello ", b"world"), max_bytes=100)
    assert (blob.size, blob.sha256) == (11, hashlib.sha256(b"hello world").hexdigest())
    assert files_in(tmp_path) == [tmp_path / "files" / "1" / "file-a"]
    assert b"".join([c async for c in await storage.open("files/1/file-a")]) == b"hello world"
    await storage.delete("files/1/file-a")
    assert files_in(tmp_path) == []
    with pytest.raises(FileNotFoundError):
        await storage.open("files/1/file-a")


async def test_nothing_is_left_when_the_limit_is_passed_or_the_stream_fails(tmp_path: Path) -> None:
    storage = LocalFileStorage(tmp_path, chunk_size=4)
    with pytest.raises(StorageLimitExceeded):
        await storage.save("files/1/big", stream(b"12345", b"67890", b"x"), max_bytes=10)

    async def broken() -> AsyncIterator[bytes]:
        yield b"partial"
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        await storage.save("files/1/broken", broken(), max_bytes=100)
    assert files_in(tmp_path) == []


@pytest.mark.parametrize("key", ["../x", "files/../../x", "/etc/passwd", "files//x", "files/.hidden", "a b", ""])
async def test_keys_cannot_leave_the_storage_dir(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError):
        await LocalFileStorage(tmp_path).save(key, stream(b"x"), max_bytes=10)


class FakeRepo:
    def __init__(self) -> None:
        self.rows: dict[str, FileRecord] = {}
        self.conflict_once = False

    async def get(self, file_id: str) -> FileRecord | None:
        return self.rows.get(file_id)

    async def find(self, *, tenant_id: int, sha256: str, purpose: Purpose) -> FileRecord | None:
        return next((r for r in self.rows.values()
                     if (r.tenant_id, r.sha256, r.purpose) == (tenant_id, sha256, purpose)), None)

    async def create(self, new: NewFile) -> FileRecord | None:
        if self.conflict_once:  # another request stored the same content between find and create
            self.conflict_once = False
            winner = "file-" + "0" * 32
            self.rows[winner] = FileRecord(id=99, **{**dataclasses.asdict(new), "file_id": winner})
            return None
        record = FileRecord(id=len(self.rows) + 1, **dataclasses.asdict(new))
        self.rows[new.file_id] = record
        return record

    async def delete(self, file_id: str) -> None:
        self.rows.pop(file_id, None)

    async def list(self, *, tenant_id: int, purpose: Purpose | None, offset: int,
                   limit: int) -> tuple[builtins.list[FileRecord], int]:
        rows = [r for r in self.rows.values() if r.tenant_id == tenant_id]
        return rows[offset:offset + limit], len(rows)


def line(user: str = "hi") -> bytes:
    return json.dumps({"messages": [{"role": "user", "content": user},
                                    {"role": "assistant", "content": "ok"}]}).encode() + b"\n"


async def test_validation_stops_at_max_errors_and_stores_nothing(tmp_path: Path) -> None:
    consumed = 0

    async def endless_garbage() -> AsyncIterator[bytes]:
        nonlocal consumed
        for _ in range(10_000):
            consumed += 1
            yield b"nope\n"

    service = FileService(repo=FakeRepo(), storage=LocalFileStorage(tmp_path), limits=FileLimits(max_errors=3))
    with pytest.raises(FileValidationError) as e:
        await service.upload(tenant_id=1, filename="x.jsonl", purpose="fine-tune", chunks=endless_garbage())
    assert [x.line for x in e.value.lines] == [1, 2, 3] and e.value.report.stopped
    assert consumed == 3  # reading stopped as soon as the errors to show were known
    assert files_in(tmp_path) == []


async def test_a_concurrent_duplicate_returns_the_winner(tmp_path: Path) -> None:
    repo = FakeRepo()
    service = FileService(repo=repo, storage=LocalFileStorage(tmp_path))
    repo.conflict_once = True
    result = await service.upload(tenant_id=1, filename="x.jsonl", purpose=Purpose.FINE_TUNE, chunks=stream(line()))
    assert result.created is False and result.file.id == 99
    assert files_in(tmp_path) == []  # the loser's copy is gone


async def test_errors_of_the_domain(tmp_path: Path) -> None:
    service = FileService(repo=FakeRepo(), storage=LocalFileStorage(tmp_path), limits=FileLimits(max_bytes=200))
    for kwargs, code in [({"filename": "..", "purpose": "fine-tune"}, "INVALID"),
                         ({"filename": "a.jsonl", "purpose": "weights"}, "INVALID"),
                         ({"filename": "a.jsonl", "purpose": "fine-tune", "chunks": stream(line("x" * 300))},
                          "TOO_LARGE"),
                         ({"filename": "a.jsonl", "purpose": "fine-tune", "chunks": stream(b"\n")}, "EMPTY")]:
        with pytest.raises(DomainError) as e:
            await service.upload(tenant_id=1, **{"chunks": stream(line()), **kwargs})  # type: ignore[arg-type]
        assert e.value.code == code, kwargs
    stored = await service.upload(tenant_id=1, filename="a.jsonl", purpose="fine-tune", chunks=stream(line()))
    for tenant, file_id in ((2, stored.file.file_id), (1, "file-nope"), (1, "../../x")):
        with pytest.raises(DomainError) as e:
            await service.get(file_id, tenant_id=tenant)
        assert e.value.code == "NOT_FOUND"
    await service.delete(stored.file.file_id, tenant_id=1)
    assert files_in(tmp_path) == []
