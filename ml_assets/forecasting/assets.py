"""Demand forecasting as assets: train and register (``ml/forecasting_model``), gate
(``forecasting_challenger_beats_champion``), promote (``ml/forecasting_promotion``), forecast the next
28 days with ``@champion`` (``prod/demand_forecast``) and turn the forecast into days of cover and
reorder suggestions per product (``prod/reorder_suggestions``)."""

import time
from typing import TYPE_CHECKING

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa

from ml_assets import lakehouse_data, registry, reporting, tracking
from ml_assets.forecasting import features as F
from ml_assets.hyperparameters import FORECAST_BACKTEST_STEP_DAYS, FORECAST_BACKTEST_WINDOWS, FORECAST_HORIZON_DAYS
from orchestration.lakehouse.catalog import iceberg_compatible, load_catalog
from orchestration.lakehouse.publish import write_table
from orchestration.policies import DATA_SCIENCE_OWNER, PROD_FRESHNESS, TRAINING, column_schema, table_pool
from orchestration.resources import LakehouseResource
from orchestration.settings import Settings

if TYPE_CHECKING:
    from ml_assets.forecasting import train as T

# The training module (pandas, scikit-learn) is imported by the functions that train or score, as T:
# loading the code location stays light (ml_assets/definitions.py ML_RUNTIME_MODULES).

if TYPE_CHECKING:
    from ml_assets.forecasting.model import DemandForecaster

FAMILY = registry.Family(
    name="forecasting",
    model_name="shoplake_demand_forecast",
    metric="mase_category",
    higher_is_better=False,
    margin=0.005,
)
# Reorder policy: an order placed today arrives after LEAD_TIME_DAYS and must last until the next
# review, REVIEW_PERIOD_DAYS later; safety stock covers the 95% upper bound of lead-time demand.
LEAD_TIME_DAYS = 7
REVIEW_PERIOD_DAYS = 14
SHARE_WINDOW_DAYS = 28
PLOTTED_SERIES = 4


class ForecastTrainingConfig(dg.Config):
    n_windows: int = FORECAST_BACKTEST_WINDOWS
    step_days: int = FORECAST_BACKTEST_STEP_DAYS


def _category_names(con) -> dict[int, str]:
    return dict(con.execute("SELECT DISTINCT category_id, category_name FROM prod.dim_products").fetchall())


def _series_names(sids, categories: dict[int, str]) -> dict[str, str]:
    out = {}
    for sid in sids:
        level, key, measure = F.parse_series_id(sid)
        out[sid] = f"{categories.get(key, key)} ({measure})" if level == "category" else f"product {key} ({measure})"
    return out


def _input_example(data: "T.ForecastData") -> pd.DataFrame:
    from ml_assets.forecasting import train as T

    X = data.holdout_input()
    first = X["series_id"].iloc[0]
    part = X[X["series_id"] == first]
    return part.tail(35 + T.HORIZON).reset_index(drop=True)


@dg.asset(
    key=FAMILY.model_key,
    tags=TRAINING,
    output_required=False,
    group_name="ml",
    deps=[dg.AssetKey(t.split(".")) for t in F.TABLES if t != "prod.inventory_status"],
    kinds={"mlflow", "scikitlearn"},
    description="Backtests seasonal naive, 28-day mean, weekday mean and exponential smoothing per category and top "
    f"product (units and revenue, {FORECAST_HORIZON_DAYS}-day horizon) over {FORECAST_BACKTEST_WINDOWS} rolling "
    "origins, selects a candidate per series, calibrates conformal 80%/95% intervals on the backtest errors, logs "
    f"the selection and each baseline to MLflow and registers the best on the gate's windows as "
    f"`{FAMILY.model_name}@challenger`. Skips, with the reason, when the history is too short to backtest.",
)
def forecasting_model(context: dg.AssetExecutionContext, config: ForecastTrainingConfig, lakehouse: LakehouseResource):
    settings = lakehouse.settings()
    yield from registry.train_or_skip(context, FAMILY, settings, lambda: _train(context, config, settings))


