"""Benchmark: the bank-facing service under load, on SQLite and PostgreSQL.

    python bench/service_bench.py --seconds 20 --runs 3

Bounded load runs on loopback only: ``xyd serve --workers 2`` and wrk (Debian's package; the
load generator shares the machine) for ``--seconds`` each, with 1, 8 and 32 connections posting
pre-credit questions that rotate over 1,000 authorised enterprises, and /healthz with 32
connections in the same run for scale. Reports decisions/s, p50 and p99 latency, errors, each
worker's resident memory after the load, whether the audit chain verifies after writers in
several processes (against the checkpoints they signed: checkpoints, receipts and the access log
are on, as in production), and, one at a time, the latency of advice and of the regulator's page. Set-up (the 100,000-entity model city of bench/model_bench.py, a champion in
``cities/bench-service/mlflow.db``) is made the first time.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from model_bench import ensure_city, paths  # noqa: E402
from synth_bench import machine  # noqa: E402

STATE = Path("cities/bench-service")
CITY_SEED = 9
HOME = paths(CITY_SEED)[1]
AS_OF = dt.date(2026, 6, 30)
LUA = """
bodies = {%s}
i = 0
request = function()
  i = i %% #bodies + 1
  return wrk.format("POST", "/v1/pre-credit", {["Content-Type"] = "application/json",
                    ["Authorization"] = "Bearer %s"}, bodies[i])
end
"""


def ensure_champion(env: dict) -> None:
    sys.path.insert(0, str(Path(__file__).parent.parent))
    from models import tracking

    os.environ.update({k: env[k] for k in ("MLFLOW_TRACKING_URI", "XYD_HOME")})
    try:
        tracking.version_for("champion")
        return
    except tracking.ModelNotFound:
        pass
    print("training and promoting a champion for the service (once)")
    # the bench city's profiles are as of a fixed past day (AS_OF): the packaged policy's freshness
    # limit, measured from today, would refuse them, so its champion is trained under a copy
    # with the limit widened (and nothing else changed)
    from models.policy import DEFAULT_POLICY

    policy = STATE / "policy-for-a-past-city.toml"
    text = DEFAULT_POLICY.read_text("utf-8").replace("max_profile_age_days = ", "max_profile_age_days = 36500  # was ")
    # another policy, so another version: decisions name the copy, not the packaged policy
    policy.write_text(re.sub(r'^version = "([^"]+)"', r'version = "\1+past-city"', text, count=1, flags=re.M), "utf-8")
    subprocess.run([sys.executable, "-m", "api.cli", "train", "--policy", str(policy)], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    subprocess.run([sys.executable, "-m", "api.cli", "promote", "--force", "--reason", "service benchmark"],
                   check=False, env=env, stdout=subprocess.DEVNULL)


def prepare(url: str, env: dict) -> tuple[str, list[tuple[str, str]], str]:
    """Publish the profile, add a bank, a regulator and 1,000 authorisations; returns (the bank's
    key, questions, the regulator's key)."""
    from api.access import clients
    from api.db.engine import make_engine, sessions, upgrade, writing
    from api.precredit import publishing, repository
    from features.lake import Lake
    from features.profile.build import build
    from features.profile.evidence import evidence_for
    from features.profile.store import ProfileStore, registered_names
    from features.registry import feature_names, feature_set_version

    store = ProfileStore(HOME)
    profile = store.read(AS_OF) if store.exists(AS_OF) else build(HOME, AS_OF).profile
    upgrade(url)
    factory = sessions(make_engine(url))
    today = dt.date.today()
    questions = []
    evidence = evidence_for(Lake(HOME), AS_OF, profile)
    with writing(factory) as session:
        publishing.publish_profiles(session, profile, feature_names(), feature_set_version(), AS_OF,
                                    registered_names(HOME, AS_OF), evidence=evidence,
                                    deliveries=Lake(HOME).deliveries(AS_OF))
        bank, key = clients.add_client(session, "bench bank", "bank")
        _, regulator = clients.add_client(session, "bench regulator", "regulator")
        for code in profile["uscc"].sample(1000, random_state=0):
            record = repository.add_authorization(session, code, bank.id, "bench", "all", today,
                                                  today + dt.timedelta(days=30), "bench",
                                                  hashlib.sha256(code.encode()).hexdigest())
            questions.append((code, record.id))
    return key, questions, regulator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wrk(base: str, connections: int, seconds: int, script: Path | None, path: str = "/") -> dict:
    command = ["wrk", "-t", str(min(connections, 2)), "-c", str(connections), "-d", f"{seconds}s", "--latency",
               "--timeout", "5s"]
    if script:
        command += ["-s", str(script)]
    output = subprocess.run(command + [base + path], capture_output=True, text=True, check=True).stdout

    def milliseconds(label: str) -> float:
        match = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", output)
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
            "p50": milliseconds("50%"), "p99": milliseconds("99%"),
            "errors": (int(errors.group(1)) if errors else 0) + (sum(map(int, socket_errors.groups())) if socket_errors else 0)}


