"""One error shape everywhere: ``{"code", "message", "message_zh", "request_id"}``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import examples
from api.common.refusals import Conflict, Forbidden, Invalid, NotFound, Refusal, Unavailable

log = logging.getLogger("xyd.api")


class ErrorBody(BaseModel):
    """What every 4xx and 5xx response carries."""

    model_config = ConfigDict(json_schema_extra={"examples": [examples.ERROR]})

    code: str
    message: str
    message_zh: str
    request_id: str


class ApiError(Exception):
    """An error a client can act on: status, a stable code and the words in both languages."""

    def __init__(self, status: int, code: str, message: str, message_zh: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.message_zh = status, code, message, message_zh
        self.headers = headers


HTTP_STATUS = {Invalid: 422, Forbidden: 403, NotFound: 404, Conflict: 409, Unavailable: 503}
"""The status the service answers each kind of domain refusal (:mod:`api.common.refusals`) with."""


def http_status(refusal: Refusal) -> int:
    """The HTTP status of a domain refusal, by its kind."""
    return next(status for kind, status in HTTP_STATUS.items() if isinstance(refusal, kind))


def request_id(request: Request) -> str:
    return getattr(request.state, "request_id", "") or ""


def error_response(request: Request, status: int, code: str, message: str, message_zh: str,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body = ErrorBody(code=code, message=message, message_zh=message_zh, request_id=request_id(request))
    request.state.error_code = code  # for the access log
    return JSONResponse(body.model_dump(), status_code=status, headers={"X-Request-ID": body.request_id, **(headers or {})})


def responses(*statuses: int) -> dict:
    """OpenAPI entries for the error responses a route can give."""
    described = {400: "Bad request", 401: "Missing or unknown API key", 403: "Not allowed", 404: "Not found",
                 409: "Conflict with the current state (another model or profile now)", 413: "Body too large", 422: "Invalid input",
                 429: "Too many failed authentications from this address or against this key prefix: wait the "
                      "seconds Retry-After gives", 503: "Not ready (no model, or no database)"}
    # the content type is named: routes that answer HTML still answer errors in JSON
    schema = {"$ref": "#/components/schemas/ErrorBody"}
    if 401 in statuses:  # wherever a key is checked, failing too often is answered 429
        statuses = (*statuses, 429)
    documented = {s: {"description": described[s], "content": {"application/json": {
        "schema": schema, "example": examples.ERRORS[s]}}} for s in statuses}
    if 429 in documented:
        documented[429]["headers"] = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}
    return documented


STATUS_WORDS = {400: ("BAD_REQUEST", "请求有误"), 401: ("UNAUTHENTICATED", "未认证"), 403: ("FORBIDDEN", "无权访问"),
                404: ("NOT_FOUND", "资源不存在"), 409: ("CONFLICT", "与当前状态冲突"), 405: ("METHOD_NOT_ALLOWED", "不支持该请求方法"),
                413: ("BODY_TOO_LARGE", "请求体过大"), 415: ("UNSUPPORTED_MEDIA_TYPE", "不支持的媒体类型"),
                422: ("VALIDATION_ERROR", "请求参数校验失败"), 429: ("TOO_MANY_FAILED_AUTHENTICATIONS", "认证失败次数过多")}


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into the one shape."""

    @app.exception_handler(Refusal)
    async def _refusal(request: Request, refusal: Refusal):
        return error_response(request, http_status(refusal), refusal.code, refusal.message, refusal.message_zh)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, error: ApiError):
        return error_response(request, error.status, error.code, error.message, error.message_zh, error.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, error: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in error.errors()[:10])
        return error_response(request, 422, "VALIDATION_ERROR", f"invalid request: {problems}",
                              f"请求参数校验失败：{problems}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException):
        if error.status_code == 400:  # a body that cannot be parsed is invalid input like any other
            return error_response(request, 422, "VALIDATION_ERROR", f"invalid request body: {error.detail}",
                                  "请求体无法解析")
        code, zh = STATUS_WORDS.get(error.status_code, ("HTTP_ERROR", "请求失败"))
        return error_response(request, error.status_code, code, str(error.detail), zh)

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, error: DBAPIError):
        # a lost connection (the pool has dropped its connections by now, so asking again reaches
        # a fresh one), a database that cannot be reached, or one too busy: not the caller's fault
        # and not a bug, so 503; any other database error is unexpected
        if not (error.connection_invalidated or isinstance(error, OperationalError)):
            return await _unexpected(request, error)
        log.warning("database unavailable in %s %s: %s", request.method, request.url.path, error.orig)
        return error_response(request, 503, "DATABASE_UNAVAILABLE",
                              "the database could not be reached or was lost before the answer was complete; ask again",
                              "数据库暂不可用或连接中断，本次请求未完成，请重试")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception):
        log.exception("unexpected error in %s %s", request.method, request.url.path)
        return error_response(request, 500, "INTERNAL_ERROR", "an unexpected error; it has been logged",
                              "服务内部错误，已记录")
