"""Limits a public endpoint needs: failed authentications per source address and per key
prefix, and the size of a request's head.

**Failed authentications.** After ``allowed`` failures within ``window`` seconds from one address,
or against one key prefix (the 12 characters ``xyd clients list`` shows), further failures are
answered 429 with ``Retry-After`` instead of 401, and every one is in the access log. A valid key
is always looked up and always let through: a flood of wrong keys from a bank's own gateway, or
against its prefix, never locks the bank out. The counts are per worker process (with two workers
a burst sees up to twice ``allowed`` 401s before the 429s).

**Request heads.** The HTTP parser keeps a request's line and headers in memory until they end;
:class:`BoundedHttpToolsProtocol` answers 431 and closes the connection once a head passes
``XYD_MAX_HEADER_BYTES`` (32 KiB by default), instead of reading 100 MB of headers; what the
parser cannot read gets 400, both in the service's one error shape.
"""

from __future__ import annotations

import collections
import json
import math
import threading
import time
import uuid

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class FailedAuthentications:
    """Sliding-window counts of failed authentications, by (kind, value) key."""

    def __init__(self, allowed: int = 20, window_seconds: float = 60.0, max_tracked: int = 100_000):
        self.allowed, self.window, self.max_tracked = allowed, window_seconds, max_tracked
        # least recently failing first: a spray of made-up prefixes pushes out its own entries, not
        # the address that keeps failing
        self._failures: collections.OrderedDict[tuple[str, str], collections.deque] = collections.OrderedDict()
        self._mutex = threading.Lock()

    def failed(self, *keys: tuple[str, str], now: float | None = None) -> int:
        """Count one failure against each key; returns the seconds to wait before one more failure
        is within the allowance again (0 while this one is)."""
        now = time.monotonic() if now is None else now
        wait = 0.0
        with self._mutex:
            for key in keys:
                times = self._failures.pop(key, None) or collections.deque(maxlen=self.allowed + 1)
                self._failures[key] = times
                while times and times[0] <= now - self.window:
                    times.popleft()
                times.append(now)
                if len(times) > self.allowed:
                    # the next failure is allowed once all but allowed - 1 of these have left the window
                    wait = max(wait, times[-self.allowed] + self.window - now)
            while len(self._failures) > self.max_tracked:
                self._failures.popitem(last=False)
        return math.ceil(wait) if wait > 0 else 0


def refusal(status: int, code: str, message: str, message_zh: str, request_id: str) -> bytes:
    """A whole HTTP/1.1 response in the service's one error shape, for answers given before the
    application sees the request; the connection is closed after it."""
    body = json.dumps({"code": code, "message": message, "message_zh": message_zh, "request_id": request_id},
                      ensure_ascii=False).encode("utf-8")
    reason = {400: b"Bad Request", 431: b"Request Header Fields Too Large"}.get(status, b"Error")
    lines = [b"HTTP/1.1 %d %s" % (status, reason), b"content-type: application/json",
             b"content-length: %d" % len(body), b"connection: close", b"x-request-id: " + request_id.encode()]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a cap on the bytes of a request's line and headers
    (``XYD_MAX_HEADER_BYTES``): past it, 431 and the connection closed."""

    def __init__(self, *args, **kwargs):
        from api.settings import settings

        super().__init__(*args, **kwargs)
        self.max_head_bytes = settings().max_header_bytes
        self._head_bytes = 0
        self._in_head = True

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head, self._head_bytes = True, 0

    def data_received(self, data: bytes) -> None:
        if not self._in_head:
            super().data_received(data)
            return
        # counted, then parsed: one read may hold a small head and the start of a large body.
        # A read is at most 256 KiB, so a head is refused before it holds much more than the cap.
        self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > self.max_head_bytes and not self.transport.is_closing():
            self._refuse_head()

    def _refuse_head(self) -> None:
        self._refuse(431, "HEADERS_TOO_LARGE", f"the request line and headers are over {self.max_head_bytes} bytes",
                     "请求头过大")

    def send_400_response(self, msg: str) -> None:
        """What the parser cannot read (a malformed request line, header or chunk) gets the
        service's one error shape too, and its line in the access log."""
        self._refuse(400, "BAD_REQUEST", f"not a valid HTTP/1.1 request ({msg.rstrip('.')})", "HTTP请求格式无效")

    def _refuse(self, status: int, code: str, message: str, message_zh: str) -> None:
        request_id = str(uuid.uuid4())
        self.transport.write(refusal(status, code, message, message_zh, request_id))
        self.transport.close()
        access_log = (self.app_state or {}).get("xyd_access_log")
        if access_log is not None:
            address = self.client[0] if self.client else None
            access_log.write(request_id=request_id, route="unmatched", status=status, code=code, latency_ms=0.0,
                             address=address)
