"""The admin web UI (ui/ in the repository, built into ``ui_build`` here and shipped in the package): its hashed
assets under /assets, its pages at / and the app's own paths, and GraphiQL from the same build at GET /graphql
(no CDN, so it works offline). When the build is missing (a source checkout before `make ui`), / says how to
build it and GraphiQL falls back to Strawberry's page."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from starlette.middleware.gzip import GZipMiddleware
from starlette.staticfiles import StaticFiles

BUILD = Path(__file__).with_name("ui_build")

# The app's first path segments (ui/src/routes.ts): anything else stays the API's (a JSON 404, not a page).
APP_ROOTS = frozenset({"login", "models", "deployments", "files", "finetune", "datasets", "evaluations",
                       "assistants", "tools", "channels", "playground", "audit", "system"})

NOT_BUILT = """<!doctype html><html lang="en"><meta charset="utf-8"><title>aigc-admin</title>
<body style="font-family: system-ui; margin: 3rem"><h1>aigc-admin</h1>
<p>The admin UI is not built in this installation. From a source checkout: <code>make ui</code>
(needs Node.js and npm), then restart. The API is at <a href="/graphql">/graphql</a>.</p></body></html>"""

# index.html names the current hashed assets: never cached, so a new release is picked up on reload.
NO_CACHE = {"Cache-Control": "no-cache"}


def built(build: Path = BUILD) -> bool:
    return (build / "index.html").is_file()


def graphiql_page(build: Path = BUILD) -> str | None:
    page = build / "graphiql.html"
    return page.read_text(encoding="utf-8") if page.is_file() else None


class ImmutableAssets(StaticFiles):
    """Hashed file names: a year of caching is safe."""

    def file_response(self, *args: object, **kwargs: object) -> Response:
        response = super().file_response(*args, **kwargs)  # type: ignore[arg-type]
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response


def mount(app: FastAPI, build: Path = BUILD) -> None:
    """Serve the UI on ``app``; call after the API's own routes so that they win."""
    if (build / "assets").is_dir():
        # compressed on the way out (browsers then cache them for good): the first load is what a user waits for
        assets = GZipMiddleware(ImmutableAssets(directory=build / "assets"), minimum_size=1024)
        app.mount("/assets", assets, name="ui-assets")

    def page() -> Response:
        index = build / "index.html"
        if not index.is_file():
            return HTMLResponse(NOT_BUILT, status_code=503, headers=NO_CACHE)
        return HTMLResponse(index.read_text(encoding="utf-8"), headers=NO_CACHE)

    @app.get("/", include_in_schema=False)
    async def root() -> Response:
        return page()

    @app.get("/{root}/{rest:path}", include_in_schema=False)
    @app.get("/{root}", include_in_schema=False)
    async def app_path(request: Request, root: str, rest: str = "") -> Response:
        # a page only for a browser's navigation (it asks for HTML): /files/… stays the API's for other clients
        if root not in APP_ROOTS or "text/html" not in request.headers.get("accept", ""):
            return Response('{"detail":"Not Found"}', status_code=404, media_type="application/json")
        return page()
