"""Benchmark: does ``xyd serve`` start clean in an empty folder, every time? (#29, the first hour)

    python bench/startup_bench.py --starts 10

``xyd serve --workers 2`` and ``--workers 4`` started ``--starts`` times each in a new empty folder
(no MLflow store, no database, the defaults ./mlruns and ./var), as tests/api/test_service_processes.py
starts it (three times in all, for the suite's time): every worker up, no traceback, no "already exists",
the same whole MLflow store each time. Prints the clean starts of each and the seconds a start took
(median, slowest), with the machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(1, str(Path(__file__).parent.parent))  # tests.api.service_fixtures: the start as the test makes it
from synth_bench import machine  # noqa: E402


def main() -> None:
    from tests.api.service_fixtures import start_in_an_empty_folder

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=10)
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    args = parser.parse_args()
    print(machine())
    failed = 0
    for workers in args.workers:
        seconds, stores, problems = [], set(), []
        with tempfile.TemporaryDirectory(prefix="xyd-startup-") as scratch:
            for attempt in range(args.starts):
                started = time.perf_counter()
                try:
                    stores.add(frozenset(start_in_an_empty_folder(Path(scratch) / str(attempt), workers)))
                except AssertionError as error:
                    problems.append(f"start {attempt + 1}: {str(error)[-400:]}")
                seconds.append(time.perf_counter() - started)
        clean = args.starts - len(problems)
        print(f"--workers {workers}: {clean}/{args.starts} clean starts, {len(stores)} distinct store schema(s); "
              f"a start {statistics.median(seconds):.1f} s (median), {max(seconds):.1f} s (slowest)")
        for problem in problems:
            print("   ", problem)
        failed += len(problems) + (len(stores) > 1)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
