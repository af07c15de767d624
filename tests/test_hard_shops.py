"""Hard shops on demand: generator options that take away the demo shop's signal, as real shops do.

The first half checks, on tiny shops, that each option does what it says in the generated source
(and changes nothing else); the second half runs the whole job on two small hard shops.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from demo_shop.config import PROFILES, REAL_LIKE
from demo_shop.generate import ShopConfig, generate_shop
from demo_shop.intensity import Intensity, daily_shock, shape_of
from demo_shop.reference_data import CATEGORIES
from demo_shop.simulate import simulate_shop
from orchestration import cli
from orchestration.contract import schema

TINY = {"customers": 400, "days": 60, "seed": 21}


def _shop(tmp: Path, **options) -> tuple[Path, Path]:
    """A tiny shop with these options: (its SQLite file, its truth directory)."""
    tmp.mkdir(parents=True, exist_ok=True)
    db, truth = tmp / "shop.db", tmp / "truth"
    generate_shop(ShopConfig(**(TINY | options)), f"sqlite:///{db}", truth, progress=False)
    return db, truth


def _q(db: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _table(db: Path, name: str) -> list[tuple]:
    return _q(db, f'SELECT * FROM "{name}" ORDER BY {", ".join(schema.table(name).primary_key)}')


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, Path]:
    """The demo shop of the same seed and size, to compare each option with."""
    return _shop(tmp_path_factory.mktemp("demo"))


# ---------------------------------------------------------------------------------------------
# configuration, profiles and the command line
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("repeat_rate", 1.2, "repeat_rate must be between 0 and 1"),
        ("repeat_rate", float("nan"), "repeat_rate must be a number"),
        ("seasonality", -0.1, "seasonality must be between 0 and 2"),
        ("demand_noise", 3, "demand_noise must be between 0 and 1"),
        ("categories", 0, "categories must be between 1 and 11"),
        ("categories", len(CATEGORIES) + 1, "categories must be between 1 and 11"),
        ("one_currency", "yes", "one_currency must be true or false"),
        ("payment_method", "cash", "payment_method must be one of card, paypal, bank_transfer"),
        ("chargebacks", 0, "chargebacks must be true or false"),
        ("web_events", None, "web_events must be true or false"),
        ("free_item_rate", 0.9, "free_item_rate must be between 0 and 0.5"),
    ],
)
def test_bad_options_fail_before_the_database_is_touched(tmp_path, option, value, message):
    config = ShopConfig(**(TINY | {option: value}))
    with pytest.raises(ValueError, match=message):
        generate_shop(config, f"sqlite:///{tmp_path / 'shop.db'}", tmp_path / "truth", progress=False)
    assert not (tmp_path / "shop.db").exists()


def test_real_like_profile_sets_every_hard_option_and_explicit_values_win():
    config = ShopConfig.with_profile("real-like", **TINY)
    assert {k: getattr(config, k) for k in REAL_LIKE} == REAL_LIKE
    assert config.repeat_rate < 1 and config.seasonality < 1 and config.demand_noise > 0 and config.categories == 1
    assert config.one_currency and config.payment_method == "bank_transfer" and not config.chargebacks
    assert not config.web_events and config.free_item_rate > 0
    assert ShopConfig.with_profile("real-like", web_events=True, **TINY).web_events is True
    assert ShopConfig.with_profile("demo", **TINY) == ShopConfig(**TINY)
    assert set(PROFILES) == {"demo", "real-like"}
    with pytest.raises(ValueError, match="unknown shop profile 'real': choose one of demo, real-like"):
        ShopConfig.with_profile("real", **TINY)


def test_generate_command_takes_the_options(shoplake_home, tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["generate", "--help"])
    help_text = capsys.readouterr().out
    for flag in (
        "--profile",
        "--repeat-rate",
        "--seasonality",
        "--demand-noise",
        "--categories",
        "--one-currency",
        "--payment-method",
        "--no-chargebacks",
        "--no-web-events",
        "--free-item-rate",
    ):
        assert flag in help_text
    assert cli.main(["generate", "--customers", "50", "--days", "20", "--quiet", "--repeat-rate", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "repeat_rate must be between 0 and 1" in err
    assert (
        cli.main(
            [
                "generate",
                "--customers",
                "50",
                "--days",
                "20",
                "--quiet",
                "--profile",
                "real-like",
                "--web-events",
                "--categories",
                "2",
            ]
        )
        == 0
    )
    config = json.loads((tmp_path / "home" / "source" / "truth" / "generation.json").read_text())["config"]
    assert config["web_events"] is True and config["categories"] == 2
    assert {k: config[k] for k in REAL_LIKE if k not in ("web_events", "categories")} == {
        k: v for k, v in REAL_LIKE.items() if k not in ("web_events", "categories")
    }


# ---------------------------------------------------------------------------------------------
# each option, in the generated source
# ---------------------------------------------------------------------------------------------


def test_repeat_rate_zero_makes_every_customer_a_one_occasion_buyer(tmp_path, demo):
    db, truth = _shop(tmp_path, repeat_rate=0.0, dirty_rate=0.0, customers=1500)
    days_per_customer = _q(db, "SELECT COUNT(DISTINCT date(ordered_at)) FROM orders GROUP BY customer_id")
    assert days_per_customer and {n for (n,) in days_per_customer} == {1}, "one buying day (same-day bursts allowed)"
    # gone at the end of that day, says the truth (unless that day is the shop's last)
    last_day = {
        c: date.fromisoformat(d) for c, d in _q(db, "SELECT customer_id, MAX(date(ordered_at)) FROM orders GROUP BY 1")
    }
    end = ShopConfig(**TINY).end_date
    checked = 0
    for row in pq.read_table(truth / "customers.parquet").to_pylist():
        if row["customer_id"] in last_day and last_day[row["customer_id"]] < end:
            assert row["churned_at"] is not None
            assert row["churned_at"].date() <= last_day[row["customer_id"]] + timedelta(days=1)
            checked += 1
    assert checked > 100
    one_order_share = _q(db, "SELECT AVG(n = 1) FROM (SELECT COUNT(*) n FROM orders GROUP BY customer_id)")[0][0]
    demo_share = _q(
        demo[0],
        "SELECT AVG(n = 1) FROM (SELECT COUNT(*) n FROM orders WHERE customer_id IS NOT NULL GROUP BY customer_id)",
    )[0][0]
    assert one_order_share > 0.9 > demo_share


def test_repeat_rate_keeps_the_demand_truth_exact(tmp_path):
    """The truth's expected orders integrate the drop-out exactly: the source's count agrees within noise
    (without it, the truth would expect about twice as many)."""
    db, truth = _shop(
        tmp_path, repeat_rate=0.3, categories=1, dirty_rate=0.0, customers=6000, days=90, web_events=False
    )
    expected = sum(pq.read_table(truth / "demand.parquet").column("expected_orders").to_pylist())
    actual = _q(db, "SELECT COUNT(*) FROM orders")[0][0]
    assert abs(actual - expected) < 5 * np.sqrt(expected), (actual, expected)


def test_one_category_sells_only_that_category(tmp_path):
    db, truth = _shop(tmp_path, categories=1)
    assert _q(db, "SELECT category_id, name FROM categories") == [(1, CATEGORIES[0].name)]
    assert _q(db, "SELECT DISTINCT category_id FROM products") == [(1,)]
    other = _q(db, "SELECT COUNT(*) FROM order_items i JOIN products p USING (product_id) WHERE p.category_id <> 1")
    assert other == [(0,)]
    assert _q(db, "SELECT COUNT(*) FROM order_items")[0][0] > 100
    assert {c for (c,) in _q(db, "SELECT DISTINCT category_id FROM promotions")} <= {None, 1}
    demand = pq.read_table(truth / "demand.parquet").to_pandas()
    assert demand.loc[demand.category_id != 1, "expected_units"].sum() == 0


def test_one_currency_charges_usd_list_prices(tmp_path):
    db, _ = _shop(tmp_path, one_currency=True)
    assert _q(db, "SELECT DISTINCT currency FROM orders") == [("USD",)]
    assert _q(db, "SELECT DISTINCT currency FROM payments") == [("USD",)]
    assert _q(db, "SELECT currency, COUNT(*), MIN(usd_per_unit), MAX(usd_per_unit) FROM fx_rates GROUP BY 1") == [
        ("USD", TINY["days"], "1.00000000", "1.00000000")
    ]
    off_list = _q(
        db,
        "SELECT COUNT(*) FROM order_items i JOIN products p USING (product_id) "
        "WHERE CAST(i.unit_price AS TEXT) <> CAST(p.list_price_usd AS TEXT) AND i.quantity > 0",
    )[0][0]
    assert off_list == 0, "one price list: every clean line at the product's USD list price"
    assert _q(db, "SELECT COUNT(DISTINCT country) FROM customers")[0][0] > 5, "customers stay international"


def test_bank_transfer_only_has_no_cards_and_no_chargebacks_keeps_the_fraud_truth(tmp_path, demo):
    db, truth = _shop(tmp_path, payment_method="bank_transfer", chargebacks=False, customers=1500, days=120)
    assert _q(db, "SELECT method, COUNT(card_number), COUNT(card_country) FROM payments GROUP BY 1") == [
        ("bank_transfer", 0, 0)
    ]
    assert _q(db, "SELECT COUNT(*) FROM payments WHERE status = 'chargeback' OR chargeback_at IS NOT NULL")[0][0] == 0
    assert _q(db, "SELECT COUNT(*) FROM payments WHERE status = 'failed'")[0][0] == 0, "bank transfers do not fail"
    assert pq.read_table(truth / "payments.parquet").num_rows == _q(db, "SELECT COUNT(*) FROM payments")[0][0]


def test_no_chargebacks_changes_only_the_charged_back_payments(tmp_path):
    size = {"customers": 1500, "days": 150, "web_events": False}  # enough fraud for a few chargebacks
    db, truth = _shop(tmp_path / "off", chargebacks=False, **size)
    demo_db, _ = _shop(tmp_path / "on", **size)
    before, after = _table(demo_db, "payments"), _table(db, "payments")
    assert len(before) == len(after)
    charged_back = {r[0] for r in before if r[9] == "chargeback"}
    frauds = {r["payment_id"] for r in pq.read_table(truth / "payments.parquet").to_pylist() if r["is_fraud"]}
    assert charged_back and charged_back <= frauds
    assert [r for r in before if r[0] not in charged_back] == [r for r in after if r[0] not in charged_back]
    assert all(r[9] != "chargeback" and r[11] is None for r in after)
    assert _table(demo_db, "orders") == _table(db, "orders")


def test_no_web_events_leaves_every_other_table_as_it_was(tmp_path, demo):
    db, _ = _shop(tmp_path, web_events=False)
    assert _q(db, "SELECT COUNT(*) FROM web_events")[0][0] == 0
    assert _q(demo[0], "SELECT COUNT(*) FROM web_events")[0][0] > 1000
    for t in schema.TABLES:
        if t.name != "web_events":
            assert _table(db, t.name) == _table(demo[0], t.name), t.name


def test_free_items_are_lines_at_zero_that_still_add_up(tmp_path):
    db, truth = _shop(tmp_path, free_item_rate=0.1, dirty_rate=0.0, customers=800)
    lines = _q(db, "SELECT CAST(unit_price AS TEXT), CAST(line_discount AS TEXT) FROM order_items")
    free = [r for r in lines if Decimal(r[0]) == 0]
    assert 0.06 < len(free) / len(lines) < 0.14, (len(free), len(lines))
    assert all(Decimal(d) == 0 for _, d in free), "nothing to discount on a free line"
    assert all(Decimal(u) > 0 for u, _ in lines if Decimal(u) != 0)
    subtotal_ok = _q(
        db,
        """SELECT COUNT(*) FROM orders o WHERE CAST(o.subtotal AS REAL) <> ROUND((SELECT
        SUM(i.quantity * CAST(i.unit_price AS REAL) - CAST(i.line_discount AS REAL))
        FROM order_items i WHERE i.order_id = o.order_id), 2)""",
    )
    assert subtotal_ok == [(0,)]
    paid = _q(db, "SELECT COUNT(*) FROM payments p JOIN orders o USING (order_id) WHERE p.amount <> o.total")
    assert paid == [(0,)]


def test_weak_seasonality_and_noise_shape_the_intensity():
    start = 20_000  # a Monday-aligned stretch of days is not needed: a year covers every cycle
    no_promos = {k: np.zeros(0, dtype=np.int64) for k in ("start_day", "end_day", "pct_bp", "category")}
    flat = Intensity(start, 365, start, no_promos, shape=shape_of(ShopConfig(**TINY, seasonality=0.0)))
    demo = Intensity(start, 365, start, no_promos, shape=shape_of(ShopConfig(**TINY)))
    trend = 1.15 ** (np.arange(365) / 365.25)
    assert np.allclose(flat.S / trend, 1.0), "no seasonality: only the trend is left"
    assert (demo.S / trend).std() > 0.1
    weak = Intensity(start, 365, start, no_promos, shape=shape_of(ShopConfig(**TINY, seasonality=0.25)))
    assert 0.2 * (demo.S / trend).std() < (weak.S / trend).std() < 0.35 * (demo.S / trend).std()
    noisy = shape_of(ShopConfig(**TINY, seasonality=0.0, demand_noise=0.35))
    shock = daily_shock(noisy, np.arange(start, start + 2000))
    assert abs(np.log(shock).std() - 0.35) < 0.03 and abs(shock.mean() - 1.0) < 0.03
    # a pure function of (seed, day): the churn truth's window sees the same shocks as the run did
    a = Intensity(start, 100, start, no_promos, shape=noisy)
    b = Intensity(start + 60, 40, start, no_promos, shape=noisy)
    assert np.allclose(a.S[60:], b.S)
    other_seed = shape_of(ShopConfig(**(TINY | {"seed": 22}), seasonality=0.0, demand_noise=0.35))
    assert not np.allclose(daily_shock(other_seed, np.arange(start, start + 10)), shock[:10])


def test_a_hard_shop_keeps_its_options_when_simulated(tmp_path):
    db, truth = _shop(tmp_path, **REAL_LIKE)
    simulate_shop(5, f"sqlite:///{db}", truth, progress=False)
    assert _q(db, "SELECT COUNT(*) FROM orders WHERE ordered_at > '2026-10-31 23:59:59.999'")[0][0] > 0
    assert _q(db, "SELECT COUNT(*) FROM web_events")[0][0] == 0
    assert _q(db, "SELECT DISTINCT currency FROM fx_rates") == [("USD",)]
    assert _q(db, "SELECT DISTINCT method FROM payments") == [("bank_transfer",)]
    assert _q(db, "SELECT DISTINCT category_id FROM products") == [(1,)]
    assert _q(db, "SELECT COUNT(*) FROM payments WHERE status = 'chargeback'")[0][0] == 0


# ---------------------------------------------------------------------------------------------
# the whole job on two small hard shops (expensive: one run each, shared by the module's tests)
# ---------------------------------------------------------------------------------------------

REAL_LIKE_SHOP = ShopConfig.with_profile("real-like", customers=2000, days=450, seed=19)
YOUNG_SHOP = ShopConfig(customers=800, days=45, seed=19)  # a new shop: 45 days of history
FAMILIES = ("churn", "fraud", "forecasting")
# prod's analytics surface that dbt builds from the source alone (the model tables come on top)
PROD_MARTS = (
    "fct_orders",
    "fct_order_items",
    "fct_payments",
    "dim_customers",
    "dim_products",
    "daily_sales",
    "customer_cohorts",
    "conversion_funnel",
    "inventory_status",
    "regional_prices",
    "market_trends",
    "compliance_report",
)


def _lakehouse(tmp_path_factory, name: str, config: ShopConfig):
    from tests.conftest import isolated_env, run_job

    mp = pytest.MonkeyPatch()
    settings = isolated_env(mp, tmp_path_factory.mktemp(name))
    generate_shop(config, settings.source_url, settings.truth_dir, progress=False)
    result, checks = run_job("shoplake_all")
    return mp, (settings, result, checks)


@pytest.fixture(scope="module")
def real_like(tmp_path_factory):
    mp, lakehouse = _lakehouse(tmp_path_factory, "real-like", REAL_LIKE_SHOP)
    yield lakehouse
    mp.undo()


@pytest.fixture(scope="module")
def young(tmp_path_factory):
    mp, lakehouse = _lakehouse(tmp_path_factory, "young", YOUNG_SHOP)
    yield lakehouse
    mp.undo()


def _sql(settings, text: str) -> list[tuple]:
    from orchestration import query

    return query.run_query(query.connect(settings), text).fetchall()


def _assert_green(result, checks) -> None:
    from dagster import AssetCheckSeverity

    assert result.success, [e.message for e in result.all_events if e.is_failure]
    failed = [
        (c.asset_key.to_user_string(), c.check_name)
        for c in checks
        if not c.passed and c.severity == AssetCheckSeverity.ERROR
    ]
    assert failed == []


def _model_outcomes(settings, run_id: str) -> dict[str, tuple[str, str]]:
    """prod.compliance_report's model section of the run: {family_stage: (status, detail)}."""
    rows = _sql(
        settings,
        f"SELECT item, status, detail FROM prod.compliance_report WHERE section = 'models' AND run_id = '{run_id}'",
    )
    return {item: (status, detail) for item, status, detail in rows}


