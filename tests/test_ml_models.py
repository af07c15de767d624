"""The three model families end to end on the session's demo lakehouse: train, gate, promote,
score; lineage in MLflow; identical retraining; a forced worse candidate; a fresh process scoring
with ``@champion``."""

from __future__ import annotations

import json
import subprocess
import sys

import dagster as dg
import numpy as np
import pytest
from dagster import DagsterInstance

from orchestration.lakehouse.catalog import load_catalog
from orchestration.settings import Settings

pytestmark = pytest.mark.slow

# The session's demo shop (tests/conftest.py): enough payments for a fraud holdout with chargebacks
# (about 1 in 100 payments is fraud), and every family earns a champion.
FAMILIES = ("forecasting", "churn", "fraud")
MODEL_NAMES = {"forecasting": "shoplake_demand_forecast", "churn": "shoplake_churn", "fraud": "shoplake_fraud"}
PUBLISHED = [
    "prod.demand_forecast",
    "prod.reorder_suggestions",
    "prod.churn_scores",
    "prod.fraud_scores",
    "prod.high_risk_transactions",
]


def _events(result):  # check name -> evaluation; keys materialized
    checks = {
        e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }
    materialized = {
        e.event_specific_data.materialization.asset_key.to_user_string()
        for e in result.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION"
    }
    return checks, materialized


def materialize(selection: str, run_config: dict | None = None):
    from orchestration.definitions import defs

    assets = [a for a in defs.assets if isinstance(a, dg.AssetsDefinition)]
    with DagsterInstance.ephemeral() as instance:
        return dg.materialize(
            [*assets, *defs.asset_checks],
            selection=selection,
            instance=instance,
            resources=defs.resources,
            run_config=run_config or {},
            raise_on_error=False,
        )


@pytest.fixture(scope="module")
def lakehouse(demo_lakehouse):
    """The session's demo lakehouse (its `shoplake_all` run trained, gated and published every family),
    put back after this module, whose later tests retrain and rescore on it."""
    with demo_lakehouse.changing() as lake:
        yield lake.settings, lake.result


def client(settings):
    from ml_assets import tracking

    return tracking.configure(settings)


def champion(settings, family: str) -> str:
    return str(client(settings).get_model_version_by_alias(MODEL_NAMES[family], "champion").version)


def test_every_model_trains_passes_its_gate_and_publishes(lakehouse):
    settings, result = lakehouse
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    checks, materialized = _events(result)
    assert {f"{f}_challenger_beats_champion" for f in FAMILIES} <= set(checks)
    assert all(checks[f"{f}_challenger_beats_champion"].passed for f in FAMILIES)
    assert {f"ml/{f}_{s}" for f in FAMILIES for s in ("model", "promotion")} <= materialized
    assert {t.replace(".", "/") for t in PUBLISHED} <= materialized
    c = client(settings)
    for family, name in MODEL_NAMES.items():
        versions = c.search_model_versions(f"name='{name}'")
        assert len(versions) == 1
        # search_model_versions leaves aliases out: read the version itself
        assert set(c.get_model_version(name, versions[0].version).aliases) == {"champion", "challenger"}, family
    catalog = load_catalog(settings)
    for table in PUBLISHED:
        assert catalog.load_table(table).scan().to_arrow().num_rows > 0, table


