"""The registry gate every model family goes through, in one place.

A training asset backtests every candidate of its family (its simple baselines included: they are
real, registrable models) on the same rolling-origin windows, registers the best one as a new
version with the alias ``challenger``, and stores on that version how it, the other candidates, the
family's naive reference and the current ``champion`` scored on those windows. Then:

1. the blocking asset check ``<family>_challenger_beats_champion`` decides. With no champion yet,
   the best candidate becomes the first champion when it beats the naive reference (a no-skill
   score: AUC 0.5, the chargeback rate); after that a challenger must beat the current champion by
   the family's margin (``Family.margin``, in the units of its gate metric). Losing is never an
   error: the check fails with WARN severity, nothing is promoted, the champion (if any) keeps
   serving and the run stays green. A candidate that cannot be evaluated (fraud with no labels at
   all) ships when there is no evaluated champion to beat;
2. the asset ``ml/<family>_promotion`` moves the ``champion`` alias to the challenger, only if it
   passed the gate. The previous champion stays registered (and is named on the new version) for
   rollback;
3. scoring assets load ``models:/<name>@champion`` and skip (with what reads them) while there is none.

A family that cannot train at all (too little history, nothing to learn from) skips its training
asset with the reason (``train_or_skip``): the gate, promotion and scoring of that run skip with it.
Every outcome (which candidate won and by how much, the champion kept, the reason for a skip) is in
the asset metadata, on the MLflow version (tags and description) and in the ledger
ledger.model_outcomes, which prod.compliance_report reports.
"""

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import dagster as dg

from ml_assets import reporting, tracking
from ml_assets.errors import InsufficientData
from orchestration.lakehouse.ledger import record_model_outcome
from orchestration.policies import PROD_FRESHNESS, TRAINING, table_pool
from orchestration.resources import LakehouseResource

if TYPE_CHECKING:  # MLflow itself is imported where a model is registered or loaded
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

GATE_TAG = "shoplake.gate"
PREVIOUS_CHAMPION_TAG = "shoplake.previous_champion"
CANDIDATE_TAG = "shoplake.candidate"
OUTCOME_TAG = "shoplake.outcome"
# The prod table each family publishes, as prod.compliance_report names it.
REPORT_TABLES = {"forecasting": "prod.demand_forecast", "churn": "prod.churn_scores", "fraud": "prod.fraud_scores"}


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

    @property
    def report_table(self) -> str:
        return REPORT_TABLES.get(self.name, f"prod.{self.name}_scores")

    def lead(self, score: float, other: float) -> float:
        """How far ``score`` is ahead of ``other`` (positive: better), whichever way the metric points."""
        return score - other if self.higher_is_better else other - score


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    reason: str
    comparisons: list[dict]  # one row per opponent: name, its score, the score to beat, beaten?, required?


def decide(
    family: Family,
    challenger: float,
    baselines: dict[str, float],
    champion: float | None,
    champion_version: str | None = None,
    *,
    reference: str | None = None,
    candidate: str = "challenger",
    evaluated: bool = True,
    windows: int | None = None,
) -> GateDecision:
    """Does the challenger ship?

    ``baselines``: the other candidates' scores on the same windows, ``reference`` naming the naive
    one among them. With a reference: the first champion must beat the reference; a later challenger
    must also beat the champion by the family's margin. Without one (the earlier rule): it must beat
    every baseline and the champion by the margin. ``evaluated=False``: nothing to evaluate on; it
    ships unless an evaluated champion exists."""
    m = family.metric
    if not evaluated:
        if champion is not None and math.isfinite(champion):
            return GateDecision(
                False,
                f"{candidate} could not be evaluated and champion v{champion_version} was ({m} {champion:.4f})",
                [],
            )
        where = (
            "first champion"
            if champion_version is None
            else f"replaces v{champion_version}, which cannot be judged on this data either"
        )
        return GateDecision(
            True,
            f"{candidate} is the only candidate and nothing labels the data to evaluate it on: it ships ({where})",
            [],
        )
    if not math.isfinite(challenger):
        return GateDecision(False, f"the challenger's {m} is {challenger}: nothing to compare", [])
    rows = []
    for name, score in baselines.items():
        required = reference is None or name == reference
        rows.append(_comparison(family, challenger, name, score, family.margin if reference is None else 0.0, required))
    if champion is not None and math.isfinite(champion):
        rows.append(_comparison(family, challenger, f"champion v{champion_version}", champion, family.margin, True))
    lost = [r["opponent"] for r in rows if r["required"] and not r["beaten"]]
    if reference is None:  # the earlier rule, kept for callers that name no reference
        direction = "above" if family.higher_is_better else "below"
        if lost:
            return GateDecision(
                False,
                f"challenger {m} {challenger:.4f} is not {family.margin:g} {direction} {', '.join(lost)}: not promoted",
                rows,
            )
        names = ", ".join(r["opponent"] for r in rows)
        return GateDecision(
            True,
            f"challenger {m} {challenger:.4f} beats {names} by more than {family.margin:g}"
            + ("" if champion is not None else " (no champion yet)"),
            rows,
        )
    on = f" on {windows} backtest windows" if windows else ""
    ref = baselines[reference]
    if reference in lost:
        return GateDecision(
            False,
            f"no candidate beats the naive reference {reference} ({m} {ref:.4f}){on}: the best, "
            f"{candidate}, has {challenger:.4f}",
            rows,
        )
    if lost:
        champ = rows[-1]
        return GateDecision(
            False,
            f"{candidate} ({m} {challenger:.4f}{on}) does not beat {champ['opponent']} "
            f"({champ[m]:.4f}) by the margin {family.margin:g}: lead "
            f"{family.lead(challenger, champ[m]):+.4f}",
            rows,
        )
    others = {n: s for n, s in baselines.items() if n != reference}
    runner_up = max(others, key=lambda n: -family.lead(challenger, others[n])) if others else None
    text = f"{candidate} ({m} {challenger:.4f}{on}) "
    if runner_up is not None:
        text += f"beats the runner-up {runner_up} by {family.lead(challenger, others[runner_up]):+.4f}, "
    text += f"the naive reference {reference} by {family.lead(challenger, ref):+.4f}"
    if champion is not None and math.isfinite(champion):
        text += (
            f" and champion v{champion_version} by {family.lead(challenger, champion):+.4f} (margin {family.margin:g})"
        )
    else:
        text += (
            ": first champion"
            if champion_version is None
            else f": replaces v{champion_version}, which cannot score this data"
        )
    return GateDecision(True, text, rows)


