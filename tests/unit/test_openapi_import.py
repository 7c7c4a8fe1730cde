"""Importing an OpenAPI 3 document into HTTP function tools: what each operation becomes, and every document
that is refused (with INVALID_OPENAPI and a message saying why)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import yaml

from aigc_admin.domain.assistants import openapi
from aigc_admin.domain.assistants.entities import TOOL_NAME, AssistantErrorCode
from aigc_admin.domain.assistants.http_tool import build_request, check_spec
from aigc_admin.domain.assistants.openapi import MAX_DOCUMENT_BYTES, ImportedTool, import_openapi
from aigc_admin.domain.errors import DomainError

PETSTORE_YAML = """\
openapi: 3.0.3
info: {title: Petstore, version: "1.0"}
servers:
  - url: https://{region}.petstore.example/{base}/
    variables:
      region: {default: eu, enum: [eu, us]}
      base: {default: v1}
paths:
  /pets:
    get:
      operationId: listPets
      summary: List all pets
      description: Returns the pets, a page at a time.
      parameters:
        - name: limit
          in: query
          description: How many to return
          schema: {type: integer, maximum: 100}
        - $ref: '#/components/parameters/RequestId'
        - name: session
          in: cookie
          schema: {type: string}
      responses:
        '200': {description: ok}
    post:
      operationId: createPet
      summary: Create a pet
      requestBody:
        required: true
        description: The pet to create
        content:
          application/json:
            schema: {$ref: '#/components/schemas/NewPet'}
      responses:
        '201': {description: created}
  /pets/{petId}:
    parameters:
      - name: petId
        in: path
        description: The pet's id
        schema: {type: string}
      - name: verbose
        in: query
        schema: {type: boolean}
    get:
      operationId: showPetById
      summary: Info for a pet
      parameters:
        - name: verbose
          in: query
          required: true
          schema: {type: boolean, description: Include everything}
      responses:
        '200': {description: ok}
    delete:
      summary: Delete a pet
      responses:
        '204': {description: gone}
  /pets/{petId}/photo:
    put:
      operationId: uploadPhoto
      requestBody:
        content:
          multipart/form-data:
            schema: {type: object}
      responses:
        '204': {description: stored}
components:
  parameters:
    RequestId:
      name: X-Request-Id
      in: header
      required: true
      schema: {type: string, format: uuid}
  schemas:
    NewPet:
      type: object
      required: [name]
      properties:
        name: {type: string}
        tag: {type: string, nullable: true}
        owner: {$ref: '#/components/schemas/Person'}
    Person:
      type: object
      properties:
        name: {type: string}
        friends:
          type: array
          items: {$ref: '#/components/schemas/Person'}
