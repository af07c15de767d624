"""Phases of one Dagster run, read from its event log (and dbt's run_results.json for the dbt step).

Every figure comes from what the run recorded: a step's window is its STEP_START to its STEP_SUCCESS
(or STEP_FAILURE) event; the dbt step's split comes from the metadata its materializations carry
(``dbt_build_seconds``, ``publish_seconds``, ``publish_phases``); what a step is for comes from the
asset keys it materialized or checked.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

REPORTS = ("prod/compliance_report",)  # written from the check results, with the checks
PLANNED = ("ASSET_MATERIALIZATION_PLANNED", "ASSET_CHECK_EVALUATION_PLANNED")


@dataclass
class Step:
    key: str
    start: float | None = None
    end: float | None = None
    failed: bool = False
    assets: list[str] = field(default_factory=list)  # materialized
    checked: list[str] = field(default_factory=list)  # assets whose checks it evaluated
    metadata: list[dict] = field(default_factory=list)  # per materialization, plain values only

    @property
    def seconds(self) -> float:
        return (self.end - self.start) if self.start is not None and self.end is not None else 0.0

    @property
    def kind(self) -> str:
        """extract | transform | checks | train | gate | score | other, from what the step touched."""
        if any("dbt_build_seconds" in m for m in self.metadata):
            return "transform"
        if any(a.startswith("raw/") for a in self.assets):
            return "extract"
        ml = [a for a in self.assets if a.startswith("ml/")]
        if any(a.endswith("_model") for a in ml):
            return "train"
        if ml or any(a.startswith("ml/") for a in self.checked):
            return "gate"  # promotion, and the challenger-beats-champion checks
        if set(self.checked) - set(self.assets) or (self.assets and set(self.assets) <= set(REPORTS)):
            return "checks"  # checks of other steps' assets, and the ledger's report
        if self.assets:
            return "score" if all(a.startswith("prod/") for a in self.assets) else "other"
        return "other"

    @property
    def family(self) -> str | None:
        """The model family a training step trains (``ml/churn_model`` -> churn)."""
        models = [a for a in self.assets if a.startswith("ml/") and a.endswith("_model")]
        return models[0].removeprefix("ml/").removesuffix("_model") if models else None


@dataclass
class RunLog:
    run_id: str
    job: str
    status: str
    steps: dict[str, Step] = field(default_factory=dict)
    events: int = 0  # every record of the run, log lines included
    planned_events: int = 0  # planned materializations and check evaluations, written before any step
    failed_checks: list[str] = field(default_factory=list)
    first_event_at: float | None = None
    first_step_at: float | None = None
    last_event_at: float | None = None

    def step(self, key: str) -> Step:
        return self.steps.setdefault(key, Step(key))

    def of_kind(self, kind: str) -> list[Step]:
        return [s for s in self.steps.values() if s.kind == kind]

    @property
    def failed_steps(self) -> list[str]:
        return [s.key for s in self.steps.values() if s.failed]


def _plain(metadata: dict) -> dict:
    return {k: v.value for k, v in metadata.items() if isinstance(v.value, int | float | str | bool)}


def read_run(dagster_home: Path, job: str, run_id: str | None = None) -> RunLog:
    """The run's event log (the latest run of ``job`` when no run id is given)."""
    import dagster as dg

    instance = dg.DagsterInstance.from_config(str(dagster_home))
    try:
        run = instance.get_run_by_id(run_id) if run_id else instance.get_runs(dg.RunsFilter(job_name=job), limit=1)[0]
        log, cursor = RunLog(run.run_id, run.job_name, run.status.value), None
        while True:
            page = instance.get_records_for_run(run.run_id, cursor=cursor, limit=1000)
            for record in page.records:
                entry = record.event_log_entry
                log.events += 1
                log.first_event_at = log.first_event_at or entry.timestamp
                log.last_event_at = entry.timestamp
                event = entry.dagster_event
                if event is None:
                    continue
                kind = event.event_type_value
                if kind in PLANNED:
                    log.planned_events += 1
                elif kind == "STEP_START":
                    log.first_step_at = log.first_step_at or entry.timestamp
                    log.step(event.step_key).start = entry.timestamp
                elif kind in ("STEP_SUCCESS", "STEP_FAILURE"):
                    step = log.step(event.step_key)
                    step.end, step.failed = entry.timestamp, kind == "STEP_FAILURE"
                elif kind == "ASSET_MATERIALIZATION":
                    m = event.step_materialization_data.materialization
                    step = log.step(event.step_key)
                    step.assets.append(m.asset_key.to_user_string())
                    step.metadata.append(_plain(m.metadata))
                elif kind == "ASSET_CHECK_EVALUATION":
                    check = event.asset_check_evaluation_data
                    if event.step_key:
                        log.step(event.step_key).checked.append(check.asset_key.to_user_string())
                    if not check.passed:
                        log.failed_checks.append(f"{check.asset_key.to_user_string()}:{check.check_name}")
            cursor = page.cursor
            if not page.has_more:
                break
    finally:
        instance.dispose()
    return log


