"""The bank-facing service: one FastAPI app, one router per resource.

The model loads in ``lifespan`` (once per worker) and is checked against the registry in the
background; the database is migrated to the newest schema on start. Every response carries
``X-Request-ID`` and ``X-Model-Version``; every error has the one JSON shape of
:mod:`api.errors`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI

from api import errors
from api.db.appender import ChainAppender
from api.db.engine import make_engine, sessions, upgrade
from api.metrics import LATENCY, REQUESTS
from api.model_holder import ModelHolder
from api.routes import admin, authorizations, decisions, health, models, pre_credit, typeface
from api.settings import Settings, settings as env_settings

log = logging.getLogger("xyd.api")


class _TooLarge(Exception):
    pass


class ServiceMiddleware:
    """Request ids, the body-size limit, the model-version header and request metrics, as plain
    ASGI (no per-request task switching)."""

    def __init__(self, app, holder: ModelHolder, max_body: int):
        self.app, self.holder, self.max_body = app, holder, max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request_id = str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = {"code": 500, "sent": False}
        length = dict(scope.get("headers") or []).get(b"content-length")
        try:
            too_long = length is not None and int(length) > self.max_body
        except ValueError:
            too_long = False
        if too_long:
            await self._too_large(send, request_id)
            return
        seen = 0

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise _TooLarge()
            return message

        async def tagged_send(message):
            if message["type"] == "http.response.start":
                status["code"], status["sent"] = message["status"], True
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"x-request-id"]
                headers.append((b"x-request-id", scope["state"].get("request_id", request_id).encode()))
                # the version that decided this request, else the one held now
                version = scope["state"].get("model_version") or self.holder.version or "none"
                headers.append((b"x-model-version", str(version).encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, limited_receive, tagged_send)
        except _TooLarge:
            if not status["sent"]:
                await self._too_large(send, request_id)
                status["code"] = 413
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            REQUESTS.labels(scope["method"], route, str(status["code"])).inc()
            LATENCY.labels(route).observe(time.perf_counter() - started)

    async def _too_large(self, send, request_id: str) -> None:
        body = json.dumps({"code": "BODY_TOO_LARGE", "message": f"the body is over {self.max_body} bytes",
                           "message_zh": "请求体过大", "request_id": request_id}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"x-request-id", request_id.encode()),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def create_app(config: Settings | None = None) -> FastAPI:
    """The service, configured by ``config`` (the environment by default)."""
    config = config or env_settings()
    holder = ModelHolder(config.model_alias, config.home / "models" / "registry-cache")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # two threads per worker: decisions are CPU-bound, and more threads taking turns at the
        # GIL answered no more of them, with a longer tail (8 clients: p99 ~20 ms with 2, 40-100 ms with 4)
        anyio.to_thread.current_default_thread_limiter().total_tokens = config.threads_per_worker
        upgrade(config.database)
        engine = make_engine(config.database)
        app.state.engine = engine
        app.state.sessions = sessions(engine)
        app.state.appender = ChainAppender(engine)
        holder.reload()
        holder.watch(config.model_check_seconds)
        # the regulator pages' base font: made once per machine (seconds), here rather than in a page
        from features.typeface import base_font
        threading.Thread(target=base_font, name="xyd-typeface", daemon=True).start()
        if holder.bundle is None:
            log.warning("no model loaded: %s", holder.problem)
        yield
        holder.stop()
        await anyio.to_thread.run_sync(app.state.appender.close)  # writes what has queued
        engine.dispose()

    app = FastAPI(title="信易贷 pre-credit service", version="1",
                  description="Pre-credit decisions for banks holding an enterprise's authorisation (授权书); "
                              "explanations and the audit trail for regulators. Every call but the health "
                              "checks sends `Authorization: Bearer <API key>`.", lifespan=lifespan,
                  generate_unique_id_function=lambda route: route.name)
    app.state.holder = holder
    app.state.config = config
    app.state.client_cache = {}
    errors.install(app)
    for router in (pre_credit.router, decisions.router, authorizations.router, models.router, health.router,
                   admin.router, typeface.router):
        _summarise(router)
        app.include_router(router)
    app.add_middleware(ServiceMiddleware, holder=holder, max_body=config.max_body_bytes)
    _document_errors(app)
    return app


def _summarise(router) -> None:
    """Each operation's summary is the first sentence of its route's docstring, in words a bank's
    integrator reads in the docs and in a generated client (not "Pre Credit")."""
    from fastapi.routing import APIRoute

    for route in router.routes:
        if isinstance(route, APIRoute) and not route.summary and route.endpoint.__doc__:
            paragraph = " ".join(route.endpoint.__doc__.strip().split("\n\n")[0].split())
            route.summary = paragraph.split(". ")[0].rstrip(".").replace("``", "`")


def _document_errors(app: FastAPI) -> None:
    """Put the one error body in the spec's components (routes refer to it for their 4xx/5xx)."""
    from fastapi.openapi.utils import get_openapi

    def schema() -> dict:
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            spec.setdefault("components", {}).setdefault("schemas", {})["ErrorBody"] = \
                errors.ErrorBody.model_json_schema()
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = schema


def app_from_env() -> FastAPI:
    """The factory ``xyd serve`` hands to uvicorn (one app per worker)."""
    return create_app()