def test_published_tables_hold_what_their_users_need(lakehouse):
    from orchestration import query

    settings, _ = lakehouse
    con = query.connect(settings)
    tiers = {r[0] for r in con.execute("SELECT DISTINCT risk_tier FROM prod.churn_scores").fetchall()}
    assert tiers <= {"high", "medium", "low"}
    bad = con.execute("""SELECT count(*) FROM prod.churn_scores
                         WHERE churn_probability NOT BETWEEN 0 AND 1 OR top_drivers IS NULL""").fetchone()[0]
    assert bad == 0
    days, series, ordered = con.execute(
        """SELECT count(DISTINCT forecast_date), count(DISTINCT (level, category_id, product_id)),
                  bool_and(units_lo95 <= units_lo80 AND units_lo80 <= units AND units <= units_hi80
                           AND units_hi80 <= units_hi95)
           FROM prod.demand_forecast"""
    ).fetchone()
    categories = con.execute("SELECT count(DISTINCT category_id) FROM prod.dim_products").fetchone()[0]
    assert (days, series, ordered) == (28, categories + 5, True)
    assert (
        con.execute("SELECT count(*) FROM prod.reorder_suggestions").fetchone()[0]
        == con.execute("SELECT count(*) FROM prod.inventory_status").fetchone()[0]
    )
    scored, payments = con.execute(
        "SELECT (SELECT count(*) FROM prod.fraud_scores), (SELECT count(*) FROM prod.fct_payments)"
    ).fetchone()
    assert 0 < scored <= payments
    queue = con.execute("""SELECT count(*), count(*) FILTER (WHERE status <> 'captured' OR NOT label_pending)
                           FROM prod.high_risk_transactions""").fetchone()
    assert queue[1] == 0


def test_every_run_records_its_dagster_run_and_iceberg_snapshots(lakehouse):
    settings, result = lakehouse
    c = client(settings)
    catalog = load_catalog(settings)
    for family in FAMILIES:
        exp = c.get_experiment_by_name(family)
        runs = c.search_runs([exp.experiment_id])
        # every candidate, baselines included: churn's recency and RFM regressions and XGBoost, fraud's
        # anomaly score and XGBoost (the demo shop has chargebacks)
        assert len(runs) == {"churn": 3, "fraud": 2}[family] if family != "forecasting" else len(runs) >= 2
        for run in runs:
            tags = run.data.tags
            assert tags["dagster_run_id"] == result.run_id
            snaps = {
                k.removeprefix("iceberg_snapshot."): v for k, v in tags.items() if k.startswith("iceberg_snapshot.")
            }
            assert snaps and all(
                str(catalog.load_table(t).current_snapshot().snapshot_id) == v for t, v in snaps.items()
            )
            plots = [a.path for a in c.list_artifacts(run.info.run_id, "plots")]
            assert plots, (family, run.info.run_name)
        model = c.get_model_version(MODEL_NAMES[family], champion(settings, family))
        assert model.tags["dagster_run_id"] == result.run_id


def test_retraining_on_identical_data_gives_identical_metrics_and_is_not_promoted(lakehouse):
    settings, _ = lakehouse
    c = client(settings)
    before = champion(settings, "churn")
    first = c.get_run(c.get_model_version("shoplake_churn", before).run_id).data.metrics
    result = materialize('key:"ml/churn_model"+')
    checks, materialized = _events(result)
    again = c.get_model_version_by_alias("shoplake_churn", "challenger")
    assert str(again.version) != before
    assert c.get_run(again.run_id).data.metrics == first  # exact equality, every metric
    gate = checks["churn_challenger_beats_champion"]
    assert not gate.passed  # a tie is not a win...
    assert gate.severity == dg.AssetCheckSeverity.WARN  # ...but no failure either: the champion keeps serving
    assert result.success
    assert {"ml/churn_promotion", "prod/churn_scores"} <= materialized
    assert champion(settings, "churn") == before


def test_a_worse_candidate_is_not_promoted_and_scoring_keeps_the_champion(lakehouse):
    settings, _ = lakehouse
    before = champion(settings, "fraud")
    crippled = {"ops": {"ml__fraud_model": {"config": {"n_estimators": 1, "max_depth": 1, "learning_rate": 0.01}}}}
    result = materialize('key:"ml/fraud_model"+', crippled)
    checks, materialized = _events(result)
    gate = checks["fraud_challenger_beats_champion"]
    assert not gate.passed and gate.severity == dg.AssetCheckSeverity.WARN
    assert f"v{before} stays champion" in gate.description
    assert result.success and {"ml/fraud_model", "ml/fraud_promotion", "prod/fraud_scores"} <= materialized
    assert champion(settings, "fraud") == before
    from orchestration import query

    versions = query.connect(settings).execute("SELECT DISTINCT model_version FROM prod.fraud_scores").fetchall()
    assert versions == [(before,)]


