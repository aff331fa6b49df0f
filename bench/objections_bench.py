"""Benchmark: objections (异议) on the 100,000-entity city, on SQLite and PostgreSQL.

    python bench/objections_bench.py --runs 3

Each run serves a fresh database with ``xyd serve --workers 2`` from a hard-linked copy of the
bench city's home (lake parts are never rewritten in place, so the copy costs no data and the
city stays as it was), then measures:

* **correction → next decision**: a bank decides on an enterprise whose serious penalty knocks it
  out to a referral; the enterprise objects (filed through the API); the clock starts when the
  operator's settlement (corrected: the penalty was minor) is sent, and stops when the bank's next
  decision shows the rebuilt profile (no serious-penalty knock-out). Target ≤ 60 s. One enterprise
  per run, each a different one.
* **listing 10,000 open objections** by department and due day: 10,000 open objections are
  written straight into the table (spread over the lake's departments, filed over the last 20
  days; filing each through the API would first search the lake for its record, which is measured
  on its own below), then wrk lists them (``GET /v1/objections?status=open&department=…``, one
  department per request in turn, 100 per page, and the overdue list) with one client for
  ``--seconds``. Target p99 ≤ 50 ms.
* filing latency (the lake search for the record included) and the bank's change feed.

Set-up (the city of bench/model_bench.py seed 9, the service bench's champion) is made the first
time, as bench/service_bench.py makes it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from model_bench import ensure_city  # noqa: E402
from service_bench import AS_OF, CITY_SEED, HOME, STATE, ensure_champion, fresh_database, serving, wrk  # noqa: E402
from synth_bench import machine  # noqa: E402

OPEN_OBJECTIONS = 10_000
LIST_LUA = """
paths = {%s}
i = 0
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i], {["Authorization"] = "Bearer %s"})
end
"""


def prepare(url: str, home: Path) -> dict:
    """Publish the stored profile, add a bank and an operator, authorise the bank for the
    enterprises a single serious penalty refers, and write 10,000 open objections."""
    from api.access import clients
    from api.db.engine import make_engine, sessions, upgrade, writing
    from api.db.tables import Objection
    from api.precredit import publishing, repository
    from features.lake import Lake
    from features.profile.build import build
    from features.profile.evidence import evidence_for
    from features.profile.store import ProfileStore, registered_names
    from features.registry import feature_names, feature_set_version
    from features.workdays import add_working_days

    store = ProfileStore(home)
    profile = store.read(AS_OF) if store.exists(AS_OF) else build(home, AS_OF).profile
    upgrade(url)
    factory = sessions(make_engine(url))
    lake = Lake(home)
    evidence = evidence_for(lake, AS_OF, profile)
    # enterprises a single serious penalty refers (and nothing else knocks out)
    penalised = [code for code, by_feature in evidence.items()
                 if len(by_feature.get("penalty_serious_36m", [])) == 1 and "dishonest_listed_now" not in by_feature]
    today = dt.date.today()
    with writing(factory) as session:
        publishing.publish_profiles(session, profile, feature_names(), feature_set_version(), AS_OF,
                                    registered_names(home, AS_OF), evidence=evidence, deliveries=lake.deliveries(AS_OF))
        bank, bank_key = clients.add_client(session, "bench bank", "bank")
        operator, operator_key = clients.add_client(session, "bench operator", "operator")
        authorizations = {}
        for code in penalised:
            record = repository.add_authorization(session, code, bank.id, "bench", "all", today,
                                                  today + dt.timedelta(days=30), "bench",
                                                  hashlib.sha256(code.encode()).hexdigest())
            authorizations[code] = record.id
    departments = _departments(lake)
    codes = profile["uscc"].sample(OPEN_OBJECTIONS, random_state=1).tolist()
    rows = []
    for i, code in enumerate(codes):
        filed = today - dt.timedelta(days=i % 20)
        department = departments[i % len(departments)]
        rows.append(Objection(
            id=str(uuid.uuid4()), kind="objection", uscc=code, source=None, record_key=None, key_hash=None,
            feature="tax_sales_12m", features=json.dumps(["tax_sales_12m"]), department=department,
            grounds="bench", attachments="[]", filed_by=operator.id, authorization_id=None,
            filed_at=f"{filed.isoformat()}T02:00:00.000000Z", filed_day=filed, due_day=add_working_days(filed, 5),
            status="open", open_key=f"bench|{code}|{i}"))
    with writing(factory) as session:
        session.add_all(rows)
    return {"bank_key": bank_key, "operator_key": operator_key, "authorizations": authorizations,
            "departments": departments, "evidence": evidence}


def _departments(lake) -> list[str]:
    from features.schemas import SOURCES

    out = []
    for source in SOURCES.values():
        if source.name == "loan_outcomes":
            continue
        if source.reporting_department_column:
            column = lake.read_arrow(source.name, [source.reporting_department_column]).column(0)
            out += sorted(set(column.to_pylist()) - {None})
        else:
            out.append(source.department_zh)
    return sorted(set(out))


def correction_to_decision(base: str, state: dict, code: str) -> dict:
    """Seconds from sending the settlement to the bank's next decision that sees the corrected record."""
    import httpx

    bank = {"Authorization": f"Bearer {state['bank_key']}"}
    operator = {"Authorization": f"Bearer {state['operator_key']}"}
    question = {"uscc": code, "authorization_id": state["authorizations"][code]}
    before = httpx.post(f"{base}/v1/pre-credit", json=question, headers=bank, timeout=60).json()
    assert any(k["code"] == "KO02" for k in before["reasons"]["knockouts"]), before
    number = state["evidence"][code]["penalty_serious_36m"][0]["number"]
    started = time.perf_counter()
    filed = httpx.post(f"{base}/v1/objections", headers=bank, timeout=120, json={
        "uscc": code, "source": "administrative_penalties", "record": {"decision_no": number},
        "grounds": "处罚程度认定有误", "authorization_id": state["authorizations"][code]})
    filing = time.perf_counter() - started
    assert filed.status_code == 201, filed.text
    started = time.perf_counter()
    settled = httpx.post(f"{base}/v1/objections/{filed.json()['id']}/settlement", headers=operator, timeout=300,
                         json={"outcome": "corrected", "note": "经核查为一般失信", "changes": {"severity": "一般"}})
    settlement = time.perf_counter() - started
    assert settled.status_code == 200, settled.text
    while True:
        after = httpx.post(f"{base}/v1/pre-credit", json=question, headers=bank, timeout=60).json()
        if not any(k["code"] == "KO02" for k in after["reasons"]["knockouts"]):
            break
        if time.perf_counter() - started > 600:
            raise RuntimeError(f"{code}: the decision still shows the serious penalty after 600 s")
    seen = time.perf_counter() - started
    feed_started = time.perf_counter()
    feed = httpx.get(f"{base}/v1/changes", headers=bank, timeout=60).json()
    feed_seconds = time.perf_counter() - feed_started
    assert any(item["uscc"] == code for item in feed["items"])
    return {"filing": filing, "settlement": settlement, "to_decision": seen, "feed": feed_seconds,
            "grades": (before["grade"], after["grade"]), "decisions": (before["decision"], after["decision"])}


