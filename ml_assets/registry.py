"""The registry gate every model family goes through, in one place.

A training asset registers its candidate as a new version with the alias ``challenger`` and stores,
on that version, how the challenger, the family's baselines and the current ``champion`` scored on
the same time-based holdout. Then:

1. the blocking asset check ``<family>_challenger_beats_champion`` decides: the challenger must beat
   every baseline and the current champion by the family's margin (``Family.margin``, in the units
   of its gate metric). A challenger that loses while a champion exists is a normal outcome of a
   retrain: the check fails with WARN severity (shown in the UI), nothing is promoted and the old
   champion keeps serving, so the weekly retrain stays green. When there is no champion at all, a
   losing challenger fails with ERROR severity and Dagster stops everything downstream in the run
   (there is no model good enough to score with);
2. the asset ``ml/<family>_promotion`` moves the ``champion`` alias to the challenger, only if it
   passed the gate. The previous champion stays registered (and is named on the new version) for
   rollback;
3. scoring assets always load ``models:/<name>@champion``.
"""


import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import dagster as dg

from ml_assets import reporting, tracking
from orchestration.resources import LakehouseResource
from orchestration.schedules import PROD_FRESHNESS, TRAINING, table_pool

if TYPE_CHECKING:  # MLflow itself is imported where a model is registered or loaded
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

GATE_TAG = "shoplake.gate"
PREVIOUS_CHAMPION_TAG = "shoplake.previous_champion"


@dataclass(frozen=True)
class Family:
    """A model family: its registered model, the metric its gate compares, and by how much it must win."""

    name: str
    model_name: str
    metric: str
    higher_is_better: bool
    margin: float

    @property
    def experiment(self) -> str:
        return self.name

    @property
    def model_key(self) -> dg.AssetKey:
        return dg.AssetKey(["ml", f"{self.name}_model"])

    @property
    def promotion_key(self) -> dg.AssetKey:
        return dg.AssetKey(["ml", f"{self.name}_promotion"])

    @property
    def check_name(self) -> str:
        return f"{self.name}_challenger_beats_champion"

    @property
    def champion_uri(self) -> str:
        return f"models:/{self.model_name}@{tracking.CHAMPION}"


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    reason: str
    comparisons: list[dict]  # one row per opponent: name, its score, the score to beat, beaten?


def decide(family: Family, challenger: float, baselines: dict[str, float], champion: float | None,
           champion_version: str | None = None) -> GateDecision:
    """Does the challenger beat every baseline and the champion by the family's margin?"""
    if not math.isfinite(challenger):
        return GateDecision(False, f"the challenger's {family.metric} is {challenger}: nothing to compare", [])
    opponents = dict(baselines)
    if champion is not None:
        opponents[f"champion v{champion_version}"] = champion
    rows = []
    for name, score in opponents.items():
        bar = score + family.margin if family.higher_is_better else score - family.margin
        beaten = challenger > bar if family.higher_is_better else challenger < bar
        rows.append({"opponent": name, family.metric: score, "to_beat": bar, "beaten": beaten})
    lost = [r["opponent"] for r in rows if not r["beaten"]]
    direction = "above" if family.higher_is_better else "below"
    if lost:
        reason = (f"challenger {family.metric} {challenger:.4f} is not {family.margin:g} {direction} "
                  f"{', '.join(lost)}: not promoted")
    else:
        reason = (f"challenger {family.metric} {challenger:.4f} beats {', '.join(opponents)} by more than "
                  f"{family.margin:g}" + ("" if champion is not None else " (no champion yet)"))
    return GateDecision(not lost, reason, rows)


def champion_version(client: "MlflowClient", family: Family) -> str | None:
    return tracking.alias_version(client, family.model_name, tracking.CHAMPION)


def load_champion(client: "MlflowClient", family: Family):
    """The native model behind ``@champion`` and its version; (None, None) when there is none yet."""
    version = champion_version(client, family)
    if version is None:
        return None, None
    import mlflow.sklearn

    return mlflow.sklearn.load_model(family.champion_uri), version


def register_challenger(client: "MlflowClient", family: Family, model_uri: str, challenger: float,
                        baselines: dict[str, float], champion: float | None, champion_at: str | None,
                        tags: dict[str, str]) -> "ModelVersion":
    """Register the run's model as a new version with the alias ``challenger`` and its gate evaluation."""
    gate = {"metric": family.metric, "challenger": challenger, "baselines": baselines,
            "champion": champion, "champion_version": champion_at}
    import mlflow

    version = mlflow.register_model(model_uri, family.model_name,
                                    tags={**tags, GATE_TAG: json.dumps(gate, sort_keys=True)})
    client.set_registered_model_alias(family.model_name, tracking.CHALLENGER, version.version)
    return version


def _challenger(client: "MlflowClient", family: Family) -> "tuple[ModelVersion, dict]":
    version_id = tracking.alias_version(client, family.model_name, tracking.CHALLENGER)
    if version_id is None:
        raise dg.Failure(f"no `{family.model_name}@challenger`: materialize {family.model_key.to_user_string()} first")
    version = client.get_model_version(family.model_name, version_id)
    return version, json.loads(version.tags[GATE_TAG])


def _str_or_none(value) -> str | None:
    return None if value is None else str(value)


