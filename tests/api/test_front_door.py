"""The front door holds: no connection is kept open for nothing, and no one address can take every
connection a worker has (api.common.limits). A real uvicorn server with the service's own protocol
and configuration (:func:`api.common.limits.server_config`), in this process, in front of a small
ASGI application: seconds, not the model's minutes; the deadlines are set short for the test."""

from __future__ import annotations

import json
import socket
import time

import pytest

from api.common import limits
from api.settings import settings
from tests.api.service_fixtures import free_port, started_server


async def _echo(scope, receive, send):
    """Answers every request 200 with the length of the body it read."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    answer = json.dumps({"read": len(body), "client": scope["client"][0]}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(answer)).encode())]})
    await send({"type": "http.response.body", "body": answer})


@pytest.fixture
def door(monkeypatch):
    """Start a server with the given settings; yields a function (settings → port)."""
    servers = []

    def start(**environment) -> int:
        for name, value in {"XYD_HEAD_TIMEOUT_SECONDS": "0.6", "XYD_BODY_TIMEOUT_SECONDS": "0.6",
                            "XYD_KEEP_ALIVE_SECONDS": "0.6", "XYD_ACCESS_LOG": "off", **environment}.items():
            monkeypatch.setenv(name, value)
        settings.cache_clear()
        monkeypatch.setattr(limits, "_CEILING", None)
        port = free_port()
        servers.append(started_server(limits.server_config(_echo, "127.0.0.1", port, log_level="error"), 10))
        return port

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)
    settings.cache_clear()


def _connect(port: int) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", port), timeout=5)
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


def _answer(connection: socket.socket) -> tuple[int, dict | None, float]:
    """The status and JSON body of what the server sends before it closes, and when it closed."""
    data = b""
    while True:
        chunk = connection.recv(65536)
        if not chunk:
            break
        data += chunk
    closed = time.monotonic()
    if not data:
        return 0, None, closed
    head, _, body = data.partition(b"\r\n\r\n")
    json_body = body if body.startswith(b"{") else None  # nginx's own refusals are HTML pages
    return int(head.split(b" ", 2)[1]), json.loads(json_body) if json_body else None, closed


def _ask(connection: socket.socket, request: bytes = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") -> int:
    """One request on a kept-alive connection; its status."""
    connection.sendall(request)
    data = connection.recv(65536)
    return int(data.split(b" ", 2)[1])


def test_a_connection_that_never_asks_is_answered_408_and_closed_by_its_head_deadline(door):
    port = door()
    with _connect(port) as idle:
        opened = time.monotonic()
        status, body, closed = _answer(idle)
    assert status == 408 and body["code"] == "REQUEST_TIMEOUT" and "within 0.6 s" in body["message"]
    assert body["message_zh"] == "请求头未在规定时间内送达"
    assert 0.5 <= closed - opened < 3


def test_a_head_sent_a_byte_at_a_time_is_cut_at_its_deadline_however_it_trickles(door):
    """Slowloris: a header line now and then keeps a read-idle timer alive for ever; the head's
    deadline counts from its first byte, whatever arrives after."""
    port = door()
    with _connect(port) as slow:
        started = time.monotonic()
        slow.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        cut = None
        for n in range(40):
            try:
                slow.sendall(b"X-Filler-%d: a\r\n" % n)
            except (BrokenPipeError, ConnectionResetError):
                cut = time.monotonic()
                break
            time.sleep(0.05)
        status, body, closed = _answer(slow)
    assert status == 408 and body["code"] == "REQUEST_TIMEOUT"
    assert (cut or closed) - started < 2.5  # 40 lines at 50 ms would have taken 2 s more than the deadline


def test_a_body_shorter_than_its_content_length_is_answered_408_not_waited_for(door):
    port = door()
    with _connect(port) as short:
        short.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
        sent = time.monotonic()
        status, body, closed = _answer(short)
    assert status == 408 and "Content-Length" in body["message"] and body["message_zh"] == "请求体未在规定时间内送达"
    assert 0.5 <= closed - sent < 3


def test_requests_in_time_are_answered_and_an_idle_kept_alive_connection_then_closes(door):
    port = door()
    with _connect(port) as client:
        assert _ask(client) == 200
        time.sleep(0.3)  # under every deadline: the next request is still welcome
        assert _ask(client, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc") == 200
        waited = time.monotonic()
        status, _, closed = _answer(client)  # idle after its answer: closed, nothing more said
    assert status == 0 and 0.5 <= closed - waited < 3


def test_the_next_request_on_a_kept_alive_connection_has_its_own_head_deadline(door):
    port = door(XYD_KEEP_ALIVE_SECONDS="30")
    with _connect(port) as client:
        assert _ask(client) == 200
        client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # the next head begins, and never ends
        begun = time.monotonic()
        status, body, closed = _answer(client)
    assert status == 408 and body["code"] == "REQUEST_TIMEOUT" and 0.5 <= closed - begun < 3


def test_a_whole_head_over_the_cap_in_one_read_is_refused_431(door):
    port = door(XYD_MAX_HEADER_BYTES="32768")
    with _connect(port) as big:
        big.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Filler: " + b"a" * 33_000 + b"\r\n\r\n")
        status, body, _ = _answer(big)
    assert status == 431 and body["code"] == "HEADERS_TOO_LARGE"
    with _connect(port) as fine:  # just under the cap is a request like any other
        assert _ask(fine, b"GET / HTTP/1.1\r\nHost: x\r\nX-Filler: " + b"a" * 32_000 + b"\r\n\r\n") == 200


def test_one_address_cannot_hold_more_than_its_ceiling_and_a_closed_one_frees_its_place(door):
    port = door(XYD_MAX_CONNECTIONS_PER_ADDRESS="3", XYD_HEAD_TIMEOUT_SECONDS="30")
    held = [_connect(port) for _ in range(3)]
    try:
        for connection in held:  # the three are served
            assert _ask(connection) == 200
        with _connect(port) as fourth:
            status, body, _ = _answer(fourth)
        assert status == 503 and body["code"] == "TOO_MANY_CONNECTIONS" and "127.0.0.1 holds 3" in body["message"]
        held.pop().close()
        time.sleep(0.2)
        with _connect(port) as again:
            assert _ask(again) == 200
    finally:
        for connection in held:
            connection.close()


def test_a_trusted_proxy_is_not_held_to_the_per_address_ceiling_but_the_worker_ceiling_holds(door):
    port = door(XYD_MAX_CONNECTIONS_PER_ADDRESS="2", XYD_MAX_CONNECTIONS="16", XYD_TRUSTED_PROXIES="127.0.0.1",
                XYD_HEAD_TIMEOUT_SECONDS="30")
    held = []
    try:
        for _ in range(16):
            held.append(_connect(port))
            assert _ask(held[-1]) == 200
        with _connect(port) as beyond:
            status, body, _ = _answer(beyond)
        assert status == 503 and "ceiling of 16 open connections" in body["message"]
    finally:
        for connection in held:
            connection.close()


def test_the_connection_ceiling_stays_below_the_descriptors_the_worker_may_open(monkeypatch):
    import resource

    soft, hard = limits.raise_descriptor_limit()
    assert soft == hard or hard == resource.RLIM_INFINITY  # lifted as far as the process may
    monkeypatch.setenv("XYD_MAX_CONNECTIONS", "1000000")
    settings.cache_clear()
    monkeypatch.setattr(limits, "_CEILING", None)
    try:
        ceiling = limits.ConnectionCeiling.for_this_process()
    finally:
        settings.cache_clear()
    assert ceiling.total == max(resource.getrlimit(resource.RLIMIT_NOFILE)[0] - limits.RESERVED_DESCRIPTORS, 16)


def _client_seen(port: int, forwarded: bytes) -> str:
    with _connect(port) as connection:
        connection.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: " + forwarded + b"\r\n\r\n")
        return json.loads(connection.recv(65536).partition(b"\r\n\r\n")[2])["client"]


def test_a_forwarded_address_is_believed_only_from_a_proxy_named_in_the_settings(door):
    """A caller on the same machine cannot make itself someone else (and so escape its failure
    count) by writing X-Forwarded-For: only the proxies named are believed."""
    assert _client_seen(door(), b"203.0.113.9") == "127.0.0.1"
    assert _client_seen(door(XYD_TRUSTED_PROXIES="127.0.0.1"), b"203.0.113.9") == "203.0.113.9"


def test_the_address_kept_is_a_valid_ip_or_nothing():
    assert limits.peer_address(("203.0.113.9", 5)) == "203.0.113.9"
    assert limits.peer_address(("2001:DB8::1", 5)) == "2001:db8::1"
    assert limits.peer_address(("<script>alert(1)</script>", 0)) is None
    assert limits.peer_address(("unknown", 0)) is None and limits.peer_address(None) is None


# --- behind nginx: the production deployment's configuration, as written --------------------------

@pytest.fixture
def behind_nginx(door):
    """The echo service with nginx's address trusted (XYD_TRUSTED_PROXIES=127.0.0.1, as the file
    says) and the production deadlines, and Debian's nginx started with deploy/nginx.conf as written
    but for its two ports. Yields nginx's port."""
    from tests.api.service_fixtures import nginx_in_front

    service = door(XYD_TRUSTED_PROXIES="127.0.0.1", XYD_HEAD_TIMEOUT_SECONDS="10", XYD_BODY_TIMEOUT_SECONDS="30",
                   XYD_KEEP_ALIVE_SECONDS="5")
    with nginx_in_front(service) as front:
        yield front.port
    # a machine whose hard limit on open files is below worker_rlimit_nofile gets an [alert] (nginx
    # goes on with the limit it has): the deployment raises it (systemd: LimitNOFILE=65536)
    assert "[emerg]" not in front.errors and "[crit]" not in front.errors, front.errors


