"""Datasets of chat samples for fine-tuning: CRUD, import from an uploaded JSONL file, export as JSONL.

A sample is stored once in a canonical shape (``conversations``: OpenAI messages, the system prompt first)
and, beside it, in the original's columns: ``system``, ``instruction``/``input`` (the last user message,
split as alpaca had it), ``output`` (the last assistant message) and ``turns`` (assistant messages). A
dataset's ``format`` says how it is exported by default and what its samples must allow: samples of an
alpaca dataset must be writable as alpaca (user/assistant in turn, ending with the assistant).
"""

from __future__ import annotations

import builtins
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from aigc_admin.domain import chat_format as f
from aigc_admin.domain.chat_format import Conversation, DatasetFormat, FormatError, Message
from aigc_admin.domain.errors import DomainError, NotFound

MAX_IMPORT_ROWS = 100_000
MAX_LINE_BYTES = 4 * 1024 * 1024  # one JSONL line (one sample)
MAX_REPORTED_ERRORS = 20
EXPORT_BATCH = 500


class DatasetErrorCode(StrEnum):
    NOT_FOUND = "NOT_FOUND"
    INVALID = "INVALID"
    DUPLICATE = "DUPLICATE"
    TOO_LARGE = "TOO_LARGE"


@dataclass(frozen=True)
class LineError:
    line: int  # 1-based line of the file
    message: str


class ImportFailed(DomainError):
    """An import that stored nothing: the lines at fault (the first MAX_REPORTED_ERRORS of them)."""

    def __init__(self, errors: builtins.list[LineError], more: int = 0) -> None:
        summary = "; ".join(f"line {e.line}: {e.message}" for e in errors[:3])
        extra = len(errors) - 3 + more
        super().__init__(DatasetErrorCode.INVALID, f"nothing imported: {summary}"
                         + (f" (and {extra} more)" if extra > 0 else ""), "fileId")
        self.errors = errors
        self.more = more


@dataclass(frozen=True)
class Dataset:
    id: int
    uuid: str
    tenant_id: int
    name: str
    remark: str
    sample_count: int
    creator_email: str
    type: str
    format: DatasetFormat
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Sample:
    id: int
    uuid: str
    dataset_id: int
    title: str
    system: str
    instruction: str
    input: str
    output: str
    conversations: tuple[Message, ...]  # OpenAI messages, a system message first when there is one
    label: str
    remark: str
    creator_email: str
    turns: int
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def conversation(self) -> Conversation:
        pairs = [(m.role, m.content) for m in self.conversations]
        system = ""
        if pairs and pairs[0][0] == "system":
            system, pairs = pairs[0][1], pairs[1:]
        return Conversation(system=system or self.system, messages=tuple(Message(r, c) for r, c in pairs),
                            alpaca_split=(self.instruction, self.input) if self.input else None)


@dataclass(frozen=True)
class SampleContent:
    """What the repository writes for a sample's content: the canonical messages and the derived columns."""

    system: str
    instruction: str
    input: str
    output: str
    conversations: tuple[Message, ...]
    turns: int

    @classmethod
    def of(cls, c: Conversation) -> SampleContent:
        instruction, input_ = c.alpaca_fields()
        return cls(system=c.system, instruction=instruction, input=input_, output=c.last_assistant(),
                   conversations=tuple(Message(m["role"], m["content"]) for m in c.as_messages()), turns=c.turns)


@dataclass(frozen=True)
class NewSample:
    uuid: str
    title: str
    label: str
    remark: str
    creator_email: str
    content: SampleContent


@dataclass(frozen=True)
class DatasetInput:
    name: str | None = None
    remark: str | None = None
    type: str | None = None
    format: DatasetFormat | None = None


@dataclass(frozen=True)
class SampleInput:
    """Content either as messages (``conversations``, a leading system message allowed) or, alpaca style,
    as ``instruction``/``input``/``output`` (on update: a new last exchange). ``system`` sets the prompt."""

    title: str | None = None
    label: str | None = None
    remark: str | None = None
    system: str | None = None
    conversations: builtins.list[tuple[str, str]] | None = None  # (role, content)
    instruction: str | None = None
    input: str | None = None
    output: str | None = None
    history: builtins.list[tuple[str, str]] | None = None  # alpaca (question, answer) pairs, on create


