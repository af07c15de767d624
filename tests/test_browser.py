"""A data engineer's first session, in a real browser: open the asset graph in `dagster dev` on the
demo lakehouse, press "Materialize" on an asset's page (a raw table, then a prod mart), wait for each
run, then read check results and metadata on the asset pages.

Needs Debian's Chromium (`apt-get install chromium`; .ci/run installs it). Screenshots are kept in
the test's temporary folder and their paths printed.
"""

from __future__ import annotations

import contextlib
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


def wait_for_run(port: int, known: set[str], timeout: float = 600) -> dict:
    """The first run not in ``known``, once it has finished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = [r for r in graphql(port, RUNS)["runsOrError"]["results"] if r["runId"] not in known]
        if runs and runs[0]["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            return runs[0]
        time.sleep(2)
    raise TimeoutError("the run launched from the UI did not finish")


def materialize_from_asset_page(page, base: str, port: int, asset: str, tmp_path) -> dict:
    """Press "Materialize" on one asset's page; returns the finished run."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    known = {r["runId"] for r in graphql(port, RUNS)["runsOrError"]["results"]}
    page.goto(f"{base}/assets/{asset}", wait_until="networkidle")
    # the button's accessible name carries its icon's label too, so not an exact match; an asset page has one
    page.get_by_role("button", name="Materialize").first.click()
    # This UI's instance has not seen the session build's runs, so Dagster asks whether to build an asset
    # whose upstream it believes unmaterialized ("Are you sure?"): a user confirms.
    confirm = page.get_by_role("button", name="Confirm")
    with contextlib.suppress(PlaywrightTimeoutError):
        confirm.wait_for(timeout=10_000)
        confirm.click()
    run = wait_for_run(port, known)
    page.goto(f"{base}/runs/{run['runId']}", wait_until="networkidle")
    shot = tmp_path / f"run-{asset.replace('/', '-')}.png"
    page.screenshot(path=shot)
    assert run["status"] == "SUCCESS", f"run {run['runId']} of {asset} ended {run['status']}; see {shot}"
    return run


def test_materialize_assets_from_the_ui(demo_lakehouse_to_change, tmp_path):
    from playwright.sync_api import sync_playwright

    # The session's demo lakehouse (its home is put back after the test): one raw table is extracted
    # again and one mart rebuilt from the UI; the rest of the graph is already materialized.
    settings, _, _ = demo_lakehouse_to_change
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

        # A raw table: extracted from its page; its blocking card-number check passed, and extraction
        # metadata is shown.
        materialize_from_asset_page(page, base, port, "raw/payments", tmp_path)
        page.goto(f"{base}/assets/raw/payments?view=checks", wait_until="networkidle")
        page.get_by_text("no_card_numbers").first.wait_for(timeout=60_000)
        page.get_by_text("Passed").first.wait_for(timeout=60_000)
        page.screenshot(path=tmp_path / "raw-payments-checks.png")
        page.goto(f"{base}/assets/raw/payments", wait_until="networkidle")
        page.get_by_text("rows_per_second").first.wait_for(timeout=60_000)

        # A prod mart, rebuilt by dbt from its page: the Iceberg snapshot it was published as.
        materialize_from_asset_page(page, base, port, "prod/fct_orders", tmp_path)
        page.goto(f"{base}/assets/prod/fct_orders", wait_until="networkidle")
        page.get_by_text("iceberg_snapshot_id").first.wait_for(timeout=60_000)
        page.screenshot(path=tmp_path / "prod-fct-orders.png", full_page=True)
        browser.close()
    print(f"screenshots in {tmp_path}")