def _champion_tags(settings, model_name: str) -> dict[str, str]:
    from mlflow.tracking import MlflowClient

    from ml_assets import tracking

    client = tracking.configure(settings)
    assert isinstance(client, MlflowClient)
    return dict(client.get_model_version_by_alias(model_name, tracking.CHAMPION).tags)


@pytest.mark.slow
def test_real_like_shop_is_green_and_every_family_publishes(real_like):
    settings, result, checks = real_like
    _assert_green(result, checks)
    outcomes = _model_outcomes(settings, result.run_id)
    for family in FAMILIES:
        assert outcomes.get(f"{family}_promotion", ("missing",))[0] == "promoted", (family, outcomes)
        assert outcomes.get(f"{family}_scoring", ("missing",))[0] == "scored", (family, outcomes)
    customers = _sql(settings, "SELECT count(*) FROM prod.dim_customers")[0][0]
    assert 0 < _sql(settings, "SELECT count(DISTINCT customer_id) FROM prod.churn_scores")[0][0] <= customers
    assert _sql(settings, "SELECT count(*) FROM prod.demand_forecast")[0][0] > 0


@pytest.mark.slow
def test_real_like_fraud_scores_come_from_the_unsupervised_detector(real_like):
    from ml_assets.fraud import train as fraud_train

    settings, result, checks = real_like
    _assert_green(result, checks)
    payments = _sql(settings, "SELECT count(*) FROM prod.fct_payments")[0][0]
    assert payments > 1000
    assert _sql(settings, "SELECT scoring_mode, count(DISTINCT payment_id) FROM prod.fraud_scores GROUP BY 1") == [
        (fraud_train.UNSUPERVISED, payments)
    ]
    assert _champion_tags(settings, "shoplake_fraud")["shoplake.candidate"] == fraud_train.BASELINE
    high_risk = _sql(settings, "SELECT count(*) FROM prod.high_risk_transactions")[0][0]
    assert 0 < high_risk < 0.2 * payments, "the queue holds the riskiest few, by score quantile"