def _through(port: int, request: bytes, source: str = "127.0.0.1") -> tuple[int, dict | None]:
    connection = socket.create_connection(("127.0.0.1", port), timeout=15, source_address=(source, 0))
    with connection:
        connection.sendall(request)
        status, body, _ = _answer(connection)
    return status, body


def test_behind_nginx_the_caller_is_the_address_nginx_saw_never_the_one_it_wrote(behind_nginx):
    """The forwarded address is the connection's own, as nginx replaces X-Forwarded-For: a caller
    writing someone else's address (or a chain of them) is still counted and logged as itself."""
    for forged in (b"", b"X-Forwarded-For: 203.0.113.9\r\n", b"X-Forwarded-For: 203.0.113.9, 127.0.0.1\r\n"):
        status, body = _through(behind_nginx, b"GET / HTTP/1.1\r\nHost: x\r\n" + forged + b"Connection: close\r\n\r\n",
                                source="127.0.0.2")
        assert status == 200 and body["client"] == "127.0.0.2", (forged, body)


def test_behind_nginx_heads_and_bodies_are_held_to_the_services_caps(behind_nginx):
    """32 KiB of head and 1 MiB of body, as the service holds them (XYD_MAX_HEADER_BYTES,
    XYD_MAX_BODY_BYTES): beyond, nginx refuses (400, 413) and the service never reads them."""
    header = b"X-Big: " + b"a" * (33 * 1024) + b"\r\n"
    assert _through(behind_nginx, b"GET / HTTP/1.1\r\nHost: x\r\n" + header + b"\r\n")[0] == 400
    many = b"".join(b"X-Part-%d: " % n + b"a" * 7_000 + b"\r\n" for n in range(5))  # 35 KB in lines under 8 KiB
    assert _through(behind_nginx, b"GET / HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")[0] == 400
    within = b"".join(b"X-Part-%d: " % n + b"a" * 7_000 + b"\r\n" for n in range(3))
    assert _through(behind_nginx, b"GET / HTTP/1.1\r\nHost: x\r\n" + within + b"Connection: close\r\n\r\n")[0] == 200
    body = b"x" * (1024 * 1024 + 1)
    status, _ = _through(behind_nginx, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    assert status == 413
    body = b"x" * 1024 * 1024
    status, read = _through(behind_nginx, b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
                            % len(body) + body)
    assert status == 200 and read["read"] == len(body)


def test_behind_nginx_an_idle_connection_is_closed_by_its_head_deadline(behind_nginx):
    """A connection that never asks is closed within nginx's head deadline (10 s) and never reaches
    the service. (A body shorter than its Content-Length ends after client_body_timeout, 30 s: nginx's
    own rule, not waited for here.)"""
    connection = socket.create_connection(("127.0.0.1", behind_nginx), timeout=20)
    with connection:
        opened = time.monotonic()
        try:
            status, _, closed = _answer(connection)
        except ConnectionResetError:  # reset_timedout_connection: closed with a reset, its memory freed
            status, closed = 0, time.monotonic()
    assert 9 <= closed - opened < 13 and status in (0, 408), (closed - opened, status)
