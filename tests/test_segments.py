"""K-means customer segments: planted groups recovered exactly, names from centroids, ids that stay
put across runs (shuffled rows, another seed, a previous run with other ids), a shop whose buyers are
all alike, and the asset publishing prod.customer_segments with its MLflow run on a tiny shop."""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.metrics import adjusted_rand_score

from ml_assets.segments import train as T
from ml_assets.segments.assets import customer_segments
from orchestration.lakehouse.catalog import load_catalog
from orchestration.lakehouse.publish import write_table
from orchestration.resources import LakehouseResource

AS_OF = dt.date(2026, 6, 30)
# Three planted groups, far apart in every clustering feature once log-transformed:
# (size, orders, average order value, recency days, tenure days, return rate), each drawn uniformly
# in [low, high].
PLANTED = {
    "A": (60, (20, 30), (300.0, 400.0), (1, 8), (500, 600), (0.0, 0.04)),
    "B": (100, (1, 1), (10.0, 14.0), (250, 320), (260, 330), (0.0, 0.04)),
    "C": (40, (4, 6), (60.0, 80.0), (30, 50), (60, 90), (0.3, 0.4)),
}


def planted_frame(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Buyer features as features.buyer_features gives them, and each buyer's planted group."""
    rng = np.random.default_rng(seed)
    parts, groups = [], []
    for group, (n, orders, aov, recency, tenure, returns) in PLANTED.items():
        o = rng.integers(orders[0], orders[1] + 1, n).astype(float)
        v = rng.uniform(*aov, n)
        parts.append(
            pd.DataFrame(
                {
                    "recency_days": rng.integers(recency[0], recency[1] + 1, n).astype(float),
                    "orders": o,
                    "revenue_usd": o * v,
                    "avg_order_value_usd": v,
                    "tenure_days": rng.integers(tenure[0], tenure[1] + 1, n).astype(float),
                    "return_rate": rng.uniform(*returns, n),
                }
            )
        )
        groups += [group] * n
    frame = pd.concat(parts, ignore_index=True)
    frame.insert(0, "customer_id", np.arange(1, len(frame) + 1, dtype="int64"))
    frame["rfm_segment"] = "loyal"
    frame["segmented_as_of"] = AS_OF
    return frame, np.array(groups)


def published(frame: pd.DataFrame, fit: T.SegmentFit) -> pd.DataFrame:
    """What the asset publishes, as far as the next run's matching reads it."""
    return frame.assign(segment_id=fit.segment_id)


def ids_by_customer(frame: pd.DataFrame, fit: T.SegmentFit) -> dict[int, int]:
    return dict(zip(frame["customer_id"].tolist(), fit.segment_id.tolist(), strict=True))


@pytest.fixture(scope="module")
def planted():
    frame, groups = planted_frame()
    return frame, groups, T.fit_segments(frame, seed=7)


def test_planted_groups_recovered_exactly(planted):
    frame, groups, fit = planted
    assert fit.k == 3
    assert sorted(fit.silhouettes) == [2, 3, 4, 5, 6]
    assert max(fit.silhouettes, key=fit.silhouettes.get) == 3
    assert adjusted_rand_score(groups, fit.segment_id) == 1.0
    assert fit.stability_ari >= 0.95
    # first run: ids by revenue share, the big spenders first
    assert {g: set(fit.segment_id[groups == g].tolist()) for g in PLANTED} == {"A": {1}, "B": {3}, "C": {2}}


def test_names_and_profiles_from_centroids(planted):
    frame, groups, fit = planted
    assert fit.names == {
        1: "frequent high spenders",
        2: "repeat mid-range buyers who return often",
        3: "lapsed one-time bargain buyers",
    }
    p = fit.profiles.set_index("segment_id")
    assert p["customers"].to_dict() == {1: 60, 2: 40, 3: 100}
    assert p["revenue_share"].sum() == pytest.approx(1.0)
    assert p.loc[1, "revenue_usd"] == pytest.approx(frame["revenue_usd"][groups == "A"].sum())
    assert p.loc[3, "mean_orders"] == 1.0
    assert p.loc[2, "mean_return_rate"] == pytest.approx(frame["return_rate"][groups == "C"].mean())


def test_segment_name_rules():
    z = {"recency_days": 0.0, "orders": 0.0, "avg_order_value_usd": 0.0, "tenure_days": 0.0, "return_rate": 0.0}
    assert T.segment_name({**z, "recency_days": 1.2, "avg_order_value_usd": 0.9}, 4.0) == "lapsed repeat big spenders"
    assert T.segment_name({**z, "orders": -0.8}, 2.0) == "occasional mid-range buyers"
    assert T.segment_name({**z, "avg_order_value_usd": -0.6}, 1.0) == "one-time bargain buyers"
    # two segments the rules name alike are told apart by tenure, then by id
    names = T.name_segments({1: {**z, "tenure_days": 1.0}, 2: {**z, "tenure_days": -1.0}, 3: z}, {1: 3, 2: 3, 3: 3})
    assert names == {
        1: "long-standing repeat mid-range buyers",
        2: "new repeat mid-range buyers",
        3: "repeat mid-range buyers",
    }
    assert T.name_segments({1: z, 2: z}, {1: 3, 2: 3}) == {
        1: "repeat mid-range buyers (segment 1)",
        2: "repeat mid-range buyers (segment 2)",
    }


def test_ids_stable_when_rows_are_shuffled(planted):
    frame, _, fit = planted
    shuffled = frame.sample(frac=1.0, random_state=3).reset_index(drop=True)
    again = T.fit_segments(shuffled, seed=7, previous=published(frame, fit))
    assert again.matched_to_previous
    assert ids_by_customer(shuffled, again) == ids_by_customer(frame, fit)
    assert again.names == fit.names
    # with no previous run the ids come from revenue share, so a shuffle keeps them too
    fresh = T.fit_segments(shuffled, seed=7)
    assert ids_by_customer(shuffled, fresh) == ids_by_customer(frame, fit)


def test_second_fit_matched_to_the_first_keeps_its_ids(planted):
    frame, groups, fit = planted
    # the previous run numbered the same clusters differently; a new run with another seed keeps those ids
    renumbered = published(frame, fit).assign(segment_id=lambda d: d["segment_id"].map({1: 7, 2: 3, 3: 5}))
    second = T.fit_segments(frame, seed=11, previous=renumbered)
    assert adjusted_rand_score(fit.segment_id, second.segment_id) == 1.0
    assert {g: set(second.segment_id[groups == g].tolist()) for g in PLANTED} == {"A": {7}, "B": {5}, "C": {3}}
    # drifted data (new customers, members moved a little) still lands on the previous ids
    drifted, drifted_groups = planted_frame(seed=1)
    third = T.fit_segments(drifted, seed=7, previous=renumbered)
    assert {g: set(third.segment_id[drifted_groups == g].tolist()) for g in PLANTED} == {
        "A": {7},
        "B": {5},
        "C": {3},
    }


def test_a_new_cluster_takes_a_new_id(planted):
    frame, groups, fit = planted
    two = published(frame, fit)[groups != "C"]  # the previous run only knew A and B
    again = T.fit_segments(frame, seed=7, previous=two)
    assert {g: set(again.segment_id[groups == g].tolist()) for g in PLANTED} == {"A": {1}, "B": {3}, "C": {4}}


def test_buyers_all_alike():
    frame, _ = planted_frame()
    same = frame.head(80).copy()
    for col in ["recency_days", "orders", "revenue_usd", "avg_order_value_usd", "tenure_days", "return_rate"]:
        same[col] = same[col].iloc[0]
    fit = T.fit_segments(same, seed=7)
    assert fit.k == 1
    assert set(fit.segment_id.tolist()) == {1}
    assert fit.names == {1: "all buyers"}
    assert fit.reason == "all 80 buyers have the same features: one segment"
    assert fit.profiles["customers"].tolist() == [80]
    two = T.fit_segments(frame.head(2), seed=7)
    assert (two.k, two.reason) == (1, "2 buyers are too few to split: one segment")
    # every buyer ordered once (and nothing else sets them apart but noise): still at least two segments
    once = frame[frame["orders"] >= 1].copy()
    once["orders"] = 1.0
    once["revenue_usd"] = once["avg_order_value_usd"]
    fit = T.fit_segments(once, seed=7)
    assert fit.k >= 2
    assert all("one-time" in n for n in fit.names.values())


# ---- the asset, on a tiny shop written straight to the prod tables ----------------------------------


def write_shop(settings, frame: pd.DataFrame) -> None:
    """prod.fct_orders, prod.fct_order_items and prod.dim_customers behind ``frame``'s features: each
    buyer's orders end ``recency_days`` before AS_OF, one line each, returns at ``return_rate``."""
    orders, items, customers = [], [], []
    order_id = 0
    for row in frame.itertuples():
        n = int(row.orders)
        units = 10 * n
        returned = round(row.return_rate * units)
        customers.append(
            {
                "customer_id": int(row.customer_id),
                "segment": row.rfm_segment,
                "signed_up_at": dt.datetime.combine(AS_OF, dt.time()) - dt.timedelta(days=row.tenure_days),
            }
        )
        for j in range(n):
            order_id += 1
            day = AS_OF - dt.timedelta(days=int(row.recency_days) + 3 * j)
            orders.append(
                {
                    "order_id": order_id,
                    "customer_id": int(row.customer_id),
                    "order_date": day,
                    "total_usd": float(row.avg_order_value_usd),
                    "is_cancelled": False,
                }
            )
            items.append(
                {
                    "order_item_id": order_id,
                    "customer_id": int(row.customer_id),
                    "quantity": 10,
                    "returned_units": min(returned - 10 * j, 10) if returned > 10 * j else 0,
                    "is_cancelled": False,
                }
            )
    # a cancelled order of the first buyer, worth more than everything else: left out
    orders.append({"order_id": 10**6, "customer_id": 1, "order_date": AS_OF, "total_usd": 1e9, "is_cancelled": True})
    catalog = load_catalog(settings)
    write_table(catalog, "prod.fct_orders", pa.Table.from_pylist(orders), "test")
    write_table(catalog, "prod.fct_order_items", pa.Table.from_pylist(items), "test")
    write_table(catalog, "prod.dim_customers", pa.Table.from_pylist(customers), "test")


def materialize():
    """Materialize the segments asset; (its materializations, its observations)."""
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [customer_segments], instance=instance, resources={"lakehouse": LakehouseResource()}, raise_on_error=False
        )
        assert result.success
        events = [e.event_specific_data for e in result.all_events]
        return (
            [e.materialization for e in events if e is not None and hasattr(e, "materialization")],
            [e.asset_observation for e in events if e is not None and hasattr(e, "asset_observation")],
        )


