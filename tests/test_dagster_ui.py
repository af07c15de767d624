"""`dagster dev -w workspace.yaml` loads the code location and serves every asset and the jobs."""

from __future__ import annotations

import pytest

from tests.dagster_server import dagster_dev, graphql

pytestmark = pytest.mark.slow

QUERY = """
{
  assetNodes { assetKey { path } }
  repositoriesOrError { ... on RepositoryConnection { nodes { name jobs { name } schedules { name } } } }
}
"""


def test_webserver_serves_every_asset_the_jobs_and_schedules(tmp_path):
    from orchestration.definitions import defs

    env = {"DAGSTER_HOME": str(tmp_path / "dagster"), "SHOPLAKE_HOME": str(tmp_path / "home")}
    with dagster_dev(tmp_path, env) as port:
        data = graphql(port, QUERY)
    served = {tuple(n["assetKey"]["path"]) for n in data["assetNodes"]}
    expected = {tuple(k.path) for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert served == expected
    assert {
        ("prod", "fct_orders"),
        ("prod", "daily_sales"),
        ("prod", "dim_customers"),
        ("raw", "payments"),
        ("prod", "churn_scores"),
    } <= served
    [repo] = data["repositoriesOrError"]["nodes"]
    assert {"shoplake_all", "daily_refresh", "weekly_retrain"} <= {j["name"] for j in repo["jobs"]}
    assert {s["name"] for s in repo["schedules"]} == {"daily_refresh_schedule", "weekly_retrain_schedule"}
