"""The incremental marts after `shoplake simulate`: they rebuild only what changed, erased
customers' orders disappear, and the result equals `dbt run --full-refresh`. Also: `dbt docs
generate` succeeds and documents every model and column.

One generated shop serves the module: a first run builds everything from scratch; simulate adds a
week (new orders, status changes, abandoned carts hard deleted) and a second run builds
incrementally; two more days and a GDPR erasure of a customer with orders, and a third run.
"""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterInstance

from orchestration.lakehouse import duckdb_extensions
from orchestration.lakehouse.views import refresh_raw_views
from orchestration.settings import DBT_PROJECT_DIR, Settings

pytestmark = pytest.mark.slow

CUSTOMERS, DAYS, SEED = 400, 150, 8
# relation -> (dbt model, key columns)
INCREMENTAL = {
    "prod.fct_orders": ("fct_orders", ["order_id"]),
    "prod.fct_order_items": ("fct_order_items", ["order_item_id"]),
    "prod.fct_payments": ("fct_payments", ["payment_id"]),
    "prod.conversion_funnel": ("conversion_funnel", ["session_date", "channel"]),
    "curated.web_events": ("web_events", ["event_id"]),
    "quarantine.web_events": ("quarantine_web_events", ["event_id", "rule"]),
}
MODELS = [model for model, _ in INCREMENTAL.values()]


def run(selection):
    from orchestration.definitions import defs

    with DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("shoplake_all").execute_in_process(
            instance=instance, raise_on_error=False, asset_selection=selection
        )
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    return result


def dbt(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    """dbt by hand against the module's DuckDB, with a private target folder."""
    env = {**os.environ, "SHOPLAKE_DUCKDB_PATH": str(settings.duckdb_path), "SHOPLAKE_HOME": str(settings.home)}
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "dbt"),
            *args,
            "--profiles-dir",
            ".",
            "--target-path",
            str(settings.home / "dbt-target"),
        ],
        cwd=DBT_PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-4000:]
    return done


def duck(settings: Settings, read_only: bool = True) -> duckdb.DuckDBPyConnection:
    return duckdb_extensions.connect(settings.duckdb_extension_dir, str(settings.duckdb_path), read_only=read_only)


def source_keys(settings: Settings, table: str, key: str) -> set[int]:
    con = sqlite3.connect(settings.source_url.split(":///", 1)[1])
    try:
        return {r[0] for r in con.execute(f"SELECT {key} FROM {table}")}
    finally:
        con.close()


def erase_customer_with_orders(settings: Settings) -> int:
    """A GDPR erasure at the source, as the shop performs it: the customer and all their activity."""
    con = sqlite3.connect(settings.source_url.split(":///", 1)[1])
    try:
        (customer,) = con.execute(
            "SELECT customer_id FROM orders WHERE customer_id IS NOT NULL GROUP BY customer_id "
            "HAVING count(*) >= 2 ORDER BY customer_id LIMIT 1"
        ).fetchone()
        orders = f"SELECT order_id FROM orders WHERE customer_id = {customer}"
        lines = f"SELECT order_item_id FROM order_items WHERE order_id IN ({orders})"
        for statement in (
            f"DELETE FROM returns WHERE order_item_id IN ({lines})",
            f"DELETE FROM order_items WHERE order_id IN ({orders})",
            f"DELETE FROM payments WHERE order_id IN ({orders})",
            f"DELETE FROM shipments WHERE order_id IN ({orders})",
            f"DELETE FROM support_tickets WHERE customer_id = {customer}",
            f"DELETE FROM web_events WHERE customer_id = {customer}",
            f"DELETE FROM orders WHERE customer_id = {customer}",
            f"DELETE FROM customers WHERE customer_id = {customer}",
        ):
            con.execute(statement)
        con.commit()
        return customer
    finally:
        con.close()


@pytest.fixture(scope="module")
def simulated(module_home):
    from demo_shop.generate import ShopConfig, generate_shop
    from demo_shop.simulate import simulate_shop
    from orchestration.defs.extract.assets import extract_source_tables
    from orchestration.defs.transform.assets import dbt_curated_and_prod

    settings = module_home
    generate_shop(
        ShopConfig(customers=CUSTOMERS, days=DAYS, seed=SEED), settings.source_url, settings.truth_dir, progress=False
    )
    raw_keys, dbt_keys = (
        sorted(extract_source_tables.keys),
        sorted(extract_source_tables.keys | dbt_curated_and_prod.keys),
    )
    run(dbt_keys)  # from scratch

    # A first week: the shop's retention job also deletes the abandoned carts of the whole history,
    # so this build touches most days of the funnel.
    simulations = [simulate_shop(5, settings.source_url, settings.truth_dir, seed=4, progress=False)]
    run(dbt_keys)

    # A second, ordinary, short stretch, plus a GDPR erasure of a customer with orders.
    simulations.append(simulate_shop(2, settings.source_url, settings.truth_dir, seed=5, progress=False))
    con = duck(settings)
    before = {
        "orders": {r[0] for r in con.execute("SELECT order_id FROM prod.fct_orders").fetchall()},
        "rows": {r: con.execute(f"SELECT count(*) FROM {r}").fetchone()[0] for r in INCREMENTAL},
    }
    con.close()
    erased = erase_customer_with_orders(settings)

    run(raw_keys)  # extract the changes, then measure what the incremental build will recompute
    refresh_raw_views(settings)
    dbt(settings, "compile", "--select", *MODELS)
    con = duck(settings)
    batches = {}
    for relation, (model, _) in INCREMENTAL.items():
        folder = relation.split(".")[0]
        compiled = (
            settings.home / "dbt-target" / "compiled" / "shoplake" / "models" / folder / f"{model}.sql"
        ).read_text()
        assert "_extracted_at > cast('" in compiled  # compiled as an incremental build
        batches[relation] = con.execute(f"SELECT count(*) FROM ({compiled})").fetchone()[0]
    con.close()

    run(sorted(dbt_curated_and_prod.keys))  # the incremental build, with every check
    return settings, simulations, before, batches, erased


