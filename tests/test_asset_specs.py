"""What the asset catalog says about every asset: who owns it and what its columns are."""

import json

import dagster as dg
import pyarrow as pa
import pytest

from orchestration import policies
from orchestration.contract.schema import table
from orchestration.settings import DBT_PROJECT_DIR

RAW_COLUMNS = ["_invalid_values", "_op", "_extracted_at", "_dagster_run_id"]


@pytest.fixture(scope="module")
def graph():
    from orchestration.definitions import defs

    return defs.resolve_asset_graph()


def _spec(graph, key: str):
    return graph.get(dg.AssetKey(key.split("/")))


def test_every_asset_has_its_teams_owner(graph):
    owners = {k.to_user_string(): graph.get(k).owners for k in graph.get_all_asset_keys() if graph.get(k).is_executable}
    assert len(owners) > 50
    ml = {k for k in owners if graph.get(dg.AssetKey(k.split("/"))).group_name == "ml"}
    assert {"ml/churn_model", "ml/fraud_promotion", "prod/demand_forecast", "prod/high_risk_transactions"} <= ml
    assert {k: o for k, o in owners.items() if k in ml and o != [policies.DATA_SCIENCE_OWNER]} == {}
    assert {k: o for k, o in owners.items() if k not in ml and o != [policies.DATA_PLATFORM_OWNER]} == {}
    assert "raw/orders" in owners and "prod/fct_orders" in owners and "curated/orders" in owners


def test_raw_orders_columns_are_the_contracts(graph):
    spec = _spec(graph, "raw/orders")
    schema = spec.metadata["dagster/column_schema"]
    contract = table("orders")
    assert [c.name for c in schema.columns] == [*contract.column_names, *RAW_COLUMNS]
    assert [(c.name, c.type) for c in schema.columns] == [
        ("order_id", "int64"),
        ("customer_id", "int64"),
        ("ordered_at", "timestamp[us]"),  # Iceberg keeps microseconds; the source's DATETIME(3) fits losslessly
        ("status", "string"),
        ("channel", "string"),
        ("currency", "string"),
        ("shipping_country", "string"),
        ("promo_code", "string"),
        ("subtotal", "decimal128(12, 2)"),
        ("discount", "decimal128(12, 2)"),
        ("shipping_fee", "decimal128(12, 2)"),
        ("total", "decimal128(12, 2)"),
        ("notes", "string"),
        ("updated_at", "timestamp[us]"),
        ("_invalid_values", "string"),
        ("_op", "string"),
        ("_extracted_at", "timestamp[us]"),
        ("_dagster_run_id", "string"),
    ]
    described = {c.name: c.description for c in schema.columns}
    assert {c.name: described[c.name] for c in contract.columns} == {c.name: c.doc for c in contract.columns}
    assert all(described[name] for name in RAW_COLUMNS)
    assert spec.metadata["dagster/table_name"] == "raw.orders"


def test_raw_payments_advertise_the_protected_card_columns_never_the_card_number(graph):
    names = [c.name for c in _spec(graph, "raw/payments").metadata["dagster/column_schema"].columns]
    assert "card_number" in table("payments").column_names
    assert "card_number" not in names
    assert names[names.index("card_bin") : names.index("card_bin") + 3] == ["card_bin", "card_last4", "card_token"]


def test_every_raw_table_has_the_column_schema_of_its_contract(graph):
    from orchestration.contract.schema import TABLES

    for t in TABLES:
        names = [c.name for c in _spec(graph, f"raw/{t.name}").metadata["dagster/column_schema"].columns]
        protected = [
            n for c in t.columns for n in (["card_bin", "card_last4", "card_token"] if c.card_number else [c.name])
        ]
        assert names == [*protected, *RAW_COLUMNS], t.name


def test_dbt_models_carry_their_documented_columns(graph):
    manifest = json.loads((DBT_PROJECT_DIR / "target" / "manifest.json").read_text())
    [node] = [n for n in manifest["nodes"].values() if n["resource_type"] == "model" and n["name"] == "fct_orders"]
    schema = _spec(graph, "prod/fct_orders").metadata["dagster/column_schema"]
    assert [c.name for c in schema.columns] == list(node["columns"])
    assert {c.name: c.description for c in schema.columns} == {
        name: col["description"] for name, col in node["columns"].items()
    }
    # a type where the model declares one (data_type), else dagster-dbt's unknown marker
    assert {c.type for c in schema.columns} <= {col.get("data_type") or "?" for col in node["columns"].values()}


def test_column_schema_names_arrow_types_as_published():
    from orchestration.lakehouse.catalog import iceberg_compatible

    frame = pa.schema([("payment_id", pa.int64()), ("scored_at", pa.timestamp("ns")), ("fraud_score", pa.float64())])
    schema = policies.column_schema(iceberg_compatible(frame), {"fraud_score": "what the champion scored"})
    assert [(c.name, c.type, c.description) for c in schema.columns] == [
        ("payment_id", "int64", None),
        ("scored_at", "timestamp[us]", None),
        ("fraud_score", "double", "what the champion scored"),
    ]