def test_fraud_rescoring_takes_over_unchanged_payments_and_equals_scoring_them_all(lakehouse):
    import pandas as pd
    import pyarrow as pa

    from ml_assets.fraud.assets import score_payments
    from orchestration.lakehouse.publish import write_table

    settings, _ = lakehouse
    full, version, _, _ = score_payments(settings, reuse=False)
    catalog = load_catalog(settings)
    published = catalog.load_table("prod.fraud_scores").scan().to_arrow()
    previous = full.copy()
    new = previous.index[::10]  # not scored before
    changed = previous.index[1::10]  # their inputs changed since they were scored
    kept = previous.index[2::10]  # same version, same inputs: what was published is taken over as it is
    previous.loc[changed, "features_hash"] ^= 1
    previous.loc[changed, "fraud_probability"] = -1.0
    previous.loc[kept, "top_signals"] = "taken over"
    previous = previous.drop(index=new)
    try:
        write_table(catalog, "prod.fraud_scores", pa.Table.from_pandas(previous, preserve_index=False), "test")
        again, again_version, _, again_reused = score_payments(settings)
        write_table(
            catalog,
            "prod.fraud_scores",
            pa.Table.from_pandas(previous.assign(model_version="0"), preserve_index=False),
            "test",
        )
        other_version, _, _, other_reused = score_payments(settings)
    finally:
        write_table(catalog, "prod.fraud_scores", published, "test")
    assert again_version == version
    assert again_reused == len(full) - len(new) - len(changed)
    expected = full.copy()
    expected.loc[kept, "top_signals"] = "taken over"
    # the payments scored again in a small batch get exactly what scoring all of them gave
    pd.testing.assert_frame_equal(again, expected, check_exact=True)
    # scores of another model version are never taken over
    assert other_reused == 0
    pd.testing.assert_frame_equal(other_version, full, check_exact=True)


SCORE_IN_FRESH_PROCESS = """
import json
from ml_assets.churn.assets import score_customers
from ml_assets.churn import train
from ml_assets.errors import MalformedFrame
from ml_assets.forecasting.assets import forecast_demand
from ml_assets.fraud.assets import score_payments
from ml_assets import registry, tracking
from ml_assets.churn.assets import FAMILY
from orchestration.settings import Settings
import mlflow.sklearn

settings = Settings.from_env()
churn, churn_version, _, _ = score_customers(settings)
fraud, fraud_version, _, _ = score_payments(settings)
forecast, forecast_version = forecast_demand(settings)
tracking.configure(settings)
model = mlflow.sklearn.load_model("models:/shoplake_churn@champion")
try:
    train.predict_proba(model, churn.drop(columns=["churn_probability"]))
    error = None
except MalformedFrame as exc:
    error = str(exc)
print(json.dumps({"churn": [len(churn), churn_version], "fraud": [len(fraud), fraud_version],
                  "forecast": [len(forecast), forecast_version], "error": error}))
"""


