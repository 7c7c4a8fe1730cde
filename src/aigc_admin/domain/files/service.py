"""Files: training data and other uploads of a tenant, stored under the storage path.

An upload streams through, once: it is hashed and written to a temporary file (never named after the
client's file name), and for the fine-tuning purposes each line is validated as chat JSONL on the way.
Only a complete, valid file is renamed into place and recorded; on any failure nothing is left behind.
Identical content with the same purpose in the same tenant is stored once (the existing file is
returned); tenants never share files, and another tenant's file looks missing.

Chat JSONL (``fine-tune``, ``fine-tune-eval``): one JSON object per line, ``{"messages": [...]}``, each
message ``{"role": ..., "content": "<non-empty string>"}``; an optional ``system`` message first, then
``user`` and ``assistant`` alternating, starting with ``user`` and ending with ``assistant``. Other keys
are ignored. Blank lines (only spaces, tabs or CR) are skipped but keep their line numbers; CRLF line ends
and a UTF-8 byte-order mark on the first line are accepted.

Token counts: a ``TokenCounter`` (the base model's tokenizer, when one is configured) counts exactly;
without one the count is an estimate that needs no downloads: per content ``ceil(ASCII characters / 4)``
plus one token per non-ASCII character (CJK text is about a token per character), plus
``MESSAGE_OVERHEAD`` per message and ``SAMPLE_OVERHEAD`` per sample (role markers and delimiters of chat
templates).
"""

from __future__ import annotations

import builtins
import json
import re
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from aigc_admin.domain.chat_format import FormatError, training_sample
from aigc_admin.domain.errors import DomainError

MIB = 1024 * 1024
DEFAULT_MAX_BYTES = 512 * MIB
DEFAULT_MAX_LINE_BYTES = 1 * MIB
DEFAULT_MAX_ERRORS = 20
MESSAGE_OVERHEAD = 4
SAMPLE_OVERHEAD = 3
MAX_NAME_CHARS = 255
BOM = b"\xef\xbb\xbf"
FILE_ID_RE = re.compile(r"^file-[0-9a-f]{32}$")


class FileErrorCode(StrEnum):
    NOT_FOUND = "NOT_FOUND"
    INVALID = "INVALID"  # a bad file name or purpose
    TOO_LARGE = "TOO_LARGE"  # over files.max.bytes
    INVALID_JSONL = "INVALID_JSONL"  # lines that are not chat samples (see the errors' line numbers)
    EMPTY = "EMPTY"  # no bytes, or (fine-tuning purposes) no sample


class Purpose(StrEnum):
    """What a file is for. The original knew the two fine-tuning purposes; ``assistants`` files are stored
    as they are (no validation)."""

    FINE_TUNE = "fine-tune"
    FINE_TUNE_EVAL = "fine-tune-eval"
    ASSISTANTS = "assistants"


CHAT_PURPOSES = frozenset({Purpose.FINE_TUNE, Purpose.FINE_TUNE_EVAL})


@dataclass(frozen=True)
class FileRecord:
    id: int
    file_id: str  # public id: "file-" + 32 hex digits
    tenant_id: int
    name: str  # the client's file name without directories: metadata only, never a path
    purpose: Purpose
    size: int
    file_type: str  # lower-case extension without the dot, or ""
    storage_path: str  # relative to the storage root: files/<tenant_id>/<file_id>
    sha256: str
    line_count: int = 0
    token_count: int = 0
    creator_email: str = ""
    created_at: datetime | None = None


@dataclass(frozen=True)
class NewFile:
    file_id: str
    tenant_id: int
    name: str
    purpose: Purpose
    size: int
    file_type: str
    storage_path: str
    sha256: str
    line_count: int
    token_count: int
    creator_email: str


@dataclass(frozen=True)
class UploadResult:
    file: FileRecord
    created: bool  # False: the tenant already had this content with this purpose; that file is returned


@dataclass(frozen=True)
class LineError:
    line: int  # 1-based
    message: str


@dataclass(frozen=True)
class ValidationReport:
    lines: int  # lines read, blank ones included
    samples: int  # valid samples
    token_estimate: int  # of the valid samples (exact when a TokenCounter counted them)
    errors: list[LineError] = field(default_factory=list)  # the first max_errors
    error_count: int = 0  # every invalid line seen (validation may stop early: see ``stopped``)
    estimated: bool = True  # False when a TokenCounter counted
    stopped: bool = False  # reading stopped once max_errors errors were found

    @property
    def ok(self) -> bool:
        return self.error_count == 0


