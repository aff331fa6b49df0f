"""Benchmark: the analysts' notebooks 02 (retrain, exploring, with the gate's verdict) and 03
(monitoring) run end to end on a 30,000-entity city, as an analyst's "run all" does.

    python bench/notebook_bench.py --enterprises 30000 --runs 3

The city (36 months) is generated and ingested into ``cities/bench-notebooks-<n>-home`` the first
time, and a champion is trained and promoted into that home's own MLflow store once. Each run then
executes 02 with its defaults (an exploratory training run, the comparison with the champion and
the gate's verdict, nothing registered) and 03 (the monitoring verdict) with papermill, in a fresh
kernel: the wall time includes the kernel's start; the cells' own time is papermill's sum. Medians
over runs; the issue's target is 60 s each on 2 cores.
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

NOTEBOOKS = Path(__file__).parents[1] / "notebooks"


def xyd(*args: str, env: dict) -> None:
    subprocess.run([sys.executable, "-m", "api.cli", *args], check=True, env=env, stdout=subprocess.DEVNULL)


def prepare(enterprises: int, seed: int) -> tuple[Path, str, str]:
    """The city's home, its MLflow store (with a champion) and the city's last day."""
    city = Path(f"cities/bench-notebooks-{enterprises // 1000}k-s{seed}")
    home = Path(f"cities/bench-notebooks-{enterprises // 1000}k-s{seed}-home").resolve()
    store = f"sqlite:///{home}/mlflow/mlflow.db"
    env = {**os.environ, "XYD_HOME": str(home), "MLFLOW_TRACKING_URI": store}
    if not city.exists():
        print(f"generating {city} ({enterprises:,} entities x 36 months)")
        xyd("synth", "--enterprises", str(enterprises), "--months", "36", "--seed", str(seed), "--out", str(city), env=env)
    if not (home / "lake" / "_manifest.json").exists():
        print(f"ingesting into {home}")
        shutil.rmtree(home, ignore_errors=True)
        xyd("ingest", "--drop", str(city), env=env)
    last_day = json.loads((city / "city.json").read_text("utf-8"))["spec"]["end"]
    if not (home / "mlflow" / "mlflow.db").exists():
        print("training and promoting a champion (once)")
        xyd("train", env=env)
        xyd("promote", "--force", "--reason", "notebook benchmark: the champion to compare with", env=env)
    return home, store, last_day


def run_notebook(name: str, folder: Path, **parameters) -> tuple[float, float, list[tuple[float, str]], str]:
    """Wall seconds, the cells' own seconds, the three slowest cells, and the verdict line printed."""
    import nbformat
    import papermill

    out = folder / name
    started = time.perf_counter()
    papermill.execute_notebook(str(NOTEBOOKS / name), str(out), parameters=parameters, kernel_name="python3",
                               progress_bar=False, cwd=str(folder))
    wall = time.perf_counter() - started
    book = nbformat.read(out, as_version=4)
    cells = [(c.metadata.get("papermill", {}).get("duration") or 0.0, c.source.splitlines()[0][:60])
             for c in book.cells if c.cell_type == "code"]
    verdict = ""
    for cell in book.cells:
        for output in cell.get("outputs", []):
            for line in output.get("text", "").splitlines():
                if line.startswith(("GATE VERDICT", "MONITORING VERDICT")):
                    verdict = line
    return wall, sum(d for d, _ in cells), sorted(cells, reverse=True)[:3], verdict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enterprises", type=int, default=30_000)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(machine())
    home, store, last_day = prepare(args.enterprises, args.seed)
    as_of = _month_end(last_day)
    plans = {"02_retrain.ipynb (defaults)": ("02_retrain.ipynb", {}),
             "02_retrain.ipynb (warmup_months 12)": ("02_retrain.ipynb", {"warmup_months": 12}),
             "03_monitoring.ipynb": ("03_monitoring.ipynb", {"as_of": as_of})}
    figures: dict[str, list[tuple[float, float]]] = {label: [] for label in plans}
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="xyd-notebooks-") as folder:
            for label, (name, extra) in plans.items():
                wall, cells, slowest, verdict = run_notebook(name, Path(folder), xyd_home=str(home),
                                                             mlflow_tracking_uri=store, **extra)
                figures[label].append((wall, cells))
                print(f"run {run + 1} {label}: {wall:.1f} s wall, {cells:.1f} s in cells; slowest: "
                      + "; ".join(f"{d:.1f} s {s!r}" for d, s in slowest))
                print(f"    {verdict}")
    print(f"\n{args.enterprises:,}-entity city, profile as of {as_of}, medians of {args.runs} runs (target ≤ 60 s):")
    for name, values in figures.items():
        print(f"  {name}: {statistics.median(w for w, _ in values):.1f} s wall "
              f"({statistics.median(c for _, c in values):.1f} s in cells)")


def _month_end(month: str) -> str:
    """The last day of a YYYY-MM month."""
    import calendar

    year, number = (int(part) for part in month.split("-")[:2])
    return f"{year:04d}-{number:02d}-{calendar.monthrange(year, number)[1]:02d}"


if __name__ == "__main__":
    main()