def _train(
    context: dg.AssetExecutionContext, config: ForecastTrainingConfig, settings: Settings
) -> dg.MaterializeResult:
    from ml_assets.forecasting import train as T

    con, lineage = lakehouse_data.open_tables(settings, [t for t in F.TABLES if t != "prod.inventory_status"])
    data = T.load_data(con)
    series = data.history["series_id"].nunique()
    context.log.info(f"{series} series; training history to {data.origin.date()}, holdout the {T.HORIZON} days after")
    started, cpu = time.perf_counter(), time.process_time()
    result = T.fit_candidates(data, config.n_windows, config.step_days, log=context.log.info)
    fit_seconds, fit_cpu = time.perf_counter() - started, time.process_time() - cpu
    context.log.info(f"backtest, selection and holdout of every forecaster: {fit_seconds:.1f} s ({fit_cpu:.1f} s CPU)")

    client = tracking.configure(settings)
    champion, champion_at = registry.load_champion(client, FAMILY)
    champion_score = None
    if champion is not None:
        champion_score = _champion_score(champion, champion_at, data, context.log)
        context.log.info(f"champion v{champion_at} on the same gate windows: {FAMILY.metric} {champion_score:.4f}")

    experiment_id = tracking.experiment(settings, FAMILY.experiment)
    tags = lakehouse_data.lineage_tags(context.run.run_id, lineage)
    params = {
        "horizon_days": T.HORIZON,
        "holdout_origin": str(data.origin.date()),
        "series": series,
        "top_products": ",".join(map(str, data.products)),
        "backtest_windows": config.n_windows,
        "backtest_step_days": config.step_days,
    }
    example = _input_example(data)
    names = _series_names(data.history["series_id"].unique(), _category_names(con))
    plotted = [s for s in sorted(names) if s.startswith("category:") and s.endswith(":units")][:PLOTTED_SERIES]
    cats = [s for s in sorted(names) if s.startswith("category:")]
    runs = {}
    logging_started, logging_cpu = time.perf_counter(), time.process_time()
    latest_rows, latest_days = T.latest(result.per_series), T.latest(result.holdout)
    for name, model in result.forecasters.items():
        hold = latest_days[latest_days["forecaster"] == name]
        per = latest_rows[latest_rows["forecaster"] == name].set_index("series_id")
        figures = {
            "forecast_vs_actuals": reporting.forecast_figure(data.history, hold, plotted, f"{name}: holdout", names),
            "mase_by_series": reporting.bar_figure(
                [names[s] for s in cats],
                {
                    n: latest_rows[latest_rows["forecaster"] == n].set_index("series_id").loc[cats, "mase"].tolist()
                    for n in (name, T.NAIVE_REFERENCE)
                    if n in result.forecasters
                },
                f"{name}: holdout MASE",
                "MASE",
            ),
        }
        if name == T.SELECTED:
            chosen = per["model"].value_counts().sort_index()
            figures["model_selection"] = reporting.bar_figure(
                list(chosen.index), {"series": [int(v) for v in chosen]}, "candidate chosen per series", "series"
            )
        runs[name] = tracking.log_candidate(
            experiment_id,
            f"forecasting_{name}",
            {**tags, "candidate": name},
            {**params, "candidate": name},
            result.metrics[name],
            model,
            example,
            model.predict(example),
            figures,
        )
        context.log.info(f"logged {name} to MLflow (run {runs[name].run_id})")
    context.log.info(
        f"{len(runs)} forecasters logged with their plots in {time.perf_counter() - logging_started:.1f} s "
        f"({time.process_time() - logging_cpu:.1f} s CPU)"
    )
    scores = {n: m[FAMILY.metric] for n, m in result.metrics.items()}
    best = T.best(result, FAMILY.metric)
    others = {n: v for n, v in scores.items() if n != best}
    version = registry.register_challenger(
        client,
        FAMILY,
        runs[best].model_uri,
        scores[best],
        others,
        champion_score,
        champion_at,
        tags,
        candidate=best,
        reference=T.NAIVE_REFERENCE,
        windows=len(data.origins()),
    )
    summary = [
        {
            "forecaster": n,
            **{
                k: v
                for k, v in m.items()
                if k.startswith(("category_", "latest_category")) or k.endswith("mase_category")
            },
        }
        for n, m in result.metrics.items()
    ]
    if champion_score is not None:
        summary.append({"forecaster": f"champion v{champion_at}", "mase_category": champion_score})
    selected = latest_rows[latest_rows["forecaster"] == T.SELECTED]
    context.log.info(
        f"registered {best} as `{FAMILY.model_name}` v{version.version} (challenger): {FAMILY.metric} "
        f"{scores[best]:.4f} over {len(data.origins())} gate windows"
    )
    return dg.MaterializeResult(
        metadata={
            "challenger_version": version.version,
            "challenger_candidate": best,
            "holdout_origin": str(data.origin.date()),
            "gate_windows": len(data.origins()),
            "series": series,
            **{
                f"{best}_{k}": v
                for k, v in result.metrics[best].items()
                if k
                in (
                    "mase_category",
                    "latest_mase_category",
                    "backtest_mase_category",
                    "category_units_mase",
                    "category_units_bias",
                    "category_coverage_80",
                    "category_coverage_95",
                )
            },
            "backtest_windows": result.forecasters[T.SELECTED].validation_windows_,
            "training_seconds": round(fit_seconds, 2),
            "training_cpu_seconds": round(fit_cpu, 2),
            "models_chosen": dg.MetadataValue.json(
                {str(k): int(v) for k, v in selected["model"].value_counts().items()}
            ),
            "metrics": dg.MetadataValue.md(reporting.md_table(summary, 3)),
            "per_series": dg.MetadataValue.md(
                reporting.md_table(
                    [
                        {
                            "series": names[r.series_id],
                            "model": r.model,
                            "backtest_mase": r.backtest_mase,
                            "holdout_mase": r.mase,
                            "bias": r.bias,
                        }
                        for r in selected.itertuples()
                    ],
                    3,
                )
            ),
            "mlflow_run_id": runs[best].run_id,
            **runs[best].plot_metadata,
        }
    )