@dataclass(frozen=True)
class FileLimits:
    max_bytes: int = DEFAULT_MAX_BYTES
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    max_errors: int = DEFAULT_MAX_ERRORS


@dataclass(frozen=True)
class StoredBlob:
    key: str
    size: int
    sha256: str


class StorageLimitExceeded(Exception):
    """Raised by ``FileStorage.save`` when the stream is longer than ``max_bytes`` (nothing is kept)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} bytes")
        self.limit = limit


class FileValidationError(DomainError):
    """INVALID_JSONL with the offending lines (the first ``max_errors``)."""

    def __init__(self, report: ValidationReport) -> None:
        first = report.errors[0]
        more = report.error_count - 1
        tail = "" if more <= 0 else f" (and {'at least ' if report.stopped else ''}{more} more invalid "
        tail += "" if more <= 0 else f"line{'s' if more > 1 else ''})"
        super().__init__(FileErrorCode.INVALID_JSONL, f"line {first.line}: {first.message}{tail}", "file")
        self.report = report
        self.lines = list(report.errors)


class TokenCounter(Protocol):
    def count(self, texts: Sequence[str]) -> int:
        """Tokens of ``texts`` together (without chat-template overhead)."""
        ...


class FileStorage(Protocol):
    async def save(self, key: str, chunks: AsyncIterable[bytes], *, max_bytes: int) -> StoredBlob:
        """Write the stream to ``key`` atomically, hashing it; raises StorageLimitExceeded past ``max_bytes``.
        On any exception (the stream's own included) nothing is left at ``key`` or beside it."""
        ...

    async def open(self, key: str) -> AsyncIterator[bytes]:
        """The content in chunks; raises FileNotFoundError at once when there is none."""
        ...

    async def delete(self, key: str) -> None: ...
    async def delete_tree(self, key: str) -> None:
        """Everything stored under ``key`` (a directory such as ``files/<tenant>``); nothing when it is missing."""
        ...


class FileRepository(Protocol):
    async def get(self, file_id: str) -> FileRecord | None: ...
    async def find(self, *, tenant_id: int, sha256: str, purpose: Purpose) -> FileRecord | None: ...
    async def create(self, new: NewFile) -> FileRecord | None:
        """None when the tenant already has a file with this sha256 and purpose."""
        ...

    async def delete(self, file_id: str) -> None: ...
    async def list(self, *, tenant_id: int, purpose: Purpose | None, offset: int,
                   limit: int) -> tuple[builtins.list[FileRecord], int]: ...


# --- names --------------------------------------------------------------------------------------------
def safe_name(raw: str | None) -> str:
    """The client's file name without any directory part; refuses names that are empty, ``.``/``..``,
    or contain NUL or other control characters. It is kept as metadata only, never used as a path."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise DomainError(FileErrorCode.INVALID, "the file name must not contain control characters", "file")
    if name in ("", ".", ".."):
        raise DomainError(FileErrorCode.INVALID, "the upload needs a file name", "file")
    if len(name) > MAX_NAME_CHARS:
        raise DomainError(FileErrorCode.INVALID, f"the file name is longer than {MAX_NAME_CHARS} characters",
                          "file")
    return name


def file_type_of(name: str) -> str:
    _, dot, ext = name.rpartition(".")
    ext = ext.lower()
    return ext if dot and re.fullmatch(r"[a-z0-9]{1,32}", ext) else ""


def parse_purpose(value: str | Purpose) -> Purpose:
    try:
        return Purpose(value)
    except ValueError:
        allowed = ", ".join(p.value for p in Purpose)
        raise DomainError(FileErrorCode.INVALID, f"purpose must be one of {allowed}", "purpose") from None


# --- chat JSONL validation ------------------------------------------------------------------------------
def estimate_tokens(text: str) -> int:
    """ceil(ASCII characters / 4) + one per non-ASCII character (documented in the module docstring)."""
    ascii_chars = len(text.encode("ascii", "ignore"))
    return -(-ascii_chars // 4) + (len(text) - ascii_chars)


class ChatJsonlValidator:
    """Validates chat JSONL one line at a time (bounded memory: one line, the first ``max_errors`` errors)."""

    def __init__(self, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, max_errors: int = DEFAULT_MAX_ERRORS,
                 counter: TokenCounter | None = None) -> None:
        self.max_line_bytes = max_line_bytes
        self.max_errors = max(1, max_errors)
        self.counter = counter
        self.lines = 0
        self.samples = 0
        self.tokens = 0
        self.errors: list[LineError] = []
        self.error_count = 0
        self.stopped = False

    @property
    def full(self) -> bool:
        """As many errors as will be shown: reading further cannot change the verdict."""
        return len(self.errors) >= self.max_errors

    def _error(self, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < self.max_errors:
            self.errors.append(LineError(self.lines, message))

    def feed(self, raw: bytes) -> None:
        """One line, with or without its line end."""
        self.lines += 1
        line = raw[:-1] if raw.endswith(b"\n") else raw
        if line.endswith(b"\r"):
            line = line[:-1]
        if self.lines == 1 and line.startswith(BOM):
            line = line[len(BOM):]
        if not line.strip(b" \t\r"):
            return  # blank lines are skipped
        if len(line) > self.max_line_bytes:
            self._error(f"the line is longer than the limit of {self.max_line_bytes} bytes")
            return
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as e:
            self._error(f"not valid UTF-8 (byte {e.start + 1})")
            return
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            self._error(f"not valid JSON: {e.msg} (column {e.colno})")
            return
        except RecursionError:
            self._error("not valid JSON: nested too deeply")
            return
        try:
            contents = [m["content"] for m in training_sample(obj).as_messages()]
        except FormatError as e:
            self._error(e.message)
            return
        self.samples += 1
        content_tokens = (self.counter.count(contents) if self.counter is not None
                          else sum(estimate_tokens(c) for c in contents))
        self.tokens += content_tokens + MESSAGE_OVERHEAD * len(contents) + SAMPLE_OVERHEAD

    def report(self) -> ValidationReport:
        return ValidationReport(lines=self.lines, samples=self.samples, token_estimate=self.tokens,
                                errors=list(self.errors), error_count=self.error_count,
                                estimated=self.counter is None, stopped=self.stopped)


def validate_chat_jsonl(lines: Iterable[bytes], *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
                        max_errors: int = DEFAULT_MAX_ERRORS, counter: TokenCounter | None = None) -> ValidationReport:
    """Validate chat JSONL lines (e.g. iterating a file opened in binary mode); every line is read and every
    invalid one counted, the first ``max_errors`` are reported with their line numbers."""
    validator = ChatJsonlValidator(max_line_bytes=max_line_bytes, max_errors=max_errors, counter=counter)
    for line in lines:
        validator.feed(line)
    return validator.report()


class LineSplitter:
    """Chunks → lines (without ``\\n``), holding at most ``max_line_bytes + 2`` bytes of one line: the rest
    of an overlong line is dropped (its prefix still shows the validator that it is too long)."""

    def __init__(self, max_line_bytes: int) -> None:
        self.cap = max_line_bytes + 2
        self.buffer = bytearray()

    def feed(self, chunk: bytes) -> list[bytes]:
        out: list[bytes] = []
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                room = self.cap - len(self.buffer)
                if room > 0:
                    self.buffer += chunk[start:start + room]
                return out
            room = self.cap - len(self.buffer)
            if room > 0:
                self.buffer += chunk[start:min(end, start + room)]
            out.append(bytes(self.buffer))
            self.buffer.clear()
            start = end + 1

    def close(self) -> list[bytes]:
        """The last line when the data does not end with a line end."""
        rest = [bytes(self.buffer)] if self.buffer else []
        self.buffer.clear()
        return rest


class _EnoughErrors(Exception):
    """Stops reading an upload once the errors to show are known."""


# --- the service ----------------------------------------------------------------------------------------
class FileService:
    def __init__(self, *, repo: FileRepository, storage: FileStorage, limits: FileLimits | None = None,
                 counter: TokenCounter | None = None) -> None:
        self.repo = repo
        self.storage = storage
        self.limits = limits or FileLimits()
        self.counter = counter

    async def upload(self, *, tenant_id: int, filename: str | None, purpose: str | Purpose,
                     chunks: AsyncIterable[bytes], creator: str = "") -> UploadResult:
        """Store a tenant's upload (see the module docstring); a DomainError leaves nothing stored."""
        name = safe_name(filename)
        kind = parse_purpose(purpose)
        file_id = f"file-{uuid.uuid4().hex}"
        key = f"files/{tenant_id}/{file_id}"
        validator = (ChatJsonlValidator(max_line_bytes=self.limits.max_line_bytes,
                                        max_errors=self.limits.max_errors, counter=self.counter)
                     if kind in CHAT_PURPOSES else None)

        async def observed() -> AsyncIterator[bytes]:
            splitter = LineSplitter(self.limits.max_line_bytes)
            async for chunk in chunks:
                if validator is not None and chunk:
                    for line in splitter.feed(chunk):
                        validator.feed(line)
                    if validator.full:
                        validator.stopped = True
                        raise _EnoughErrors
                yield chunk
            if validator is not None:
                for line in splitter.close():
                    validator.feed(line)

        try:
            blob = await self.storage.save(key, observed(), max_bytes=self.limits.max_bytes)
        except StorageLimitExceeded as e:
            raise DomainError(FileErrorCode.TOO_LARGE, f"the file is larger than the limit of {_size(e.limit)}",
                              "file") from None
        except _EnoughErrors:
            assert validator is not None
            raise FileValidationError(validator.report()) from None
        try:
            report = validator.report() if validator is not None else None
            if blob.size == 0:
                raise DomainError(FileErrorCode.EMPTY, "the file is empty", "file")
            if report is not None and not report.ok:
                raise FileValidationError(report)
            if report is not None and report.samples == 0:
                raise DomainError(FileErrorCode.EMPTY, "the file has no samples, only blank lines", "file")
            existing = await self.repo.find(tenant_id=tenant_id, sha256=blob.sha256, purpose=kind)
            record = existing or await self.repo.create(NewFile(
                file_id=file_id, tenant_id=tenant_id, name=name, purpose=kind, size=blob.size,
                file_type=file_type_of(name), storage_path=key, sha256=blob.sha256,
                line_count=report.samples if report else 0, token_count=report.token_estimate if report else 0,
                creator_email=creator[:128]))
            if record is None:  # a concurrent upload of the same content won the unique key
                record = await self.repo.find(tenant_id=tenant_id, sha256=blob.sha256, purpose=kind)
                if record is None:
                    raise RuntimeError("file row vanished after a duplicate-key conflict")
        except BaseException:
            await self.storage.delete(key)
            raise
        if record.file_id != file_id:
            await self.storage.delete(key)  # no second copy: the tenant's existing file is returned
            return UploadResult(record, created=False)
        return UploadResult(record, created=True)

    async def get(self, file_id: str, *, tenant_id: int) -> FileRecord:
        record = await self.repo.get(file_id) if FILE_ID_RE.match(file_id or "") else None
        if record is None or record.tenant_id != tenant_id:
            # another tenant's file looks exactly like a missing one
            raise DomainError(FileErrorCode.NOT_FOUND, f"file {file_id[:80]} not found", "id")
        return record

    async def list(self, *, tenant_id: int, purpose: Purpose | None = None, offset: int = 0,
                   limit: int = 20) -> tuple[builtins.list[FileRecord], int]:
        return await self.repo.list(tenant_id=tenant_id, purpose=purpose, offset=offset, limit=limit)

    async def content(self, file_id: str, *, tenant_id: int) -> tuple[FileRecord, AsyncIterator[bytes]]:
        record = await self.get(file_id, tenant_id=tenant_id)
        try:
            return record, await self.storage.open(record.storage_path)
        except FileNotFoundError:
            raise DomainError(FileErrorCode.NOT_FOUND, f"the content of file {file_id} is missing from storage",
                              "id") from None

    async def delete(self, file_id: str, *, tenant_id: int) -> FileRecord:
        record = await self.get(file_id, tenant_id=tenant_id)
        await self.repo.delete(record.file_id)  # the row first: a leftover blob is unreachable, never served
        await self.storage.delete(record.storage_path)
        return record

    async def remove_tenant(self, tenant_id: int, *, also: Sequence[str] = ()) -> int:
        """Delete every file of a tenant being deleted (rows and stored content), its storage directory, and the
        stored trees named in ``also`` (its fine-tuning outputs)."""
        removed = 0
        while True:
            files, _ = await self.repo.list(tenant_id=tenant_id, purpose=None, offset=0, limit=100)
            if not files:
                break
            for record in files:
                await self.delete(record.file_id, tenant_id=tenant_id)
                removed += 1
        for key in [f"files/{tenant_id}", *also]:
            await self.storage.delete_tree(key)
        return removed


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", MIB), ("KiB", 1024)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n} bytes"