class DatasetRepository(Protocol):
    async def get(self, dataset_id: int) -> Dataset | None: ...
    async def name_taken(self, tenant_id: int, name: str, *, except_id: int | None = None) -> bool: ...
    async def create(self, *, tenant_id: int, uuid: str, name: str, remark: str, type: str,
                     format: DatasetFormat, creator_email: str) -> Dataset: ...
    async def update(self, dataset_id: int, changes: dict[str, object]) -> Dataset: ...
    async def delete(self, dataset_id: int) -> None: ...
    async def list(self, *, tenant_id: int, offset: int, limit: int,
                   search: str | None) -> tuple[builtins.list[Dataset], int]: ...
    async def get_sample(self, sample_id: int) -> Sample | None: ...
    async def list_samples(self, dataset_id: int, *, offset: int,
                           limit: int) -> tuple[builtins.list[Sample], int]: ...
    def iter_samples(self, dataset_id: int, *, batch: int) -> AsyncIterator[builtins.list[Sample]]: ...
    async def add_sample(self, dataset_id: int, sample: NewSample) -> Sample:
        """Insert one and recount the dataset."""
        ...
    async def add_samples(self, dataset_id: int, samples: builtins.list[NewSample]) -> int:
        """Insert all or none (one transaction) and recount the dataset; returns the new sample count."""
        ...
    async def update_sample(self, sample_id: int, changes: dict[str, object],
                            content: SampleContent | None) -> Sample: ...
    async def delete_sample(self, sample_id: int) -> None:
        """Delete and recount the dataset's samples."""
        ...


class FileReader(Protocol):
    def open_lines(self, tenant_id: int, file_id: str) -> AsyncIterator[bytes]:
        """The lines of a stored file of this tenant; raises NotFound (on first use) for a missing file or
        another tenant's."""
        ...


def _clean_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= 64:
        raise DomainError(DatasetErrorCode.INVALID, "name must have 1 to 64 characters", "name")
    return name


def _fields(values: DatasetInput) -> dict[str, object]:
    out: dict[str, object] = {}
    if values.name is not None:
        out["name"] = _clean_name(values.name)
    if values.remark is not None:
        if len(values.remark) > 500:
            raise DomainError(DatasetErrorCode.INVALID, "remark must have at most 500 characters", "remark")
        out["remark"] = values.remark
    if values.type is not None:
        if not 1 <= len(values.type.strip()) <= 24:
            raise DomainError(DatasetErrorCode.INVALID, "type must have 1 to 24 characters", "type")
        out["type"] = values.type.strip()
    if values.format is not None:
        out["format"] = DatasetFormat(values.format)
    return out


def _sample_meta(values: SampleInput) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, limit in (("title", 128), ("label", 64), ("remark", 500)):
        value = getattr(values, name)
        if value is not None:
            if len(value) > limit:
                raise DomainError(DatasetErrorCode.INVALID, f"{name} must have at most {limit} characters", name)
            out[name] = value
    return out


def _title(c: Conversation) -> str:
    first = next((m.content for m in c.messages if m.role == "user"), "")
    return (first.strip().splitlines() or [""])[0][:128]


def check_fits(c: Conversation, fmt: DatasetFormat) -> None:
    """Raises FormatError when ``c`` cannot be a sample of a dataset in ``fmt``."""
    if c.turns == 0:
        raise FormatError("a sample needs at least one assistant message")
    f.write(c, fmt)  # alpaca is the strict one