def _champion_score(champion, version, data: "T.ForecastData", log) -> float:
    """The champion's gate metric on the challenger's gate windows. A champion saved by an earlier forecaster
    whose format this code no longer reads cannot be compared: it scores infinity, so the new forecaster
    replaces it (it is still registered for rollback with the code that wrote it)."""
    from ml_assets.forecasting import train as T

    if not hasattr(champion, "group_quantiles_"):  # fitted before the conformal backtest existed
        log.warning(
            f"champion v{version} was saved by an earlier forecaster that this code cannot run; "
            "the challenger replaces it"
        )
        return float("inf")
    return T.score_on_windows(champion, data)


forecasting_gate = registry.gate_check(FAMILY)
forecasting_promotion = registry.promotion_asset(FAMILY)


_INTERVALS = "bound of the {}% prediction interval (conformal: from the chosen model's backtest errors)"
# prod.demand_forecast's columns, described in the asset's table schema (their types come from the table).
DEMAND_FORECAST_COLUMNS = {
    "level": "`category` (every category) or `product` (the top products by units over the last 91 days)",
    "category_id": "category of the series (of the product, for product rows)",
    "category_name": "category name",
    "product_id": "the product, for product rows; null for category rows",
    "forecast_date": "the day forecast",
    "horizon_day": "days after forecast_origin (1 .. 28)",
    "units": "forecast units sold that day (cancelled orders excluded)",
    "units_lo80": "lower " + _INTERVALS.format(80),
    "units_hi80": "upper " + _INTERVALS.format(80),
    "units_lo95": "lower " + _INTERVALS.format(95),
    "units_hi95": "upper " + _INTERVALS.format(95),
    "revenue_usd": "forecast revenue that day, USD",
    "revenue_usd_lo80": "lower " + _INTERVALS.format(80),
    "revenue_usd_hi80": "upper " + _INTERVALS.format(80),
    "revenue_usd_lo95": "lower " + _INTERVALS.format(95),
    "revenue_usd_hi95": "upper " + _INTERVALS.format(95),
    "units_model": "candidate chosen for this series' units by the rolling-origin backtest "
    "(seasonal_naive, window_mean, seasonal_window_mean, ets)",
    "revenue_usd_model": "candidate chosen for this series' revenue",
    "forecast_origin": "last day of sales history the forecast starts from",
    "model_version": f"version of `{FAMILY.model_name}` that forecast (the champion)",
}