def test_a_fresh_process_loads_each_champion_by_alias_and_scores_prod(lakehouse):
    settings, _ = lakehouse
    out = subprocess.run([sys.executable, "-c", SCORE_IN_FRESH_PROCESS], capture_output=True, text=True, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["churn"][1] == champion(settings, "churn") and got["churn"][0] > 0
    assert got["fraud"][1] == champion(settings, "fraud") and got["fraud"][0] > 0
    assert got["forecast"][1] == champion(settings, "forecasting") and got["forecast"][0] > 0
    assert got["error"].startswith("the churn model input is missing column(s) ['tenure_days'")


# ---- small shops: what a shop without labels, a weak challenger and a young shop get

SMALL_CUSTOMERS, SMALL_DAYS, SMALL_SEED = 600, 400, 3  # enough history for 3 churn backtest windows
FAMILY_SELECTION = 'key:"ml/churn_model"+ or key:"ml/fraud_model"+'


def _private_home(tmp_path_factory, name: str) -> tuple[pytest.MonkeyPatch, Settings]:
    from tests.conftest import isolated_env

    mp = pytest.MonkeyPatch()
    return mp, isolated_env(mp, tmp_path_factory.mktemp(name))


def _report(settings, run_id: str) -> dict[str, tuple]:
    from orchestration import query

    rows = (
        query.connect(settings)
        .execute(
            "SELECT item, status, value, detail FROM prod.compliance_report WHERE run_id = ? AND section = 'models'",
            [run_id],
        )
        .fetchall()
    )
    return {item: (status, value, detail) for item, status, value, detail in rows}


@pytest.fixture(scope="module")
def unlabelled(tmp_path_factory):
    """A small shop whose chargebacks were never reported (a shop paid by bank transfer has none),
    with churn and fraud trained once."""
    import sqlite3

    from demo_shop.generate import ShopConfig, generate_shop

    mp, settings = _private_home(tmp_path_factory, "unlabelled")
    generate_shop(
        ShopConfig(customers=SMALL_CUSTOMERS, days=SMALL_DAYS, seed=SMALL_SEED),
        settings.source_url,
        settings.truth_dir,
        progress=False,
    )
    with sqlite3.connect(settings.source_url.removeprefix("sqlite:///")) as db:
        changed = db.execute(
            "UPDATE payments SET status = 'captured', chargeback_at = NULL WHERE status = 'chargeback'"
        ).rowcount
    assert changed > 0  # the generated shop had chargebacks to remove
    assert materialize("not group:ml").success
    result = materialize(FAMILY_SELECTION)
    yield settings, result
    mp.undo()


def test_without_chargebacks_the_unsupervised_detector_scores_every_payment(unlabelled):
    from orchestration import query

    settings, result = unlabelled
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    checks, materialized = _events(result)
    assert checks["fraud_challenger_beats_champion"].passed
    assert {"prod/fraud_scores", "prod/high_risk_transactions"} <= materialized
    con = query.connect(settings)
    payments = con.execute("SELECT count(*) FROM prod.fct_payments WHERE paid_at IS NOT NULL").fetchone()[0]
    modes = con.execute(
        "SELECT scoring_mode, count(*), count(fraud_probability) FROM prod.fraud_scores GROUP BY 1"
    ).fetchall()
    assert modes == [("unsupervised", payments, 0)]  # every payment, and no probability claimed
    # The tiers come from the detector's own score quantiles: 1% of the authorised payments it was fitted
    # on score at or above the high threshold, 5% at or above the medium one.
    authorised, high, medium_or_high = con.execute(
        """SELECT count(*), count(*) FILTER (WHERE risk_tier = 'high'), count(*) FILTER (WHERE risk_tier <> 'low')
           FROM prod.fraud_scores WHERE status <> 'failed'"""
    ).fetchone()
    assert high == authorised - int(np.ceil(0.99 * authorised)) + 1
    assert medium_or_high == authorised - int(np.ceil(0.95 * authorised)) + 1
    queue, wrong = con.execute("""SELECT count(*), count(*) FILTER (WHERE status <> 'captured' OR NOT label_pending
                                                             OR risk_tier <> 'high')
                                  FROM prod.high_risk_transactions""").fetchone()
    assert queue > 0 and wrong == 0
    c = client(settings)
    version = c.get_model_version("shoplake_fraud", champion(settings, "fraud"))
    assert version.tags["shoplake.candidate"] == "isolation_forest" and version.tags["scoring_mode"] == "unsupervised"
    report = _report(settings, result.run_id)
    assert report["fraud_promotion"][0] == "promoted" and "isolation_forest" in report["fraud_promotion"][2]
    assert report["fraud_scoring"][:2] == ("scored", int(version.version))


def _gate(settings, family: str, version: str) -> dict:
    return json.loads(client(settings).get_model_version(MODEL_NAMES[family], version).tags["shoplake.gate"])


def test_the_first_champion_is_the_best_candidate_on_the_backtest(unlabelled):
    settings, result = unlabelled
    version = champion(settings, "churn")
    gate = _gate(settings, "churn", version)
    scores = {gate["candidate"]: gate["challenger"], **gate["baselines"]}
    assert set(scores) == {"no_skill", "logistic_recency", "logistic_rfm", "xgboost"}
    assert gate["candidate"] == max(scores, key=scores.get) and gate["windows"] == 3
    assert gate["champion_version"] is None
    # the champion's backtest AUC is at least every baseline's (it is the best of them)
    assert all(gate["challenger"] >= s for s in gate["baselines"].values())
    c = client(settings)
    assert c.get_model_version("shoplake_churn", version).tags["shoplake.candidate"] == gate["candidate"]
    status, value, detail = _report(settings, result.run_id)["churn_promotion"]
    assert (status, value) == ("promoted", int(version)) and gate["candidate"] in detail and "first champion" in detail


CRIPPLED_CHURN = {"ops": {"ml__churn_model": {"config": {"n_estimators": 1, "max_depth": 1, "learning_rate": 0.01}}}}


def test_a_later_challenger_that_loses_is_a_warn_and_the_champion_keeps_serving(unlabelled):
    settings, _ = unlabelled
    before = champion(settings, "churn")
    result = materialize('key:"ml/churn_model"+', CRIPPLED_CHURN)
    checks, materialized = _events(result)
    gate = checks["churn_challenger_beats_champion"]
    assert result.success and not gate.passed and gate.severity == dg.AssetCheckSeverity.WARN
    assert f"v{before} stays champion" in gate.description
    assert {"ml/churn_promotion", "prod/churn_scores"} <= materialized
    assert champion(settings, "churn") == before
    status, value, detail = _report(settings, result.run_id)["churn_promotion"]
    assert (status, value) == ("champion_kept", int(before)) and "not promoted" in detail


def test_a_baseline_wins_and_is_published_when_the_challenger_is_weak(unlabelled, tmp_path, monkeypatch):
    from orchestration import query

    settings, _ = unlabelled
    # A registry of its own: no champion yet, and a challenger with one stump of signal.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    fresh = Settings.from_env()
    result = materialize('key:"ml/churn_model"+', CRIPPLED_CHURN)
    checks, materialized = _events(result)
    assert result.success and checks["churn_challenger_beats_champion"].passed
    version = champion(fresh, "churn")
    gate = _gate(fresh, "churn", version)
    assert gate["candidate"] in ("logistic_recency", "logistic_rfm")
    assert gate["challenger"] > gate["baselines"]["xgboost"]
    scores = (
        query.connect(fresh)
        .execute(
            "SELECT count(*), count(*) FILTER (WHERE model_version = ? AND top_drivers IS NOT NULL) FROM "
            "prod.churn_scores",
            [version],
        )
        .fetchone()
    )
    assert "prod/churn_scores" in materialized and scores[0] > 0 and scores[0] == scores[1]


def test_a_young_shop_publishes_its_marts_and_skips_the_models_that_cannot_train(tmp_path_factory):
    from demo_shop.generate import ShopConfig, generate_shop
    from orchestration import query
    from tests.conftest import run_job

    mp, settings = _private_home(tmp_path_factory, "young")
    try:
        generate_shop(
            ShopConfig(customers=300, days=45, seed=SMALL_SEED), settings.source_url, settings.truth_dir, progress=False
        )
        result, _ = run_job("shoplake_all")
        assert result.success, [e.message for e in result.all_events if e.is_failure]
        _, materialized = _events(result)
        assert "ml/churn_model" not in materialized and "prod/churn_scores" not in materialized
        skipped = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SKIPPED"}
        assert {"ml__churn_promotion", "prod__churn_scores"} <= skipped
        con = query.connect(settings)
        assert con.execute("SELECT count(*) FROM prod.fct_orders").fetchone()[0] > 0
        report = _report(settings, result.run_id)
        status, value, detail = report["churn_training"]
        assert status == "skipped" and value is None and "days of order history" in detail
        # fraud needs no history of labels: the detector trains and scores even here
        assert report["fraud_promotion"][0] == "promoted"
    finally:
        mp.undo()
