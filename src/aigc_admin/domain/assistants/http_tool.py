"""HTTP function tools: checking a tool's definition, checking a model's arguments against its schema, filling
the URL and body templates, and cutting the response down to what the model sees. No I/O here: the adapter
(``adapters/tool_transport.py``) sends what ``build_request`` gives through the egress guard."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import jsonschema

from aigc_admin.domain.assistants.entities import AssistantErrorCode, HttpSpec
from aigc_admin.domain.errors import DomainError, Invalid

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
URL_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_.-]+)\}")
BODY_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}")
MAX_RESPONSE_BYTES = 1024 * 1024  # the largest cap a tool may set
MAX_TIMEOUT_SECONDS = 300.0
FORBIDDEN_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}


class ArgumentsInvalid(Exception):
    """The model's arguments do not fit the tool (the model is told why and may try again)."""


class ExtractFailed(Exception):
    """The response has nothing where the tool's ``extract`` points."""


@dataclass(frozen=True)
class HttpRequest:
    method: str
    url: str
    params: list[tuple[str, str]]
    headers: dict[str, str]
    json_body: Any = None
    has_body: bool = False


def check_schema(parameters: Any, field: str = "parameters") -> dict[str, Any]:
    """A tool's parameters must be a JSON Schema of an object (what function calling sends the model)."""
    if not isinstance(parameters, dict):
        raise DomainError(AssistantErrorCode.INVALID_SCHEMA, "parameters must be a JSON Schema object", field)
    try:
        jsonschema.Draft202012Validator.check_schema(parameters)
    except jsonschema.SchemaError as e:
        where = "/".join(str(p) for p in e.path) or "(root)"
        raise DomainError(AssistantErrorCode.INVALID_SCHEMA,
                          f"parameters is not a valid JSON Schema at {where}: {e.message}", field) from None
    if parameters.get("type", "object") != "object":
        raise DomainError(AssistantErrorCode.INVALID_SCHEMA, "parameters must describe an object (type: object)",
                          field)
    return parameters


def check_spec(spec: HttpSpec) -> HttpSpec:
    """Refuse a definition that could never be called; the URL's host is checked by egress at each call."""
    parts = urlsplit(URL_PLACEHOLDER.sub("x", spec.url))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise Invalid("url", "url must be an absolute http or https URL")
    if "{" in urlsplit(spec.url).netloc:
        raise Invalid("url", "the host of a tool's url cannot come from the arguments")
    if spec.method.upper() not in METHODS:
        raise Invalid("method", f"method must be one of {', '.join(METHODS)}")
    check_schema(spec.parameters)
    if spec.body:
        try:
            json.loads(spec.body)
        except ValueError as e:
            raise Invalid("body", f"the body template is not JSON: {e}") from None
    for name in (*spec.headers, *spec.secret_headers):
        if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", name) or name.lower() in FORBIDDEN_HEADERS:
            raise Invalid("headers", f"{name!r} cannot be a tool's header")
    for value in (*spec.headers.values(), *spec.secret_headers.values()):
        if "\n" in value or "\r" in value:
            raise Invalid("headers", "a header value cannot hold a line break")
    if not 0 < spec.timeout_seconds <= MAX_TIMEOUT_SECONDS:
        raise Invalid("timeoutSeconds", f"timeoutSeconds must be between 0 and {MAX_TIMEOUT_SECONDS:g}")
    if not 0 < spec.max_response_bytes <= MAX_RESPONSE_BYTES:
        raise Invalid("maxResponseBytes", f"maxResponseBytes must be between 1 and {MAX_RESPONSE_BYTES}")
    if spec.extract and not spec.extract.startswith("/"):
        raise Invalid("extract", "extract is a JSON pointer: it starts with '/' (e.g. /data/0/name)")
    return spec


def check_arguments(parameters: dict[str, Any], arguments: Any) -> dict[str, Any]:
    if not isinstance(arguments, dict):
        raise ArgumentsInvalid("the arguments must be a JSON object")
    errors = sorted(jsonschema.Draft202012Validator(parameters).iter_errors(arguments), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.path)
        raise ArgumentsInvalid(f"{where + ': ' if where else ''}{first.message}")
    return arguments


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _fill_body(template: Any, arguments: dict[str, Any], used: set[str]) -> Any:
    if isinstance(template, str):
        whole = BODY_PLACEHOLDER.fullmatch(template)
        if whole:
            used.add(whole.group(1))
            return arguments.get(whole.group(1))

        def text(m: re.Match[str]) -> str:
            used.add(m.group(1))
            return _text(arguments.get(m.group(1), ""))

        return BODY_PLACEHOLDER.sub(text, template)
    if isinstance(template, list):
        return [_fill_body(v, arguments, used) for v in template]
    if isinstance(template, dict):
        return {k: _fill_body(v, arguments, used) for k, v in template.items()}
    return template


def build_request(spec: HttpSpec, arguments: dict[str, Any]) -> HttpRequest:
    """The request a call with ``arguments`` (already checked against the schema) makes."""
    used: set[str] = set()

    def path_value(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in arguments:
            raise ArgumentsInvalid(f"{name} is required (it is part of the URL)")
        used.add(name)
        return quote(_text(arguments[name]), safe="")

    url = URL_PLACEHOLDER.sub(path_value, spec.url)
    method = spec.method.upper()
    headers = {**spec.headers, **spec.secret_headers}
    if spec.user_agent:
        headers["User-Agent"] = spec.user_agent
    params: list[tuple[str, str]] = []
    for name in spec.query_params:
        if name in arguments:
            used.add(name)
            values = arguments[name] if isinstance(arguments[name], list) else [arguments[name]]
            params += [(name, _text(v)) for v in values]
    for name in spec.header_params:
        if name in arguments:
            used.add(name)
            headers[name] = _text(arguments[name]).replace("\r", " ").replace("\n", " ")
    if spec.body:
        return HttpRequest(method, url, params, headers, _fill_body(json.loads(spec.body), arguments, used), True)
    rest = {k: v for k, v in arguments.items() if k not in used}
    if spec.query_params or spec.header_params:  # an imported operation: what it does not name is not sent
        return HttpRequest(method, url, params, headers)
    if method in ("GET", "DELETE", "HEAD", "OPTIONS"):
        params += [(k, _text(v)) for k, v in rest.items()]
        return HttpRequest(method, url, params, headers)
    return HttpRequest(method, url, params, headers, rest, True)


def resolve_pointer(document: Any, pointer: str) -> Any:
    """RFC 6901; ``KeyError`` when the document has nothing there."""
    node = document
    for raw in pointer.split("/")[1:]:
        key = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            if not key.isdigit() or int(key) >= len(node):
                raise KeyError(pointer)
            node = node[int(key)]
        elif isinstance(node, dict) and key in node:
            node = node[key]
        else:
            raise KeyError(pointer)
    return node


def truncate(text: str, max_bytes: int) -> str:
    data = text.encode()
    if len(data) <= max_bytes:
        return text
    return data[:max_bytes].decode(errors="ignore") + " … [truncated]"


def response_text(body: bytes, spec: HttpSpec) -> str:
    """What the model sees of a response: the extracted part of a JSON answer (or all of it), as text, within
    the tool's size cap."""
    text = body.decode(errors="replace")
    if spec.extract:
        try:
            value = resolve_pointer(json.loads(text), spec.extract)
        except (ValueError, KeyError):
            raise ExtractFailed(f"the response has nothing at {spec.extract}") from None
        text = _text(value)
    return truncate(text, spec.max_response_bytes)
