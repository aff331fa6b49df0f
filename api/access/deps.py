"""Dependencies, as ``Annotated`` aliases: a route reads ``session: SessionDep``."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.access import clients
from api.common.errors import ApiError
from api.common.limits import peer_address
from api.model_holder import ModelHolder

CLIENT_CACHE_SECONDS = 5.0
CLIENT_CACHE_SIZE = 10_000


def get_session(request: Request):
    with request.app.state.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


class Caller:
    """The authenticated client (a plain copy: no database object outlives its session)."""

    def __init__(self, id: int, name: str, role: str):
        self.id, self.name, self.role = id, name, role


bearer = HTTPBearer(auto_error=False, scheme_name="apiKey",
                    description="The API key `xyd clients add` printed once, sent as `Authorization: Bearer <key>`.")
"""Declares the scheme in the OpenAPI document (the docs page's Authorize button) and reads the header."""


def _failed(request: Request, status: int, code: str, message: str, message_zh: str, *counted) -> ApiError:
    """The error for a failed authentication, counted against the caller's address and ``counted``
    (a key prefix): 429 with Retry-After once they are over their allowance."""
    address = peer_address(request.client) or "unknown"
    wait = request.app.state.failed_authentications.failed(("address", address), *counted)
    if wait:
        return ApiError(429, "TOO_MANY_FAILED_AUTHENTICATIONS",
                        f"too many failed authentications from this address or against this key prefix; "
                        f"try again in {wait} s", f"认证失败次数过多，请 {wait} 秒后重试", {"Retry-After": str(wait)})
    return ApiError(status, code, message, message_zh)


async def get_caller(request: Request,
                     credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Caller:
    """The client the key names; a coroutine, so that a cached key costs no trip to a thread.
    Only ``Authorization: Bearer`` is read. A valid key is always let through, however many
    failures its address or prefix has had (:mod:`api.common.limits`)."""
    key = credentials.credentials.strip() if credentials is not None else ""
    if not key:
        also = "; the X-API-Key header is not read" if "x-api-key" in request.headers else ""
        raise _failed(request, 401, "AUTH_MISSING", f"send your API key as 'Authorization: Bearer <key>'{also}",
                      "请在请求头 Authorization: Bearer <key> 中提供API密钥")
    cache: dict = request.app.state.client_cache
    hashed = clients.key_hash(key)
    cached = cache.get(hashed)
    now = time.monotonic()
    if cached is None or cached[1] < now:
        found = await run_in_threadpool(_look_up, request.app.state.sessions, key)
        cached = (found, now + CLIENT_CACHE_SECONDS)
        if found is not None:  # only real clients are cached (by hash), so random keys cannot grow it
            if len(cache) >= CLIENT_CACHE_SIZE:
                cache.clear()
            cache[hashed] = cached
    found = cached[0]
    if found is None:
        raise _failed(request, 401, "AUTH_INVALID", "unknown API key", "API密钥无效", ("prefix", key[:12]))
    caller, disabled = found
    request.state.client_id = caller.id  # for the access log
    if disabled:
        raise ApiError(403, "CLIENT_DISABLED", "this client is disabled", "该客户端已被停用")
    return caller


def _look_up(sessions, key: str) -> tuple[Caller, bool] | None:
    with sessions() as session:
        client = clients.client_by_key(session, key)
        return None if client is None else (Caller(client.id, client.name, client.role), client.disabled)


CallerDep = Annotated[Caller, Depends(get_caller)]


def role(*allowed: str):
    """A dependency that lets only ``allowed`` roles through."""

    async def check(caller: CallerDep) -> Caller:
        if caller.role not in allowed:
            raise ApiError(403, "ROLE_FORBIDDEN", f"a {caller.role} may not do this; it is for: {', '.join(allowed)}",
                           f"当前角色（{caller.role}）无权执行此操作")
        return caller

    return check


BankDep = Annotated[Caller, Depends(role("bank"))]
RegulatorDep = Annotated[Caller, Depends(role("regulator"))]
OperatorDep = Annotated[Caller, Depends(role("operator"))]
BankOrRegulatorDep = Annotated[Caller, Depends(role("bank", "regulator"))]


async def get_holder(request: Request) -> ModelHolder:
    return request.app.state.holder


HolderDep = Annotated[ModelHolder, Depends(get_holder)]
