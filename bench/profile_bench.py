"""Benchmark: build the enterprise profile of a whole city at one as_of; time and peak memory,
pandas beside Dask, and how time grows from a small city to a big one.

    python bench/profile_bench.py --runs 3

Needs an ingested lake per city size: a city is generated (24 months, 1 % dirt) and ingested
into ``cities/bench-<N>-home`` the first time. Every run is a fresh ``xyd features build`` process
writing a fresh profile; its wall time includes process start, reading the lake and writing the
profile. Peak memory is the largest resident set of the process and its children (for Dask the
largest of the client and the worker processes, not their sum). Also times the training
snapshots (each loan's profile as of its grant date) once per city. Prints the machine and
medians.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from synth_bench import machine  # noqa: E402

AS_OF = "2026-06-30"


def ensure_home(enterprises: int) -> Path:
    """The ingested lake of a city of this size, made the first time."""
    city, home = Path(f"cities/bench-{enterprises // 1000}k"), Path(f"cities/bench-{enterprises // 1000}k-home")
    if not city.exists():
        print(f"generating {city} ({enterprises:,} entities x 24 months)")
        subprocess.run([sys.executable, "-m", "api.cli", "synth", "--enterprises", str(enterprises), "--dirty", "0.01",
                        "--out", str(city)], check=True, stdout=subprocess.DEVNULL)
    if not (home / "lake" / "_manifest.json").exists():
        print(f"ingesting {city} into {home}")
        shutil.rmtree(home, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "api.cli", "ingest", "--drop", str(city)], check=True,
                       env={**os.environ, "XYD_HOME": str(home)}, stdout=subprocess.DEVNULL)
    return home


def timed(args: list[str], home: Path) -> tuple[float, float]:
    """Seconds and peak GiB of one ``xyd`` command in a fresh process."""
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "api.cli", *args], env={**os.environ, "XYD_HOME": str(home)},
                             stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"xyd {' '.join(args)} failed with status {status}")
    return seconds, usage.ru_maxrss / 2**20


def profile_rows(home: Path) -> int:
    import pyarrow.parquet as pq
    return pq.ParquetFile(home / "profiles" / f"as_of={AS_OF}" / "profile.parquet").metadata.num_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dask-workers", type=int, default=2)
    parser.add_argument("--no-dask", action="store_true")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    medians: dict[tuple[int, str], float] = {}
    for size in args.sizes:
        home = ensure_home(size)
        engines = ["pandas"] if args.no_dask else ["pandas", "dask"]
        for engine in engines:
            command = ["features", "build", "--as-of", AS_OF, "--engine", engine, "--workers", str(args.dask_workers)]
            times, peaks = [], []
            for run in range(args.runs):
                seconds, peak = timed(command, home)
                times.append(seconds)
                peaks.append(peak)
                print(f"{size:>9,} entities  {engine:<6} run {run + 1}: {seconds:6.1f} s, peak {peak:.2f} GiB")
            medians[(size, engine)] = statistics.median(times)
            print(f"{size:>9,} entities  {engine:<6} median {medians[(size, engine)]:.1f} s over {args.runs} runs, "
                  f"{profile_rows(home):,} enterprises in the profile, peak (max of runs) {max(peaks):.2f} GiB")
        seconds, peak = timed(["features", "snapshots"], home)
        print(f"{size:>9,} entities  training snapshots (pandas): {seconds:.1f} s, peak {peak:.2f} GiB")
    small, big = min(args.sizes), max(args.sizes)
    if small != big:
        for engine in ("pandas", "dask"):
            if (big, engine) in medians:
                ratio = medians[(big, engine)] / medians[(small, engine)]
                print(f"{engine}: {big:,} / {small:,} entities took {ratio:.1f}x the time for {big / small:.0f}x the "
                      f"entities ({'no worse than linear' if ratio <= big / small else 'WORSE than linear'})")


if __name__ == "__main__":
    main()
