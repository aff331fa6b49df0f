"""The interactive API documentation, Swagger UI at ``/docs`` and ReDoc at ``/redoc``, served with
assets packaged with the service (the ``fastapi-offline`` package's copies of Swagger UI and ReDoc)
instead of FastAPI's defaults, which load them, and ReDoc's fonts, from public CDNs: on a network
that reaches no other host those pages would be blank. Their Content-Security-Policy lets them load
nothing from another host."""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs-assets"
"""Where the service serves Swagger UI's and ReDoc's scripts and styles."""
DOCS_CSP = ("default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
"""The documentation pages' policy: their own inline set-up script and the service's assets, the
OpenAPI document fetched from the service, ReDoc's worker; nothing from any other host."""

router = APIRouter(include_in_schema=False)


@lru_cache(maxsize=1)
def assets_directory() -> Path:
    """The packaged Swagger UI and ReDoc files."""
    return Path(str(files("fastapi_offline") / "static"))


def install(app: FastAPI) -> None:
    """Serve the documentation pages and their assets on ``app`` (created with ``docs_url`` and
    ``redoc_url`` None, so that FastAPI's CDN pages are not served as well)."""
    app.mount(ASSETS, StaticFiles(directory=assets_directory()), name="docs-assets")
    app.include_router(router)


def _page(response: HTMLResponse) -> HTMLResponse:
    response.headers["Content-Security-Policy"] = DOCS_CSP
    return response


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    return _page(get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}", title=f"{request.app.title} · Swagger UI",
        oauth2_redirect_url=f"{root}/docs/oauth2-redirect",
        swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js", swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS}/favicon.png"))


@router.get("/docs/oauth2-redirect")
def swagger_ui_redirect() -> HTMLResponse:
    return _page(get_swagger_ui_oauth2_redirect_html())


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    return _page(get_redoc_html(openapi_url=f"{root}{request.app.openapi_url}", title=f"{request.app.title} · ReDoc",
                                redoc_js_url=f"{root}{ASSETS}/redoc.standalone.js",
                                redoc_favicon_url=f"{root}{ASSETS}/favicon.png", with_google_fonts=False))
