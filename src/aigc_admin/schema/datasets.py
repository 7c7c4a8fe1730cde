"""GraphQL shape of datasets and their samples (resolvers in resolvers/datasets.py)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from aigc_admin.domain import chat_format as fmt
from aigc_admin.domain.datasets import service as ds
from aigc_admin.domain.errors import DomainError

DatasetFormat = strawberry.enum(fmt.DatasetFormat, description="A JSONL record shape: OpenAI messages, alpaca or "
                                                                "sharegpt.")
DatasetErrorCode = strawberry.enum(ds.DatasetErrorCode, description="Codes of dataset failures.")


@strawberry.type(description="A dataset of chat samples for fine-tuning; format is its default export shape.")
class Dataset:
    id: strawberry.ID
    uuid: str
    name: str
    remark: str
    sample_count: int
    creator_email: str
    type: str
    format: DatasetFormat  # type: ignore[valid-type]
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def from_domain(cls, d: ds.Dataset) -> Dataset:
        return cls(id=strawberry.ID(str(d.id)), uuid=d.uuid, name=d.name, remark=d.remark,
                   sample_count=d.sample_count, creator_email=d.creator_email, type=d.type, format=d.format,
                   created_at=d.created_at, updated_at=d.updated_at)


@strawberry.type(description="One chat message of a sample.")
class DatasetMessage:
    role: str = strawberry.field(description="system, user or assistant.")
    content: str


@strawberry.type(description="A sample: its messages, and the original's columns derived from them.")
class DatasetSample:
    id: strawberry.ID
    uuid: str
    dataset_id: strawberry.ID
    title: str
    system: str
    instruction: str = strawberry.field(description="The last user message (alpaca's instruction).")
    input: str = strawberry.field(description="Alpaca's input, when the sample has one.")
    output: str = strawberry.field(description="The last assistant message.")
    conversations: list[DatasetMessage] = strawberry.field(description="OpenAI messages, system first.")
    label: str
    remark: str
    creator_email: str
    turns: int = strawberry.field(description="Assistant messages.")
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def from_domain(cls, s: ds.Sample) -> DatasetSample:
        return cls(id=strawberry.ID(str(s.id)), uuid=s.uuid, dataset_id=strawberry.ID(str(s.dataset_id)),
                   title=s.title, system=s.system, instruction=s.instruction, input=s.input, output=s.output,
                   conversations=[DatasetMessage(role=m.role, content=m.content) for m in s.conversations],
                   label=s.label, remark=s.remark, creator_email=s.creator_email, turns=s.turns,
                   created_at=s.created_at, updated_at=s.updated_at)


@strawberry.type(description="An expected failure of a dataset mutation; line: the file's line, on import.")
class DatasetError:
    field: str | None
    code: DatasetErrorCode  # type: ignore[valid-type]
    message: str
    line: int | None = None

    @classmethod
    def from_error(cls, e: DomainError) -> list[DatasetError]:
        """An import's bad lines, one error each (and how many more there were); any other failure as itself."""
        if isinstance(e, ds.ImportFailed):
            errors = [cls(field="fileId", code=ds.DatasetErrorCode.INVALID, message=x.message, line=x.line)
                      for x in e.errors]
            if e.more:
                errors.append(cls(field="fileId", code=ds.DatasetErrorCode.INVALID,
                                  message=f"{e.more} more bad lines not listed"))
            return errors
        try:
            code = ds.DatasetErrorCode(e.code.value)
        except ValueError:
            code = ds.DatasetErrorCode.INVALID
        return [cls(field=e.field, code=code, message=e.message)]


@strawberry.type
class DatasetPayload:
    dataset: Dataset | None = None
    errors: list[DatasetError] = strawberry.field(default_factory=list)


@strawberry.type
class DatasetSamplePayload:
    sample: DatasetSample | None = None
    errors: list[DatasetError] = strawberry.field(default_factory=list)


@strawberry.type(description="An import: all lines or none. On failure, one error per bad line (the first 20).")
class DatasetImportPayload:
    dataset: Dataset | None = None
    imported: int = 0
    errors: list[DatasetError] = strawberry.field(default_factory=list)


@strawberry.input
class CreateDatasetInput:
    name: str
    remark: str = ""
    type: str = "text"
    format: DatasetFormat = fmt.DatasetFormat.MESSAGES  # type: ignore[valid-type]


@strawberry.input(description="Changing format to alpaca checks that every sample can be written as alpaca.")
class UpdateDatasetInput:
    id: strawberry.ID
    name: str | None = None
    remark: str | None = None
    type: str | None = None
    format: DatasetFormat | None = None  # type: ignore[valid-type]


@strawberry.input
class DatasetMessageInput:
    role: str = strawberry.field(description="system (first only), user or assistant.")
    content: str


@strawberry.input(description="Content either as conversations, or alpaca style as instruction, input, output (and "
                              "history on create); on update, instruction/input/output replace the last exchange.")
class DatasetSampleFields:
    title: str | None = None
    label: str | None = None
    remark: str | None = None
    system: str | None = None
    conversations: list[DatasetMessageInput] | None = None
    instruction: str | None = None
    input: str | None = None
    output: str | None = None


@strawberry.input
class CreateDatasetSampleInput(DatasetSampleFields):
    dataset_id: strawberry.ID
    history: list[list[str]] | None = strawberry.field(default=None,
                                                       description="Earlier [question, answer] pairs (alpaca).")


@strawberry.input
class UpdateDatasetSampleInput(DatasetSampleFields):
    id: strawberry.ID