def union_seconds(spans: list[tuple[float, float]], minus: list[tuple[float, float]] = ()) -> float:
    """Seconds covered by ``spans`` and not by ``minus`` (steps side by side count once)."""

    def merge(items):
        merged: list[list[float]] = []
        for start, end in sorted(items):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        return merged

    covered, cut = merge(spans), merge(minus)
    total = sum(e - s for s, e in covered)
    for s, e in covered:
        for ms, me in cut:
            total -= max(0.0, min(e, me) - max(s, ms))
    return total


def windows(steps: list[Step]) -> list[tuple[float, float]]:
    return [(s.start, s.end) for s in steps if s.start is not None and s.end is not None]


def publish_phases(step: Step) -> dict[str, float]:
    """Summed over the published tables: ``publish_phases`` is 'hash 0.12s, diff 0.40s, ...'."""
    total: dict[str, float] = {}
    for m in step.metadata:
        for part in str(m.get("publish_phases") or "").split(","):
            name, _, seconds = part.strip().rpartition(" ")
            if name and seconds.endswith("s"):
                try:
                    total[name] = round(total.get(name, 0.0) + float(seconds[:-1]), 3)
                except ValueError:
                    continue
    return total


def phases(run: RunLog, wall_seconds: float, started_at: float, dbt_target: Path | None = None) -> dict:
    """Where a run's wall time went, in seconds. Steps of a kind that ran side by side count once."""
    by_kind = {k: union_seconds(windows(run.of_kind(k))) for k in ("extract", "checks", "train", "gate", "score")}
    in_steps = union_seconds(windows(list(run.steps.values())))
    out = {"extract": by_kind["extract"]}
    transform = run.of_kind("transform")
    if transform:
        step = transform[0]
        dbt_build = next(m["dbt_build_seconds"] for m in step.metadata if "dbt_build_seconds" in m)
        publish = sum(float(m.get("publish_seconds") or 0.0) for m in step.metadata)
        layers = dbt_layers(dbt_target) if dbt_target else {}
        if layers:
            out["dbt: curated models"] = layers["curated_seconds"]
            out["dbt: prod models"] = layers["prod_seconds"]
            out["dbt: tests"] = layers["tests_seconds"]
            out["dbt: start, parse, seeds"] = dbt_build - layers["models_and_tests_seconds"]
        else:
            out["dbt build"] = dbt_build
        out["publish to Iceberg"] = publish
        out["dbt step, other"] = step.seconds - dbt_build - publish
    out.update(
        {
            "quality checks": by_kind["checks"],
            "training": by_kind["train"],
            "gate and promotion": by_kind["gate"],
            "scoring": by_kind["score"],
            "outside steps": wall_seconds - in_steps,
        }
    )
    return {k: round(v, 3) for k, v in out.items()}


def dbt_layers(target: Path) -> dict:
    """Elapsed seconds per layer of one dbt build, from run_results.json and the manifest.

    curated: while a curated or quarantine model ran; prod: a prod model and no curated one; tests: a
    test and no model (dbt runs two nodes at a time).
    """
    try:
        manifest = json.loads((target / "manifest.json").read_text())
        results = json.loads((target / "run_results.json").read_text())
    except (OSError, ValueError):
        return {}
    spans: dict[str, list] = {"curated": [], "prod": [], "test": []}
    for r in results["results"]:
        node = manifest["nodes"].get(r["unique_id"], {})
        execute = [t for t in r.get("timing", []) if t["name"] == "execute" and t.get("started_at")]
        if not execute:
            continue
        span = tuple(
            dt.datetime.fromisoformat(execute[0][k].replace("Z", "+00:00")).timestamp()
            for k in ("started_at", "completed_at")
        )
        if node.get("resource_type") == "model":
            spans["curated" if node["schema"] in ("curated", "quarantine") else "prod"].append(span)
        elif node.get("resource_type") in ("test", "unit_test") or r["unique_id"].startswith("unit_test."):
            spans["test"].append(span)
    models = spans["curated"] + spans["prod"]
    return {
        "curated_seconds": round(union_seconds(spans["curated"]), 3),
        "prod_seconds": round(union_seconds(spans["prod"], minus=spans["curated"]), 3),
        "tests_seconds": round(union_seconds(spans["test"], minus=models), 3),
        "models_and_tests_seconds": round(union_seconds(models + spans["test"]), 3),
    }


def find_dbt_target(dbt_targets: Path, step_key: str, run_id: str) -> Path | None:
    """dagster-dbt's target folder of this run's dbt step (under DBT_TARGET_PATH)."""
    found = sorted(dbt_targets.glob(f"{step_key}-{run_id[:7]}-*/run_results.json"), key=lambda p: p.stat().st_mtime)
    return found[-1].parent if found else None