def test_the_simulation_changed_what_the_marts_are_built_from(simulated):
    _, simulations, _, _, _ = simulated
    for simulation in simulations:
        assert simulation["inserted"]["orders"] > 0 and simulation["updated"]["orders"] > 0
        assert simulation["deleted"]["web_events"] > 0  # abandoned carts
    assert sum(s["erased_customers"] for s in simulations) >= 1


def test_incremental_builds_recompute_only_what_changed(simulated):
    settings, _, before, batches, _ = simulated
    for relation, batch in batches.items():
        # quarantine.web_events holds only the duplicates among the rebuilt sessions: maybe none
        assert (relation.startswith("quarantine") or batch > 0) and batch < before["rows"][relation] / 3, (
            relation,
            batch,
            before["rows"][relation],
        )


def test_erased_customers_orders_are_gone(simulated):
    settings, _, before, _, erased = simulated
    deleted = before["orders"] - source_keys(settings, "orders", "order_id")
    assert len(deleted) >= 2  # the erasure (and nothing else) removes orders at the source
    con = duck(settings)
    held = {r[0] for r in con.execute("SELECT order_id FROM prod.fct_orders").fetchall()}
    lines = con.execute(
        f"SELECT count(*) FROM prod.fct_order_items WHERE order_id IN ({', '.join(map(str, deleted))})"
    ).fetchone()[0]
    payments = con.execute(
        f"SELECT count(*) FROM prod.fct_payments WHERE order_id IN ({', '.join(map(str, deleted))})"
    ).fetchone()[0]
    customers = con.execute("SELECT count(*) FROM prod.dim_customers WHERE customer_id = ?", [erased]).fetchone()[0]
    con.close()
    assert not (held & deleted) and lines == 0 and payments == 0 and customers == 0
    assert max(held) > max(before["orders"])  # and the new orders arrived


def test_incremental_marts_equal_a_full_refresh(simulated):
    settings, _, _, _, _ = simulated
    con = duck(settings, read_only=False)
    con.execute("CREATE SCHEMA IF NOT EXISTS incremental_copy")
    for relation in INCREMENTAL:
        con.execute(
            f"CREATE OR REPLACE TABLE incremental_copy.{relation.replace('.', '__')} AS SELECT * FROM {relation}"
        )
    con.close()

    dbt(settings, "run", "--full-refresh", "--select", *MODELS)

    con = duck(settings)
    for relation in INCREMENTAL:
        full, incremental = relation, f"incremental_copy.{relation.replace('.', '__')}"
        counts = [con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in (full, incremental)]
        only_full = con.execute(
            f"SELECT count(*) FROM (SELECT * FROM {full} EXCEPT ALL SELECT * FROM {incremental})"
        ).fetchone()[0]
        only_incremental = con.execute(
            f"SELECT count(*) FROM (SELECT * FROM {incremental} EXCEPT ALL SELECT * FROM {full})"
        ).fetchone()[0]
        checksum = "SELECT sum(hash(t)) FROM {} AS t"  # order-independent
        assert (only_full, only_incremental) == (0, 0), relation
        assert (
            counts[0] == counts[1] > 0
            and con.execute(checksum.format(full)).fetchone() == con.execute(checksum.format(incremental)).fetchone()
        )
    con.close()


def test_dbt_docs_describe_every_model_and_column(simulated):
    settings, _, _, _, _ = simulated
    dbt(settings, "docs", "generate")
    target = settings.home / "dbt-target"
    manifest = json.loads((target / "manifest.json").read_text())
    catalog = json.loads((target / "catalog.json").read_text())
    undocumented = []
    models = [n for n in manifest["nodes"].values() if n["resource_type"] in ("model", "seed")]
    assert {n["name"] for n in models if n["schema"] == "prod"} >= {
        "fct_orders",
        "conversion_funnel",
        "dim_customers",
    }
    for node in models:
        if not node["description"].strip():
            undocumented.append(node["name"])
        documented = {c for c, spec in node["columns"].items() if spec["description"].strip()}
        actual = {c.lower() for c in catalog["nodes"][node["unique_id"]]["columns"]}
        undocumented += [f"{node['name']}.{c}" for c in sorted(actual - documented)]
    assert undocumented == []
