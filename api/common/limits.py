"""Limits a public endpoint needs: failed authentications per source address and per key
prefix, and the size of a request's head.

**Failed authentications.** After ``allowed`` failures within ``window`` seconds from one address,
or against one key prefix (the 12 characters ``xyd clients list`` shows), further failures are
answered 429 with ``Retry-After`` instead of 401, and every one is in the access log. A valid key
is always looked up and always let through: a flood of wrong keys from a bank's own gateway, or
against its prefix, never locks the bank out. The counts are shared by every worker of the service
(:class:`SharedFailedAuthentications`), so a burst spread over them meets one allowance.

**Request heads.** The HTTP parser keeps a request's line and headers in memory until they end;
:class:`BoundedHttpToolsProtocol` answers 431 and closes the connection once a head passes
``XYD_MAX_HEADER_BYTES`` (32 KiB by default), however its bytes arrive (a few at a time, or the
whole head in one read), instead of reading 100 MB of headers; what the parser cannot read gets
400, both in the service's one error shape.

**Connections.** A connection costs a file descriptor and memory whether or not it ever sends a
request, so none may be held open for nothing: a request's line and headers must arrive within
``XYD_HEAD_TIMEOUT_SECONDS`` (a new connection's first request counts from the connection), its
body within ``XYD_BODY_TIMEOUT_SECONDS`` of its headers (a ``Content-Length`` larger than what is
sent ends there), and an idle connection between requests closes after
``XYD_KEEP_ALIVE_SECONDS``; each answered 408 where a request had begun. Each worker keeps at most
``XYD_MAX_CONNECTIONS`` open, and at most ``XYD_MAX_CONNECTIONS_PER_ADDRESS`` from one address (the
proxies named in ``XYD_TRUSTED_PROXIES`` excepted): beyond either a new connection is answered 503
and closed at once, never queued. The ceiling is also held below the descriptors the process may
open (:func:`raise_descriptor_limit` lifts the soft limit to the hard one), less
:data:`RESERVED_DESCRIPTORS`, so that the database, the access log and checkpoint signing always
find one.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import hashlib
import ipaddress
import json
import math
import mmap
import os
import resource
import struct
import threading
import time
import uuid
from pathlib import Path

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


class SharedFailedAuthentications(FailedAuthentications):
    """The same sliding-window counts, shared by every worker of one service through a small file
    (``XYD_HOME/run/auth-failures.bin``, mapped in memory, one lock per failure): a burst of
    failures spread over the workers meets the allowance once in all, not once per worker.
    ``slots`` entries of (digest of the key, its newest ``allowed + 1`` failure times), 8 probes
    each; a key finds its own entry, else one whose failures have all left the window, else the
    least recently failing of the 8 (a spray of made-up prefixes pushes out its own entries)."""

    PROBES = 8
    MAX_ALLOWED = 63
    """Each key keeps its newest ``allowed + 1`` failure times in the file (8 bytes each, 8,192 keys):
    beyond this allowance the file would grow past 4 MiB, and :func:`failure_counts` counts per worker."""

    def __init__(self, path: Path, allowed: int = 20, window_seconds: float = 60.0, slots: int = 8192):
        if allowed > self.MAX_ALLOWED:
            raise ValueError(f"shared failure counts keep at most {self.MAX_ALLOWED + 1} times a key, not {allowed + 1}")
        super().__init__(allowed, window_seconds)
        self.path, self.slots = Path(path), slots
        self._times = struct.Struct(f"<{allowed + 1}d")
        self._slot = 16 + self._times.size
        self._header = struct.Struct("<4sII")
        size = self._header.size + slots * self._slot
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            with _file_lock(descriptor):
                heading = os.pread(descriptor, self._header.size, 0)
                if len(heading) < self._header.size or self._header.unpack(heading) != (b"XYDF", allowed, slots):
                    os.ftruncate(descriptor, 0)  # another allowance or size: counts start again
                    os.ftruncate(descriptor, size)
                    empty = bytes(16) + self._times.pack(*([_NEVER] * (allowed + 1)))
                    os.pwrite(descriptor, self._header.pack(b"XYDF", allowed, slots) + empty * slots, 0)
            self._map = mmap.mmap(descriptor, size)
        finally:
            os.close(descriptor)
        self._descriptor = os.open(self.path, os.O_RDWR)

    def failed(self, *keys: tuple[str, str], now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        wait = 0.0
        with self._mutex, _file_lock(self._descriptor):
            for kind, value in keys:
                offset = self._find(hashlib.blake2b(f"{kind}\0{value}".encode(), digest_size=16).digest(), now)
                # a time after now was written before this machine's clock restarted (a reboot): not a recent failure
                times = [t for t in self._times.unpack_from(self._map, offset + 16) if now - self.window < t <= now]
                times = (times + [now])[-(self.allowed + 1):]
                self._times.pack_into(self._map, offset + 16, *([_NEVER] * (self.allowed + 1 - len(times)) + times))
                if len(times) > self.allowed:
                    wait = max(wait, times[-self.allowed] + self.window - now)
        return math.ceil(wait) if wait > 0 else 0

    def _find(self, digest: bytes, now: float) -> int:
        """The offset of ``digest``'s entry, claimed (and cleared) for it when it has none."""
        start = int.from_bytes(digest[:8], "little") % self.slots
        offsets = [self._header.size + ((start + i) % self.slots) * self._slot for i in range(self.PROBES)]
        newest = {o: max(self._times.unpack_from(self._map, o + 16)) for o in offsets}
        for offset in offsets:
            if self._map[offset:offset + 16] == digest:
                return offset
        free = [o for o in offsets if not now - self.window < newest[o] <= now]
        offset = free[0] if free else min(offsets, key=newest.__getitem__)
        self._map[offset:offset + 16] = digest
        self._times.pack_into(self._map, offset + 16, *([_NEVER] * (self.allowed + 1)))
        return offset


