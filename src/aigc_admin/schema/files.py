"""GraphQL shape of files: the File type, its payload and typed errors (with line numbers)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from aigc_admin.domain.errors import DomainError
from aigc_admin.domain.files import service as fs

Purpose = strawberry.enum(fs.Purpose, description="What a file is for; the fine-tuning purposes are validated as "
                                                  "chat JSONL.")
FileErrorCode = strawberry.enum(fs.FileErrorCode, description="Codes of file upload and file failures.")


@strawberry.type(description="An invalid line of an uploaded JSONL file.")
class LineError:
    line: int = strawberry.field(description="1-based line number.")
    message: str


@strawberry.type(name="File", description="An uploaded file of the tenant. Download its content with GET "
                                          "contentUrl (same Authorization and X-Tenant-Id headers).")
class File:
    id: strawberry.ID = strawberry.field(description="The file id, 'file-' and 32 hex digits.")
    name: str = strawberry.field(description="The uploaded file's name (without directories).")
    purpose: Purpose  # type: ignore[valid-type]
    size: float = strawberry.field(description="Bytes (a Float: sizes may exceed Int's 32 bits).")
    file_type: str = strawberry.field(description="Lower-case extension of the name, or empty.")
    sha256: str
    line_count: int = strawberry.field(description="Samples (non-blank lines) of a chat JSONL file; 0 otherwise.")
    token_count: float = strawberry.field(description="Tokens of the samples: counted with the configured "
                                                      "tokenizer, else estimated (see docs).")
    creator_email: str
    created_at: datetime | None
    content_url: str = strawberry.field(description="Path of the content download, relative to the server.")

    @classmethod
    def from_domain(cls, f: fs.FileRecord) -> File:
        return cls(id=strawberry.ID(f.file_id), name=f.name, purpose=f.purpose, size=float(f.size),
                   file_type=f.file_type, sha256=f.sha256, line_count=f.line_count,
                   token_count=float(f.token_count), creator_email=f.creator_email, created_at=f.created_at,
                   content_url=f"/files/{f.file_id}/content")


@strawberry.type(description="An expected failure of a file mutation; INVALID_JSONL lists the first invalid lines.")
class FileError:
    field: str | None
    code: FileErrorCode  # type: ignore[valid-type]
    message: str
    lines: list[LineError] = strawberry.field(default_factory=list)

    @classmethod
    def from_error(cls, e: DomainError) -> list[FileError]:
        """INVALID_JSONL with its line errors; any other failure with its own code."""
        try:
            code = fs.FileErrorCode(e.code.value)
        except ValueError:
            code = fs.FileErrorCode.INVALID
        lines = [LineError(line=x.line, message=x.message) for x in e.lines] \
            if isinstance(e, fs.FileValidationError) else []
        return [cls(field=e.field, code=code, message=e.message, lines=lines)]


@strawberry.type
class FilePayload:
    file: File | None = None
    created: bool = strawberry.field(default=False, description="False when the tenant already had this content "
                                                                "with this purpose: that file is returned.")
    errors: list[FileError] = strawberry.field(default_factory=list)