@pytest.mark.slow
def test_real_like_the_best_candidate_ships_and_a_baseline_wins_where_signal_is_weak(real_like):
    """In every family the first champion is the best candidate on the backtest windows. Weak, noisy
    seasonality on one category leaves a forecaster nothing to find that a flat mean of the recent
    days does not: a baseline wins the forecast, and its forecasts are the ones published."""
    from ml_assets.forecasting import train as forecast_train

    settings, _, _ = real_like
    winners = {}
    for model_name, higher_is_better in (("shoplake_churn", True), ("shoplake_demand_forecast", False)):
        tags = _champion_tags(settings, model_name)
        gate = json.loads(tags["shoplake.gate"])  # the backtest scores of the winner and of the others
        winner = winners[model_name] = tags["shoplake.candidate"]
        scores = {winner: gate["challenger"], **gate["baselines"]}
        assert gate["candidate"] == winner and len(scores) >= 3, gate
        best = max(scores.values()) if higher_is_better else min(scores.values())
        assert scores[winner] == best, (model_name, scores)
    assert winners["shoplake_demand_forecast"] in forecast_train.BASELINES, winners
    published = _sql(settings, "SELECT DISTINCT units_model FROM prod.demand_forecast")
    assert published == [(winners["shoplake_demand_forecast"],)]


