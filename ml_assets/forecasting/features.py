"""Daily demand series and the promotion calendar the forecasts use.

A series is one measure (``units`` or ``revenue_usd``) of one category, or of one of the top
products. Days without sales are zeros. Promotions are planned weeks ahead (curated.promotions), so
they are known over the whole forecast horizon and are legitimate features of future days.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

TABLES = [
    "prod.daily_sales",
    "prod.fct_order_items",
    "prod.dim_products",
    "prod.inventory_status",
    "curated.promotions",
]
MEASURES = ("units", "revenue_usd")
TOP_PRODUCTS = 5
TOP_PRODUCTS_WINDOW_DAYS = 91
INPUT_COLUMNS = ["series_id", "date", "y", "promo_pct", "site_promo"]


def series_id(level: str, key: int, measure: str) -> str:
    return f"{level}:{int(key)}:{measure}"


def parse_series_id(sid: str) -> tuple[str, int, str]:
    level, key, measure = sid.split(":")
    return level, int(key), measure


def top_products(con: duckdb.DuckDBPyConnection, n: int = TOP_PRODUCTS) -> list[int]:
    """The n products with the most units sold over the last 91 days of data."""
    rows = con.execute(
        """
        SELECT product_id FROM prod.fct_order_items
        WHERE NOT is_cancelled
          AND order_date::DATE > (SELECT max(order_date)::DATE FROM prod.fct_order_items) - ?
        GROUP BY product_id ORDER BY sum(quantity) DESC, product_id LIMIT ?
        """,
        [TOP_PRODUCTS_WINDOW_DAYS, n],
    ).fetchall()
    return [int(r[0]) for r in rows]


def history(con: duckdb.DuckDBPyConnection, products: list[int]) -> pd.DataFrame:
    """Long frame: series_id, date, y, category_id, for every day from the first to the last sale."""
    categories = con.execute(
        """
        SELECT 'category' AS level, category_id AS key, category_id, order_date::DATE AS date,
               sum(units)::DOUBLE AS units, sum(revenue_usd)::DOUBLE AS revenue_usd
        FROM prod.daily_sales GROUP BY ALL
        """
    ).df()
    product_rows = con.execute(
        f"""
        SELECT 'product' AS level, product_id AS key, any_value(category_id) AS category_id, order_date::DATE AS date,
               sum(quantity)::DOUBLE AS units, sum(line_revenue_usd)::DOUBLE AS revenue_usd
        FROM prod.fct_order_items
        WHERE NOT is_cancelled AND product_id IN ({",".join(str(int(p)) for p in products) or "NULL"})
        GROUP BY product_id, order_date::DATE
        """
    ).df()
    all_categories = con.execute(
        "SELECT DISTINCT category_id FROM prod.dim_products WHERE category_id IS NOT NULL"
    ).df()
    product_category = (
        con.execute("SELECT product_id, category_id FROM prod.dim_products").df().set_index("product_id")["category_id"]
    )
    span = con.execute("SELECT min(order_date)::DATE, max(order_date)::DATE FROM prod.daily_sales").fetchone()
    if span[0] is None:
        return pd.DataFrame(columns=["series_id", "date", "y", "category_id"])
    dates = pd.date_range(span[0], span[1], freq="D")
    sales = pd.concat([categories, product_rows], ignore_index=True)
    sales["date"] = pd.to_datetime(sales["date"])
    keys = [("category", int(c), int(c)) for c in sorted(all_categories["category_id"])]
    keys += [("product", int(p), int(product_category.get(p, -1))) for p in products]
    frames = []
    for level, key, category in keys:
        part = sales[(sales["level"] == level) & (sales["key"] == key)].set_index("date").reindex(dates)
        for measure in MEASURES:
            frames.append(
                pd.DataFrame(
                    {
                        "series_id": series_id(level, key, measure),
                        "date": dates,
                        "y": part[measure].fillna(0.0).to_numpy(),
                        "category_id": category,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def promotion_calendar(con: duckdb.DuckDBPyConnection, start, end) -> pd.DataFrame:
    """Per day and category: the category's own discount (%) and the site-wide discount (%) running."""
    return (
        con.execute(
            """
        WITH days AS (SELECT unnest(generate_series(?::DATE, ?::DATE, INTERVAL 1 DAY))::DATE AS date),
        cats AS (SELECT DISTINCT category_id FROM prod.dim_products WHERE category_id IS NOT NULL)
        SELECT d.date, c.category_id,
               coalesce(max(p.discount_pct) FILTER (WHERE p.category_id = c.category_id), 0)::DOUBLE AS promo_pct,
               coalesce(max(p.discount_pct) FILTER (WHERE p.category_id IS NULL), 0)::DOUBLE AS site_promo
        FROM days d CROSS JOIN cats c
        LEFT JOIN curated.promotions p ON d.date BETWEEN p.starts_on AND p.ends_on
        GROUP BY ALL ORDER BY 1, 2
        """,
            [start, end],
        )
        .df()
        .assign(date=lambda f: pd.to_datetime(f["date"]))
    )


def model_input(hist: pd.DataFrame, promos: pd.DataFrame, origin: pd.Timestamp, horizon: int) -> pd.DataFrame:
    """The forecaster's input: each series' history up to ``origin`` and ``horizon`` future days with
    y = NaN, with the promotion features of every day."""
    past = hist[hist["date"] <= origin]
    future_dates = pd.date_range(origin + pd.Timedelta(days=1), periods=horizon, freq="D")
    cats = past.groupby("series_id", sort=True)["category_id"].first()
    future = pd.DataFrame(
        {
            "series_id": np.repeat(cats.index.to_numpy(), horizon),
            "date": np.tile(future_dates.to_numpy(), len(cats)),
            "y": np.nan,
            "category_id": np.repeat(cats.to_numpy(), horizon),
        }
    )
    frame = pd.concat([past, future], ignore_index=True)
    frame = frame.merge(promos, on=["date", "category_id"], how="left")
    frame[["promo_pct", "site_promo"]] = frame[["promo_pct", "site_promo"]].fillna(0.0)
    frame = frame.sort_values(["series_id", "date"], kind="stable").reset_index(drop=True)
    frame["y"] = frame["y"].astype("float64")
    return frame[INPUT_COLUMNS]
