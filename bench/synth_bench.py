"""Benchmark: generate a synthetic city; time, peak memory and rows per second per source.

    python bench/synth_bench.py --enterprises 100000 --months 24 --runs 3
    python bench/synth_bench.py --enterprises 1000000 --months 24 --runs 1

Each run is a fresh process (``xyd synth`` through the library), so its peak resident memory is
its own. Prints the machine (cores, memory), every run, and the median.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, sys
from pathlib import Path
from features.synth.city import CitySpec, generate_city
spec = CitySpec(enterprises=int(sys.argv[1]), months=int(sys.argv[2]), seed=int(sys.argv[3]), dirty=float(sys.argv[4]))
summary = generate_city(spec, Path(sys.argv[5]))
print(json.dumps(summary.as_json()))
"""


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.machine()}, {os.cpu_count()} cores, {memory:.0f} GiB, Python {platform.python_version()}"


def one_run(enterprises: int, months: int, seed: int, dirty: float, workdir: Path) -> dict:
    out = workdir / f"city-{seed}"
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(enterprises), str(months), str(seed), str(dirty), str(out)],
                             stdout=subprocess.PIPE, text=True)
    stdout = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"generation failed with status {status}")
    summary = json.loads(stdout)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    shutil.rmtree(out)
    return {"seconds": seconds, "peak_gib": usage.ru_maxrss / 2**20, "summary": summary, "bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enterprises", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dirty", type=float, default=0.0)
    parser.add_argument("--workdir", type=Path, default=None, help="where cities are written (default: a temp dir)")
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="xyd-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}")
    print(f"city: {args.enterprises:,} entities x {args.months} months, dirty {args.dirty}, {args.runs} run(s)")
    runs = []
    for run in range(args.runs):
        result = one_run(args.enterprises, args.months, 1 + run, args.dirty, workdir)
        rows = sum(result["summary"]["rows"].values())
        print(f"run {run + 1}: {result['seconds']:.1f} s, peak {result['peak_gib']:.2f} GiB, {rows:,} rows, "
              f"{rows / result['seconds']:,.0f} rows/s, {result['bytes'] / 2**20:,.0f} MiB written")
        runs.append(result)
    median = statistics.median(r["seconds"] for r in runs)
    print(f"median: {median:.1f} s; peak memory (max of runs) {max(r['peak_gib'] for r in runs):.2f} GiB")
    print("rows per second per source (median of runs; formatting + dirt + writing, simulation apart):")
    for name in runs[0]["summary"]["rows"]:
        rates = [r["summary"]["rows"][name] / r["summary"]["seconds"][name] for r in runs if r["summary"]["seconds"][name]]
        print(f"  {name:26s} {runs[0]['summary']['rows'][name]:>12,} rows  {statistics.median(rates):>12,.0f} rows/s")
    simulate = statistics.median(r["summary"]["seconds"]["simulate"] for r in runs)
    print(f"  {'(simulation, all sources)':26s} {simulate:>12.1f} s")
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
