"""The benchmark harness on small, real inputs: a process tree, step windows, result files.

.venv/bin/pytest -q benchmarks/test_harness.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from benchmarks import report
from benchmarks.harness import results
from benchmarks.harness.processes import run_measured
from benchmarks.harness.runlog import Step, publish_phases, union_seconds


def test_tree_rss_counts_a_grandchild(tmp_path):
    """A child that starts a grandchild holding 200 MB: the tree's peak sees both processes."""
    grandchild = "b = bytearray(200 * 1024 * 1024); import time; time.sleep(1.5)"
    child = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {grandchild!r}], check=True)"
    m = run_measured([sys.executable, "-c", child], {}, tmp_path, tmp_path / "log")
    assert m.returncode == 0
    assert m.peak_tree_rss_mb >= 200
    assert m.peak_rss_mb >= 200  # ru_maxrss of the waited-for grandchild
    assert 1.5 <= m.seconds
    assert len(m.largest_processes) == 2


def test_failing_command_reports_its_exit_code(tmp_path):
    m = run_measured([sys.executable, "-c", "raise SystemExit(3)"], {}, tmp_path, tmp_path / "log")
    assert m.returncode == 3


def test_steps_side_by_side_count_once():
    assert union_seconds([(0, 10), (5, 12), (20, 21)]) == 13
    assert union_seconds([(0, 10)], minus=[(2, 4), (8, 30)]) == 6


def test_step_kinds_from_what_a_step_touched():
    assert Step("a", assets=["raw/orders"], checked=["raw/orders"]).kind == "extract"
    assert Step("b", assets=["curated/orders"], metadata=[{"dbt_build_seconds": 3.0}]).kind == "transform"
    assert Step("c", assets=["prod/compliance_report"], checked=["curated/orders"]).kind == "checks"
    train = Step("d", assets=["ml/churn_model"])
    assert (train.kind, train.family) == ("train", "churn")
    assert Step("e", assets=["ml/churn_promotion"]).kind == "gate"
    assert Step("f", checked=["ml/fraud_model"]).kind == "gate"
    assert Step("g", assets=["prod/churn_scores"]).kind == "score"
    assert Step("h").kind == "other"


def test_publish_phases_add_up_over_tables():
    step = Step("dbt", metadata=[{"publish_phases": "hash 0.10s, write 1.50s"}, {"publish_phases": "write 0.25s"}, {}])
    assert publish_phases(step) == {"hash": 0.1, "write": 1.75}


def test_result_files_are_named_by_scale_date_and_code():
    import datetime as dt

    path = results.result_path("pipeline", "S", dt.date(2026, 12, 7), "9f857ee+")
    assert path.name == "pipeline_S_2026-12-07_9f857ee-dirty.json"


def _result(scale: str, date: str, total: float) -> dict:
    run = {
        "phases": {"extract": 1.0, "training": 2.0},
        "training": {"families": {"churn": 1.5, "fraud": 0.5}, "sum_seconds": 2.0, "wall_seconds": 1.5},
        "events": 900,
        "dbt_build_seconds": 4.0,
    }
    return {
        "format": 2,
        "scale": {"name": scale, "customers": 10, "days": 5},
        "date": date,
        "code_version": "abc1234",
        "machine": {"cores": 2, "memory_gb": 24, "quiet": False, "others_cpu_share": 0.35},
        "source_rows": 1000,
        "total_seconds": total,
        "incremental_as_run_seconds": total / 4,
        "incremental_floor_seconds": total / 5,
        "peak_tree_rss_mb": 100.0,
        "full_run": run,
        "floor_run": run,
        "targets": {},
    }


def test_report_shows_only_the_latest_run_per_scale(tmp_path):
    for name, scale, date, total in (
        ("pipeline_S_2026-12-01_aaa.json", "S", "2026-12-01", 100.0),
        ("pipeline_S_2026-12-07_bbb.json", "S", "2026-12-07", 200.0),
        ("pipeline_M_2026-11-30_ccc.json", "M", "2026-11-30", 400.0),
    ):
        (tmp_path / name).write_text(json.dumps(_result(scale, date, total)))
    page = report.render(tmp_path, Path("/nonexistent"))
    assert "| full run (`shoplake_all`) | 200.0 s | 400.0 s |" in page  # S before M, the latest S
    assert "pipeline_S_2026-12-01_aaa.json" not in page
    assert "busy machine (other processes took 35% of the CPU)" in page
    assert "| churn | 1.5 s | 1.5 s |" in page
    assert "| daily refresh, nothing changed (fraction of full) | 40.0 s (0.20) | 80.0 s (0.20) |" in page
    assert "minutes" not in page.lower().split("## findings")[0]  # no test-suite minutes