def test_asset_publishes_segments_tracked_in_mlflow(shoplake_home):
    from mlflow.tracking import MlflowClient

    frame, groups = planted_frame()
    write_shop(shoplake_home, frame)
    (first,), _ = materialize()
    table = load_catalog(shoplake_home).load_table("prod.customer_segments").scan().to_pandas()
    assert len(table) == 200
    assert table["customer_id"].tolist() == frame["customer_id"].tolist()
    assert table["segments"].unique().tolist() == [3]
    by_group = {g: set(table["segment_id"][groups == g]) for g in PLANTED}
    assert by_group == {"A": {1}, "B": {3}, "C": {2}}
    assert table.loc[0, "orders"] == frame.loc[0, "orders"]  # the cancelled order is not counted
    assert table["return_rate"].to_numpy() == pytest.approx(
        np.round(frame["return_rate"] * 10 * frame["orders"]) / (10 * frame["orders"])
    )
    assert set(table["rfm_segment"]) == {"loyal"}
    # as of the last non-cancelled order: the most recent buyers ordered a day before AS_OF
    assert set(table["segmented_as_of"]) == {AS_OF - dt.timedelta(days=1)}
    assert first.metadata["segments"].value == 3
    assert first.metadata["dagster/row_count"].value == 200

    client = MlflowClient(shoplake_home.mlflow_tracking_uri)
    run = client.get_run(table["mlflow_run_id"].iloc[0])
    assert run.data.metrics["chosen_k"] == 3
    assert {f"silhouette_k{k}" for k in range(2, 7)} <= set(run.data.metrics)
    assert run.data.metrics["stability_ari"] >= 0.95
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"profiles.json", "profiles.csv", "plots"} <= artifacts
    profiles = json.loads(open(client.download_artifacts(run.info.run_id, "profiles.json")).read())
    assert [p["segment_name"] for p in profiles["segments"]] == [
        "frequent high spenders",
        "repeat mid-range buyers who return often",
        "lapsed one-time bargain buyers",
    ]

    # the next run on the same data: the same segments with the same ids (adjusted Rand index 1)
    (second,), _ = materialize()
    again = load_catalog(shoplake_home).load_table("prod.customer_segments").scan().to_pandas()
    assert second.metadata["matched_to_previous"].value is True
    assert again["segment_id"].tolist() == table["segment_id"].tolist()
    assert again["mlflow_run_id"].iloc[0] != run.info.run_id


def test_asset_skips_with_too_few_buyers(shoplake_home):
    frame, _ = planted_frame()
    write_shop(shoplake_home, frame.head(30))
    materializations, (observation,) = materialize()
    assert materializations == []
    assert observation.metadata["skipped"].value == "30 customers have ordered; segments need at least 50"
    assert not load_catalog(shoplake_home).table_exists("prod.customer_segments")