def worker_memory(server: subprocess.Popen) -> list[float]:
    """Resident MB of each worker process (children of the server's process tree)."""
    out = []
    for pid in subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True).stdout.split():
        children = subprocess.run(["pgrep", "-P", pid], capture_output=True, text=True).stdout.split()
        for child in children or [pid]:
            status = Path(f"/proc/{child}/status")
            if status.exists():
                match = re.search(r"VmRSS:\s+(\d+) kB", status.read_text())
                command = Path(f"/proc/{child}/cmdline").read_bytes()
                if match and b"spawn_main" in command:  # the workers, not multiprocessing's resource tracker
                    out.append(int(match.group(1)) / 1024)
    return out


def run_database(name: str, url: str, env: dict, seconds: int) -> dict:
    key, questions, regulator = prepare(url, env)
    script = Path(tempfile.mkdtemp()) / "pre_credit.lua"
    bodies = ",".join(f"'{{\"uscc\":\"{c}\",\"authorization_id\":\"{a}\"}}'" for c, a in questions)
    script.write_text(LUA % (bodies, key))
    # the service's own state (signing key, checkpoints, access log, model cache) per run: checkpoints
    # belong to one chain, and each run has a fresh database
    served = Path(tempfile.mkdtemp(prefix="xyd-served-", dir=STATE))
    with serving(url, env, served) as (server, base):
        import httpx
        one = httpx.post(base + "/v1/pre-credit", json=dict(zip(("uscc", "authorization_id"), questions[0])),
                         headers={"Authorization": f"Bearer {key}"})
        answer_bytes, receipt_bytes = len(one.content), len(json.dumps(one.json()["receipt"], ensure_ascii=False).encode())
        wrk(base, 2, 3, script)  # warm-up
        results = {c: wrk(base, c, seconds, script) for c in (1, 8, 32)}
        health = wrk(base, 32, seconds, None, "/healthz")
        advice = advice_latency(base, key, questions[:200], regulator)
        memory = worker_memory(server)
    for connections, r in results.items():
        print(f"{name:<10} {connections:>2} client(s): {r['rps']:8.0f} decisions/s  p50 {r['p50']:6.2f} ms  "
              f"p99 {r['p99']:6.2f} ms  errors {r['errors']}")
    print(f"{name:<10} /healthz, 32 clients: {health['rps']:8.0f} requests/s; decisions/s at 32 clients are "
          f"{results[32]['rps'] / health['rps']:.3f} of that (target >= 0.10)")
    print(f"{name:<10} advice, one client, {advice['asked']} decisions: p50 {advice['p50']:.1f} ms, p99 "
          f"{advice['p99']:.1f} ms (target <= 50 ms for one enterprise); {advice['given']} with advice")
    print(f"{name:<10} regulator's page, one client: p50 {advice['page_p50']:.1f} ms, p99 {advice['page_p99']:.1f} ms "
          f"(target <= 200 ms)")
    print(f"{name:<10} worker resident memory after the load: {', '.join(f'{m:.0f} MB' for m in memory)} "
          f"(target <= 400 MB each)")
    from api.db.engine import make_engine, sessions
    from api.trust import audit
    from api.trust.signing import read_checkpoints, read_keyring
    signed = read_checkpoints(served / "audit" / "checkpoints.jsonl", read_keyring(served / "keys" / "public-keys.json"))
    with sessions(make_engine(url))() as session:
        verified = audit.verify(session, checkpoints=signed)
    logged = sum(1 for _ in (served / "logs").glob("access.jsonl*"))
    print(f"{name:<10} audit chain after {verified.rows:,} decisions from 2 worker processes: "
          f"{'verifies' if verified.ok else 'BROKEN at ' + str(verified.first_broken_seq)} against "
          f"{verified.checkpoints:,} signed checkpoints (the newest vouches for {verified.covered:,}); "
          f"an answer is {answer_bytes:,} bytes, its receipt {receipt_bytes:,}; access log in {logged} file(s)")
    shutil.rmtree(served, ignore_errors=True)
    return {"clients": results, "ratio": results[32]["rps"] / health["rps"], "memory": max(memory, default=0.0),
            "verified": verified.ok, "advice_p50": advice["p50"], "page_p50": advice["page_p50"]}