def run_once(name: str, url: str, env: dict, seconds: int, run: int) -> dict:
    home = Path(tempfile.mkdtemp(prefix="xyd-objections-", dir=STATE)) / "home"
    subprocess.run(["cp", "-al", str(HOME), str(home)], check=True)  # every file is replaced by rename, never rewritten
    state = prepare(url, home)
    try:
        with serving(url, env, home) as (_, base):
            import httpx
            codes = sorted(state["authorizations"])
            corrected = correction_to_decision(base, state, codes[run % len(codes)])
            script = Path(tempfile.mkdtemp()) / "list.lua"
            paths = [f"/v1/objections?status=open&department={httpx.URL('', params={'d': d}).query.decode()[2:]}"
                     "&limit=100" for d in state["departments"]] + ["/v1/objections?overdue=true&limit=100"]
            script.write_text(LIST_LUA % (",".join(f"'{p}'" for p in paths), state["operator_key"]))
            wrk(base, 1, 2, script)  # warm-up
            listing = wrk(base, 1, seconds, script)
            count = httpx.get(base + "/v1/objections?status=open&limit=1",
                              headers={"Authorization": f"Bearer {state['operator_key']}"}).json()["count"]
    finally:
        shutil.rmtree(home.parent, ignore_errors=True)
    print(f"{name:<10} run {run + 1}: correction settled → next decision {corrected['to_decision']:.1f} s "
          f"(settlement call {corrected['settlement']:.1f} s: lake write, --changed rebuild, republish; target ≤ 60 s); "
          f"grade {corrected['grades'][0]}→{corrected['grades'][1]}, {corrected['decisions'][0]}→"
          f"{corrected['decisions'][1]}; filing {corrected['filing'] * 1000:.0f} ms; change feed "
          f"{corrected['feed'] * 1000:.0f} ms")
    print(f"{name:<10} run {run + 1}: listing {count:,} open objections by department and due day, one client: "
          f"{listing['rps']:.0f} lists/s, p50 {listing['p50']:.2f} ms, p99 {listing['p99']:.2f} ms (target ≤ 50 ms), "
          f"errors {listing['errors']}")
    return {**corrected, "list_p50": listing["p50"], "list_p99": listing["p99"], "list_errors": listing["errors"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--runs", type=int, default=3, help="runs per database; medians are reported")
    parser.add_argument("--databases", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"])
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    print(f"machine: {machine()}")
    STATE.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{STATE.resolve()}/mlflow.db", "XYD_HOME": str(HOME)}
    ensure_city(CITY_SEED, env)
    ensure_champion(env)
    for name in args.databases:
        runs = []
        for run in range(args.runs):
            runs.append(_on_fresh_database(name, env, args.seconds, run))
        label = "SQLite" if name == "sqlite" else "PostgreSQL"
        print(f"{label:<10} medians of {len(runs)} runs: correction → next decision "
              f"{statistics.median(r['to_decision'] for r in runs):.1f} s (worst {max(r['to_decision'] for r in runs):.1f} s), "
              f"listing p99 {statistics.median(r['list_p99'] for r in runs):.2f} ms "
              f"(p50 {statistics.median(r['list_p50'] for r in runs):.2f} ms), filing "
              f"{statistics.median(r['filing'] for r in runs) * 1000:.0f} ms")


def _on_fresh_database(name: str, env: dict, seconds: int, run: int) -> dict:
    with fresh_database(name) as (label, url):
        return run_once(label, url, env, seconds, run)


if __name__ == "__main__":
    main()