def _decision(family: Family, gate: dict) -> GateDecision:
    return decide(family, gate["challenger"], gate["baselines"], gate["champion"], gate["champion_version"])


def gate_check(family: Family) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=family.model_key,
        name=family.check_name,
        blocking=True,
        description=f"`{family.model_name}@challenger` must beat the baselines and `@champion` on the same holdout "
        f"by {family.margin:g} {family.metric} ({'higher' if family.higher_is_better else 'lower'} is better). "
        "A loss leaves the current champion serving (WARN); with no champion yet it blocks promotion and scoring (ERROR).",
    )
    def _check(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
        client = tracking.configure(lakehouse.settings())
        version, gate = _challenger(client, family)
        vid = str(version.version)
        decision = _decision(family, gate)
        no_champion = gate["champion_version"] is None
        return dg.AssetCheckResult(
            passed=decision.passed,
            severity=dg.AssetCheckSeverity.ERROR if no_champion else dg.AssetCheckSeverity.WARN,
            description=decision.reason if decision.passed or no_champion
            else f"{decision.reason}; v{gate['champion_version']} stays champion",
            metadata={
                "challenger_version": vid,
                f"challenger_{family.metric}": gate["challenger"],
                "champion_version": gate["champion_version"] or "none",
                "comparison": dg.MetadataValue.md(reporting.md_table(decision.comparisons)),
            },
        )

    return _check


def promotion_asset(family: Family) -> dg.AssetsDefinition:
    @dg.asset(
        key=family.promotion_key,
        tags=TRAINING,
        deps=[family.model_key],
        group_name="ml",
        kinds={"mlflow"},
        description=f"Moves `{family.model_name}@champion` to the challenger that passed "
        f"`{family.check_name}`; the previous champion stays registered for rollback.",
    )
    def _promote(context: dg.AssetExecutionContext, lakehouse: LakehouseResource) -> dg.MaterializeResult:
        client = tracking.configure(lakehouse.settings())
        version, gate = _challenger(client, family)
        vid = str(version.version)
        decision = _decision(family, gate)
        previous = champion_version(client, family)
        if not decision.passed:
            if previous is None:  # the blocking check normally stops the run before this
                raise dg.Failure(f"`{family.model_name}` v{vid} did not pass the gate: {decision.reason}")
            context.log.info(f"v{vid} did not pass the gate ({decision.reason}): v{previous} stays champion")
            return dg.MaterializeResult(metadata={
                "promoted": False,
                "champion_version": previous,
                "rejected_challenger_version": vid,
                "reason": decision.reason,
            })
        if previous == vid:
            context.log.info(f"v{vid} is already the champion")
        elif previous != _str_or_none(gate["champion_version"]):
            raise dg.Failure(
                f"`{family.model_name}@champion` moved to v{previous} after v{vid} was evaluated against "
                f"v{gate['champion_version']}: materialize {family.model_key.to_user_string()} again to compare with it"
            )
        else:
            client.set_registered_model_alias(family.model_name, tracking.CHAMPION, vid)
            client.set_model_version_tag(family.model_name, vid, PREVIOUS_CHAMPION_TAG, previous or "none")
            context.log.info(f"`{family.model_name}@champion`: v{previous or '-'} -> v{vid}")
        rollback = (f"MlflowClient().set_registered_model_alias('{family.model_name}', 'champion', '{previous}')"
                    if previous and previous != vid else "no earlier champion")
        return dg.MaterializeResult(metadata={
            "promoted": True,
            "champion_version": vid,
            "previous_champion_version": previous or "none",
            f"champion_{family.metric}": gate["challenger"],
            "rollback": rollback,
        })

    return _promote


def champion_ready(settings, family: Family, log) -> bool:
    """Whether ``@champion`` exists. Scoring assets skip themselves (and what reads their output)
    when it does not, so the daily refresh of a new install stays green until the first retrain."""
    if champion_version(tracking.configure(settings), family) is not None:
        return True
    log.warning(
        f"no `{family.model_name}@champion` yet: scoring skipped. Materialize {family.model_key.to_user_string()} "
        f"and {family.promotion_key.to_user_string()} (the weekly_retrain or shoplake_all job) to train one."
    )
    return False


def scoring_asset(family: Family, table: str, reads: list[str], description: str):
    """The decorator of an asset that scores with ``@champion`` the tables ``reads`` ("prod.x")
    and publishes ``prod.<table>``. Depending on what it reads orders it after their rebuild in the
    daily refresh, which does not contain the promotion. Its function yields its result, or nothing
    (then it and what reads it are skipped) when ``champion_ready`` says no champion exists yet."""
    return dg.asset(
        key=["prod", table],
        output_required=False,
        pool=table_pool(f"prod.{table}"),
        freshness_policy=PROD_FRESHNESS,
        group_name="ml",
        deps=[family.promotion_key, *(dg.AssetKey(t.split(".")) for t in reads)],
        kinds={"iceberg", "mlflow"},
        description=description,
    )


def require_champion(client: "MlflowClient", family: Family):
    """The champion model and its version for scoring, or a clear failure when none has passed the gate."""
    model, version = load_champion(client, family)
    if model is None:
        raise dg.Failure(
            f"no `{family.model_name}@champion` yet: no trained version has passed `{family.check_name}`"
        )
    return model, version