class DatasetService:
    def __init__(self, *, repo: DatasetRepository, files: FileReader, max_import_rows: int = MAX_IMPORT_ROWS,
                 max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self.repo = repo
        self.files = files
        self.max_import_rows = max_import_rows
        self.max_line_bytes = max_line_bytes

    # --- datasets -------------------------------------------------------------------------------------------
    async def get(self, dataset_id: int, *, tenant_id: int) -> Dataset:
        found = await self.repo.get(dataset_id)
        if found is None or found.tenant_id != tenant_id:
            raise NotFound("dataset", dataset_id)  # another tenant's dataset looks missing
        return found

    async def list(self, *, tenant_id: int, offset: int = 0, limit: int = 20,
                   search: str | None = None) -> tuple[builtins.list[Dataset], int]:
        return await self.repo.list(tenant_id=tenant_id, offset=offset, limit=limit, search=search)

    async def create(self, values: DatasetInput, *, tenant_id: int, creator_email: str) -> Dataset:
        if values.name is None:
            raise DomainError(DatasetErrorCode.INVALID, "name is required", "name")
        fields = _fields(values)
        name = str(fields["name"])
        if await self.repo.name_taken(tenant_id, name):
            raise DomainError(DatasetErrorCode.DUPLICATE, f"a dataset named {name!r} exists", "name")
        return await self.repo.create(
            tenant_id=tenant_id, uuid=f"ds-{uuid.uuid4().hex}", name=name, remark=str(fields.get("remark", "")),
            type=str(fields.get("type", "text")), creator_email=creator_email,
            format=DatasetFormat(str(fields.get("format", DatasetFormat.MESSAGES))))

    async def update(self, dataset_id: int, values: DatasetInput, *, tenant_id: int) -> Dataset:
        current = await self.get(dataset_id, tenant_id=tenant_id)
        fields = _fields(values)
        if "name" in fields and await self.repo.name_taken(tenant_id, str(fields["name"]), except_id=dataset_id):
            raise DomainError(DatasetErrorCode.DUPLICATE, f"a dataset named {fields['name']!r} exists", "name")
        new_format = fields.get("format")
        if new_format is not None and new_format != current.format:
            await self._check_all(current, DatasetFormat(str(new_format)), field="format")
        if not fields:
            return current
        return await self.repo.update(dataset_id, fields)

    async def delete(self, dataset_id: int, *, tenant_id: int) -> None:
        await self.get(dataset_id, tenant_id=tenant_id)
        await self.repo.delete(dataset_id)

    async def remove_tenant(self, tenant_id: int) -> int:
        """Delete every dataset (and its samples) of a tenant being deleted."""
        removed = 0
        while True:
            datasets, _ = await self.repo.list(tenant_id=tenant_id, offset=0, limit=100, search=None)
            if not datasets:
                return removed
            for dataset in datasets:
                await self.repo.delete(dataset.id)
                removed += 1

    # --- samples --------------------------------------------------------------------------------------------
    async def get_sample(self, sample_id: int, *, tenant_id: int) -> tuple[Dataset, Sample]:
        sample = await self.repo.get_sample(sample_id)
        if sample is None:
            raise NotFound("sample", sample_id)
        try:
            dataset = await self.get(sample.dataset_id, tenant_id=tenant_id)
        except NotFound:
            raise NotFound("sample", sample_id) from None
        return dataset, sample

    async def list_samples(self, dataset_id: int, *, tenant_id: int, offset: int = 0,
                           limit: int = 20) -> tuple[builtins.list[Sample], int]:
        await self.get(dataset_id, tenant_id=tenant_id)
        return await self.repo.list_samples(dataset_id, offset=offset, limit=limit)

    async def create_sample(self, dataset_id: int, values: SampleInput, *, tenant_id: int,
                            creator_email: str) -> Sample:
        dataset = await self.get(dataset_id, tenant_id=tenant_id)
        meta = _sample_meta(values)
        conv = self._content(values, None, dataset.format)
        return await self.repo.add_sample(dataset_id, NewSample(
            uuid=f"dss-{uuid.uuid4().hex}", title=str(meta.get("title") or _title(conv)),
            label=str(meta.get("label", "")), remark=str(meta.get("remark", "")), creator_email=creator_email,
            content=SampleContent.of(conv)))

    async def update_sample(self, sample_id: int, values: SampleInput, *, tenant_id: int) -> Sample:
        dataset, sample = await self.get_sample(sample_id, tenant_id=tenant_id)
        meta = _sample_meta(values)
        touches = (values.conversations, values.system, values.instruction, values.input, values.output,
                   values.history)
        content = None
        if any(v is not None for v in touches):
            content = SampleContent.of(self._content(values, sample, dataset.format))
        return await self.repo.update_sample(sample_id, meta, content)

    async def delete_sample(self, sample_id: int, *, tenant_id: int) -> None:
        await self.get_sample(sample_id, tenant_id=tenant_id)
        await self.repo.delete_sample(sample_id)

    def _content(self, values: SampleInput, current: Sample | None, fmt: DatasetFormat) -> Conversation:
        """The conversation a create/update asks for, checked against the dataset's format."""
        alpaca = (values.instruction, values.input, values.output)
        field = "conversations"
        try:
            if values.conversations is not None:
                field = "conversations"
                conv = f.read({"messages": [{"role": r, "content": c} for r, c in values.conversations]},
                              DatasetFormat.MESSAGES)
            elif any(v is not None for v in alpaca) or values.history is not None or current is None:
                field = "output" if values.output is not None else "instruction"
                conv = self._alpaca_edit(values, current)
            else:
                field = "system"
                conv = current.conversation()
            if values.system is not None:
                conv = Conversation(system=values.system, messages=conv.messages, alpaca_split=conv.alpaca_split)
            check_fits(conv, fmt)
        except FormatError as e:
            raise DomainError(DatasetErrorCode.INVALID, e.message, field) from None
        if len(json.dumps(conv.as_messages(), ensure_ascii=False).encode()) > self.max_line_bytes:
            raise DomainError(DatasetErrorCode.TOO_LARGE, f"the sample is larger than {self.max_line_bytes} bytes",
                              field)
        return conv

    @staticmethod
    def _alpaca_edit(values: SampleInput, current: Sample | None) -> Conversation:
        if current is None:
            if values.instruction is None and values.input is None:
                raise FormatError("send conversations, or instruction (and input) and output")
            history = [list(p) for p in values.history or []]
            return f.from_alpaca({"instruction": values.instruction or "", "input": values.input or "",
                                  "output": values.output or "", "history": history})
        conv = current.conversation()
        msgs = conv.messages
        if values.history is not None:
            raise FormatError("history can only be given on create; send conversations to change earlier turns")
        if len(msgs) < 2 or (msgs[-2].role, msgs[-1].role) != ("user", "assistant"):
            raise FormatError("the sample does not end with a user and an assistant message; send conversations")
        instruction, input_ = conv.alpaca_fields()
        instruction = instruction if values.instruction is None else values.instruction
        input_ = input_ if values.input is None else values.input
        output = msgs[-1].content if values.output is None else values.output
        if not instruction and not input_:
            raise FormatError("instruction and input are both empty")
        last = (Message("user", f.join_instruction(instruction, input_)), Message("assistant", output))
        return Conversation(system=conv.system, messages=msgs[:-2] + last,
                            alpaca_split=(instruction, input_) if input_ else None)

    # --- import / export ------------------------------------------------------------------------------------
    async def import_file(self, dataset_id: int, file_id: str, *, tenant_id: int, creator_email: str) -> int:
        """Add every record of a JSONL file (any of the three formats, mixed) to the dataset, or none when a
        line is bad (ImportFailed names the lines). Returns the number of samples added."""
        dataset = await self.get(dataset_id, tenant_id=tenant_id)
        samples: builtins.list[NewSample] = []
        errors: builtins.list[LineError] = []
        more = 0
        number = records = 0
        async for raw in self.files.open_lines(tenant_id, file_id):
            number += 1
            if not raw.strip():
                continue
            records += 1
            if records > self.max_import_rows:
                raise DomainError(DatasetErrorCode.TOO_LARGE,
                                  f"nothing imported: the file has more than {self.max_import_rows} records", "fileId")
            try:
                if len(raw) > self.max_line_bytes:
                    raise FormatError(f"the line is longer than {self.max_line_bytes} bytes")
                conv = f.parse_line(raw)
                check_fits(conv, dataset.format)
            except FormatError as e:
                if len(errors) < MAX_REPORTED_ERRORS:
                    errors.append(LineError(number, e.message))
                else:
                    more += 1
                continue
            if not errors:  # once a line is bad nothing will be stored: only keep checking
                samples.append(NewSample(uuid=f"dss-{uuid.uuid4().hex}", title=_title(conv), label="", remark="",
                                         creator_email=creator_email, content=SampleContent.of(conv)))
        if errors:
            raise ImportFailed(errors, more)
        if not samples:
            raise DomainError(DatasetErrorCode.INVALID, "nothing imported: the file has no records", "fileId")
        await self.repo.add_samples(dataset_id, samples)
        return len(samples)

    async def export(self, dataset_id: int, fmt: DatasetFormat | None = None, *,
                     tenant_id: int) -> AsyncIterator[str]:
        """JSONL lines of the dataset's samples (oldest first) in ``fmt`` (default: the dataset's format).

        Checks run before the first line: a sample that cannot be written in ``fmt`` is reported as an
        INVALID DomainError by this call, not half-way through the stream."""
        dataset = await self.get(dataset_id, tenant_id=tenant_id)
        target = DatasetFormat(fmt or dataset.format)
        if target == DatasetFormat.ALPACA and dataset.format != DatasetFormat.ALPACA:
            await self._check_all(dataset, target, field="format")
        return self._lines(dataset_id, target)

    async def _lines(self, dataset_id: int, fmt: DatasetFormat) -> AsyncIterator[str]:
        async for batch in self.repo.iter_samples(dataset_id, batch=EXPORT_BATCH):
            for sample in batch:
                try:
                    yield f.dump_line(sample.conversation(), fmt)
                except FormatError as e:
                    raise DomainError(DatasetErrorCode.INVALID, f"sample {sample.id}: {e.message}", "format") from None

    async def _check_all(self, dataset: Dataset, fmt: DatasetFormat, *, field: str) -> None:
        async for batch in self.repo.iter_samples(dataset.id, batch=EXPORT_BATCH):
            for sample in batch:
                try:
                    check_fits(sample.conversation(), fmt)
                except FormatError as e:
                    raise DomainError(DatasetErrorCode.INVALID,
                                      f"sample {sample.id} cannot be {fmt.value}: {e.message}", field) from None


@dataclass
class ExportBuffer:
    """Collects exported lines up to a size (for answers that cannot stream)."""

    limit: int
    parts: builtins.list[str] = field(default_factory=list)
    size: int = 0

    async def fill(self, lines: AsyncIterator[str]) -> str:
        async for line in lines:
            self.size += len(line.encode())
            if self.size > self.limit:
                raise DomainError(DatasetErrorCode.TOO_LARGE,
                                  f"the export is larger than {self.limit} bytes; download it from "
                                  "GET /datasets/{id}/export instead", "id")
            self.parts.append(line)
        return "".join(self.parts)
