"""Benchmark: what a daily refresh costs before it touches any data, on this stack.

The issue's incremental target is a daily refresh within 10% of the full run. This measures, side by
side in one run, the parts of a daily refresh that do not depend on the data:

1. imports, each in a fresh interpreter: Dagster, dagster-dbt, the code location
   (`orchestration.definitions`) and what the step server preloads for the model steps;
2. Dagster alone: a code location with the daily refresh's exact shape (the same 8 ops, 57 assets,
   297 asset checks, dependencies, blocking flags, pools and executor) whose ops only report
   (benchmarks/noop_location.py), run as users run the job (`dagster job execute`), on the default
   SQLite instance and on the PostgreSQL one;
3. the real daily refresh on the demo shop (`make demo`'s 3,000 customers x 540 days, where every
   model family earns a champion) with nothing changed in the source: what the pipeline's own code
   adds (dbt's invocation and its tests, the checks, rescoring) when data costs next to nothing.

It compares them with a tenth of the full run at M from a pipeline benchmark's JSON (--full-run).

    .venv/bin/python benchmarks/stack_floor.py [--customers 3000 --days 540 --seed 5] [--repeats 3]

The last line printed is the JSON file with the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline import (  # noqa: E402  (the pipeline benchmark's helpers)
    BIN,
    INCREMENTAL_JOB,
    PROJECT_ROOT,
    RESULTS_DIR,
    TARGET_INCREMENTAL_FRACTION,
    Bench,
    child_env,
    code_version,
    machine,
)

DEFAULT_FULL_RUN = RESULTS_DIR / "pipeline_M_2026-11-30_night.json"
PG_SERVER = "postgresql+psycopg2://postgres@127.0.0.1:5432"
PG_INSTANCE_YAML = PROJECT_ROOT / "orchestration" / "dagster_postgres.yaml"
SQLITE_INSTANCE_YAML = PROJECT_ROOT / "orchestration" / "dagster.yaml"

IMPORTS = {
    "dagster": "import dagster",
    "dagster_dbt": "import dagster, dagster_dbt",
    "code location": "import orchestration.definitions",
    "step server preload": "import orchestration.definitions, ml_assets.definitions as m, importlib; "
    "[importlib.import_module(x) for x in m.ML_RUNTIME_MODULES]",
}


def job_shape(job_name: str) -> dict:
    """The job's ops as plain data: per op, the assets it materializes (with their upstream keys), the
    checks it evaluates (with blocking flags) and its pool."""
    import dagster as dg
    from dagster._core.definitions.dependency import NodeHandle

    from orchestration.definitions import MAX_CONCURRENT_STEPS, defs

    job = defs.resolve_job_def(job_name)
    layer = job.asset_layer
    graph = defs.resolve_asset_graph()
    ops = []
    for node in job.nodes_in_topological_order:
        handle = NodeHandle(node.name, None)
        assets_def = layer.get_assets_def_for_node(handle)
        selected = layer.get_selected_entity_keys_for_node(handle)
        assets = [
            {
                "key": list(k.path),
                "deps": [list(d.path) for d in assets_def.asset_deps[k]],
                "group": graph.get(k).group_name,
            }
            for k in sorted(k for k in selected if isinstance(k, dg.AssetKey))
        ]
        checks = [
            {"name": k.name, "asset": list(k.asset_key.path), "blocking": assets_def.get_spec_for_check_key(k).blocking}
            for k in sorted((k for k in selected if isinstance(k, dg.AssetCheckKey)), key=str)
        ]
        ops.append(
            {
                "name": node.name,
                "pool": node.definition.pool,
                "assets": assets,
                "checks": checks,
                # the check op also rebuilds the compliance report (an asset materialization)
                "reports": [["prod", "compliance_report"]] if not assets else [],
            }
        )
    return {"job": job_name, "ops": ops, "max_concurrent": MAX_CONCURRENT_STEPS}


def import_seconds(statement: str, env: dict, repeats: int) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    times = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], env=env, cwd=PROJECT_ROOT, check=True, capture_output=True, text=True
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        for _ in range(repeats)
    ]
    return round(statistics.median(times), 2)


def instance_bench(work: Path, instance_yaml: Path, extra_env: dict) -> Bench:
    bench = Bench(work=work, env={**child_env(work), **extra_env}, log=work / "benchmark.log")
    bench.dagster_home.mkdir(parents=True, exist_ok=True)
    (bench.dagster_home / "dagster.yaml").write_text(instance_yaml.read_text())
    return bench


def postgres_admin(statement: str) -> None:
    import psycopg2

    con = psycopg2.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        con.autocommit = True  # CREATE and DROP DATABASE refuse to run in a transaction
        con.cursor().execute(statement)
    finally:
        con.close()


def noop_runs(work: Path, shape_file: Path, instance: str, repeats: int, say) -> list[dict]:
    extra = {"SHOPLAKE_NOOP_SHAPE": str(shape_file)}
    database = None
    if instance == "postgresql":
        database = f"shoplake_floor_{uuid.uuid4().hex[:8]}"
        postgres_admin(f"CREATE DATABASE {database}")
        extra["SHOPLAKE_DAGSTER_PG_URL"] = f"{PG_SERVER}/{database}"
        os.environ["SHOPLAKE_DAGSTER_PG_URL"] = extra["SHOPLAKE_DAGSTER_PG_URL"]  # to read the event log here
    bench = instance_bench(work / f"noop_{instance}", PG_INSTANCE_YAML if database else SQLITE_INSTANCE_YAML, extra)
    try:
        runs = []
        for i in range(repeats):
            r = bench.as_run(INCREMENTAL_JOB, ("-m", "benchmarks.noop_location"))
            say(
                f"  no-op {INCREMENTAL_JOB}, {instance} instance, run {i + 1}: {r['wall_seconds']:.1f}s "
                f"({r['events']} events)"
            )
            runs.append(r)
        return runs
    finally:
        if database:
            postgres_admin(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def real_floor(work: Path, customers: int, days: int, seed: int, repeats: int, say) -> dict:
    bench = instance_bench(work / "shop", SQLITE_INSTANCE_YAML, {})
    bench.command(
        "generate",
        [
            str(BIN / "shoplake"),
            "generate",
            "--customers",
            str(customers),
            "--days",
            str(days),
            "--seed",
            str(seed),
            "--overwrite",
            "--quiet",
        ],
    )
    bench.command("prepare", [str(BIN / "shoplake"), "prepare"])
    full = bench.as_run("shoplake_all")
    say(f"  shoplake_all on {customers:,} customers x {days} days: {full['wall_seconds']:.1f}s")
    runs = []
    for i in range(repeats):
        r = bench.as_run(INCREMENTAL_JOB)
        say(f"  {INCREMENTAL_JOB} with nothing changed, run {i + 1}: {r['wall_seconds']:.1f}s ({r['events']} events)")
        runs.append(r)
    return {"customers": customers, "days": days, "seed": seed, "full_run": full, "floor_runs": runs}


def median_of(runs: list[dict], key: str) -> float:
    return round(statistics.median(r[key] for r in runs), 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    # The demo shop (Makefile DEMO_*): smaller shops leave a model family without a champion, and
    # then its scoring step, part of every real daily refresh, does nothing.
    parser.add_argument(
        "--customers", type=int, default=3000, help="the small shop's customers (default: the demo shop)"
    )
    parser.add_argument("--days", type=int, default=540)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--full-run", type=Path, default=DEFAULT_FULL_RUN, help="a pipeline benchmark JSON at M")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the work folder (instances, the demo lakehouse)")
    args = parser.parse_args()

    def say(text):
        print(text, flush=True)

    reference = json.loads(args.full_run.read_text())
    budget = reference["total_seconds"] * TARGET_INCREMENTAL_FRACTION
    work = Path(tempfile.mkdtemp(prefix="shoplake-floor-"))
    say(f"Shoplake stack floor (work folder {work})")
    env = child_env(work / "imports")
    imports = {name: import_seconds(statement, env, args.repeats) for name, statement in IMPORTS.items()}
    for name, seconds in imports.items():
        say(f"  import {name}: {seconds:.2f}s")
    shape_file = work / "shape.json"
    shape = job_shape(INCREMENTAL_JOB)
    shape_file.write_text(json.dumps(shape))
    try:
        noop = {
            instance: noop_runs(work, shape_file, instance, args.repeats, say) for instance in ("sqlite", "postgresql")
        }
        real = real_floor(work, args.customers, args.days, args.seed, args.repeats, say)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    figures = {
        "date": dt.date.today().isoformat(),
        "machine": machine(),
        "code_version": code_version(),
        "job_shape": {
            "ops": len(shape["ops"]),
            "assets": sum(len(o["assets"]) for o in shape["ops"]),
            "checks": sum(len(o["checks"]) for o in shape["ops"]),
        },
        "imports_seconds": imports,
        "noop_runs": noop,
        "real_floor": real,
        "budget": {
            "full_run_json": args.full_run.name,
            "full_run_seconds": reference["total_seconds"],
            "full_run_code": reference.get("code_version"),
            "ten_percent_seconds": round(budget, 1),
            "bare_duckdb_seconds_then": reference.get("bare_duckdb_seconds"),
        },
    }
    print_report(figures)
    out = args.output or RESULTS_DIR / f"stack_floor_{figures['date']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))
    print(out)
    return 0


def print_report(f: dict) -> None:
    s, mch, b = f["job_shape"], f["machine"], f["budget"]
    print(
        f"\nThe daily refresh before any data: {s['ops']} ops, {s['assets']} assets, {s['checks']} asset checks; "
        f"{mch['cores']} cores, {mch['memory_gb']} GiB, {f['date']}\n"
    )
    print(
        "imports in a fresh interpreter (median): "
        + ", ".join(f"{k} {v:.2f}s" for k, v in f["imports_seconds"].items())
    )
    header = f"{'run (median of runs)':<44}{'wall s':>8}{'events':>8}{'before run':>12}{'planning':>10}{'in steps':>10}"
    print("\n" + header + "\n" + "-" * len(header))
    rows = [(f"no-op job, same shape, {inst} instance", runs) for inst, runs in f["noop_runs"].items()]
    real = f["real_floor"]
    rows.append((f"daily_refresh, nothing changed, {real['customers']:,} x {real['days']}", real["floor_runs"]))
    for label, runs in rows:
        print(
            f"{label:<44}{median_of(runs, 'wall_seconds'):>8.1f}{median_of(runs, 'events'):>8.0f}"
            f"{median_of(runs, 'before_first_event_seconds'):>12.1f}{median_of(runs, 'planning_seconds'):>10.1f}"
            f"{median_of(runs, 'steps_union_seconds'):>10.1f}"
        )
    for label, runs in rows:
        steps = runs[len(runs) // 2]["steps"]
        print(f"  {label}, run {len(runs) // 2 + 1}: " + ", ".join(f"{k} {v:.1f}s" for k, v in steps.items()))
    floor = real["floor_runs"][len(real["floor_runs"]) // 2]
    if floor.get("dbt_build_seconds") is not None:
        print(f"  of its dbt step, the `dbt build` itself: {floor['dbt_build_seconds']:.1f}s")
    print(
        f"\nA tenth of the full run at M ({b['full_run_json']}, code {b['full_run_code']}): "
        f"{b['ten_percent_seconds']:.1f}s"
    )


if __name__ == "__main__":
    raise SystemExit(main())
