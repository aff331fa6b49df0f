"""Benchmark: how fast the light commands start, and how fast codes are checked in bulk.

    python bench/cli_bench.py --runs 10

``xyd --help`` and ``xyd uscc check CODE``: wall time and peak resident memory of each run, as a
fresh process (the installed ``xyd`` script, as a shell loop calls it); targets 0.3 s and 80 MB.
``xyd uscc check -`` on 1,000,000 generated codes from standard input to /dev/null: codes per
second, the start-up included; target 200,000/s. Medians of the runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from synth_bench import machine  # noqa: E402

XYD = str(Path(sys.executable).with_name("xyd"))
CODE = "91420502MA4ABCDE1X"


def measure(args: list[str], stdin=None) -> tuple[float, float]:
    """Wall seconds and peak resident MB of one run of ``xyd args``."""
    started = time.perf_counter()
    process = subprocess.Popen([XYD, *args], stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(process.pid, 0)
    return time.perf_counter() - started, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--codes", type=int, default=1_000_000)
    args = parser.parse_args()
    print(machine())
    for label, command in (("xyd --help", ["--help"]), (f"xyd uscc check {CODE}", ["uscc", "check", CODE])):
        runs = [measure(command) for _ in range(args.runs)]
        print(f"{label}: median {statistics.median(s for s, _ in runs):.3f} s, "
              f"{statistics.median(m for _, m in runs):.0f} MB resident (target ≤ 0.3 s, ≤ 80 MB; {args.runs} runs)")
    with tempfile.TemporaryDirectory() as folder:
        codes = Path(folder) / "codes.txt"
        with codes.open("w") as out:
            subprocess.run([XYD, "uscc", "generate", str(args.codes), "--seed", "1"], stdout=out, check=True)
        rates = []
        for _ in range(3):
            with codes.open("rb") as stdin:
                seconds, megabytes = measure(["uscc", "check", "-"], stdin=stdin)
            rates.append(args.codes / seconds)
            print(f"  xyd uscc check - on {args.codes:,} codes: {seconds:.2f} s, {megabytes:.0f} MB")
        print(f"xyd uscc check -: median {statistics.median(rates):,.0f} codes/s (target ≥ 200,000/s; 3 runs)")


if __name__ == "__main__":
    main()
