"""The bank-facing service: one FastAPI app, one router per resource.

The model loads in ``lifespan`` (once per worker) and is checked against the registry in the
background; the database is migrated to the newest schema on start; the chain's signing key is
loaded (made on first start). Every response carries ``X-Request-ID`` and ``X-Model-Version``;
every error has the one JSON shape of :mod:`api.common.errors`; every request has its line in the
access log (:mod:`api.common.access_log`).
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

from api.access import routes as admin
from api.common import errors
from api.common.access_log import AccessLog
from api.common.limits import failure_counts, peer_address
from api.common.metrics import LATENCY, REQUESTS
from api.db.engine import make_engine, sessions, upgrade
from api.model_holder import ModelHolder, freeze_heap
from api.objections import routes as objections
from api.precredit.routes import authorizations, decisions, pre_credit
from api.routes import docs, health, models, typeface
from api.settings import Settings, settings as env_settings
from api.trust import routes as audit
from api.trust.appender import ChainAppender
from api.trust.anchor import sign_events
from api.trust.audit import DECISIONS, make_durable, origin, record_signed
from api.trust.signing import Checkpointer, Keyring

log = logging.getLogger("xyd.api")


class ServiceMiddleware:
    """Request ids, the body-size limit, the model-version header, request metrics and the access
    log, as plain ASGI (no per-request task switching)."""

    def __init__(self, app, holder: ModelHolder, max_body: int, access_log: AccessLog | None = None):
        self.app, self.holder, self.max_body, self.access_log = app, holder, max_body, access_log

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request_id = str(uuid.uuid4())
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        status = {"code": 500, "sent": False}
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        try:
            too_long = length is not None and int(length) > self.max_body
        except ValueError:
            too_long = False
        try:
            if too_long:
                status["code"] = await self._too_large(send, state)
                return
            if length is None and b"transfer-encoding" in headers:
                # a chunked body is read whole (up to the limit) before the application sees it, so
                # that one over the limit gets the same 413 as a sized one (the parser enforces a
                # declared length; a chunked body has none)
                receive = await self._buffered(receive)
                if receive is None:
                    status["code"] = await self._too_large(send, state)
                    return

            async def tagged_send(message):
                if message["type"] == "http.response.start":
                    status["code"], status["sent"] = message["status"], True
                    headers = [h for h in message.get("headers", []) if h[0].lower() != b"x-request-id"]
                    headers.append((b"x-request-id", state.get("request_id", request_id).encode()))
                    # the version that decided this request, else the one held now
                    version = state.get("model_version") or self.holder.version or "none"
                    headers.append((b"x-model-version", str(version).encode()))
                    message = {**message, "headers": headers}
                await send(message)

            await self.app(scope, receive, tagged_send)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            elapsed = time.perf_counter() - started
            REQUESTS.labels(scope["method"], route, str(status["code"])).inc()
            LATENCY.labels(route).observe(elapsed)
            if self.access_log is not None:
                client = scope.get("client")
                self.access_log.write(
                    request_id=request_id, client_id=state.get("client_id"), method=scope["method"], route=route,
                    status=status["code"], code=state.get("error_code"), latency_ms=round(elapsed * 1000, 3),
                    model_version=state.get("model_version"), address=peer_address(client))

    async def _buffered(self, receive):
        """``receive`` replaying the whole body read now, or None when it is over the limit."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                first = message  # the client went away: the application hears of it as it would have
                break
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_body:
                return None
            chunks.append(body)
            if not message.get("more_body"):
                first = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
                break
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return first
            return await receive()

        return replay

    async def _too_large(self, send, state: dict) -> int:
        request_id = state["request_id"]
        state["error_code"] = "BODY_TOO_LARGE"
        body = json.dumps({"code": "BODY_TOO_LARGE", "message": f"the body is over {self.max_body} bytes",
                           "message_zh": "请求体过大", "request_id": request_id}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"x-request-id", request_id.encode()),
                                (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
        return 413


def create_app(config: Settings | None = None, serving_process: bool = False) -> FastAPI:
    """The service, configured by ``config`` (the environment by default). ``serving_process``:
    the app is its process's only work (a worker of ``xyd serve``), so the heap is frozen once the
    model is loaded (:func:`api.model_holder.freeze_heap`); an app inside another program (a test,
    a notebook) leaves that program's heap alone."""
    config = config or env_settings()
    holder = ModelHolder(config.model_alias, config.home / "models" / "registry-cache", freeze=serving_process)
    access_log = AccessLog.configured(config.access_log, config.home, config.access_log_max_bytes,
                                      config.access_log_backups)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # two threads per worker: decisions are CPU-bound, and more threads taking turns at the
        # GIL answered no more of them, with a longer tail (8 clients: p99 ~20 ms with 2, 40-100 ms with 4)
        anyio.to_thread.current_default_thread_limiter().total_tokens = config.threads_per_worker
        upgrade(config.database)
        engine = make_engine(config.database)
        app.state.engine = engine
        app.state.sessions = sessions(engine)
        # due days counted on weekdays alone while a year's holiday notice was unknown, now knowable
        from api.objections.workflow import confirm_dues
        for objection_id, before, after in confirm_dues(app.state.sessions, config.home):
            log.info("objection %s: provisional due day %s confirmed as %s", objection_id, before, after)
        # the chain's signing key is made on first start (xyd serve makes it before its workers start)
        keyring = Keyring(config.keys_directory)
        with app.state.sessions() as session:
            decisions_origin = origin(session, DECISIONS)
        app.state.appender = ChainAppender(engine, Checkpointer(
            keyring.signer(), config.checkpoints_file, config.checkpoint_every_decisions,
            config.checkpoint_every_seconds, make_durable=lambda: make_durable(engine), keyring=keyring,
            record_signed=lambda checkpoint: record_signed(engine, checkpoint), origin=decisions_origin))
        sign_events(engine, config.home, first_only=True)  # the events chained before it was anchored (0009)
        holder.reload()
        holder.watch(config.model_check_seconds)
        # the regulator pages' base font: made once per machine (seconds), here rather than in a page
        from features.typeface import base_font
        threading.Thread(target=base_font, name="xyd-typeface", daemon=True).start()
        if holder.bundle is None:
            log.warning("no model loaded: %s", holder.problem)
        if serving_process:
            freeze_heap()  # the libraries' and the model's objects, which a full collection would walk again and again
        # the lifespan's state reaches the HTTP protocol too, which logs the heads it refuses (431)
        yield {"xyd_access_log": access_log} if access_log is not None else {}
        holder.stop()
        await anyio.to_thread.run_sync(app.state.appender.close)  # writes what has queued, signs its checkpoint
        engine.dispose()
        if access_log is not None:
            access_log.close()

    # an ASCII title: client generators make the project's name of it (pip refuses a Chinese one)
    app = FastAPI(title="Xinyidai pre-credit service", version="1",
                  description="信易贷 pre-credit decisions for banks holding an enterprise's authorisation (授权书); "
                              "explanations and the audit trail for regulators. Every call but the health "
                              "checks sends `Authorization: Bearer <API key>`.", lifespan=lifespan,
                  generate_unique_id_function=lambda route: route.name,
                  docs_url=None, redoc_url=None)  # served from packaged assets, not a CDN (api.routes.docs)
    app.state.holder = holder
    app.state.config = config
    app.state.client_cache = {}
    # shared by every worker of this service (its home): a burst spread over them meets one allowance
    app.state.failed_authentications = failure_counts(config.home, config.auth_failures_allowed,
                                                      config.auth_failure_window_seconds)
    errors.install(app)
    for router in (pre_credit.router, decisions.router, authorizations.router, models.router, health.router,
                   admin.router, typeface.router, audit.router, objections.router, objections.changes_router):
        _summarise(router)
        app.include_router(router)
    docs.install(app)
    app.add_middleware(ServiceMiddleware, holder=holder, max_body=config.max_body_bytes, access_log=access_log)
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
    return create_app(serving_process=True)