def advice_latency(base: str, key: str, questions: list[tuple[str, str]], regulator: str) -> dict:
    """GET /v1/decisions/{id}/advice (the bank) and /report (the regulator's page), one at a time,
    for fresh decisions of these questions."""
    import httpx

    times, pages, given = [], [], 0
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        for code, authorization in questions:
            decided = client.post("/v1/pre-credit", json={"uscc": code, "authorization_id": authorization})
            if decided.status_code != 200:
                continue
            started = time.perf_counter()
            answer = client.get(f"/v1/decisions/{decided.json()['request_id']}/advice")
            times.append((time.perf_counter() - started) * 1000)
            given += answer.status_code == 200 and answer.json()["advice"] is not None
            started = time.perf_counter()
            page = client.get(f"/v1/decisions/{decided.json()['request_id']}/report",
                              headers={"Authorization": f"Bearer {regulator}"})
            if page.status_code == 200:
                pages.append((time.perf_counter() - started) * 1000)
    times.sort()
    pages.sort()
    return {"asked": len(times), "given": given, "p50": statistics.median(times),
            "p99": times[min(len(times) - 1, int(0.99 * len(times)))], "page_p50": statistics.median(pages),
            "page_p99": pages[min(len(pages) - 1, int(0.99 * len(pages)))]}


def summarise(name: str, runs: list[dict]) -> None:
    """Medians over the runs (the ratio taken within each run), the worst memory, every error."""
    print(f"{name:<10} median of {len(runs)} run(s):")
    for connections in (1, 8, 32):
        figures = [run["clients"][connections] for run in runs]
        print(f"{name:<10} {connections:>2} client(s): {statistics.median(f['rps'] for f in figures):8.0f} decisions/s  "
              f"p50 {statistics.median(f['p50'] for f in figures):6.2f} ms  "
              f"p99 {statistics.median(f['p99'] for f in figures):6.2f} ms  errors {sum(f['errors'] for f in figures)}")
    ratios = [run["ratio"] for run in runs]
    print(f"{name:<10} 32 clients against /healthz: median ratio {statistics.median(ratios):.3f} "
          f"({', '.join(f'{r:.3f}' for r in ratios)}); worker memory at most {max(r['memory'] for r in runs):.0f} MB; "
          f"chain verified in {sum(r['verified'] for r in runs)} of {len(runs)}; advice p50 "
          f"{statistics.median(r['advice_p50'] for r in runs):.1f} ms; page p50 "
          f"{statistics.median(r['page_p50'] for r in runs):.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--databases", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"])
    parser.add_argument("--runs", type=int, default=3, help="runs per database; medians are reported")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    print(f"machine: {machine()}")
    STATE.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{STATE.resolve()}/mlflow.db", "XYD_HOME": str(HOME)}
    ensure_city(CITY_SEED, env)
    ensure_champion(env)
    for name in args.databases:
        runs = [run_once(name, env, args.seconds) for _ in range(args.runs)]
        summarise("SQLite" if name == "sqlite" else "PostgreSQL", runs)


def run_once(name: str, env: dict, seconds: int) -> dict:
    """One run on a fresh database."""
    with fresh_database(name) as (label, url):
        return run_database(label, url, env, seconds)


@contextlib.contextmanager
def fresh_database(name: str):
    """A new, empty database of kind ``name`` (sqlite or postgresql) for one run, dropped after it:
    yields its label and URL."""
    if name == "sqlite":
        path = STATE / f"xyd-{uuid.uuid4().hex[:8]}.db"
        try:
            yield "SQLite", f"sqlite:///{path.resolve()}"
        finally:
            for leftover in STATE.glob(path.name + "*"):
                leftover.unlink()
        return
    from sqlalchemy import create_engine, text
    database = f"xyd_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/test", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{database}"'))
    try:
        yield "PostgreSQL", f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


@contextlib.contextmanager
def serving(url: str, env: dict, home: Path, stderr=subprocess.DEVNULL, **settings: str):
    """``xyd serve --workers 2`` on ``url`` with its state under ``home`` (``settings``: more of its
    environment), once it is ready: yields the server process and its base URL; stopped after."""
    import httpx

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--workers", "2"],
                              env={**env, "XYD_DATABASE_URL": url, "XYD_MODEL_CHECK_SECONDS": "0", "XYD_HOME": str(home),
                                   **settings},
                              stdout=subprocess.DEVNULL, stderr=stderr)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        yield server, base
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
