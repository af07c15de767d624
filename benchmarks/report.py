"""Write docs/performance.md from the benchmark results (benchmarks/results/*.json).

Only the latest result of each kind is shown (per scale for the end-to-end pipeline), with its
machine, date and code version, so the page never carries a figure that no result file backs. What
the figures taught (findings that outlive one run) is kept beside them in benchmarks/findings.md and
copied in after the tables.

    .venv/bin/python benchmarks/report.py            # rewrite docs/performance.md
    .venv/bin/python benchmarks/report.py --check    # exit 1 if docs/performance.md is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
FINDINGS = ROOT / "benchmarks" / "findings.md"
PAGE = ROOT / "docs" / "performance.md"


def _ended_at(result: dict) -> float:
    """When a result was produced: the latest `ended_at` anywhere in it (several runs share a date)."""
    latest = 0.0
    stack = [result]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            value = item.get("ended_at")
            if isinstance(value, int | float):
                latest = max(latest, float(value))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return latest


def latest(pattern: str, key=None) -> dict[str, tuple[Path, dict]]:
    """The newest result per group (``key(result)``; one group when None) among files matching pattern."""
    best: dict[str, tuple[Path, dict]] = {}
    for path in sorted(RESULTS.glob(pattern)):
        result = json.loads(path.read_text())
        group = key(result) if key else ""
        rank = (result.get("date", ""), _ended_at(result), path.name)
        if group not in best or rank > best[group][2]:
            best[group] = (path, result, rank)
    return {g: (p, r) for g, (p, r, _) in sorted(best.items())}


def _s(value, unit: str = " s", digits: int = 1) -> str:
    return "" if value is None else f"{value:,.{digits}f}{unit}"


def _machine(result: dict) -> str:
    m = result.get("machine") or {}
    cores = m.get("cores", result.get("cores"))
    memory = f", {m['memory_gb']:.0f} GB" if m.get("memory_gb") else ""
    return f"{cores} cores{memory}" if cores else "not recorded"


def _source(path: Path, result: dict) -> str:
    code = f", code {result['code_version']}" if result.get("code_version") else ""
    return f"`{path.relative_to(ROOT)}` ({result.get('date', '?')}{code}, {_machine(result)})"


def pipeline_section() -> list[str]:
    runs = latest("pipeline_*.json", key=lambda r: r["scale"]["name"])
    if not runs:
        return []
    scales = list(runs)
    lines = ["## End to end (`make bench SCALE=S|M`)", ""]
    lines += [f"- {name}: {_source(path, r)}" for name, (path, r) in runs.items()]
    lines += ["", "| | " + " | ".join(scales) + " |", "|---" * (len(scales) + 1) + "|"]

    def row(label: str, fn) -> None:
        cells = []
        for _, (_, r) in runs.items():
            try:
                cells.append(fn(r))
            except (KeyError, TypeError):
                cells.append("")
        if any(cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")

    row("shop", lambda r: f"{r['scale']['customers']:,} customers x {r['scale']['days']} days")
    row("source rows", lambda r: f"{r['source_rows']:,}")
    row("full run (`shoplake_all`)", lambda r: _s(r["total_seconds"]))
    for stage in (
        "extract",
        "raw commit",
        "curated",
        "prod",
        "publish",
        "quality checks",
        "train",
        "score",
        "orchestration overhead",
    ):
        row(f"  {stage}", lambda r, s=stage: _s(next(x["seconds"] for x in r["full_run"]["stages"] if x["stage"] == s)))
    row(
        "transform vs bare DuckDB",
        lambda r: f"{r['transform_vs_bare_ratio']:.2f}x (bare {r['bare_duckdb_seconds']:.1f} s)",
    )
    row(
        "incremental run, staged (fraction of full)",
        lambda r: f"{_s(r['incremental_seconds'])} ({r['incremental_fraction']:.2f})",
    )
    row(
        "daily refresh as run, one more day",
        lambda r: f"{_s(r['incremental_as_run_seconds'])} ({r['incremental_as_run_fraction']:.2f})",
    )
    row(
        "daily refresh, nothing changed",
        lambda r: f"{_s(r['incremental_floor_seconds'])} ({r['incremental_floor_fraction']:.2f})",
    )
    row("peak RSS, process tree", lambda r: _s(r["peak_tree_rss_mb"], " MB", 0))

    targets = {name: r.get("targets") for name, (_, r) in runs.items() if r.get("targets")}
    if targets:
        lines += ["", "| target | " + " | ".join(targets) + " |", "|---" * (len(targets) + 1) + "|"]
        names = sorted({t for ts in targets.values() for t in ts})
        for t in names:
            cells = []
            for ts in targets.values():
                v = ts.get(t)
                cells.append(
                    ""
                    if not v or not v.get("applies")
                    else f"{v['measured']} (target {v['target']}): {'met' if v['met'] else 'missed'}"
                )
            lines.append(f"| {t.replace('_', ' ')} | " + " | ".join(cells) + " |")
    return lines + [""]


def stack_floor_section() -> list[str]:
    runs = latest("stack_floor_*.json")
    if not runs:
        return []
    path, r = runs[""]
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    lines = [
        "## What a daily refresh costs before any data",
        "",
        f"{_source(path, r)}. "
        f"Shape: {r['job_shape']['ops']} ops, {r['job_shape']['assets']} assets, {r['job_shape']['checks']} checks.",
        "",
        "| run | wall (median) | events |",
        "|---|---|---|",
    ]
    for instance, runs_ in r["noop_runs"].items():
        lines.append(
            f"| no-op job of the same shape, {instance} instance | {_s(med([x['wall_seconds'] for x in runs_]))} "
            f"| {runs_[0]['events']:,} |"
        )
    real = r.get("real_floor") or {}
    floors = real.get("floor_runs") or real.get("runs") or []
    if floors:
        lines.append(
            f"| `daily_refresh`, nothing changed, {real['customers']:,} x {real['days']} shop "
            f"| {_s(med([x['wall_seconds'] for x in floors]))} | {floors[0].get('events', 0):,} |"
        )
    if r.get("budget"):
        lines.append(
            f"| a tenth of the M full run ({r['budget']['full_run_json']}) | "
            f"{_s(r['budget']['ten_percent_seconds'])} | |"
        )
    lines += [
        "",
        "Imports in a fresh interpreter: " + ", ".join(f"{k} {v:.1f} s" for k, v in r["imports_seconds"].items()) + ".",
        "",
    ]
    return lines


def extract_section() -> list[str]:
    runs = latest(
        "extract_mysql_*.json",
        key=lambda r: str(r.get("innodb_buffer_pool_mb", "")) + ("b" if "binlog_decode" in r else ""),
    )
    if not runs:
        return []
    lines = [
        "## Extraction from MariaDB (`benchmarks/extract_mysql.py`)",
        "",
        "| run | rows | client `select *` | full extract | incremental (fraction of full) |",
        "|---|---|---|---|---|",
    ]
    for _, (path, r) in runs.items():
        full = r["full"]
        lines.append(
            f"| {_source(path, r)}, buffer pool {r.get('innodb_buffer_pool_mb', 128)} MB | {r['rows']:,} "
            f"| {_s(r['raw_client']['seconds'], ' s', 2)} | {_s(full['seconds'], ' s', 2)} "
            f"| {_s(r['incremental']['seconds'], ' s', 2)} ({r['incremental_fraction']:.2f}) |"
        )
    return lines + [""]


def tree_shap_section() -> list[str]:
    runs = latest("tree_shap_*.json")
    if not runs:
        return []
    path, r = runs[""]
    lines = [
        "## TreeSHAP per decision pattern (`benchmarks/tree_shap.py`)",
        "",
        _source(path, r),
        "",
        "| model | XGBoost `pred_contribs` | per pattern | largest difference |",
        "|---|---|---|---|",
    ]
    for item in r["results"]:
        lines.append(
            f"| {item['family']} settings: {item['trees']} trees of depth {item['max_depth']}, {item['rows']:,} rows "
            f"| {_s(item['xgboost_pred_contribs_seconds'], ' s', 2)} | {_s(item['per_pattern_seconds'], ' s', 2)} "
            f"| {item['max_abs_difference']:.1e} |"
        )
    return lines + [""]


def step_startup_section() -> list[str]:
    runs = latest("step_startup_*.json")
    if not runs:
        return []
    path, r = runs[""]
    lines = [
        "## Step start-up (`SHOPLAKE_STEP_START`)",
        "",
        f"{_source(path, r)}, a {r['customers']:,} x {r['days']} shop.",
        "",
        "| step processes | run wall | launch to step start, all steps | steps' own compute |",
        "|---|---|---|---|",
    ]
    for run in r["runs"]:
        lines.append(
            f"| {run['method']} | {_s(run['wall_seconds'])} | {_s(run['startup_total_seconds'])} "
            f"| {_s(run['step_compute_seconds'])} |"
        )
    return lines + [""]


def render() -> str:
    lines = [
        "# Performance",
        "",
        "Generated by `benchmarks/report.py` from `benchmarks/results/*.json`: the latest result of each",
        "benchmark (per scale for the end-to-end run). Do not edit by hand; run `make bench` and then",
        "`.venv/bin/python benchmarks/report.py`.",
        "",
    ]
    for section in (pipeline_section, stack_floor_section, extract_section, step_startup_section, tree_shap_section):
        try:
            lines += section()
        except (KeyError, TypeError, IndexError, ValueError) as exc:  # an older result's shape: say so, don't guess
            lines += [f"<!-- {section.__name__}: result shape not understood ({exc!r}) -->", ""]
    if FINDINGS.exists():
        lines += [FINDINGS.read_text().rstrip(), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if docs/performance.md is not up to date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not PAGE.exists() or PAGE.read_text() != text:
            print(f"{PAGE.relative_to(ROOT)} is stale: run .venv/bin/python benchmarks/report.py", file=sys.stderr)
            return 1
        return 0
    PAGE.parent.mkdir(parents=True, exist_ok=True)
    PAGE.write_text(text)
    print(PAGE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
