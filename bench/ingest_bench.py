"""Benchmark: ingest a whole synthetic city drop; rows per second and peak memory.

    python bench/ingest_bench.py --city cities/bench-100k --runs 3

Generates the city first if the folder does not exist (100,000 entities x 24 months, 1 % dirt).
Each run ingests into a fresh XYD_HOME in a fresh process (``xyd ingest --drop``); peak memory
is that process's maximum resident set. Prints the machine, every run and the median.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from synth_bench import machine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--city", type=Path, default=Path("cities/bench-100k"))
    parser.add_argument("--enterprises", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    if not args.city.exists():
        print(f"generating {args.city} ({args.enterprises:,} entities x 24 months, dirty 0.01)")
        subprocess.run([sys.executable, "-m", "api.cli", "synth", "--enterprises", str(args.enterprises),
                        "--dirty", "0.01", "--out", str(args.city)], check=True, stdout=subprocess.DEVNULL)
    size = sum(p.stat().st_size for p in args.city.rglob("*") if p.is_file() and "ground_truth" not in p.parts)
    print(f"city: {args.city} ({size / 2**20:,.0f} MiB of department files)")
    rates, peaks = [], []
    for run in range(args.runs):
        home = Path(tempfile.mkdtemp(prefix="xyd-ingest-bench-"))
        started = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-m", "api.cli", "ingest", "--drop", str(args.city)],
                                 env={**os.environ, "XYD_HOME": str(home)}, stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        if status != 0:
            raise SystemExit(f"ingest failed with status {status}")
        report = json.loads(next((home / "reports").glob("ingest-*.json")).read_text("utf-8"))
        rows = report["totals"]["rows_in"]
        rates.append(rows / seconds)
        peaks.append(usage.ru_maxrss / 2**20)
        print(f"run {run + 1}: {rows:,} rows in {seconds:.1f} s = {rows / seconds:,.0f} rows/s "
              f"(process start included), peak {peaks[-1]:.2f} GiB; "
              f"accepted {report['totals']['accepted']:,}, duplicate {report['totals']['duplicate']:,}, "
              f"quarantined {report['totals']['quarantined']:,}")
        shutil.rmtree(home)
    print(f"median: {statistics.median(rates):,.0f} rows/s; peak memory (max of runs) {max(peaks):.2f} GiB")


if __name__ == "__main__":
    main()
