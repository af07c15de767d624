"""Benchmark: how step processes start, spawned or forked from a server that imported the code once.

Every step of a Dagster run gets its own process. Spawned, each one imports Dagster, dbt, MLflow,
scikit-learn and the definitions before its step starts; forked from a forkserver that imported
them once per run (what Shoplake configures), it starts almost at once. This runs the daily refresh
(`dagster job execute -j daily_refresh`, as the schedule would) on two copies of the same small
generated shop, once per start method, and prints side by side: the run's wall time, the time
between Dagster launching each step's process and the step starting, and the steps' own compute.
The last line printed is the JSON file with the figures.

    .venv/bin/python benchmarks/step_startup.py [--customers 1000 --days 180]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
METHODS = ("spawn", "forkserver")


def run_daily_refresh(home: Path, method: str) -> dict:
    import dagster as dg

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHOPLAKE_", "MLFLOW_", "DAGSTER_"))}
    env.update(SHOPLAKE_HOME=str(home), DAGSTER_HOME=str(home / "dagster"), SHOPLAKE_STEP_START=method)
    (home / "dagster").mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT_ROOT / "orchestration" / "dagster.yaml", home / "dagster" / "dagster.yaml")
    started = time.perf_counter()
    subprocess.run(
        [str(BIN / "dagster"), "job", "execute", "-m", "orchestration.definitions", "-j", "daily_refresh"],
        env=env,
        cwd=PROJECT_ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - started

    launched, began, steps = {}, {}, {}
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        run = instance.get_runs(limit=1)[0]
        for record in instance.get_records_for_run(run.run_id, limit=100_000).records:
            entry = record.event_log_entry
            event = entry.dagster_event
            if event is None or entry.step_key is None:
                continue
            kind = event.event_type_value
            if kind == "STEP_WORKER_STARTING":
                launched[entry.step_key] = entry.timestamp
            elif kind == "STEP_START":
                began[entry.step_key] = entry.timestamp
            elif kind in ("STEP_SUCCESS", "STEP_FAILURE"):
                steps[entry.step_key] = entry.timestamp - began[entry.step_key]
    startup = {k: round(began[k] - launched[k], 2) for k in launched if k in began}
    return {
        "method": method,
        "run_status": run.status.value,
        "wall_seconds": round(wall, 1),
        "steps": len(steps),
        "step_startup_seconds": startup,
        "startup_total_seconds": round(sum(startup.values()), 1),
        "step_compute_seconds": round(sum(steps.values()), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="shoplake-startup-"))
    try:
        results = []
        for method in METHODS:
            home = work / method
            env = {**os.environ, "SHOPLAKE_HOME": str(home)}
            subprocess.run(
                [
                    str(BIN / "shoplake"),
                    "generate",
                    "--customers",
                    str(args.customers),
                    "--days",
                    str(args.days),
                    "--seed",
                    "3",
                    "--overwrite",
                    "--quiet",
                ],
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            results.append(run_daily_refresh(home, method))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(
        f"\ndaily_refresh on a generated shop ({args.customers:,} customers x {args.days} days), "
        f"{os.cpu_count()} cores, {dt.date.today()}\n"
    )
    print(
        f"{'step processes':<16}{'status':>10}{'run wall s':>12}{'steps':>7}{'start-up s (sum)':>18}"
        f"{'step compute s':>16}"
    )
    for r in results:
        print(
            f"{r['method']:<16}{r['run_status']:>10}{r['wall_seconds']:>12.1f}{r['steps']:>7}"
            f"{r['startup_total_seconds']:>18.1f}{r['step_compute_seconds']:>16.1f}"
        )
    for r in results:
        print(f"  {r['method']}: " + ", ".join(f"{k} {v:.1f}s" for k, v in r["step_startup_seconds"].items()))
    out = args.output or Path(__file__).with_name("results") / f"step_startup_{dt.date.today()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "date": str(dt.date.today()),
                "cores": os.cpu_count(),
                "customers": args.customers,
                "days": args.days,
                "runs": results,
            },
            indent=2,
        )
    )
    print(out)


if __name__ == "__main__":
    main()