"""
PETSTORE_JSON = json.dumps(yaml.safe_load(PETSTORE_YAML), indent=2)
BASE = "https://eu.petstore.example/v1"


def _doc(paths: dict[str, Any], **extra: Any) -> str:
    return json.dumps({"openapi": "3.1.0", "servers": [{"url": "https://api.example.com/"}], "paths": paths, **extra})


def _get(operation_id: str | None = None, **extra: Any) -> dict[str, Any]:
    op: dict[str, Any] = {"responses": {"200": {"description": "ok"}}, **extra}
    if operation_id is not None:
        op["operationId"] = operation_id
    return {"get": op}


def _error(document: str, field: str = "document", **kwargs: Any) -> str:
    with pytest.raises(DomainError) as e:
        import_openapi(document, **kwargs)
    assert e.value.code == AssistantErrorCode.INVALID_OPENAPI
    assert e.value.field == field
    return e.value.message


def _by_name(tools: list[ImportedTool]) -> dict[str, ImportedTool]:
    return {t.name: t for t in tools}


# --- what the operations become --------------------------------------------------------------------------------

def test_json_and_yaml_give_the_same_tools_in_document_order() -> None:
    from_yaml = import_openapi(PETSTORE_YAML)
    assert import_openapi(PETSTORE_JSON) == from_yaml
    assert [t.name for t in from_yaml] == ["listPets", "createPet", "showPetById", "delete_pets_petId", "uploadPhoto"]
    assert [t.spec.method for t in from_yaml] == ["GET", "POST", "GET", "DELETE", "PUT"]


def test_every_imported_tool_is_a_valid_http_tool() -> None:
    for tool in import_openapi(PETSTORE_YAML):
        assert TOOL_NAME.fullmatch(tool.name)
        assert check_spec(tool.spec) is tool.spec


def test_query_and_header_parameters_are_named_and_cookies_skipped() -> None:
    tool = _by_name(import_openapi(PETSTORE_YAML))["listPets"]
    assert tool.spec.url == f"{BASE}/pets"  # server variables filled, trailing slash dropped
    assert tool.operation == "openapi:listPets"
    assert tool.description == "List all pets\n\nReturns the pets, a page at a time."
    assert tool.spec.query_params == ("limit",)
    assert tool.spec.header_params == ("X-Request-Id",)  # from a $ref'd parameter
    assert tool.spec.body == ""
    assert tool.spec.parameters == {
        "type": "object",
        "properties": {"limit": {"type": "integer", "maximum": 100, "description": "How many to return"},
                       "X-Request-Id": {"type": "string", "format": "uuid"}},
        "required": ["X-Request-Id"],
    }


def test_a_json_request_body_becomes_the_body_argument_with_refs_resolved() -> None:
    tool = _by_name(import_openapi(PETSTORE_YAML))["createPet"]
    assert tool.spec.body == '"{{body}}"'
    assert tool.spec.headers == {}
    params = tool.spec.parameters
    assert params["required"] == ["body"]
    body = params["properties"]["body"]
    assert body["description"] == "The pet to create"
    assert body["required"] == ["name"]
    assert body["properties"]["tag"] == {"type": ["string", "null"]}  # OpenAPI 3.0's nullable
    # Person refers to itself: expanded once, then cut to {} where it recurs.
    assert body["properties"]["owner"] == {
        "type": "object",
        "properties": {"name": {"type": "string"}, "friends": {"type": "array", "items": {}}},
    }
    request = build_request(tool.spec, {"body": {"name": "Rex"}})
    assert request.json_body == {"name": "Rex"}


def test_path_level_parameters_are_merged_and_the_operation_wins() -> None:
    tools = _by_name(import_openapi(PETSTORE_YAML))
    show = tools["showPetById"].spec
    assert show.url == f"{BASE}/pets/{{petId}}"
    assert show.parameters["properties"] == {
        "petId": {"type": "string", "description": "The pet's id"},
        "verbose": {"type": "boolean", "description": "Include everything"},
    }
    assert show.parameters["required"] == ["petId", "verbose"]  # path: always; verbose: required by the operation
    assert show.query_params == ("verbose",)
    delete = tools["delete_pets_petId"]
    assert delete.spec.parameters["required"] == ["petId"]  # the path item's verbose is optional
    assert delete.operation == "openapi:DELETE /pets/{petId}"
    assert delete.description == "Delete a pet"


def test_a_body_that_is_not_json_is_left_out_and_noted() -> None:
    tool = _by_name(import_openapi(PETSTORE_YAML))["uploadPhoto"]
    assert tool.spec.body == ""
    assert "body" not in tool.spec.parameters["properties"]
    assert tool.description == "uploadPhoto\n\n(request body of type multipart/form-data not supported)"


def test_a_parameter_named_body_moves_the_json_body_to_body_() -> None:
    op = {"operationId": "send", "parameters": [{"name": "body", "in": "query", "schema": {"type": "string"}}],
          "requestBody": {"content": {"application/merge-patch+json": {"schema": {"type": "object"}}}}}
    [tool] = import_openapi(_doc({"/send": {"patch": op}}))
    assert tool.spec.body == '"{{body_}}"'
    assert tool.spec.parameters["properties"] == {"body": {"type": "string"}, "body_": {"type": "object"}}
    assert tool.spec.parameters["required"] == []  # neither is required
    assert tool.spec.headers == {"Content-Type": "application/merge-patch+json"}


def test_a_parameter_with_content_uses_its_first_media_type_schema() -> None:
    param = {"name": "filter", "in": "query", "description": "A filter",
             "content": {"application/json": {"schema": {"type": "object"}}, "text/plain": {"schema": {}}}}
    [tool] = import_openapi(_doc({"/items": _get("find", parameters=[param])}))
    assert tool.spec.parameters["properties"]["filter"] == {"type": "object", "description": "A filter"}


def test_refs_are_resolved_through_chains_and_escaped_pointers() -> None:
    schemas = {"a/b~c": {"type": "integer", "minimum": 1, "exclusiveMinimum": True},  # OpenAPI 3.0 style
               "Alias": {"$ref": "#/components/schemas/a~1b~0c"}}
    params = {"Count": {"name": "count", "in": "query", "schema": {"$ref": "#/components/schemas/Alias"}}}
    doc = _doc({"/c": _get("count", parameters=[{"$ref": "#/components/parameters/Count"}])},
               components={"schemas": schemas, "parameters": params})
    [tool] = import_openapi(doc)
    assert tool.spec.parameters["properties"]["count"] == {"type": "integer", "exclusiveMinimum": 1}


def test_mutually_recursive_schemas_are_cut_at_the_cycle() -> None:
    schemas = {"A": {"type": "object", "properties": {"b": {"$ref": "#/components/schemas/B"}}},
               "B": {"type": "object", "properties": {"a": {"$ref": "#/components/schemas/A"}}}}
    body = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/A"}}}}
    [tool] = import_openapi(_doc({"/a": {"post": {"operationId": "a", "requestBody": body}}},
                                 components={"schemas": schemas}))
    assert tool.spec.parameters["properties"]["body"] == {
        "type": "object", "properties": {"b": {"type": "object", "properties": {"a": {}}}}}


def test_yaml_timestamps_stay_text() -> None:
    doc = PETSTORE_YAML.replace("schema: {type: integer, maximum: 100}", "schema: {type: string, example: 2024-01-31}")
    tool = import_openapi(doc)[0]
    assert tool.spec.parameters["properties"]["limit"]["example"] == "2024-01-31"
    json.dumps(tool.spec.parameters)  # still JSON


def test_a_path_placeholder_without_a_declared_parameter_is_still_required() -> None:
    [tool] = import_openapi(_doc({"/users/{id}": _get("getUser")}))
    assert tool.spec.parameters["properties"] == {"id": {"type": "string"}}
    assert tool.spec.parameters["required"] == ["id"]


# --- names and descriptions ------------------------------------------------------------------------------------

def test_names_without_an_operation_id_come_from_method_and_path() -> None:
    doc = _doc({"/users/{user-id}/items.json": {"post": {}, "get": {}}, "/": _get()})
    assert [t.name for t in import_openapi(doc)] == [
        "post_users_user-id_items_json", "get_users_user-id_items_json", "get"]


def test_operation_ids_are_sanitised_and_duplicates_suffixed() -> None:
    long_id = "x" * 70
    doc = _doc({"/a": _get("get pet"), "/b": _get("get_pet"), "/c": _get("GET.PET"),
                "/d": _get(long_id), "/e": _get(long_id + "y")})
    tools = import_openapi(doc)
    assert [t.name for t in tools] == ["get_pet", "get_pet_2", "GET_PET_3", "x" * 64, "x" * 62 + "_2"]
    assert all(TOOL_NAME.fullmatch(t.name) for t in tools)
    assert tools[0].operation == "openapi:get pet"  # the operationId as written: what a re-import matches on


def test_the_description_is_capped_and_keeps_the_note() -> None:
    op = {"operationId": "up", "summary": "s" * 2000,
          "requestBody": {"content": {"application/xml": {}, "application/x-www-form-urlencoded": {}}}}
    [tool] = import_openapi(_doc({"/up": {"post": op}}))
    assert len(tool.description) == openapi.MAX_DESCRIPTION_CHARS
    assert tool.description.endswith(
        "…\n\n(request body of type application/xml, application/x-www-form-urlencoded not supported)")


# --- servers ---------------------------------------------------------------------------------------------------

def test_server_url_overrides_the_documents_servers() -> None:
    tools = import_openapi(PETSTORE_YAML, server_url="http://localhost:8080/api/")
    assert tools[0].spec.url == "http://localhost:8080/api/pets"


def test_a_relative_server_needs_a_server_url() -> None:
    doc = _doc({"/pets": _get("list")}, servers=[{"url": "/api/v3"}])
    assert "give the server URL" in _error(doc)
    assert import_openapi(doc, server_url="https://pets.example/api/v3")[0].spec.url == \
        "https://pets.example/api/v3/pets"


def test_no_server_needs_a_server_url() -> None:
    doc = json.dumps({"openapi": "3.0.0", "paths": {"/pets": _get("list")}})
    assert "no server URL" in _error(doc)
    assert import_openapi(doc, server_url="https://pets.example")[0].spec.url == "https://pets.example/pets"


def test_operation_servers_come_before_the_documents() -> None:
    doc = _doc({"/a": {"servers": [{"url": "https://a.example"}], "get": {"operationId": "a"}},
                "/b": {"get": {"operationId": "b", "servers": [{"url": "https://b.example"}]}}})
    assert [t.spec.url for t in import_openapi(doc)] == ["https://a.example/a", "https://b.example/b"]


@pytest.mark.parametrize(("servers", "expected"), [
    ([{"url": "https://{env}.example/{v}", "variables": {"env": {"default": "prod"}}}], "'v' has no default"),
    ([{"url": "ftp://files.example"}], "not an absolute http(s) URL"),
    ([{"url": "https://api.example?key=1"}], "query"),
])
def test_unusable_server_urls_are_refused(servers: list[dict[str, Any]], expected: str) -> None:
    assert expected in _error(_doc({"/a": _get("a")}, servers=servers))


@pytest.mark.parametrize("server_url", ["api.example.com", "ftp://api.example.com", "https://"])
def test_a_given_server_url_must_be_absolute_http(server_url: str) -> None:
    assert "absolute http or https" in _error(PETSTORE_JSON, field="server_url", server_url=server_url)


# --- refused documents -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("document", "expected"), [
    ('{"openapi": "3.0.0",\n "paths": }', "not valid JSON (line 2"),
    ("openapi: 3.0.0\npaths: [unclosed\n", "not valid YAML (line 3"),
    ("", "empty"),
    ("- just\n- a list\n", "not a mapping"),
    ("just text", "not a mapping"),
    ("openapi: 3.0.0\nbad: !!python/object:os.system {}\n", "not valid YAML"),
])
def test_text_that_is_not_a_json_or_yaml_mapping_is_refused(document: str, expected: str) -> None:
    assert expected in _error(document)


def test_swagger_2_is_refused_saying_only_openapi_3_is_supported() -> None:
    doc = json.dumps({"swagger": "2.0", "paths": {"/a": _get("a")}})
    assert "only OpenAPI 3" in _error(doc)


@pytest.mark.parametrize(("version", "expected"), [(None, "no 'openapi' field"), ("2.0", "OpenAPI 2.0 is not"),
                                                   ("4.0.0", "OpenAPI 4.0.0 is not")])
def test_a_missing_or_other_openapi_version_is_refused(version: str | None, expected: str) -> None:
    doc = json.loads(_doc({"/a": _get("a")}))
    doc["openapi"] = version
    if version is None:
        del doc["openapi"]
    assert expected in _error(json.dumps(doc))


def test_yaml_may_read_the_version_as_a_number() -> None:
    assert import_openapi(PETSTORE_YAML.replace("openapi: 3.0.3", "openapi: 3.1"))


@pytest.mark.parametrize(("paths", "expected"), [
    (None, "no paths"), ({}, "no paths"),
    ({"/a": {"parameters": [], "summary": "nothing to call"}}, "no operations"),
    ({"a": _get("a")}, "does not start with '/'"),
])
def test_a_document_without_operations_is_refused(paths: Any, expected: str) -> None:
    doc = json.loads(_doc({}))
    doc["paths"] = paths
    assert expected in _error(json.dumps(doc))


def test_more_than_200_operations_are_refused() -> None:
    assert len(import_openapi(_doc({f"/p{i}": _get() for i in range(200)}))) == 200
    assert "more than 200 operations" in _error(_doc({f"/p{i}": _get() for i in range(201)}))


@pytest.mark.parametrize(("ref", "expected"), [
    ("other.yaml#/components/schemas/Pet", "external $ref 'other.yaml#/components/schemas/Pet'"),
    ("https://example.com/pet.json", "external $ref"),
    ("#/components/schemas/Missing", "points at nothing"),
    ("#components", "not a JSON pointer"),
])
def test_refs_that_cannot_be_resolved_are_refused_by_name(ref: str, expected: str) -> None:
    param = {"name": "q", "in": "query", "schema": {"$ref": ref}}
    assert expected in _error(_doc({"/a": _get("a", parameters=[param])}))


def test_a_parameter_ref_to_itself_is_refused() -> None:
    params = {"P": {"$ref": "#/components/parameters/P"}}
    doc = _doc({"/a": _get("a", parameters=[{"$ref": "#/components/parameters/P"}])}, components={"parameters": params})
    assert "refers to itself" in _error(doc)


def test_an_invalid_schema_is_refused_naming_the_operation() -> None:
    param = {"name": "q", "in": "query", "schema": {"type": 42}}
    message = _error(_doc({"/a": _get("searchThings", parameters=[param])}))
    assert "operation searchThings" in message
    assert "properties/q/type" in message


def test_two_parameters_with_one_name_are_refused() -> None:
    params = [{"name": "id", "in": "query"}, {"name": "id", "in": "header"}]
    assert "two parameters are named 'id'" in _error(_doc({"/a": _get("a", parameters=params)}))


def test_a_document_over_the_size_limit_is_refused() -> None:
    big = _doc({"/a": _get("a", description="x" * MAX_DOCUMENT_BYTES)})
    assert "larger than 2 MiB" in _error(big)
    multibyte = "openapi: 3.0.0\ndescription: " + "é" * (MAX_DOCUMENT_BYTES // 2 + 1)  # under the limit in chars
    assert "larger than 2 MiB" in _error(multibyte)


def test_a_yaml_alias_bomb_is_refused_fast() -> None:
    bomb = 'openapi: 3.0.0\na: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for i in range(1, 10):
        bomb += f"{chr(97 + i)}: &{chr(97 + i)} [{', '.join(['*' + chr(96 + i)] * 9)}]\n"  # 9**10 "lol"s
    bomb += "paths: {}\n"
    started = time.monotonic()
    assert "YAML aliases (*a) are not allowed (line 3)" in _error(bomb)
    assert time.monotonic() - started < 1


def test_refs_that_expand_exponentially_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openapi, "MAX_RESOLVED_NODES", 10_000)
    schemas = {f"S{i}": {"type": "array", "items": [{"$ref": f"#/components/schemas/S{i + 1}"}] * 2}
               for i in range(30)}
    schemas["S30"] = {"type": "string"}
    param = {"name": "q", "in": "query", "schema": {"$ref": "#/components/schemas/S0"}}
    doc = _doc({"/a": _get("a", parameters=[param])}, components={"schemas": schemas})
    assert "too large once their $refs are expanded" in _error(doc)


def test_ref_chains_deeper_than_the_limit_are_refused() -> None:
    schemas = {f"S{i}": {"type": "object", "properties": {"x": {"$ref": f"#/components/schemas/S{i + 1}"}}}
               for i in range(40)}
    schemas["S40"] = {"type": "string"}
    body = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/S0"}}}}
    doc = _doc({"/a": {"post": {"operationId": "a", "requestBody": body}}}, components={"schemas": schemas})
    assert "$refs are nested more than 32 deep" in _error(doc)
