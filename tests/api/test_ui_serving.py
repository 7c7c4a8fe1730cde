"""The admin UI's serving: its pages at / and at the app's own paths, immutable hashed assets, GraphiQL from the
same build at GET /graphql (no CDN), the API's own paths untouched, and a clear page when the UI is not built."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from aigc_admin.web import ui
from tests.support.api import ApiHarness


@pytest.fixture
def build(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "index-abc123.js").write_text("console.log('app')")
    (tmp_path / "assets" / "vendor-def456.js").write_text("const x = 1;\n" * 2000)
    (tmp_path / "index.html").write_text('<div id="root"></div><script src="/assets/index-abc123.js"></script>')
    (tmp_path / "graphiql.html").write_text('<div id="graphiql"></div>')
    return tmp_path


async def get(app: FastAPI, path: str, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        return await client.get(path, headers=headers)


async def test_pages_assets_and_api_paths(build: Path) -> None:
    app = FastAPI()

    @app.get("/files/{file_id}/content")
    async def content(file_id: str) -> dict[str, str]:
        return {"api": file_id}

    ui.mount(app, build)
    for path in ("/", "/models", "/models/12", "/system/tenants", "/finetune/3", "/files"):
        r = await get(app, path, Accept="text/html,application/xhtml+xml,*/*;q=0.8")  # a browser's navigation
        assert r.status_code == 200 and 'id="root"' in r.text, path
        assert r.headers["cache-control"] == "no-cache"
    for path in ("/files", "/files/..%2F..%2Fetc%2Fpasswd/content", "/models/12"):  # an API client: no page
        assert (await get(app, path, Accept="*/*")).status_code == 404, path
    asset = await get(app, "/assets/index-abc123.js")
    assert asset.text == "console.log('app')" and "immutable" in asset.headers["cache-control"]
    assert (await get(app, "/assets/missing.js")).status_code == 404
    big = await get(app, "/assets/vendor-def456.js", **{"Accept-Encoding": "gzip"})
    assert big.headers["content-encoding"] == "gzip" and big.text == "const x = 1;\n" * 2000
    assert int(big.headers["content-length"]) < 2000  # what travels is compressed
    assert (await get(app, "/files/f1/content")).json() == {"api": "f1"}  # the API's route wins
    unknown = await get(app, "/nothing-here", Accept="text/html")
    assert unknown.status_code == 404 and unknown.json() == {"detail": "Not Found"}


async def test_not_built_says_how_to_build(tmp_path: Path) -> None:
    app = FastAPI()
    ui.mount(app, tmp_path)
    r = await get(app, "/")
    assert r.status_code == 503 and "make ui" in r.text
    assert ui.graphiql_page(tmp_path) is None


async def test_platform_serves_the_built_ui_and_offline_graphiql(api: ApiHarness) -> None:
    if not ui.built():
        pytest.skip("the UI is not built here (make ui)")
    page = await api.client.get("/")
    assert page.status_code == 200 and '<div id="root">' in page.text
    graphiql = await api.client.get("/graphql", headers={"Accept": "text/html"})
    assert graphiql.status_code == 200 and 'id="graphiql"' in graphiql.text
    assert "cdn" not in graphiql.text.lower() and "unpkg" not in graphiql.text.lower()
    for src in [s.split('"')[0] for s in graphiql.text.split('src="')[1:]]:
        assert src.startswith("/assets/"), src  # every script is the platform's own
        assert (await api.client.get(src)).status_code == 200
    ready = await api.client.get("/readyz")
    assert ready.status_code == 200  # the API's own routes are not the UI's