def _comparison(family: Family, challenger: float, name: str, score: float, margin: float, required: bool) -> dict:
    bar = score + margin if family.higher_is_better else score - margin
    beaten = challenger > bar if family.higher_is_better else challenger < bar
    return {"opponent": name, family.metric: score, "to_beat": bar, "beaten": beaten, "required": required}


def champion_version(client: "MlflowClient", family: Family) -> str | None:
    return tracking.alias_version(client, family.model_name, tracking.CHAMPION)


def load_champion(client: "MlflowClient", family: Family):
    """The native model behind ``@champion`` and its version; (None, None) when there is none yet."""
    version = champion_version(client, family)
    if version is None:
        return None, None
    import mlflow.sklearn

    return mlflow.sklearn.load_model(family.champion_uri), version


def register_challenger(
    client: "MlflowClient",
    family: Family,
    model_uri: str,
    challenger: float,
    baselines: dict[str, float],
    champion: float | None,
    champion_at: str | None,
    tags: dict[str, str],
    *,
    candidate: str | None = None,
    reference: str | None = None,
    windows: int | None = None,
    evaluated: bool = True,
) -> "ModelVersion":
    """Register the run's best candidate as a new version with the alias ``challenger`` and its gate
    evaluation (see ``decide`` for the arguments); its description says what the gate will decide."""
    gate = {
        "metric": family.metric,
        "challenger": challenger,
        "baselines": baselines,
        "champion": champion,
        "champion_version": champion_at,
        "candidate": candidate or "challenger",
        "reference": reference,
        "windows": windows,
        "evaluated": evaluated,
    }
    import mlflow

    version = mlflow.register_model(
        model_uri,
        family.model_name,
        tags={**tags, GATE_TAG: json.dumps(gate, sort_keys=True), CANDIDATE_TAG: candidate or "challenger"},
    )
    client.set_registered_model_alias(family.model_name, tracking.CHALLENGER, version.version)
    client.update_model_version(family.model_name, version.version, description=_decision(family, gate).reason)
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
    return decide(
        family,
        gate["challenger"],
        gate["baselines"],
        gate["champion"],
        gate["champion_version"],
        reference=gate.get("reference"),
        candidate=gate.get("candidate", "challenger"),
        evaluated=gate.get("evaluated", True),
        windows=gate.get("windows"),
    )