@pytest.mark.slow
def test_young_shop_publishes_every_mart_and_skips_the_models_with_their_reason(young):
    settings, result, checks = young
    _assert_green(result, checks)
    published = {
        r[0] for r in _sql(settings, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'prod'")
    }
    assert set(PROD_MARTS) <= published
    for table in ("fct_orders", "fct_order_items", "fct_payments", "dim_customers", "daily_sales"):
        assert _sql(settings, f"SELECT count(*) FROM prod.{table}")[0][0] > 0, table
    outcomes = _model_outcomes(settings, result.run_id)
    for family in ("churn", "forecasting"):
        status, reason = outcomes.get(f"{family}_training", ("missing", ""))
        assert status == "skipped" and reason, (family, outcomes)
        assert f"{family}_promotion" not in outcomes or outcomes[f"{family}_promotion"][0] != "promoted"
    assert "churn_scores" not in published and "demand_forecast" not in published
    assert "reorder_suggestions" not in published, "downstream of a skipped family skips too"
    # fraud needs no history for its unsupervised detector: it either scores that way or skips with its reason
    status, reason = outcomes.get("fraud_training", outcomes.get("fraud_promotion", ("missing", "")))
    if status == "skipped":
        assert reason and "fraud_scores" not in published
    else:
        assert {m for (m,) in _sql(settings, "SELECT DISTINCT scoring_mode FROM prod.fraud_scores")} == {"unsupervised"}
