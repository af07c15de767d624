"""Writes notebooks/analyst_exploration.ipynb from the cells below (kept as code so reviews see diffs).

.venv/bin/python notebooks/build_notebooks.py
"""

from pathlib import Path

import nbformat as nbf

HERE = Path(__file__).parent

ANALYST = [
    (
        "markdown",
        """# Shoplake: an analyst's tour of prod

Every query reads the **published Iceberg snapshots** of `prod.*` (never the pipeline's DuckDB file),
so this notebook is safe to run while the pipeline is writing. Run `make demo` first.""",
    ),
    (
        "code",
        """%matplotlib inline
import matplotlib.pyplot as plt

from orchestration import query
from orchestration.settings import Settings

con = query.connect(Settings.from_env())
query.published_tables(con)[:10]""",
    ),
    ("markdown", "## Sales: revenue per week and region (USD)"),
    (
        "code",
        """weekly = con.sql(\"\"\"
    SELECT date_trunc('week', order_date) AS week, region, sum(revenue_usd)::DOUBLE AS revenue_usd
    FROM prod.daily_sales GROUP BY ALL ORDER BY week
\"\"\").df()
pivot = weekly.pivot(index="week", columns="region", values="revenue_usd").fillna(0)
ax = pivot.plot(figsize=(10, 4), title="Weekly revenue by region (USD)")
ax.set_ylabel("USD")
assert len(pivot) > 0
pivot.tail()""",
    ),
    (
        "code",
        """by_category = con.sql(\"\"\"
    SELECT category_name, sum(revenue_usd)::DOUBLE AS revenue_usd, sum(units) AS units,
           (sum(revenue_usd) / sum(orders))::DOUBLE AS revenue_per_order
    FROM prod.daily_sales GROUP BY ALL ORDER BY revenue_usd DESC
\"\"\").df()
by_category.plot.barh(
    x="category_name", y="revenue_usd", figsize=(8, 4), legend=False, title="Revenue by category (USD)"
)
by_category""",
    ),
    ("markdown", "## Customers: retention by acquisition cohort"),
    (
        "code",
        """cohorts = con.sql(\"\"\"
    SELECT cohort_month, months_since_acquisition, retention_rate::DOUBLE AS retention_rate
    FROM prod.customer_cohorts ORDER BY ALL
\"\"\").df()
grid = cohorts.pivot(index="cohort_month", columns="months_since_acquisition", values="retention_rate")
fig, ax = plt.subplots(figsize=(8, 4))
image = ax.imshow(grid.values, aspect="auto", cmap="viridis")
ax.set_yticks(range(len(grid.index)), [str(m)[:7] for m in grid.index])
ax.set_xlabel("months since acquisition"); ax.set_title("Retention by cohort")
fig.colorbar(image)
assert grid.iloc[:, 0].dropna().between(0, 1).all()
grid.round(2)""",
    ),
    (
        "code",
        """segments = con.sql(\"\"\"
    SELECT segment, count(*) AS customers, avg(historical_clv_usd)::DOUBLE AS avg_clv_usd
    FROM prod.dim_customers GROUP BY ALL ORDER BY customers DESC
\"\"\").df()
segments""",
    ),
    ("markdown", "## Conversion funnel by channel"),
    (
        "code",
        """funnel = con.sql(\"\"\"
    SELECT channel, sum(sessions) AS sessions, sum(product_view_sessions) AS product_view,
           sum(add_to_cart_sessions) AS add_to_cart, sum(checkout_sessions) AS checkout,
           sum(purchase_sessions) AS purchase
    FROM prod.conversion_funnel GROUP BY ALL ORDER BY channel
\"\"\").df().set_index("channel")
(funnel.T / funnel["sessions"]).plot(marker="o", figsize=(8, 4), title="Share of sessions reaching each step")
assert (funnel["purchase"] <= funnel["checkout"]).all()
funnel""",
    ),
]


def build(cells, path: Path) -> None:
    nb = nbf.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbf.v4.new_markdown_cell(src) if kind == "markdown" else nbf.v4.new_code_cell(src) for kind, src in cells
    ]
    nbf.write(nb, path)


if __name__ == "__main__":
    build(ANALYST, HERE / "analyst_exploration.ipynb")
    print(HERE / "analyst_exploration.ipynb")