def _models_chosen(table: pd.DataFrame) -> dict[str, int]:
    """How many series (units and revenue of each category and top product) each candidate forecasts."""
    per_series = table.drop_duplicates(["level", "category_id", "product_id"])
    counts = pd.concat([per_series["units_model"], per_series["revenue_usd_model"]]).value_counts()
    return {str(k): int(v) for k, v in counts.items()}


def forecast_demand(settings: Settings) -> tuple[pd.DataFrame, str]:
    """The next 28 days per category and top product from ``@champion``, one row per series and day."""
    from ml_assets.forecasting import train as T

    client = tracking.configure(settings)
    model, version = registry.require_champion(client, FAMILY)
    con, _ = lakehouse_data.open_tables(settings, [t for t in F.TABLES if t != "prod.inventory_status"])
    products = sorted({F.parse_series_id(s)[1] for s in model.selection_ if s.startswith("product:")})
    hist = F.history(con, products)
    origin = hist["date"].max()
    promos = F.promotion_calendar(con, hist["date"].min().date(), (origin + pd.Timedelta(days=T.HORIZON)).date())
    X = F.model_input(hist, promos, origin, T.HORIZON)
    pred = pd.concat([X[["series_id", "date"]], model.predict(X)], axis=1).dropna(subset=["forecast"])
    return _forecast_table(pred, model, origin, version, hist, _category_names(con)), str(version)


def _forecast_table(pred: pd.DataFrame, model: "DemandForecaster", origin, version, hist, categories) -> pd.DataFrame:
    parts = pred["series_id"].str.split(":", expand=True)
    pred = pred.assign(level=parts[0], key=parts[1].astype("int64"), measure=parts[2])
    pred["model"] = [model.selection_.get(s) or model._default_candidate() for s in pred["series_id"]]
    wide = pred.pivot_table(
        index=["level", "key", "date"],
        columns="measure",
        values=["forecast", "lo80", "hi80", "lo95", "hi95"],
        aggfunc="first",
    )
    wide.columns = [f"{m}{'' if v == 'forecast' else '_' + v}" for v, m in wide.columns]
    chosen = pred.pivot_table(index=["level", "key", "date"], columns="measure", values="model", aggfunc="first")
    out = wide.join(chosen.add_suffix("_model")).reset_index()
    category_of = hist.groupby("series_id")["category_id"].first()
    out["category_id"] = [
        k if lvl == "category" else int(category_of[F.series_id("product", k, "units")])
        for lvl, k in zip(out["level"], out["key"])
    ]
    out["product_id"] = [None if lvl == "category" else k for lvl, k in zip(out["level"], out["key"])]
    out["category_name"] = out["category_id"].map(categories)
    out["forecast_origin"] = origin.date()
    out["forecast_date"] = out["date"].dt.date
    out["horizon_day"] = (out["date"] - origin).dt.days.astype("int64")
    out["model_version"] = str(version)
    cols = [
        "level",
        "category_id",
        "category_name",
        "product_id",
        "forecast_date",
        "horizon_day",
        "units",
        "units_lo80",
        "units_hi80",
        "units_lo95",
        "units_hi95",
        "revenue_usd",
        "revenue_usd_lo80",
        "revenue_usd_hi80",
        "revenue_usd_lo95",
        "revenue_usd_hi95",
        "units_model",
        "revenue_usd_model",
        "forecast_origin",
        "model_version",
    ]
    out = out[cols].sort_values(["level", "category_id", "product_id", "forecast_date"], na_position="first")
    out["product_id"] = out["product_id"].astype("Int64")
    return out.reset_index(drop=True)


