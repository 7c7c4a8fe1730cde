"""Plain HTTP for files, beside GraphQL: ``POST /files`` streams a (large) upload straight to storage and
``GET /files/{file_id}/content`` streams a download. Both authenticate like GraphQL (``Authorization: Bearer
<login token>`` or ``X-Token``, plus ``X-Tenant-Id`` of a tenant the caller belongs to); another tenant's
file is a 404. There is no listing here (the ``files`` query lists a tenant's files).

Upload body, either
  * ``multipart/form-data`` with a file part ``file`` (its file name is kept as metadata) and ``purpose``
    as a query parameter or as a field sent *before* the file part, e.g.
    ``curl -H "Authorization: Bearer $T" -H "X-Tenant-Id: 1" -F purpose=fine-tune -F file=@train.jsonl URL``;
  * or the raw bytes, with ``?purpose=…&filename=…``.
Nothing is read into memory whole: the parts are parsed as they arrive and written to storage. Errors are
JSON ``{"error": {"code", "message", "field", "lines": [{"line", "message"}]}}`` with 400, 401, 403, 404 or
413; the upload answers 201 with ``{"file": {...}, "created": true}``, or 200 and ``"created": false`` when
the tenant already had the same content with the same purpose.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from aigc_admin.domain.errors import DomainError
from aigc_admin.domain.files.service import FileErrorCode, FileRecord, FileValidationError
from aigc_admin.domain.roles import TenantRole
from aigc_admin.web.rest import Caller, attachment, authorize, error

router = APIRouter()

MAX_FIELD_BYTES = 64 * 1024  # a non-file part (purpose)
MULTIPART_SLACK = 1024 * 1024  # boundaries and part headers around the file in a multipart body
STATUS = {FileErrorCode.NOT_FOUND.value: 404, FileErrorCode.TOO_LARGE.value: 413}


def _error(status: int, code: str, message: str, field: str | None = None,
           lines: list[dict[str, Any]] | None = None) -> JSONResponse:
    return error(status, code, message, field=field, lines=lines or [])


def _domain_error(e: DomainError) -> JSONResponse:
    lines = [{"line": x.line, "message": x.message} for x in e.lines] if isinstance(e, FileValidationError) else []
    return _error(STATUS.get(e.code.value, 400), e.code.value, e.message, e.field, lines)


def file_json(record: FileRecord) -> dict[str, Any]:
    return {"id": record.file_id, "name": record.name, "purpose": record.purpose.value, "size": record.size,
            "fileType": record.file_type, "sha256": record.sha256, "lineCount": record.line_count,
            "tokenCount": record.token_count, "creatorEmail": record.creator_email,
            "createdAt": record.created_at.isoformat() if record.created_at else None,
            "contentUrl": f"/files/{record.file_id}/content"}


# --- streaming multipart -----------------------------------------------------------------------------------
class _Multipart:
    """Events of a multipart body as it arrives: ("field", name, value), ("file", name, filename),
    ("data", bytes) … ("end",). At most one received chunk is held at a time."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.queue: deque[tuple[Any, ...]] = deque()
        self.header_name = b""
        self.header_value = b""
        self.disposition = b""
        self.is_file = False
        self.name = ""
        self.data = bytearray()

    def _part_begin(self) -> None:
        self.disposition, self.is_file, self.data = b"", False, bytearray()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def _header_end(self) -> None:
        if self.header_name.strip().lower() == b"content-disposition":
            self.disposition = self.header_value
        self.header_name, self.header_value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self.disposition)
        self.name = _decode(options.get(b"name", b""))
        self.is_file = b"filename" in options
        if self.is_file:
            self.queue.append(("file", self.name, _decode(options[b"filename"])))

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self.is_file:
            self.queue.append(("data", data[start:end]))
            return
        if len(self.data) + end - start > MAX_FIELD_BYTES:
            raise DomainError(FileErrorCode.INVALID, f"the form field {self.name[:40]!r} is too long", self.name)
        self.data += data[start:end]

    def _part_end(self) -> None:
        self.queue.append(("end",) if self.is_file else ("field", self.name, _decode(bytes(self.data))))

    async def events(self) -> AsyncGenerator[tuple[Any, ...], None]:
        _, params = parse_options_header(self.request.headers.get("content-type", ""))
        boundary = params.get(b"boundary")
        if not boundary:
            raise DomainError(FileErrorCode.INVALID, "the multipart body has no boundary", "file")
        parser = MultipartParser(boundary, {  # type: ignore[typeddict-unknown-key]
            "on_part_begin": self._part_begin, "on_part_data": self._part_data, "on_part_end": self._part_end,
            "on_header_field": self._header_field, "on_header_value": self._header_value,
            "on_header_end": self._header_end, "on_headers_finished": self._headers_finished})
        async for chunk in self.request.stream():
            parser.write(chunk)
            while self.queue:
                yield self.queue.popleft()
        parser.finalize()
        while self.queue:
            yield self.queue.popleft()


