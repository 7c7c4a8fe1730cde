"""Files: uploads over GraphQL multipart requests and plain HTTP, chat JSONL validation with line numbers,
de-duplication within a tenant, tenant isolation of reads, downloads and deletes, safe storage names, size
limits, and nothing stored when an upload fails."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from aigc_admin.adapters.db import models as m
from aigc_admin.bootstrap import file_limits
from aigc_admin.settings import load_settings
from tests.support.api import ApiHarness, unique

UPLOAD = ("mutation($file: Upload!, $purpose: Purpose!) { uploadFile(file: $file, purpose: $purpose) { created "
          "file { id name purpose size fileType sha256 lineCount tokenCount creatorEmail contentUrl } "
          "errors { field code message lines { line message } } } }")
FILE = "query($id: ID!) { file(id: $id) { id name } }"
DELETE = "mutation($id: ID!) { deleteFile(id: $id) { errors { code message } } }"


def sample(*pairs: tuple[str, str]) -> str:
    return json.dumps({"messages": [{"role": r, "content": c} for r, c in pairs]}, ensure_ascii=False)


def jsonl(*rows: str) -> bytes:
    return ("\n".join(rows) + "\n").encode()


def training(marker: str = "") -> bytes:
    """Valid chat JSONL; ``marker`` makes the content (and so its hash) unique."""
    return jsonl(sample(("system", "Be brief."), ("user", f"Hi {marker}"), ("assistant", "Hello!")),
                 sample(("user", "2+2?"), ("assistant", "4")))


def headers(token: str | None, tenant: str | None) -> dict[str, str]:
    h = {}
    if token:
        h["Authorization"] = f"Bearer {token}"
    if tenant is not None:
        h["X-Tenant-Id"] = tenant
    return h


async def gql_upload(api: ApiHarness, content: bytes, filename: str, purpose: str = "FINE_TUNE", *,
                     token: str, tenant: str) -> dict[str, Any]:
    """uploadFile through a GraphQL multipart request (operations + map + the file part)."""
    operations = json.dumps({"query": UPLOAD, "variables": {"file": None, "purpose": purpose}})
    r = await api.client.post("/graphql", data={"operations": operations, "map": json.dumps({"0": ["variables.file"]})},
                              files={"0": (filename, content, "application/octet-stream")},
                              headers=headers(token, tenant))
    assert r.status_code == 200, r.text
    body = r.json()
    assert not body.get("errors"), body
    return dict(body["data"]["uploadFile"])


async def http_upload(api: ApiHarness, content: bytes | AsyncIterator[bytes], filename: str | None,
                      purpose: str | None = "fine-tune", *, token: str | None, tenant: str | None,
                      multipart: bool = False) -> httpx.Response:
    h = headers(token, tenant)
    if multipart:
        assert isinstance(content, bytes)
        data = {"purpose": purpose} if purpose else {}
        return await api.client.post("/files", data=data, files={"file": (filename, content)}, headers=h)
    params = {k: v for k, v in (("purpose", purpose), ("filename", filename)) if v is not None}
    return await api.client.post("/files", params=params, content=content, headers=h)


def blobs(api: ApiHarness, tenant: str | None = None) -> list[Path]:
    """Every file under the storage's files/ (or a tenant's part of it), temporary ones included."""
    root = api.settings.storage_dir / "files"
    if tenant is not None:
        root = root / tenant
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@dataclass
class Tenant:
    id: str
    member: str  # token
    maintainer: str  # token


async def tenant(api: ApiHarness) -> Tenant:
    tid = await api.create_tenant(unique("ft"))
    _, member = await api.create_user(unique("fmember"), {tid: "member"})
    _, maintainer = await api.create_user(unique("fmaint"), {tid: "maintainer"})
    return Tenant(tid, member, maintainer)


async def assert_nothing_stored(api: ApiHarness, t: Tenant) -> None:
    assert blobs(api, t.id) == []
    assert await m.File.filter(tenant_id=int(t.id)).count() == 0


# --- GraphQL -----------------------------------------------------------------------------------------------
async def test_upload_counts_lists_and_downloads(api: ApiHarness) -> None:
    t = await tenant(api)
    content = training(unique("m"))
    result = await gql_upload(api, content, "train.jsonl", token=t.member, tenant=t.id)
    assert result["errors"] == [] and result["created"] is True
    f = result["file"]
    assert f["id"].startswith("file-") and f["name"] == "train.jsonl" and f["purpose"] == "FINE_TUNE"
    assert f["size"] == len(content) and f["fileType"] == "jsonl" and f["lineCount"] == 2 and f["tokenCount"] > 0
    assert f["creatorEmail"] and f["contentUrl"] == f"/files/{f['id']}/content"
    assert [p.relative_to(api.settings.storage_dir).as_posix() for p in blobs(api, t.id)] == [
        f"files/{t.id}/{f['id']}"]
    row = await m.File.get(file_id=f["id"])
    assert row.storage_path == f"files/{t.id}/{f['id']}" and row.tenant_id == int(t.id)

    listed = await api.ok("{ files { totalCount items { id } } }", token=t.member, tenant=t.id)
    assert listed["files"] == {"totalCount": 1, "items": [{"id": f["id"]}]}
    by_purpose = await api.ok("{ files(purpose: FINE_TUNE_EVAL) { totalCount } }", token=t.member, tenant=t.id)
    assert by_purpose["files"]["totalCount"] == 0
    assert (await api.ok(FILE, {"id": f["id"]}, token=t.member, tenant=t.id))["file"]["name"] == "train.jsonl"

    download = await api.client.get(f["contentUrl"], headers=headers(t.member, t.id))
    assert download.status_code == 200 and download.content == content
    assert download.headers["content-disposition"].startswith("attachment;")
    assert download.headers["x-content-type-options"] == "nosniff"


async def test_dedupe_is_per_tenant_and_purpose(api: ApiHarness) -> None:
    a, b = await tenant(api), await tenant(api)
    content = training(unique("dup"))
    first = await gql_upload(api, content, "a.jsonl", token=a.member, tenant=a.id)
    again = await gql_upload(api, content, "renamed.jsonl", token=a.maintainer, tenant=a.id)
    assert again["created"] is False and again["errors"] == []
    assert again["file"]["id"] == first["file"]["id"] and again["file"]["name"] == "a.jsonl"
    assert len(blobs(api, a.id)) == 1  # no second copy

    other_tenant = await gql_upload(api, content, "a.jsonl", token=b.member, tenant=b.id)
    assert other_tenant["created"] is True and other_tenant["file"]["id"] != first["file"]["id"]
    other_purpose = await gql_upload(api, content, "a.jsonl", "FINE_TUNE_EVAL", token=a.member, tenant=a.id)
    assert other_purpose["created"] is True and other_purpose["file"]["purpose"] == "FINE_TUNE_EVAL"
    assert len(blobs(api, a.id)) == 2 and len(blobs(api, b.id)) == 1

    over_http = await http_upload(api, content, "h.jsonl", token=a.member, tenant=a.id)
    assert over_http.status_code == 200, over_http.text
    assert over_http.json()["created"] is False and over_http.json()["file"]["id"] == first["file"]["id"]


async def test_another_tenants_file_looks_missing(api: ApiHarness) -> None:
    a, b = await tenant(api), await tenant(api)
    f = (await gql_upload(api, training(unique("iso")), "secret.jsonl", token=a.member, tenant=a.id))["file"]
    assert (await api.ok(FILE, {"id": f["id"]}, token=b.maintainer, tenant=b.id))["file"] is None
    listed = await api.ok("{ files { items { id } } }", token=b.maintainer, tenant=b.id)
    assert f["id"] not in json.dumps(listed)
    download = await api.client.get(f["contentUrl"], headers=headers(b.maintainer, b.id))
    assert download.status_code == 404 and download.json()["error"]["code"] == "NOT_FOUND"
    # naming tenant A without being its member is refused outright
    forged = await api.client.get(f["contentUrl"], headers=headers(b.maintainer, a.id))
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "FORBIDDEN"
    anonymous = await api.client.get(f["contentUrl"], headers={"X-Tenant-Id": a.id})
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "UNAUTHENTICATED"
    deleted = await api.ok(DELETE, {"id": f["id"]}, token=b.maintainer, tenant=b.id)
    assert deleted["deleteFile"]["errors"][0]["code"] == "NOT_FOUND"
    for bad in ("file-0", "../../etc/passwd", "1"):
        assert (await api.ok(FILE, {"id": bad}, token=a.member, tenant=a.id))["file"] is None
    assert (await api.client.get("/files/..%2F..%2Fetc%2Fpasswd/content",
                                 headers=headers(a.member, a.id))).status_code == 404
    assert (await api.client.get("/files", headers=headers(a.member, a.id))).status_code in (404, 405)  # no listing

    # members may not delete; maintainers of the tenant may
    member_delete = await api.gql(DELETE, {"id": f["id"]}, token=a.member, tenant=a.id)
    assert member_delete["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert len(blobs(api, a.id)) == 1
    done = await api.ok(DELETE, {"id": f["id"]}, token=a.maintainer, tenant=a.id)
    assert done["deleteFile"]["errors"] == []
    await assert_nothing_stored(api, a)
    assert (await api.client.get(f["contentUrl"], headers=headers(a.member, a.id))).status_code == 404


async def test_traversal_names_are_metadata_only(api: ApiHarness) -> None:
    t = await tenant(api)
    outside = api.settings.storage_dir.parent
    before = sorted(p.name for p in outside.iterdir())
    f = (await gql_upload(api, training(unique("tr")), "../../etc/passwd", token=t.member, tenant=t.id))["file"]
    assert f["name"] == "passwd" and f["fileType"] == ""
    raw = await http_upload(api, training(unique("tr2")), "../../../x.jsonl", token=t.member, tenant=t.id)
    assert raw.status_code == 201, raw.text
    assert raw.json()["file"]["name"] == "x.jsonl"
    windows = await http_upload(api, training(unique("tr3")), "..\\..\\y.jsonl", token=t.member, tenant=t.id,
                                multipart=True)
    assert windows.status_code == 201, windows.text
    assert windows.json()["file"]["name"] == "y.jsonl"
    ids = {f["id"], raw.json()["file"]["id"], windows.json()["file"]["id"]}
    assert {p.name for p in blobs(api, t.id)} == ids  # stored under their ids, inside the tenant's folder
    assert sorted(p.name for p in outside.iterdir()) == before

    for bad in ("..", "a/..", "dir/"):
        result = await gql_upload(api, training(unique("bad")), bad, token=t.member, tenant=t.id)
        assert result["file"] is None and result["errors"][0]["code"] == "INVALID", result
    bad_http = await http_upload(api, training(unique("nul")), "a\x00b.jsonl", token=t.member, tenant=t.id)
    assert bad_http.status_code == 400 and bad_http.json()["error"]["code"] == "INVALID"
    assert await m.File.filter(tenant_id=int(t.id)).count() == 3 and len(blobs(api, t.id)) == 3


async def test_malformed_jsonl_is_refused_with_line_numbers(api: ApiHarness) -> None:
    t = await tenant(api)
    content = jsonl(sample(("user", "a"), ("assistant", "b")), sample(("user", "c"), ("assistant", "d")),
                    '{"messages": [', "", sample(("user", "e"), ("bot", "f")),
                    json.dumps({"messages": [{"role": "user", "content": 1}, {"role": "assistant", "content": "x"}]}))
    result = await gql_upload(api, content, "bad.jsonl", token=t.member, tenant=t.id)
    assert result["file"] is None
    error = result["errors"][0]
    assert (error["code"], error["field"]) == ("INVALID_JSONL", "file")
    assert [x["line"] for x in error["lines"]] == [3, 5, 6]
    assert "not valid JSON" in error["lines"][0]["message"] and "role" in error["lines"][1]["message"]
    assert error["message"].startswith("line 3:")
    await assert_nothing_stored(api, t)

    over_http = await http_upload(api, content, "bad.jsonl", token=t.member, tenant=t.id, multipart=True)
    assert over_http.status_code == 400
    body = over_http.json()["error"]
    assert body["code"] == "INVALID_JSONL" and [x["line"] for x in body["lines"]] == [3, 5, 6]
    await assert_nothing_stored(api, t)


async def test_empty_files_and_other_purposes(api: ApiHarness) -> None:
    t = await tenant(api)
    for content in (b"", b"\n\n  \n"):
        result = await gql_upload(api, content, "empty.jsonl", token=t.member, tenant=t.id)
        assert result["errors"][0]["code"] == "EMPTY", result
    empty_asset = await gql_upload(api, b"", "x.bin", "ASSISTANTS", token=t.member, tenant=t.id)
    assert empty_asset["errors"][0]["code"] == "EMPTY"
    await assert_nothing_stored(api, t)

    binary = bytes(range(256)) * 4  # not JSONL at all: stored as it is for a purpose that is not validated
    stored = await gql_upload(api, binary, "blob.PDF", "ASSISTANTS", token=t.member, tenant=t.id)
    assert stored["errors"] == [] and stored["file"]["fileType"] == "pdf" and stored["file"]["lineCount"] == 0
    download = await api.client.get(stored["file"]["contentUrl"], headers=headers(t.member, t.id))
    assert download.content == binary


async def test_http_upload_auth_and_bad_requests(api: ApiHarness) -> None:
    t = await tenant(api)
    content = training(unique("http"))
    assert (await http_upload(api, content, "a.jsonl", token=None, tenant=t.id)).status_code == 401
    bad_token = await http_upload(api, content, "a.jsonl", token="nope", tenant=t.id)
    assert bad_token.status_code == 401 and bad_token.json()["error"]["code"] == "UNAUTHENTICATED"
    no_tenant = await http_upload(api, content, "a.jsonl", token=t.member, tenant=None)
    assert no_tenant.status_code == 403 and no_tenant.json()["error"]["code"] == "FORBIDDEN"
    other = await tenant(api)
    assert (await http_upload(api, content, "a.jsonl", token=t.member, tenant=other.id)).status_code == 403
    no_purpose = await http_upload(api, content, "a.jsonl", purpose=None, token=t.member, tenant=t.id)
    assert no_purpose.status_code == 400 and no_purpose.json()["error"]["field"] == "purpose"
    wrong_purpose = await http_upload(api, content, "a.jsonl", purpose="weights", token=t.member, tenant=t.id)
    assert wrong_purpose.status_code == 400 and wrong_purpose.json()["error"]["code"] == "INVALID"
    no_name = await http_upload(api, content, None, token=t.member, tenant=t.id)
    assert no_name.status_code == 400 and no_name.json()["error"]["code"] == "INVALID"
    no_file_part = await api.client.post("/files", data={"purpose": "fine-tune"}, files={"other": ("a", b"x")},
                                         headers=headers(t.member, t.id))
    assert no_file_part.status_code == 400 and no_file_part.json()["error"]["code"] == "INVALID"
    garbage = await api.client.post("/files", content=b"--xyz\r\nnot a part",
                                    headers={**headers(t.member, t.id),
                                             "Content-Type": "multipart/form-data; boundary=xyz"})
    assert garbage.status_code == 400, garbage.text
    await assert_nothing_stored(api, t)

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(content), 7):  # a streamed body without Content-Length
            yield content[i:i + 7]

    streamed = await http_upload(api, chunks(), "s.jsonl", token=t.member, tenant=t.id)
    assert streamed.status_code == 201, streamed.text
    assert streamed.json()["file"]["lineCount"] == 2 and streamed.json()["file"]["size"] == len(content)
    multipart = await http_upload(api, training(unique("mp")), "m.jsonl", "fine-tune-eval", token=t.member,
                                  tenant=t.id, multipart=True)
    assert multipart.status_code == 201 and multipart.json()["file"]["purpose"] == "fine-tune-eval"
    audit = await api.ok('{ auditLogs(filter: {operation: "uploadFile"}, pagination: {limit: 100}) '
                         "{ items { variables success } } }", token=api.admin_token, tenant=t.id)
    assert any(row["success"] and "http" in json.dumps(row["variables"]) for row in audit["auditLogs"]["items"])


async def test_uploading_a_plain_string_is_refused(api: ApiHarness) -> None:
    t = await tenant(api)
    body = await api.ok(UPLOAD, {"file": "not a file", "purpose": "FINE_TUNE"}, token=t.member, tenant=t.id)
    assert body["uploadFile"]["errors"][0]["code"] == "INVALID"
    await assert_nothing_stored(api, t)


# --- limits ------------------------------------------------------------------------------------------------
SMALL = {"files.max.bytes": 2000, "files.max.line.bytes": 300, "files.max.errors": 3}


def test_limits_come_from_settings() -> None:
    limits = file_limits(load_settings(SMALL, environ={}))
    assert (limits.max_bytes, limits.max_line_bytes, limits.max_errors) == (2000, 300, 3)
    defaults = file_limits(load_settings({}, environ={}))
    assert (defaults.max_bytes, defaults.max_line_bytes, defaults.max_errors) == (512 * 1024 * 1024, 1024 * 1024, 20)


@pytest.fixture
def small_api(api: ApiHarness) -> Iterator[ApiHarness]:
    """The running API with the SMALL limits (one app per process: Tortoise's connections are global, so a
    second app beside the module's ``api`` is not an option)."""
    files = api.services().files
    saved = files.limits
    files.limits = file_limits(load_settings(SMALL, environ={}))
    try:
        yield api
    finally:
        files.limits = saved


async def test_oversized_uploads_store_nothing(small_api: ApiHarness) -> None:
    api = small_api
    t = await tenant(api)
    big = jsonl(*[sample(("user", f"question {i}"), ("assistant", "answer")) for i in range(40)])
    assert len(big) > 2000
    result = await gql_upload(api, big, "big.jsonl", token=t.member, tenant=t.id)
    assert result["file"] is None and result["errors"][0]["code"] == "TOO_LARGE"
    declared = await http_upload(api, big, "big.jsonl", token=t.member, tenant=t.id)
    assert declared.status_code == 413 and declared.json()["error"]["code"] == "TOO_LARGE"

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(big), 100):
            yield big[i:i + 100]

    streamed = await http_upload(api, chunks(), "big.jsonl", token=t.member, tenant=t.id)
    assert streamed.status_code == 413, streamed.text
    binary = await http_upload(api, b"x" * 2001, "big.bin", "assistants", token=t.member, tenant=t.id,
                               multipart=True)
    assert binary.status_code == 413
    await assert_nothing_stored(api, t)
    exactly = await http_upload(api, b"x" * 2000, "ok.bin", "assistants", token=t.member, tenant=t.id)
    assert exactly.status_code == 201


async def test_long_lines_and_the_first_errors_only(small_api: ApiHarness) -> None:
    api = small_api
    t = await tenant(api)
    long_line = jsonl(sample(("user", "a"), ("assistant", "b")), sample(("user", "x" * 400), ("assistant", "y")))
    result = await gql_upload(api, long_line, "long.jsonl", token=t.member, tenant=t.id)
    error = result["errors"][0]
    assert error["code"] == "INVALID_JSONL" and error["lines"][0]["line"] == 2
    assert "longer than the limit of 300 bytes" in error["lines"][0]["message"]

    many = jsonl(*["nope"] * 10)
    listed = (await gql_upload(api, many, "many.jsonl", token=t.member, tenant=t.id))["errors"][0]
    assert [x["line"] for x in listed["lines"]] == [1, 2, 3] and "more invalid lines" in listed["message"]
    await assert_nothing_stored(api, t)
