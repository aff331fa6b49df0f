"""Benchmark: does the front door hold? A legitimate bank's decisions and /healthz while tens of
thousands of slow and idle connections come from other addresses.

    python bench/front_door_bench.py --connections 40000 --seconds 60 --runs 3
    python bench/front_door_bench.py --behind nginx     # the production deployment: deploy/nginx.conf in front

Loopback only, bounded in count and time. The service is ``xyd serve --workers 2`` on the demo
city (``xyd demo --enterprises 12000 --no-serve``, made the first time under
``cities/bench-front-door``). The attack comes from 127.0.0.2 onwards, split over processes (a
process may hold only as many sockets as its descriptor limit): each connection is idle (sends
nothing), slow (a request head a line at a time, one line a second) or short (a body smaller than
its Content-Length), a third each, and is opened again as soon as the server closes it, until the
run's seconds are up. Meanwhile one client from 127.0.0.1 asks the demo's pre-credit question
every 20 ms and /healthz every 100 ms, each on a fresh connection (as a bank's gateway without a
pool would), before, during and after the attack.

Per run it prints: the attack's connections opened and how the server ended them (408, 503, reset),
the legitimate client's decisions and /healthz answers during the attack (failures, p50, p99), the
seconds from the attack's end until a decision is answered as fast as before it, whether any
checkpoint was signed during the attack, and whether the server logged a descriptor shortage
(EMFILE) or any traceback. Never run in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(1, str(Path(__file__).parent.parent))  # tests.api.service_fixtures: nginx as the tests start it
from service_bench import serving  # noqa: E402
from synth_bench import machine  # noqa: E402

STATE = Path("cities/bench-front-door")
KINDS = ("idle", "slow", "short")


def ensure_demo(env: dict) -> dict:
    """The demo city with its champion, bank key and an authorised question (made once)."""
    answer = STATE / "demo.json"
    if answer.exists():
        return json.loads(answer.read_text("utf-8"))
    STATE.mkdir(parents=True, exist_ok=True)
    print("setting up the demo city (once): xyd demo --enterprises 12000 --no-serve", flush=True)
    done = subprocess.run([sys.executable, "-m", "api.cli", "demo", "--enterprises", "12000", "--no-serve", "--json"],
                          env=env, capture_output=True, text=True, check=True)
    answer.write_text(done.stdout[done.stdout.index("{"):], "utf-8")
    return json.loads(answer.read_text("utf-8"))


# ------------------------------------------------------------------ the attack


async def _one(port: int, source: str, kind: str, until: float, tally: dict) -> None:
    """One attacking connection, opened again each time the server ends it, until ``until``."""
    while time.monotonic() < until:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
        except OSError:
            tally["refused_at_connect"] += 1
            await asyncio.sleep(0.5)
            continue
        tally["opened"] += 1
        try:
            if kind == "slow":
                writer.write(b"POST /v1/pre-credit HTTP/1.1\r\nHost: x\r\n")
                n = 0
                while time.monotonic() < until and not reader.at_eof():
                    writer.write(b"X-Slow-%d: a\r\n" % n)
                    n += 1
                    try:
                        head = await asyncio.wait_for(reader.read(64), timeout=1.0)
                    except asyncio.TimeoutError:
                        continue
                    _count(tally, head)
                    break
            else:
                if kind == "short":
                    writer.write(b"POST /v1/pre-credit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: 1000\r\n\r\n{\"uscc\": ")
                remaining = until - time.monotonic()
                try:
                    head = await asyncio.wait_for(reader.read(64), timeout=max(remaining, 0.01))
                    _count(tally, head)
                except asyncio.TimeoutError:
                    tally["still_open_at_end"] += 1
        except (ConnectionResetError, BrokenPipeError):
            tally["reset"] += 1
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass


def _count(tally: dict, head: bytes) -> None:
    status = head.split(b" ", 2)[1].decode() if head.startswith(b"HTTP/1.1 ") else ("closed" if not head else "other")
    tally[f"status_{status}"] = tally.get(f"status_{status}", 0) + 1


def _attacker(args) -> dict:
    port, source, connections, seconds = args
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tally = {"opened": 0, "reset": 0, "refused_at_connect": 0, "still_open_at_end": 0}

    async def run():
        until = time.monotonic() + seconds
        await asyncio.gather(*(_one(port, source, KINDS[i % 3], until, tally) for i in range(connections)))

    asyncio.run(run())
    return tally


# ------------------------------------------------------------------ the legitimate client


def _legitimate(base: str, demo: dict, kind: str, every: float, seconds: float, log: list) -> None:
    """A decision (or /healthz) every ``every`` seconds, each on a fresh connection, for ``seconds``."""
    import httpx

    until = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {demo['bank_key']}"}
    body = {"uscc": demo["uscc"], "authorization_id": demo["authorization_id"]}
    while time.monotonic() < until:
        started = time.monotonic()
        try:
            if kind == "health":
                status = httpx.get(f"{base}/healthz", timeout=5).status_code
            else:
                status = httpx.post(f"{base}/v1/pre-credit", json=body, headers=headers, timeout=5).status_code
        except httpx.HTTPError as error:
            status = type(error).__name__
        log.append((started, kind, status, (time.monotonic() - started) * 1000))
        time.sleep(max(0.0, every - (time.monotonic() - started)))


def _figures(log: list, kind: str, first: float, last: float) -> dict:
    rows = [r for r in log if r[1] == kind and first <= r[0] < last]
    ok = [r[3] for r in rows if r[2] == 200]
    quantiles = statistics.quantiles(ok, n=100) if len(ok) >= 2 else [float("nan")] * 99
    return {"asked": len(rows), "failed": len(rows) - len(ok), "p50_ms": round(quantiles[49], 1),
            "p99_ms": round(quantiles[98], 1)}


def run_once(env: dict, demo: dict, connections: int, seconds: float, addresses: int, nginx: bool = False) -> dict:
    import threading

    home = Path(demo["home"])
    server_log = STATE / "server.stderr"
    checkpoints = home / "audit" / "checkpoints.jsonl"
    trusted = {"XYD_TRUSTED_PROXIES": "127.0.0.1"} if nginx else {}
    with server_log.open("w") as errors, contextlib.ExitStack() as stack, \
            serving(f"sqlite:///{home / 'xyd.db'}", env, home, errors, XYD_CHECKPOINT_EVERY_SECONDS="2",
                    **trusted) as (_, base):
        front = None
        if nginx:  # the production deployment: deploy/nginx.conf in front, every caller through it
            from tests.api.service_fixtures import nginx_in_front

            front = stack.enter_context(nginx_in_front(int(base.rsplit(":", 1)[1])))
            base = f"http://127.0.0.1:{front.port}"
        port = int(base.rsplit(":", 1)[1])
        log: list = []
        calm = 10.0
        clients = [threading.Thread(target=_legitimate, args=(base, demo, kind, every, calm + seconds + 20.0, log))
                   for kind, every in (("decision", 0.02), ("health", 0.1))]
        for client in clients:
            client.start()
        time.sleep(calm)
        signed_before = checkpoints.stat().st_size if checkpoints.exists() else 0
        attack_started = time.monotonic()
        per_process = connections // addresses
        with multiprocessing.get_context("spawn").Pool(addresses) as pool:
            tallies = pool.map(_attacker, [(port, f"127.0.0.{2 + k}", per_process, seconds) for k in range(addresses)])
        attack_ended = time.monotonic()
        signed_during = (checkpoints.stat().st_size if checkpoints.exists() else 0) > signed_before
        for client in clients:
            client.join()
    before = _figures(log, "decision", attack_started - calm, attack_started)
    recovered = next((r[0] - attack_ended for r in log if r[0] >= attack_ended and r[1] == "decision"
                      and r[2] == 200 and r[3] <= max(2 * before["p99_ms"], 50)), float("nan"))
    tally: dict = {}
    for t in tallies:
        for k, v in t.items():
            tally[k] = tally.get(k, 0) + v
    text = server_log.read_text("utf-8", errors="replace")
    nginx_said = {}
    if front is not None:  # what nginx's error log says of the attack, by level
        nginx_said = {level: front.errors.count(f"[{level}]") for level in ("emerg", "alert", "crit", "error")}
        nginx_said["worker_connections_short"] = front.errors.count("worker_connections are not enough")
    return {"behind": "nginx" if nginx else "uvicorn", "nginx_log": nginx_said, "attack": tally, "attack_seconds": round(attack_ended - attack_started, 1),
            "decisions_before": before,
            "decisions_during": _figures(log, "decision", attack_started, attack_ended),
            "health_during": _figures(log, "health", attack_started, attack_ended),
            "recovered_after_s": round(recovered, 2), "checkpoint_signed_during": signed_during,
            "emfile": text.count("Too many open files") + text.count("EMFILE"), "tracebacks": text.count("Traceback")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=40_000, help="attacking connections held at once, in all")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--addresses", type=int, default=4, help="attacking source addresses (one process each)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--behind", choices=("uvicorn", "nginx"), default="uvicorn",
                        help="the service alone, or behind Debian's nginx with deploy/nginx.conf")
    args = parser.parse_args()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if args.connections // args.addresses > hard - 200:
        raise SystemExit(f"{args.connections // args.addresses} connections per attacking process exceed its "
                         f"descriptor limit {hard}: use more --addresses")
    env = {**os.environ, "XYD_HOME": str((STATE / "home").resolve()),
           "MLFLOW_TRACKING_URI": f"sqlite:///{(STATE / 'mlflow.db').resolve()}", "XYD_ACCESS_LOG": ""}
    demo = ensure_demo(env)
    print(machine())
    print(f"{args.connections:,} attacking connections from {args.addresses} addresses for {args.seconds:g} s; "
          f"{args.runs} runs; the service {'behind nginx (deploy/nginx.conf)' if args.behind == 'nginx' else 'alone'}")
    runs = []
    for n in range(args.runs):
        result = run_once(env, demo, args.connections, args.seconds, args.addresses, nginx=args.behind == "nginx")
        runs.append(result)
        print(f"run {n + 1}: {json.dumps(result)}", flush=True)
    during = [r["decisions_during"]["p99_ms"] for r in runs]
    print(f"median over runs: decisions during the attack p99 {statistics.median(during):.1f} ms, "
          f"p50 {statistics.median(r['decisions_during']['p50_ms'] for r in runs):.1f} ms "
          f"(before: p99 {statistics.median(r['decisions_before']['p99_ms'] for r in runs):.1f} ms); "
          f"failed decisions {sum(r['decisions_during']['failed'] for r in runs)}, failed /healthz "
          f"{sum(r['health_during']['failed'] for r in runs)}; recovered after "
          f"{statistics.median(r['recovered_after_s'] for r in runs):.2f} s; EMFILE "
          f"{sum(r['emfile'] for r in runs)}, tracebacks {sum(r['tracebacks'] for r in runs)}")


if __name__ == "__main__":
    main()
