"""A code location with the daily refresh's exact shape and no work: what Dagster alone costs per run.

benchmarks/stack_floor.py writes the shape of Shoplake's ``daily_refresh`` job (its ops, the asset keys
and asset checks each one materializes or evaluates, their dependencies, blocking flags and pools) to
a JSON file and points SHOPLAKE_NOOP_SHAPE at it. This module rebuilds the same graph with ops that
only report: each asset op yields a materialization per asset and a passing result per check, the
check op a passing result per check. The executor is configured as Shoplake's (two steps at a time,
forked from a forkserver), preloading only this module. Nothing here imports Shoplake.

    SHOPLAKE_NOOP_SHAPE=shape.json dagster job execute -f benchmarks/noop_location.py -j daily_refresh
"""

import json
import os
from pathlib import Path

import dagster as dg


def _key(path: list[str]) -> dg.AssetKey:
    return dg.AssetKey(path)


def _check_specs(op: dict) -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec(c["name"], asset=_key(c["asset"]), blocking=c["blocking"]) for c in op["checks"]]


def _topological(specs: list[dg.AssetSpec]) -> list[dg.AssetSpec]:
    """A multi-asset must yield its assets upstream first."""
    ordered, done, pending = [], set(), list(specs)
    own = {s.key for s in specs}
    while pending:
        ready = [s for s in pending if all(d.asset_key in done or d.asset_key not in own for d in s.deps)]
        ordered += ready
        done |= {s.key for s in ready}
        pending = [s for s in pending if s.key not in done]
    return ordered


def _asset_op(op: dict, in_job: set[tuple[str, ...]]):
    specs = _topological(
        [
            dg.AssetSpec(_key(a["key"]), deps=[_key(d) for d in a["deps"] if tuple(d) in in_job], group_name=a["group"])
            for a in op["assets"]
        ]
    )
    checks = _check_specs(op)

    @dg.multi_asset(name=op["name"], specs=specs, check_specs=checks, pool=op["pool"])
    def _op():
        for spec in specs:
            yield dg.MaterializeResult(asset_key=spec.key)
        for check in checks:
            yield dg.AssetCheckResult(asset_key=check.asset_key, check_name=check.name, passed=True)

    return _op


def _check_op(op: dict):
    checks = _check_specs(op)
    materializes = [_key(k) for k in op.get("reports", [])]

    @dg.multi_asset_check(name=op["name"], specs=checks, pool=op["pool"])
    def _op():
        for check in checks:
            yield dg.AssetCheckResult(asset_key=check.asset_key, check_name=check.name, passed=True)
        for key in materializes:  # like the real op, which rebuilds the compliance report after its checks
            yield dg.AssetMaterialization(asset_key=key)

    return _op


def build(shape: dict) -> dg.Definitions:
    in_job = {tuple(a["key"]) for op in shape["ops"] for a in op["assets"]}
    assets = [_asset_op(op, in_job) for op in shape["ops"] if op["assets"]]
    checks = [_check_op(op) for op in shape["ops"] if not op["assets"]]
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=[dg.define_asset_job(shape["job"], selection=dg.AssetSelection.all())],
        executor=dg.multiprocess_executor.configured(
            {
                "max_concurrent": shape["max_concurrent"],
                "start_method": {"forkserver": {"preload_modules": ["benchmarks.noop_location"]}},
            }
        ),
    )


defs = build(json.loads(Path(os.environ["SHOPLAKE_NOOP_SHAPE"]).read_text()))
