"""A data engineer's first session, in a real browser: open the asset graph in `dagster dev`, press
"Materialize all", wait for the run, then read check results and metadata on the asset pages.

Needs Debian's Chromium (`apt-get install chromium`; .ci/run installs it). Screenshots are kept in
the test's temporary folder and their paths printed.
"""

from __future__ import annotations

import shutil
import time

import pytest

from tests.dagster_server import dagster_dev, graphql

CHROMIUM = shutil.which("chromium")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)"),
]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RUNS = "{ runsOrError { ... on Runs { results { runId status } } } }"


def wait_for_run(port: int, timeout: float = 900) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = graphql(port, RUNS)["runsOrError"]["results"]
        if runs and runs[0]["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            return runs[0]
        time.sleep(5)
    raise TimeoutError("the run launched from the UI did not finish")


def test_materialize_everything_from_the_ui(demo_lakehouse, tmp_path):
    from playwright.sync_api import sync_playwright

    settings, _, _ = demo_lakehouse  # the demo shop; the UI run rebuilds it (models re-enter the gate)
    env = {"SHOPLAKE_HOME": str(settings.home), "DAGSTER_HOME": str(tmp_path / "dagster")}
    with dagster_dev(tmp_path, env) as port, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        base = f"http://127.0.0.1:{port}"

        # The first-visit newsletter dialog pops up a moment after the page loads, whenever it likes:
        # skip it whenever it covers what the test is about to click.
        page.add_locator_handler(page.get_by_role("button", name="Skip"), lambda skip: skip.click())
        page.goto(f"{base}/asset-groups", wait_until="networkidle")
        for layer in ("raw", "curated", "prod", "ml"):
            page.get_by_text(layer, exact=True).first.wait_for(timeout=60_000)
        page.screenshot(path=tmp_path / "asset-graph.png")

        page.get_by_role("button", name="Materialize all").click()
        run = wait_for_run(port)
        page.goto(f"{base}/runs/{run['runId']}", wait_until="networkidle")
        page.screenshot(path=tmp_path / "run.png")
        assert run["status"] == "SUCCESS", f"run {run['runId']} ended {run['status']}; see {tmp_path / 'run.png'}"

        # A raw table: its blocking card-number check passed, and extraction metadata is shown.
        page.goto(f"{base}/assets/raw/payments?view=checks", wait_until="networkidle")
        page.get_by_text("no_card_numbers").first.wait_for(timeout=60_000)
        page.get_by_text("Passed").first.wait_for(timeout=60_000)
        page.screenshot(path=tmp_path / "raw-payments-checks.png")
        page.goto(f"{base}/assets/raw/payments", wait_until="networkidle")
        page.get_by_text("rows_per_second").first.wait_for(timeout=60_000)

        # A prod mart: row count and the Iceberg snapshot it was published as.
        page.goto(f"{base}/assets/prod/fct_orders", wait_until="networkidle")
        page.get_by_text("iceberg_snapshot_id").first.wait_for(timeout=60_000)
        page.screenshot(path=tmp_path / "prod-fct-orders.png", full_page=True)
        browser.close()
    print(f"screenshots in {tmp_path}")