@registry.scoring_asset(
    FAMILY,
    "demand_forecast",
    F.TABLES,
    f"Daily units and revenue (USD) for the next {FORECAST_HORIZON_DAYS} days per category and top product, "
    "with 80% and "
    f"95% prediction intervals, from `{FAMILY.model_name}@champion`.",
)
def demand_forecast(context: dg.AssetExecutionContext, lakehouse: LakehouseResource):
    from ml_assets.forecasting import train as T

    settings = lakehouse.settings()
    if not registry.champion_ready(settings, FAMILY, context.log, context.run.run_id):
        return
    table, version = forecast_demand(settings)
    data = pa.Table.from_pandas(table, preserve_index=False)
    published = write_table(load_catalog(settings), "prod.demand_forecast", data, context.run.run_id)
    cat = table[table["level"] == "category"].groupby("category_name")[["units", "revenue_usd"]].sum().reset_index()
    chosen = _models_chosen(table)
    registry.record_scoring(
        settings,
        context.run.run_id,
        FAMILY,
        version,
        f"{len(table)} rows, {T.HORIZON} days from {table['forecast_origin'].iloc[0]}; models "
        + ", ".join(f"{k} x{v}" for k, v in chosen.items()),
    )
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(table),
            "model_version": version,
            "forecast_origin": str(table["forecast_origin"].iloc[0]),
            "dagster/column_schema": column_schema(iceberg_compatible(data.schema), DEMAND_FORECAST_COLUMNS),
            "models_chosen": dg.MetadataValue.json(chosen),
            f"next_{T.HORIZON}_days_by_category": dg.MetadataValue.md(reporting.md_table(cat.to_dict("records"), 1)),
            "iceberg_snapshot_id": str(published.current_snapshot().snapshot_id),
        }
    )


def reorder_table(inventory: pd.DataFrame, forecast: pd.DataFrame, shares: pd.DataFrame) -> pd.DataFrame:
    """Days of cover and a reorder suggestion per product from the daily forecast.

    Top products use their own forecast; every other product gets its category's forecast times its
    share of the category's units over the last 28 days (its 95% bound scaled the same way).
    """
    cat = forecast[forecast["level"] == "category"][["category_id", "forecast_date", "units", "units_hi95"]]
    own = forecast[forecast["level"] == "product"][["product_id", "forecast_date", "units", "units_hi95"]]
    alloc = shares.merge(cat, on="category_id")
    alloc["units"] *= alloc["share"]
    alloc["units_hi95"] *= alloc["share"]
    alloc = alloc[~alloc["product_id"].isin(own["product_id"])]
    daily = pd.concat([own.assign(source="product forecast"), alloc.assign(source="category share")], ignore_index=True)
    rows = []
    for product_id, part in daily.sort_values("forecast_date").groupby("product_id"):
        mean = part["units"].to_numpy()
        dev = np.maximum(part["units_hi95"].to_numpy() - mean, 0.0)
        rows.append(
            {
                "product_id": int(product_id),
                "forecast_source": part["source"].iloc[0],
                "forecast_units_28d": float(mean.sum()),
                "forecast_daily_units": float(mean.mean()),
                "lead_time_demand": float(mean[:LEAD_TIME_DAYS].sum()),
                "safety_stock": float(np.sqrt((dev[:LEAD_TIME_DAYS] ** 2).sum())),
                "cover_demand": float(mean[: LEAD_TIME_DAYS + REVIEW_PERIOD_DAYS].sum()),
                "cumulative": np.cumsum(mean),
            }
        )
    per = pd.DataFrame(rows)
    out = inventory.merge(per, on="product_id", how="left")

    def cover(on_hand, cumulative, daily_mean):
        if not isinstance(cumulative, np.ndarray) or not daily_mean or daily_mean <= 0:
            return None
        beyond = np.flatnonzero(cumulative > on_hand)
        return float(beyond[0]) if len(beyond) else float(on_hand / daily_mean)

    out["forecast_days_of_cover"] = [
        cover(q, c, d) for q, c, d in zip(out["quantity_on_hand"], out["cumulative"], out["forecast_daily_units"])
    ]
    out["reorder_point_units"] = np.ceil(out["lead_time_demand"].fillna(0) + out["safety_stock"].fillna(0)).astype(
        "int64"
    )
    out["reorder_now"] = out["quantity_on_hand"] <= out["reorder_point_units"]
    gap = out["cover_demand"].fillna(0) + out["safety_stock"].fillna(0) - out["quantity_on_hand"]
    out["suggested_order_units"] = np.where(out["reorder_now"], np.ceil(np.maximum(gap, 0)), 0).astype("int64")
    out = out.rename(columns={"days_of_cover": "trailing_days_of_cover"})
    cols = [
        "product_id",
        "sku",
        "name",
        "category_id",
        "quantity_on_hand",
        "reorder_point",
        "trailing_days_of_cover",
        "forecast_source",
        "forecast_units_28d",
        "forecast_daily_units",
        "forecast_days_of_cover",
        "lead_time_demand",
        "safety_stock",
        "reorder_point_units",
        "reorder_now",
        "suggested_order_units",
        "as_of_date",
    ]
    return out[cols].sort_values(["reorder_now", "forecast_days_of_cover"], ascending=[False, True], na_position="last")


