"""Write-audit-publish: readers see a table's new snapshot only after its blocking checks passed it.

One small shop and three in-process runs of the lakehouse (extraction, dbt, quality checks):
a first run, a daily refresh whose prod.fct_orders is falsified in the writer's DuckDB file between
dbt and the publish (what `ATTACH transform.duckdb` + `UPDATE` did in issue 18), and the next run
once the file is repaired.
"""

import dagster as dg
import pytest
from dagster import DagsterInstance

from orchestration import query
from orchestration.defs.checks import audit
from orchestration.lakehouse import duckdb_extensions
from orchestration.lakehouse.catalog import AUDIT_BRANCH, load_catalog, staged_snapshot
from orchestration.settings import Settings

pytestmark = pytest.mark.slow

CUSTOMERS, DAYS, SEED = 200, 90, 7
FCT_ORDERS = "SELECT count(*), sum(total_usd)::VARCHAR, max(order_id) FROM prod.fct_orders"
FALSIFIED_BY = 1000  # one order's USD value, multiplied: its total no longer adds up


def lakehouse_run(instance: DagsterInstance):
    """Extraction and dbt with their checks (the quality checks come along); no ML."""
    from orchestration.definitions import defs
    from orchestration.defs.extract.assets import extract_source_tables
    from orchestration.defs.transform.assets import dbt_curated_and_prod

    selection = sorted(extract_source_tables.keys | dbt_curated_and_prod.keys)
    job = defs.resolve_job_def("shoplake_all")
    result = job.execute_in_process(instance=instance, raise_on_error=False, asset_selection=selection)
    evaluations = [
        e.asset_check_evaluation_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    return result, evaluations


def reader(settings: Settings, sql: str = FCT_ORDERS) -> tuple:
    """What an analyst's `shoplake sql` session answers."""
    con = query.connect(settings)
    try:
        return con.execute(sql).fetchone()
    finally:
        con.close()


def writer(settings: Settings, sql: str) -> tuple | None:
    con = duckdb_extensions.connect(settings.duckdb_extension_dir, str(settings.duckdb_path))
    try:
        return con.execute(sql).fetchone()
    finally:
        con.close()


def staged(settings: Settings, sql: str = FCT_ORDERS) -> tuple:
    """What the quality checks read: staged snapshots where there are some."""
    con, _ = audit.open_session(settings, ["prod"])
    try:
        return con.execute(sql).fetchone()
    finally:
        con.close()


def current_snapshots(settings: Settings) -> dict[str, int]:
    catalog = load_catalog(settings)
    return {
        ".".join(ident): catalog.load_table(ident).current_snapshot().snapshot_id
        for ns in ("curated", "quarantine", "prod")
        for ident in catalog.list_tables(ns)
        if catalog.load_table(ident).current_snapshot() is not None
    }


@pytest.fixture
def shop(shoplake_home):
    from demo_shop.generate import ShopConfig, generate_shop

    config = ShopConfig(customers=CUSTOMERS, days=DAYS, seed=SEED)
    generate_shop(config, shoplake_home.source_url, shoplake_home.truth_dir, progress=False)
    return shoplake_home


def test_a_falsified_table_stays_unpublished_until_a_good_run_and_a_passing_run_publishes(shop, monkeypatch):
    from demo_shop.simulate import simulate_shop
    from orchestration.defs.transform import assets

    settings = shop
    with DagsterInstance.ephemeral() as instance:
        # 1. A passing run makes every new snapshot current: main is at the snapshot each table's
        #    materialization names, and nothing is left staged.
        first, evaluations = lakehouse_run(instance)
        assert first.success and evaluations and all(e.passed for e in evaluations)
        named = {
            f"{m.asset_key.path[0]}.{m.asset_key.path[-1]}": int(m.metadata["iceberg_snapshot_id"].value)
            for m in (e.materialization for e in first.get_asset_materialization_events())
            if "published_as" in m.metadata and m.metadata["published_as"].value == "staged on branch audit"
        }
        assert len(named) >= 30 and "prod.fct_orders" in named
        now = current_snapshots(settings)
        assert {t: now[t] for t in named} == named
        catalog = load_catalog(settings)
        assert not [t for t in named if staged_snapshot(catalog.load_table(t)) is not None]
        good = reader(settings)
        good_snapshot = now["prod.fct_orders"]
        orders_before = reader(settings, "SELECT count(*) FROM curated.orders")[0]

        # 2. A day passes; the refresh's fct_orders is falsified after dbt, before the publish.
        simulate_shop(1, settings.source_url, settings.truth_dir, seed=3, progress=False)
        victim = writer(settings, "SELECT max(order_id) FROM prod.fct_orders")[0]
        true_value = writer(settings, f"SELECT total_usd FROM prod.fct_orders WHERE order_id = {victim}")[0]
        publish = assets.publish_tables
        falsify = f"SET total_usd = total_usd * {FALSIFIED_BY} WHERE order_id = {victim}"

        def falsify_then_publish(*args, **kwargs):
            writer(settings, f"UPDATE prod.fct_orders {falsify}")
            return publish(*args, **kwargs)

        with monkeypatch.context() as patch:
            patch.setattr(assets, "publish_tables", falsify_then_publish)
            refresh, evaluations = lakehouse_run(instance)

        # The run failed on that check, and says on which row.
        assert not refresh.success
        failed = [e for e in evaluations if not e.passed]
        assert [(e.asset_key.to_user_string(), e.check_name) for e in failed] == [("prod/fct_orders", "pandera_schema")]
        metadata = failed[0].metadata
        assert metadata["failure_cases"].value == 1
        assert "amounts_add_up" in metadata["failures_by_check"].value
        assert f"order_id={victim}" in metadata["failure_case_sample"].value
        assert metadata["snapshot_staged"].value is True
        assert "snapshot_staged" in metadata and int(metadata["iceberg_snapshot_id"].value) != good_snapshot

        # Readers keep the last good snapshot; the falsified one waits on the audit branch.
        assert reader(settings) == good
        ice = load_catalog(settings).load_table("prod.fct_orders")
        assert ice.current_snapshot().snapshot_id == good_snapshot
        assert staged_snapshot(ice).snapshot_id == int(metadata["iceberg_snapshot_id"].value)
        victim_value = f"SELECT total_usd FROM prod.fct_orders WHERE order_id = {victim}"
        assert staged(settings, victim_value)[0] == true_value * FALSIFIED_BY
        # Tables built from it are kept back too; tables that do not read it were published.
        assert ice.metadata.refs[AUDIT_BRANCH].snapshot_id != good_snapshot
        daily = load_catalog(settings).load_table("prod.daily_sales")
        assert staged_snapshot(daily) is not None and daily.current_snapshot().snapshot_id == now["prod.daily_sales"]
        orders_after = reader(settings, "SELECT count(*) FROM curated.orders")[0]
        assert orders_after > orders_before  # the day's new orders: curated.orders passed, so it is current
        # ML would not start: the failed blocking check stops the steps downstream of fct_orders.

        # 3. The file is repaired; the next run publishes normally, once its checks passed.
        writer(settings, f"UPDATE prod.fct_orders SET total_usd = total_usd / {FALSIFIED_BY} WHERE order_id = {victim}")
        during_checks = []
        promote = audit.promote_passing

        def look_then_promote(*args, **kwargs):
            during_checks.append(reader(settings))  # checks done, nothing promoted yet
            return promote(*args, **kwargs)

        with monkeypatch.context() as patch:
            patch.setattr(audit, "promote_passing", look_then_promote)
            repaired, evaluations = lakehouse_run(instance)

    assert repaired.success and all(e.passed for e in evaluations)
    assert during_checks == [good]  # even a snapshot that will pass is invisible while it is checked
    expected = writer(settings, FCT_ORDERS)
    assert reader(settings) == expected != good
    assert expected[0] == orders_after  # one prod row per curated order, the day's included
    assert reader(settings, victim_value)[0] == true_value
    catalog = load_catalog(settings)
    for table in ("prod.fct_orders", "prod.daily_sales"):
        assert staged_snapshot(catalog.load_table(table)) is None, table
    fct = dg.AssetKey(["prod", "fct_orders"])
    published = [e.materialization for e in repaired.get_asset_materialization_events() if e.asset_key == fct]
    assert published[0].metadata["publish_mode"].value == "replaced"  # the state named the failed snapshot
    assert current_snapshots(settings)["prod.fct_orders"] == int(published[0].metadata["iceberg_snapshot_id"].value)
