"""Liveness, readiness and Prometheus metrics (no key needed)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy import text

from api import examples
from api.common.metrics import exposition

router = APIRouter(tags=["health"])


@router.get("/healthz", responses={200: {"content": {"application/json": {"example": examples.HEALTH}}}})
def healthz() -> dict:
    """The process answers (HEAD as well: load balancers probe with it)."""
    return {"status": "ok"}


@router.get("/readyz", responses={200: {"content": {"application/json": {"example": examples.READY}}},
                                  503: {"description": "database unreachable or no champion loaded",
                                        "content": {"application/json": {"example": examples.NOT_READY}}}})
def readyz(request: Request):
    """Ready to decide: the database answers and a champion is loaded."""
    problems = []
    try:
        with request.app.state.sessions() as session:
            session.execute(text("SELECT 1"))
    except Exception as error:  # any failure to reach it is 'not ready'
        problems.append(f"database: {type(error).__name__}")
    holder = request.app.state.holder
    if holder.bundle is None:
        problems.append(f"model: {holder.problem}")
    body = {"status": "ready" if not problems else "not ready", "model_version": holder.version, "problems": problems}
    return JSONResponse(body, status_code=200 if not problems else 503)


# HEAD, as load balancers probe: the same status, no body (kept out of the OpenAPI document, where
# a second operation of the same name would break client generators)
@router.head("/healthz", include_in_schema=False)
def healthz_head() -> Response:
    return Response(status_code=200)


@router.head("/readyz", include_in_schema=False)
def readyz_head(request: Request) -> Response:
    return Response(status_code=readyz(request).status_code)


@router.get("/metrics", response_class=PlainTextResponse)
def metrics() -> Response:
    """Prometheus exposition of every worker's counters."""
    content, media = exposition()
    return Response(content, media_type=media)