@dg.asset(
    key=["prod", "reorder_suggestions"],
    pool=table_pool("prod.reorder_suggestions"),
    freshness_policy=PROD_FRESHNESS,
    group_name="ml",
    deps=[dg.AssetKey(["prod", "demand_forecast"]), dg.AssetKey(["prod", "inventory_status"])],
    kinds={"iceberg"},
    description=f"prod.inventory_status joined with the demand forecast: forecast days of cover, a reorder point "
    f"(demand over a {LEAD_TIME_DAYS}-day lead time + safety stock from the 95% interval) and the units to order now "
    f"to last until the next review in {REVIEW_PERIOD_DAYS} days.",
)
def reorder_suggestions(context: dg.AssetExecutionContext, lakehouse: LakehouseResource) -> dg.MaterializeResult:
    settings = lakehouse.settings()
    con, lineage = lakehouse_data.open_tables(
        settings, ["prod.inventory_status", "prod.demand_forecast", "prod.fct_order_items"]
    )
    inventory = con.execute("SELECT * FROM prod.inventory_status").df()
    forecast = con.execute("SELECT * FROM prod.demand_forecast").df()
    shares = con.execute(
        f"""
        WITH recent AS (
            SELECT product_id, category_id, sum(quantity)::DOUBLE AS units FROM prod.fct_order_items
            WHERE NOT is_cancelled
              AND order_date::DATE > (SELECT max(order_date)::DATE FROM prod.fct_order_items) - {SHARE_WINDOW_DAYS}
            GROUP BY ALL
        )
        SELECT product_id, category_id, units / sum(units) OVER (PARTITION BY category_id) AS share FROM recent
        """
    ).df()
    table = reorder_table(inventory, forecast, shares)
    data = pa.Table.from_pandas(table.reset_index(drop=True), preserve_index=False)
    published = write_table(load_catalog(settings), "prod.reorder_suggestions", data, context.run.run_id)
    urgent = table[table["reorder_now"]]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(table),
            "dagster/column_schema": column_schema(iceberg_compatible(data.schema)),
            "products_to_reorder": int(len(urgent)),
            "units_to_order": int(urgent["suggested_order_units"].sum()),
            "most_urgent": dg.MetadataValue.md(
                reporting.md_table(
                    urgent.head(10)[
                        ["sku", "quantity_on_hand", "forecast_days_of_cover", "suggested_order_units"]
                    ].to_dict("records"),
                    1,
                )
            ),
            "iceberg_snapshot_id": str(published.current_snapshot().snapshot_id),
            "forecast_snapshot_id": lineage["prod.demand_forecast"],
        }
    )


# Every ML asset answers to data science in the asset catalog.
FORECASTING_ASSETS = dg.map_asset_specs(
    lambda spec: spec.replace_attributes(owners=[DATA_SCIENCE_OWNER]),
    [forecasting_model, forecasting_promotion, demand_forecast, reorder_suggestions],
)
FORECASTING_CHECKS = [forecasting_gate]