def _decode(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


async def _upload_multipart(caller: Caller, request: Request, purpose: str | None, creator: str) -> Any:
    events = _Multipart(request).events()
    fields: dict[str, str] = {}
    try:
        async for event in events:
            if event[0] == "field":
                fields[event[1]] = event[2]
            elif event[0] == "file" and event[1] == "file":
                async def chunks() -> AsyncIterator[bytes]:
                    async for e in events:
                        if e[0] == "data":
                            yield e[1]
                        elif e[0] == "end":
                            return
                    raise DomainError(FileErrorCode.INVALID, "the multipart body ends inside the file", "file")

                return await caller.platform.files.upload(
                    tenant_id=caller.tenant_id, filename=event[2], purpose=purpose or fields.get("purpose", ""),
                    chunks=chunks(), creator=creator)
        raise DomainError(FileErrorCode.INVALID, "the multipart body has no file part named 'file'", "file")
    finally:
        await events.aclose()


# --- routes ------------------------------------------------------------------------------------------------
@router.post("/files", include_in_schema=False)
async def upload_file(request: Request) -> Response:
    caller = await authorize(request, TenantRole.MEMBER, field=None, lines=[])
    if isinstance(caller, JSONResponse):
        return caller
    files = caller.platform.files
    purpose = request.query_params.get("purpose")
    filename = request.query_params.get("filename")
    multipart = request.headers.get("content-type", "").lower().startswith("multipart/form-data")
    length = request.headers.get("content-length", "")
    response: Response
    if length.isdigit() and int(length) > files.limits.max_bytes + (MULTIPART_SLACK if multipart else 0):
        response = _error(413, FileErrorCode.TOO_LARGE.value, "the file is larger than the limit of "
                          f"{files.limits.max_bytes} bytes", "file")
    else:
        creator = await caller.platform.identity.contact(caller.principal)
        try:
            if multipart:
                result = await _upload_multipart(caller, request, purpose, creator)
            else:
                result = await files.upload(tenant_id=caller.tenant_id, filename=filename, purpose=purpose or "",
                                            chunks=request.stream(), creator=creator)
        except DomainError as e:
            response = _domain_error(e)
        except FormParserError:
            response = _error(400, FileErrorCode.INVALID.value, "the multipart body is malformed", "file")
        except ClientDisconnect:
            response = _error(400, FileErrorCode.INVALID.value, "the client went away during the upload", "file")
        else:
            filename = result.file.name
            response = JSONResponse({"file": file_json(result.file), "created": result.created},
                                    status_code=201 if result.created else 200)
    await caller.audit("uploadFile", response, {"purpose": purpose, "filename": filename, "transport": "http"})
    return response


@router.get("/files/{file_id}/content", include_in_schema=False)
async def file_content(file_id: str, request: Request) -> Response:
    caller = await authorize(request, TenantRole.MEMBER, field=None, lines=[])
    if isinstance(caller, JSONResponse):
        return caller
    try:
        record, chunks = await caller.platform.files.content(file_id, tenant_id=caller.tenant_id)
    except DomainError as e:
        return _domain_error(e)
    return StreamingResponse(chunks, media_type="application/octet-stream", headers={
        "Content-Disposition": attachment(record.name), "Content-Length": str(record.size),
        "X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store"})
