"""Write docs/performance.md from the benchmark results (benchmarks/results/pipeline_*.json).

Only the latest result of each scale is shown, with its date, code version and machine, and whether
the machine was quiet, so the page never carries a figure that no result file backs. The findings
(benchmarks/findings.md) follow the tables.

    .venv/bin/python -m benchmarks.report            # rewrite docs/performance.md
    .venv/bin/python -m benchmarks.report --check    # exit 1 if docs/performance.md is stale
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
SCALE_ORDER = ("XS", "DEMO", "S", "M", "L")

# Result files of format 1 ran the full pipeline staged in four processes and named its parts
# differently: their stages, under this page's phase names.
FORMAT_1_PHASES = {
    "extract": ("extract", "raw commit"),
    "dbt: curated models": ("curated",),
    "dbt: prod models": ("prod",),
    "publish to Iceberg": ("publish",),
    "quality checks": ("quality checks",),
    "training": ("train",),
    "scoring": ("score",),
}


def latest_per_scale(results: Path = RESULTS) -> dict[str, tuple[Path, dict]]:
    """The newest pipeline result of each scale (by date, then file name). A run on a busy machine
    (other processes took a large share of the CPU) is shown only when the scale has no other: its
    figures measure the neighbours as much as Shoplake."""
    best: dict[str, tuple[tuple, Path, dict]] = {}
    for path in results.glob("pipeline_*.json"):
        result = json.loads(path.read_text())
        scale = result["scale"]["name"]
        busy = (result.get("machine") or {}).get("quiet") is False
        rank = (not busy, result.get("date", ""), result.get("format", 1), path.name)
        if scale not in best or rank > best[scale][0]:
            best[scale] = (rank, path, result)
    order = {name: i for i, name in enumerate(SCALE_ORDER)}
    return {s: (p, r) for s, (_, p, r) in sorted(best.items(), key=lambda kv: order.get(kv[0], len(order)))}


def _s(value, unit: str = " s", digits: int = 1) -> str:
    return "" if value is None else f"{value:,.{digits}f}{unit}"


def phases_of(r: dict) -> dict[str, float]:
    if r.get("format", 1) >= 2:
        return r["full_run"]["phases"]
    stages = {x["stage"]: x["seconds"] for x in r["full_run"]["stages"]}
    return {name: sum(stages.get(s, 0.0) for s in parts) for name, parts in FORMAT_1_PHASES.items()}


def training_of(r: dict) -> dict:
    if r.get("format", 1) >= 2:
        return r["full_run"].get("training") or {}
    steps = r["full_run"]["processes"].get("train", {}).get("steps", {})
    families = {
        k.removeprefix("ml__").removesuffix("_model"): v
        for k, v in steps.items()
        if k.startswith("ml__") and k.endswith("_model")
    }
    return {"families": families, "sum_seconds": round(sum(families.values()), 3)} if families else {}


def _machine(r: dict) -> str:
    m = r.get("machine") or {}
    text = f"{m.get('cores', '?')} cores, {m.get('memory_gb', 0):.0f} GB"
    if "quiet" in m:
        text += (
            ", quiet machine"
            if m["quiet"]
            else f", busy machine (other processes took {m['others_cpu_share']:.0%} of the CPU)"
        )
    elif m.get("load_average_at_start"):
        text += f", load average {m['load_average_at_start'][0]} at start"
    return text


def _source(path: Path, r: dict) -> str:
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    return f"`{shown}` ({r.get('date', '?')}, code {r.get('code_version') or '?'}, {_machine(r)})"


class Table:
    """A markdown table with one column per scale; a row whose cells are all empty is left out."""

    def __init__(self, first: str, runs: dict[str, tuple[Path, dict]]):
        self.runs, self.lines = runs, [f"| {first} | " + " | ".join(runs) + " |", "|---" * (len(runs) + 1) + "|"]

    def row(self, label: str, cell) -> None:
        cells = []
        for _, r in self.runs.values():
            try:
                cells.append(cell(r) or "")
            except (KeyError, TypeError, ValueError, ZeroDivisionError):
                cells.append("")
        if any(cells):
            self.lines.append(f"| {label} | " + " | ".join(cells) + " |")


def pipeline_section(runs: dict[str, tuple[Path, dict]]) -> list[str]:
    lines = [
        "## End to end (`make bench SCALE=...`)",
        "",
        "Each scale's latest run: a generated shop, the full pipeline (job `shoplake_all`) as users run it,",
        "then one more simulated day and the daily refresh (`daily_refresh`), then the daily refresh again with",
        "nothing changed (its floor). Phases come from the run's event log; steps that ran side by side count",
        "once, and what no step covers (start-up, planned events, waiting for a step slot) is `outside steps`.",
        "Two steps run at once, so phases of different kinds overlap and can add up to more than the wall time.",
        "",
    ]
    lines += [f"- {name}: {_source(path, r)}" for name, (path, r) in runs.items()]
    lines.append("")
    t = Table("", runs)
    t.row("shop", lambda r: f"{r['scale']['customers']:,} customers x {r['scale']['days']} days")
    t.row("source rows", lambda r: f"{r['source_rows']:,}")
    t.row(
        "how the full run was measured",
        lambda r: "one `dagster job execute`" if r.get("format", 1) >= 2 else "four staged processes (older method)",
    )
    t.row("full run (`shoplake_all`)", lambda r: _s(r["total_seconds"]))
    t.row("&nbsp;&nbsp;CPU time of its process tree", lambda r: _s(r["full_run"]["process"]["cpu_seconds"]))
    names = list(dict.fromkeys(p for _, r in runs.values() for p in phases_of(r)))
    for name in names:
        t.row(f"&nbsp;&nbsp;{name}", lambda r, n=name: _s(phases_of(r).get(n)))
    t.row(
        "daily refresh, one more day (fraction of full)",
        lambda r: f"{_s(r['incremental_as_run_seconds'])} ({r['incremental_as_run_seconds'] / r['total_seconds']:.2f})",
    )
    t.row(
        "daily refresh, nothing changed (fraction of full)",
        lambda r: f"{_s(r['incremental_floor_seconds'])} ({r['incremental_floor_seconds'] / r['total_seconds']:.2f})",
    )
    t.row("&nbsp;&nbsp;events it stored", lambda r: f"{r['floor_run']['events']:,}")
    t.row("&nbsp;&nbsp;its `dbt build`", lambda r: _s(r["floor_run"]["dbt_build_seconds"]))
    t.row("importing the code location", lambda r: _s(r["import_code_location_seconds"]))
    t.row("peak RSS, process tree", lambda r: _s(r["peak_tree_rss_mb"], " MB", 0))
    return lines + t.lines + [""]


def training_section(runs: dict[str, tuple[Path, dict]]) -> list[str]:
    trained = {name: v for name, v in runs.items() if training_of(v[1])}
    if not trained:
        return []
    lines = [
        "## Training time per model family",
        "",
        "Each family's training step in the full run (`ml/<family>_model`: backtest of every candidate, fit,",
        "registration), from the event log. The families train side by side: `together` is the wall time",
        "their steps covered. The target (issue 19) is at most 60 s in total on the demo shop",
        "(`make bench SCALE=DEMO`) on a quiet 2-core machine.",
        "",
    ]
    t = Table("seconds", trained)
    families = sorted({f for _, r in trained.values() for f in training_of(r)["families"]})
    for family in families:
        t.row(family, lambda r, f=family: _s(training_of(r)["families"].get(f)))
    t.row("sum", lambda r: _s(training_of(r)["sum_seconds"]))
    t.row("together (wall)", lambda r: _s(training_of(r).get("wall_seconds")))
    return lines + t.lines + [""]


def targets_section(runs: dict[str, tuple[Path, dict]]) -> list[str]:
    with_targets = {name: v for name, v in runs.items() if v[1].get("targets")}
    if not with_targets:
        return []
    names = sorted({t for _, r in with_targets.values() for t in r["targets"]})
    lines = ["## Targets", ""]
    t = Table("target", with_targets)

    def cell(r: dict, name: str) -> str:
        v = r["targets"].get(name)
        if not v or not v.get("applies"):
            return ""
        note = f" ({v['note']})" if v.get("note") else ""
        return f"{v['measured']} (target {v['target']}): {'met' if v['met'] else 'missed'}{note}"

    for name in names:
        t.row(name.replace("_", " "), lambda r, n=name: cell(r, n))
    return lines + t.lines + [""]


def render(results: Path = RESULTS, findings: Path = FINDINGS) -> str:
    lines = [
        "# Performance",
        "",
        "Generated by `benchmarks/report.py` from `benchmarks/results/pipeline_*.json`, the latest result of",
        "each scale; do not edit by hand. `make bench SCALE=S` (XS, DEMO, S, M or L) runs the benchmark and",
        "rewrites this page. Result files are named `pipeline_<scale>_<date>_<code>.json`; each records the",
        "machine and how much of its CPU other processes took while it ran (a busy machine is marked below).",
        "",
    ]
    runs = latest_per_scale(results)
    if runs:
        lines += pipeline_section(runs) + training_section(runs) + targets_section(runs)
    if findings.exists():
        lines += [findings.read_text().rstrip(), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if docs/performance.md is not up to date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not PAGE.exists() or PAGE.read_text() != text:
            print(f"{PAGE.relative_to(ROOT)} is stale: run .venv/bin/python -m benchmarks.report", file=sys.stderr)
            return 1
        return 0
    PAGE.parent.mkdir(parents=True, exist_ok=True)
    PAGE.write_text(text)
    print(PAGE.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