def gate_check(family: Family) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=family.model_key,
        name=family.check_name,
        blocking=True,
        description=f"The first `{family.model_name}` champion is the best candidate on the backtest if it beats the "
        f"naive reference; later a challenger must beat `@champion` on the same windows by {family.margin:g} "
        f"{family.metric} ({'higher' if family.higher_is_better else 'lower'} is better). A loss is a WARN: the "
        "champion, if any, keeps serving and the run stays green.",
    )
    def _check(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
        client = tracking.configure(lakehouse.settings())
        version, gate = _challenger(client, family)
        vid = str(version.version)
        decision = _decision(family, gate)
        champion_at = gate["champion_version"]
        if decision.passed:
            description = decision.reason
        elif champion_at is not None:
            description = f"{decision.reason}; v{champion_at} stays champion"
        else:
            description = f"{decision.reason}; no champion yet, so no scores are published"
        return dg.AssetCheckResult(
            passed=decision.passed,
            severity=dg.AssetCheckSeverity.WARN,  # losing is an outcome, never an error
            description=description,
            metadata={
                "challenger_version": vid,
                "candidate": gate.get("candidate", "challenger"),
                f"challenger_{family.metric}": gate["challenger"],
                "champion_version": champion_at or "none",
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
        settings = lakehouse.settings()
        client = tracking.configure(settings)
        version, gate = _challenger(client, family)
        vid = str(version.version)
        decision = _decision(family, gate)
        previous = champion_version(client, family)
        candidate = gate.get("candidate", "challenger")
        if not decision.passed:
            status = "champion_kept" if previous is not None else "no_champion"
            kept = f"v{previous} stays champion" if previous is not None else "no champion yet: scoring skips"
            context.log.info(f"v{vid} ({candidate}) did not pass the gate ({decision.reason}): {kept}")
            _outcome(client, family, vid, f"not promoted: {decision.reason}; {kept}")
            record_model_outcome(
                settings,
                context.run.run_id,
                family.name,
                "promotion",
                family.report_table,
                status,
                f"{candidate} (v{vid}) not promoted: {decision.reason}; {kept}",
                previous,
                candidate,
            )
            return dg.MaterializeResult(
                metadata={
                    "promoted": False,
                    "champion_version": previous or "none",
                    "rejected_challenger_version": vid,
                    "candidate": candidate,
                    "reason": decision.reason,
                }
            )
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
            context.log.info(f"`{family.model_name}@champion`: v{previous or '-'} -> v{vid} ({candidate})")
        _outcome(client, family, vid, f"promoted: {decision.reason}")
        record_model_outcome(
            settings,
            context.run.run_id,
            family.name,
            "promotion",
            family.report_table,
            "promoted",
            f"v{vid}: {decision.reason}",
            vid,
            candidate,
        )
        rollback = (
            f"MlflowClient().set_registered_model_alias('{family.model_name}', 'champion', '{previous}')"
            if previous and previous != vid
            else "no earlier champion"
        )
        return dg.MaterializeResult(
            metadata={
                "promoted": True,
                "champion_version": vid,
                "candidate": candidate,
                "reason": decision.reason,
                "previous_champion_version": previous or "none",
                f"champion_{family.metric}": gate["challenger"],
                "rollback": rollback,
            }
        )

    return _promote


def _outcome(client: "MlflowClient", family: Family, version: str, text: str) -> None:
    """The gate's outcome on the version itself: a tag to search by and its description."""
    client.set_model_version_tag(family.model_name, version, OUTCOME_TAG, text[:5000])
    client.update_model_version(family.model_name, version, description=text)


def train_or_skip(
    context: dg.AssetExecutionContext, family: Family, settings, train: Callable[[], dg.MaterializeResult]
) -> Iterator[dg.MaterializeResult | dg.AssetObservation]:
    """The body of a training asset (declared with ``output_required=False``): ``train()``'s result,
    or, when the data cannot support training (``InsufficientData``), nothing but the reason, so the
    gate, the promotion and the scoring downstream skip and the run stays green."""
    try:
        result = train()
    except InsufficientData as exc:
        reason = str(exc)
        context.log.warning(f"{family.name} not trained, its gate, promotion and scoring skip: {reason}")
        champion = champion_version(tracking.configure(settings), family)
        record_model_outcome(
            settings, context.run.run_id, family.name, "training", family.report_table, "skipped", reason, champion
        )
        yield dg.AssetObservation(asset_key=family.model_key, metadata={"skipped": reason})
        return
    yield result


def champion_ready(settings, family: Family, log, run_id: str | None = None) -> bool:
    """Whether ``@champion`` exists. Scoring assets skip themselves (and what reads their output)
    when it does not, so the daily refresh of a new install stays green until the first retrain."""
    if champion_version(tracking.configure(settings), family) is not None:
        return True
    reason = (
        f"no `{family.model_name}@champion` yet: scoring skipped. Materialize {family.model_key.to_user_string()} "
        f"and {family.promotion_key.to_user_string()} (the weekly_retrain or shoplake_all job) to train one."
    )
    log.warning(reason)
    if run_id is not None:
        record_model_outcome(settings, run_id, family.name, "scoring", family.report_table, "not_scored", reason)
    return False


def record_scoring(settings, run_id: str, family: Family, version: str, detail: str) -> None:
    """What a scoring asset published, for prod.compliance_report."""
    record_model_outcome(
        settings,
        run_id,
        family.name,
        "scoring",
        family.report_table,
        "scored",
        f"scored by v{version}: {detail}",
        version,
    )


def scoring_asset(
    family: Family, table: str, reads: list[str], description: str, column_schema: dg.TableSchema | None = None
):
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
        metadata={"dagster/column_schema": column_schema} if column_schema is not None else None,
    )


def require_champion(client: "MlflowClient", family: Family):
    """The champion model and its version for scoring, or a clear failure when none has passed the gate."""
    model, version = load_champion(client, family)
    if model is None:
        raise dg.Failure(f"no `{family.model_name}@champion` yet: no trained version has passed `{family.check_name}`")
    return model, version