def failure_counts(home: Path, allowed: int, window_seconds: float) -> FailedAuthentications:
    """The service's failed-authentication counts: shared by its workers (a file under
    ``home/run``), or, for an allowance too large to keep every time of (a setting that all but
    turns the limit off), counted per worker."""
    if allowed > SharedFailedAuthentications.MAX_ALLOWED:
        return FailedAuthentications(allowed, window_seconds)
    return SharedFailedAuthentications(Path(home) / "run" / "auth-failures.bin", allowed, window_seconds)


_NEVER = -math.inf
"""An empty place for a failure's time: never inside any window."""


@contextlib.contextmanager
def _file_lock(descriptor: int):
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(descriptor, fcntl.LOCK_UN)


RESERVED_DESCRIPTORS = 256
"""Descriptors a worker keeps beyond its connection ceiling: the database's pool, the access log and
its rotation, checkpoint signing, the model's files, and the connections asyncio accepts in one
batch before the ceiling closes them (up to 100)."""


def raise_descriptor_limit() -> tuple[int, int]:
    """Lift this process's soft limit on open files to its hard limit (a worker inherits it); the
    (soft, hard) limits after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError):  # a container may refuse: the ceiling below follows what is
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)


class ConnectionCeiling:
    """Open connections of one worker, in all and per address: :meth:`admit` says why a new one is
    refused (None when it is admitted and counted), :meth:`release` uncounts it."""

    def __init__(self, total: int, per_address: int, exempt=()):
        self.total, self.per_address, self.exempt = total, per_address, frozenset(exempt)
        self.open = 0
        self.by_address: collections.Counter[str] = collections.Counter()

    @classmethod
    def for_this_process(cls) -> ConnectionCeiling:
        """The worker's ceiling, made on its first connection from the settings and the descriptors
        it may open (raised first)."""
        global _CEILING
        if _CEILING is None:
            from api.settings import settings

            config = settings()
            soft, _ = raise_descriptor_limit()
            room = config.max_connections if soft == resource.RLIM_INFINITY else \
                min(config.max_connections, max(soft - RESERVED_DESCRIPTORS, 16))
            _CEILING = cls(room, config.max_connections_per_address, config.trusted_proxies)
        return _CEILING

    def admit(self, address: str) -> str | None:
        if self.open >= self.total:
            return f"the worker holds its ceiling of {self.total} open connections"
        if address not in self.exempt and self.by_address[address] >= self.per_address:
            return f"{address} holds {self.per_address} open connections to this worker, its ceiling"
        self.open += 1
        self.by_address[address] += 1
        return None

    def release(self, address: str) -> None:
        self.open -= 1
        self.by_address[address] -= 1
        if self.by_address[address] <= 0:
            del self.by_address[address]


_CEILING: ConnectionCeiling | None = None


def refusal(status: int, code: str, message: str, message_zh: str, request_id: str) -> bytes:
    """A whole HTTP/1.1 response in the service's one error shape, for answers given before the
    application sees the request; the connection is closed after it."""
    body = json.dumps({"code": code, "message": message, "message_zh": message_zh, "request_id": request_id},
                      ensure_ascii=False).encode("utf-8")
    reason = {400: b"Bad Request", 408: b"Request Timeout", 431: b"Request Header Fields Too Large",
              503: b"Service Unavailable"}.get(status, b"Error")
    lines = [b"HTTP/1.1 %d %s" % (status, reason), b"content-type: application/json",
             b"content-length: %d" % len(body), b"connection: close", b"x-request-id: " + request_id.encode()]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, bounded: a cap on the bytes of a request's line and headers
    (``XYD_MAX_HEADER_BYTES``: past it, 431), deadlines for a request's head and body (408), and
    the worker's connection ceiling (503 at once); each answer closes the connection."""

    def __init__(self, *args, **kwargs):
        from api.settings import settings

        super().__init__(*args, **kwargs)
        config = settings()
        self.max_head_bytes = config.max_header_bytes
        self.head_seconds, self.body_seconds = config.head_timeout_seconds, config.body_timeout_seconds
        self._head_bytes = 0  # as read, while a head is arriving
        self._head_size = 0  # as parsed: the request line and every header
        self._in_head = True
        self._refused = False
        self._deadline = None
        self._counted_as: str | None = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        address = self.client[0] if self.client else ""
        why = ConnectionCeiling.for_this_process().admit(address)
        if why is not None:
            self._refuse(503, "TOO_MANY_CONNECTIONS", f"too many open connections: {why}; try again shortly",
                         "连接过多，请稍后重试")
            return
        self._counted_as = address
        self._arm(self.head_seconds, self._head_too_slow)  # a connection that never asks is not kept

    def connection_lost(self, exc) -> None:
        self._disarm()
        if self._counted_as is not None:
            ConnectionCeiling.for_this_process().release(self._counted_as)
            self._counted_as = None
        super().connection_lost(exc)

    def _arm(self, seconds: float, handler) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, handler)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self._refuse(408, "REQUEST_TIMEOUT", f"the request line and headers did not arrive within "
                         f"{self.head_seconds:g} s", "请求头未在规定时间内送达")

    def _body_too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and self.cycle.response_started:
            self.transport.close()
            return
        self._refuse(408, "REQUEST_TIMEOUT", f"the request body did not arrive within {self.body_seconds:g} s of its "
                     "headers (is Content-Length larger than the body sent?)", "请求体未在规定时间内送达")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:  # the next request on a kept-alive connection: its head's deadline
            self._arm(self.head_seconds, self._head_too_slow)

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4  # ": " and the line's end
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        if self._head_size > self.max_head_bytes:  # a whole head can arrive in one read
            self._refuse_head()
            return
        self._arm(self.body_seconds, self._body_too_slow)
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        self._disarm()
        super().on_message_complete()
        self._in_head, self._head_bytes, self._head_size = True, 0, 0

    def data_received(self, data: bytes) -> None:
        if self._refused:  # answered and closing: what else arrives is not read
            return
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
        self._refused = True
        self._disarm()
        request_id = str(uuid.uuid4())
        self.transport.write(refusal(status, code, message, message_zh, request_id))
        self.transport.close()
        access_log = (self.app_state or {}).get("xyd_access_log")
        if access_log is not None:
            address = self.client[0] if self.client else None
            access_log.write(request_id=request_id, route="unmatched", status=status, code=code, latency_ms=0.0,
                             address=address)


def server_config(app, host: str, port: int, workers: int = 1, **options):
    """uvicorn's configuration with the service's bounds: this protocol, the keep-alive timeout, a
    listen backlog that absorbs a burst; ``app`` as uvicorn takes it (an import string or an ASGI
    application); ``options`` pass through (``factory``, ``log_level``...)."""
    import uvicorn

    from api.settings import settings

    trusted = settings().trusted_proxies
    # X-Forwarded-For is read only from the proxies named (uvicorn would otherwise trust 127.0.0.1, or
    # whatever FORWARDED_ALLOW_IPS says, and a local caller could forge its address)
    return uvicorn.Config(app, host=host, port=port, workers=workers, http=BoundedHttpToolsProtocol,
                          timeout_keep_alive=settings().keep_alive_seconds, backlog=4096,
                          proxy_headers=bool(trusted), forwarded_allow_ips=",".join(trusted) or "", **options)


def peer_address(client) -> str | None:
    """The caller's address as the access log and the failure counts keep it: a valid IP address
    (normalised), or None for anything else a forwarded header may have carried."""
    if not client or not client[0]:
        return None
    try:
        return str(ipaddress.ip_address(str(client[0]).strip("[]")))
    except ValueError:
        return None
