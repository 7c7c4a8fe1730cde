"""Importing an OpenAPI 3 document (JSON or YAML text a user uploaded or pasted) into HTTP function tools, one
per operation. Pure: the text comes in, the tools come out; saving them (and matching a re-import on
``ImportedTool.operation``) is the service's work.

The document is untrusted, so every expansion is bounded: its size, YAML aliases (refused: a "billion laughs"
document is never expanded), the number of operations, and ``$ref`` chains (depth, cycles, expanded size)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import jsonschema
import yaml

from aigc_admin.domain.assistants.entities import AssistantErrorCode, HttpSpec
from aigc_admin.domain.assistants.http_tool import URL_PLACEHOLDER, resolve_pointer
from aigc_admin.domain.errors import DomainError

MAX_DOCUMENT_BYTES = 2 * 1024 * 1024
MAX_OPERATIONS = 200
MAX_REF_DEPTH = 32  # $refs followed inside one another
MAX_NESTING = 100  # levels of a resolved schema (well under Python's recursion limit, validator included)
MAX_RESOLVED_NODES = 100_000  # values of the expanded schemas, over the whole import: checking each costs ~50 µs
MAX_DESCRIPTION_CHARS = 1024
MAX_OPERATION_CHARS = 255  # Tool.source's column
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
IGNORED_HEADERS = {"accept", "content-type", "authorization"}  # OpenAPI: such header parameters are ignored
_UNSAFE_CHAR = re.compile(r"[^A-Za-z0-9_-]")
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9_-]+")
_SERVER_VARIABLE = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True)
class ImportedTool:
    name: str  # matches entities.TOOL_NAME, unique within the import
    description: str  # summary and description of the operation, at most MAX_DESCRIPTION_CHARS
    operation: str  # "openapi:<operationId or METHOD /path>": Tool.source, what a re-import matches on
    spec: HttpSpec


def import_openapi(document: str, *, server_url: str = "") -> list[ImportedTool]:
    """The tools of every operation of ``document``, in document order. ``server_url``, when given, is the base
    URL of every operation (it overrides the document's servers); it is needed when they are relative or
    missing. Raises ``DomainError`` (INVALID_OPENAPI) on anything it cannot import."""
    doc = _parse(document)
    _check_version(doc)
    operations = _operations(doc)
    override = _absolute_url(server_url.strip(), "server_url") if server_url.strip() else ""
    resolver = _Resolver(doc)
    taken: set[str] = set()
    built = [(op.key, _tool(resolver, op, override, taken)) for op in operations]
    for key, tool in built:  # the slow part, once every $ref is known to expand within the budget
        _checked(tool.spec.parameters, key)
    return [tool for _, tool in built]


def _invalid(message: str, field: str = "document") -> DomainError:
    return DomainError(AssistantErrorCode.INVALID_OPENAPI, message, field)


# --- parsing ---------------------------------------------------------------------------------------------------

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: several times faster


class _Loader(_BaseLoader):  # type: ignore[misc]
    """A safe loader that keeps timestamps as the text they are (a schema's ``example: 2024-01-01`` is a string
    in JSON, and the parameters must stay JSON)."""


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_str)


def _parse(document: str) -> dict[str, Any]:
    if len(document) > MAX_DOCUMENT_BYTES or len(document.encode(errors="replace")) > MAX_DOCUMENT_BYTES:
        raise _invalid(f"the document is larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB")
    text = document.removeprefix("\ufeff")
    if not text.strip():
        raise _invalid("the document is empty")
    try:
        data = json.loads(text) if text.lstrip().startswith("{") else _load_yaml(text)
    except json.JSONDecodeError as e:
        raise _invalid(f"the document is not valid JSON (line {e.lineno}, column {e.colno}): {e.msg}") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise _invalid(f"the document is not valid YAML{where}: {e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise _invalid(f"the document is not valid YAML: {e}") from None
    except RecursionError:
        raise _invalid("the document is nested too deeply") from None
    except ValueError as e:  # e.g. an integer with more digits than Python converts
        raise _invalid(f"the document holds a value that cannot be read: {e}") from None
    if not isinstance(data, dict):
        raise _invalid("the document is not a mapping (an OpenAPI document is a JSON or YAML object)")
    return data


def _load_yaml(text: str) -> Any:
    # Aliases are refused before anything is built: expanding them is how a small document becomes huge.
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.AliasEvent):
            line = event.start_mark.line + 1 if event.start_mark else "?"
            raise _invalid(f"YAML aliases (*{event.anchor}) are not allowed (line {line})")
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a safe loader: see _Loader)


def _check_version(doc: dict[str, Any]) -> None:
    if "swagger" in doc:
        raise _invalid(f"Swagger {doc['swagger']} documents are not supported: only OpenAPI 3 is "
                       "(convert the document to OpenAPI 3 first)")
    version = doc.get("openapi")
    if version is None:
        raise _invalid("the document has no 'openapi' field: only OpenAPI 3 documents are supported")
    if not isinstance(version, (str, float)) or not re.match(r"3\.\d", str(version)):  # YAML may read 3.1 as a float
        raise _invalid(f"OpenAPI {version} is not supported: only OpenAPI 3 is")


# --- operations ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Operation:
    path: str
    method: str  # lower case, as in the document
    item: dict[str, Any]  # the path item (its parameters and servers apply to the operation)
    op: dict[str, Any]

    @property
    def key(self) -> str:
        """What identifies the operation across imports: its operationId, or ``METHOD /path``."""
        op_id = self.op.get("operationId")
        return op_id.strip() if isinstance(op_id, str) and op_id.strip() else f"{self.method.upper()} {self.path}"


def _operations(doc: dict[str, Any]) -> list[_Operation]:
    paths = doc.get("paths")
    if not isinstance(paths, dict) or not paths:
        raise _invalid("the document has no paths")
    found: list[_Operation] = []
    for path, item in _path_items(doc, paths):
        for method, op in item.items():
            if method not in METHODS:
                continue  # parameters, servers, summary, x-... of the path item
            if not isinstance(op, dict):
                raise _invalid(f"operation {method.upper()} {path} is not a mapping")
            found.append(_Operation(path, method, item, op))
            if len(found) > MAX_OPERATIONS:
                raise _invalid(f"the document has more than {MAX_OPERATIONS} operations: import a smaller one")
    if not found:
        raise _invalid("the document has no operations (get, put, post, delete, patch, head or options)")
    return found


def _path_items(doc: dict[str, Any], paths: dict[Any, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in paths.items():
        if str(path).startswith("x-"):
            continue  # an extension, not a path
        if not isinstance(path, str) or not path.startswith("/"):
            raise _invalid(f"path {path!r} does not start with '/'")
        item = _deref(doc, item)
        if not isinstance(item, dict):
            raise _invalid(f"path {path} is not a mapping")
        yield path, item


# --- $refs -----------------------------------------------------------------------------------------------------

def _target(doc: dict[str, Any], ref: str) -> Any:
    if not ref.startswith("#"):
        raise _invalid(f"external $ref {ref!r} is not supported: only references inside the document (#/...)")
    pointer = unquote(ref[1:])  # a fragment may be percent-encoded
    if pointer and not pointer.startswith("/"):
        raise _invalid(f"$ref {ref!r} is not a JSON pointer (#/components/...)")
    try:
        return resolve_pointer(doc, pointer)
    except KeyError:
        raise _invalid(f"$ref {ref!r} points at nothing in the document") from None


def _deref(doc: dict[str, Any], node: Any) -> Any:
    """The object a parameter, request body or path item ``$ref`` names (following a chain of them)."""
    seen: set[str] = set()
    while isinstance(node, dict) and isinstance(node.get("$ref"), str):
        ref = node["$ref"]
        if ref in seen:
            raise _invalid(f"$ref {ref!r} refers to itself")
        seen.add(ref)
        node = _target(doc, ref)
    return node


class _Resolver:
    """Schemas with their ``$ref``s replaced by what they name. A recursive schema is cut to ``{}`` where it
    recurs (a tool's parameters are a finite tree); the budget stops refs that expand exponentially."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.budget = MAX_RESOLVED_NODES

    def deref(self, node: Any) -> Any:
        return _deref(self.doc, node)

    def schema(self, node: Any) -> Any:
        return self._resolve(node, (), 0)

    def _resolve(self, node: Any, refs: tuple[str, ...], depth: int) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise _invalid(f"the document's schemas are too large once their $refs are expanded (over "
                           f"{MAX_RESOLVED_NODES} values): import fewer operations or simpler schemas")
        if depth > MAX_NESTING:
            raise _invalid(f"a schema is nested more than {MAX_NESTING} levels deep")
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                return self._follow(node, refs, depth)
            return _from_openapi_30({str(k): self._resolve(v, refs, depth + 1) for k, v in node.items()})
        if isinstance(node, list):
            return [self._resolve(v, refs, depth + 1) for v in node]
        if node is None or isinstance(node, (str, int, float)):
            return node
        raise _invalid(f"a schema holds a {type(node).__name__}, which JSON cannot")  # YAML's !!binary, !!set

    def _follow(self, node: dict[str, Any], refs: tuple[str, ...], depth: int) -> Any:
        ref = node["$ref"]
        if ref in refs:
            return {}  # the schema recurs here: cut it
        if len(refs) >= MAX_REF_DEPTH:
            raise _invalid(f"$refs are nested more than {MAX_REF_DEPTH} deep (at {ref!r})")
        target = self._resolve(_target(self.doc, ref), (*refs, ref), depth + 1)
        siblings = {k: v for k, v in node.items() if k != "$ref"}  # OpenAPI 3.1: e.g. a description beside it
        if siblings and isinstance(target, dict):
            return {**target, **self._resolve(siblings, refs, depth + 1)}
        return target


def _from_openapi_30(schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI 3.0's own schema keywords in their JSON Schema form: boolean exclusiveMinimum/Maximum would make
    the schema invalid, and ``nullable`` is unknown to the validator that checks the model's arguments."""
    for key, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        flag = schema.get(key)
        if isinstance(flag, bool):
            del schema[key]
            if flag and isinstance(schema.get(bound), (int, float)):
                schema[key] = schema.pop(bound)
    nullable = schema.get("nullable")
    if isinstance(nullable, bool):
        del schema["nullable"]
        if nullable and isinstance(schema.get("type"), str):
            schema["type"] = [schema["type"], "null"]
    return schema


# --- one tool --------------------------------------------------------------------------------------------------

@dataclass
class _Arguments:
    """The parameters schema being built for one operation."""

    properties: dict[str, Any] = field(default_factory=dict)
    required: list[str] = field(default_factory=list)
    query: list[str] = field(default_factory=list)
    headers: list[str] = field(default_factory=list)

    def add(self, name: str, schema: Any, required: bool, where: str) -> None:
        if name in self.properties:
            raise _invalid(f"operation {where}: two parameters are named {name!r}")
        self.properties[name] = schema
        if required:
            self.required.append(name)

    def schema(self) -> dict[str, Any]:
        return {"type": "object", "properties": self.properties, "required": self.required}


@dataclass(frozen=True)
class _Body:
    schema: Any
    required: bool
    media_type: str


def _tool(r: _Resolver, o: _Operation, override: str, taken: set[str]) -> ImportedTool:
    where = o.key
    base = override or _server_base(o.op.get("servers") or o.item.get("servers") or r.doc.get("servers"))
    args = _arguments(r, o, where)
    body, note = _json_body(r, o.op)
    template, headers = "", {}
    if body is not None:
        name = "body"
        while name in args.properties:  # a parameter is already called body
            name += "_"
        args.add(name, body.schema, body.required, where)
        template = json.dumps("{{" + name + "}}")  # the whole body is the argument's value
        if body.media_type != "application/json":
            headers["Content-Type"] = body.media_type  # e.g. application/merge-patch+json
    spec = HttpSpec(url=base + o.path, method=o.method.upper(), parameters=args.schema(), headers=headers,
                    body=template, query_params=tuple(args.query), header_params=tuple(args.headers))
    return ImportedTool(name=_unique(_base_name(o), taken), description=_description(o.op, where, note),
                        operation=f"openapi:{o.key}"[:MAX_OPERATION_CHARS], spec=spec)


def _arguments(r: _Resolver, o: _Operation, where: str) -> _Arguments:
    args = _Arguments()
    for p in _merged_parameters(r, o, where):
        name, place = p["name"], p["in"]
        if place == "cookie" or (place == "header" and name.lower() in IGNORED_HEADERS):
            continue  # cookies cannot be sent; these headers come from the tool's own settings
        args.add(name, _parameter_schema(r, p), place == "path" or p.get("required") is True, where)
        if place == "query":
            args.query.append(name)
        elif place == "header":
            args.headers.append(name)
    for name in URL_PLACEHOLDER.findall(o.path):  # a placeholder the document forgot to declare still needs a value
        if name not in args.properties:
            args.add(name, {"type": "string"}, True, where)
    return args


def _merged_parameters(r: _Resolver, o: _Operation, where: str) -> list[dict[str, Any]]:
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for level in (o.item, o.op):  # the operation's own come last: they win over the path item's
        raw = r.deref(level.get("parameters", []))
        if not isinstance(raw, list):
            raise _invalid(f"operation {where}: parameters is not a list")
        for entry in raw:
            p = r.deref(entry)
            if not (isinstance(p, dict) and isinstance(p.get("name"), str)
                    and p.get("in") in ("path", "query", "header", "cookie")):
                raise _invalid(f"operation {where}: a parameter needs a name and 'in' (path, query, header, cookie)")
            merged[(p["name"], p["in"])] = p
    return list(merged.values())


def _parameter_schema(r: _Resolver, p: dict[str, Any]) -> Any:
    if "schema" in p:
        schema = r.schema(p["schema"])
    elif isinstance(p.get("content"), dict) and p["content"]:
        media = r.deref(next(iter(p["content"].values())))
        schema = r.schema(media.get("schema", {})) if isinstance(media, dict) else {}
    else:
        schema = {"type": "string"}  # what a path, query or header value is on the wire
    return _with_description(schema, p.get("description"))


def _with_description(schema: Any, description: Any) -> Any:
    if isinstance(schema, dict) and "description" not in schema and isinstance(description, str) and description:
        return {**schema, "description": description}
    return schema


def _json_body(r: _Resolver, op: dict[str, Any]) -> tuple[_Body | None, str]:
    """The JSON request body, or None and a note saying which body could not be imported."""
    body = r.deref(op.get("requestBody"))
    content = body.get("content") if isinstance(body, dict) else None
    if not isinstance(body, dict) or not isinstance(content, dict) or not content:
        return None, ""
    for media_type, media in content.items():
        base = str(media_type).split(";")[0].strip().lower()
        if base.partition("/")[2] == "json" or base.endswith("+json"):
            media = r.deref(media)
            schema = r.schema(media.get("schema", {})) if isinstance(media, dict) else {}
            schema = _with_description(schema, body.get("description"))
            return _Body(schema, body.get("required") is True, base), ""
    return None, f"(request body of type {', '.join(map(str, content))} not supported)"


def _checked(parameters: dict[str, Any], where: str) -> None:
    try:
        jsonschema.Draft202012Validator.check_schema(parameters)
    except jsonschema.SchemaError as e:
        at = "/".join(str(p) for p in e.path) or "(root)"
        raise _invalid(f"operation {where}: its parameters are not a valid JSON Schema at {at}: {e.message}") from None
    except RecursionError:
        raise _invalid(f"operation {where}: its parameters are nested too deeply") from None


# --- servers, names, descriptions ------------------------------------------------------------------------------

def _server_base(servers: Any) -> str:
    """The first server's URL, its variables filled with their defaults."""
    first = servers[0] if isinstance(servers, list) and servers else None
    url = first.get("url") if isinstance(first, dict) else None
    if not isinstance(url, str) or not url.strip():
        raise _invalid("the document names no server URL: give the server URL to call")
    variables = first.get("variables") if isinstance(first, dict) else None

    def fill(m: re.Match[str]) -> str:
        variable = variables.get(m.group(1)) if isinstance(variables, dict) else None
        if not isinstance(variable, dict) or variable.get("default") is None:
            raise _invalid(f"server variable {m.group(1)!r} has no default value")
        return str(variable["default"])

    url = _SERVER_VARIABLE.sub(fill, url.strip())
    if not url.lower().startswith(("http://", "https://")):
        raise _invalid(f"the document's server URL {url!r} is not an absolute http(s) URL: give the server URL")
    return _absolute_url(url, "document")


def _absolute_url(url: str, field: str) -> str:
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise _invalid(f"the server URL {url!r} is not an absolute http or https URL", field)
    if parts.query or parts.fragment:
        raise _invalid(f"the server URL {url!r} cannot have a query or fragment", field)
    return url.rstrip("/")


def _base_name(o: _Operation) -> str:
    op_id = o.op.get("operationId")
    if isinstance(op_id, str) and op_id.strip():
        name = _UNSAFE_CHAR.sub("_", op_id.strip())
    else:
        name = f"{o.method}_{_UNSAFE_RUN.sub('_', o.path).strip('_')}".rstrip("_")  # get_pets_petId
    return name[:64]


def _unique(name: str, taken: set[str]) -> str:
    # Compared without case: a database may hold getPet and getpet as the same name.
    candidate, n = name, 1
    while candidate.lower() in taken:
        n += 1
        candidate = name[:64 - len(f"_{n}")] + f"_{n}"
    taken.add(candidate.lower())
    return candidate


def _description(op: dict[str, Any], where: str, note: str) -> str:
    parts = [s.strip() for s in (op.get("summary"), op.get("description")) if isinstance(s, str) and s.strip()]
    if len(parts) == 2 and parts[0] == parts[1]:
        parts.pop()
    text = "\n\n".join(parts) or where
    suffix = _clip(f"\n\n{note}", MAX_DESCRIPTION_CHARS) if note else ""
    return _clip(text, MAX_DESCRIPTION_CHARS - len(suffix)) + suffix


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:max(limit - 1, 0)].rstrip() + "…"
