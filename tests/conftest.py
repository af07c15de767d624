import contextlib
import faulthandler
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from orchestration.settings import DBT_PROJECT_DIR, Settings

ENV_VARS = (
    "SHOPLAKE_HOME",
    "SHOPLAKE_SOURCE_URL",
    "SHOPLAKE_CATALOG_URI",
    "SHOPLAKE_WAREHOUSE",
    "SHOPLAKE_DUCKDB_PATH",
    "MLFLOW_TRACKING_URI",
    "SHOPLAKE_MLFLOW_ARTIFACTS",
)


def pytest_sessionstart(session):
    # dagster-dbt reads dbt's manifest when orchestration.definitions is imported (`make test`
    # prepares it; this covers a bare `pytest`).
    if not (DBT_PROJECT_DIR / "target" / "manifest.json").exists():
        subprocess.run([str(Path(sys.executable).parent / "shoplake"), "prepare"], check=True)


# A test that hangs (a network read with no timeout, say) must not hang the whole run: past this
# many seconds, including its fixtures' setup, every thread's stack is printed and pytest exits.
# faulthandler's watchdog is a C thread, so it fires even when a hung call holds the GIL.
TEST_TIMEOUT_S = int(os.environ.get("SHOPLAKE_TEST_TIMEOUT", "1800"))
_REAL_STDERR = None


def pytest_configure(config):
    # pytest redirects fd 2 while a test runs; the watchdog writes to the terminal's stderr instead.
    global _REAL_STDERR
    capture = config.pluginmanager.getplugin("capturemanager")
    capture.suspend_global_capture()
    _REAL_STDERR = os.fdopen(os.dup(2), "w")
    capture.resume_global_capture()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    faulthandler.dump_traceback_later(TEST_TIMEOUT_S, exit=True, file=_REAL_STDERR)
    try:
        return (yield)
    finally:
        faulthandler.cancel_dump_traceback_later()


# The machine's MariaDB server (root, no password); every test that needs a database makes its own.
MARIADB = dict(host="127.0.0.1", port=3306, user="root", password="", charset="utf8mb4")


@contextlib.contextmanager
def scratch_mariadb(prefix: str = "shoplake_test"):
    """A new, empty MariaDB database, dropped afterwards: yields (name, source URL)."""
    import pymysql

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = pymysql.connect(**MARIADB, autocommit=True)
    admin.cursor().execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        yield name, f"mysql://root@127.0.0.1:3306/{name}"
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


@pytest.fixture
def shoplake_home(tmp_path, monkeypatch) -> Settings:
    """A private SHOPLAKE_HOME: every default location (source, catalog, DuckDB, MLflow) under tmp."""
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SHOPLAKE_HOME", str(tmp_path / "home"))
    return Settings.from_env()


@pytest.fixture(scope="session")
def session_env():
    """Session-wide environment changes, undone at the end."""
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


# The shop `make demo` builds (see the Makefile): big enough for every model family to train and earn
# its first champion. One materialized copy serves every test that only reads or re-runs it.
DEMO_CUSTOMERS, DEMO_DAYS, DEMO_SEED = 3000, 540, 5


def run_job(job_name: str, instance=None):
    """Execute a job of the Shoplake definitions in-process; returns (result, check evaluations)."""
    from dagster import DagsterInstance

    from orchestration.definitions import defs

    def execute(inst):
        result = defs.resolve_job_def(job_name).execute_in_process(instance=inst, raise_on_error=False)
        checks = [
            e.asset_check_evaluation_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
        ]
        return result, checks

    if instance is not None:
        return execute(instance)
    with DagsterInstance.ephemeral() as inst:
        return execute(inst)


def isolated_env(mp: pytest.MonkeyPatch, home: Path) -> Settings:
    for var in ENV_VARS:
        mp.delenv(var, raising=False)
    mp.setenv("SHOPLAKE_HOME", str(home))
    return Settings.from_env()


@pytest.fixture(scope="session")
def demo_lakehouse(tmp_path_factory):
    """(settings, result, checks) of `shoplake_all` on the demo shop, in a private SHOPLAKE_HOME."""
    from demo_shop.generate import ShopConfig, generate_shop

    mp = pytest.MonkeyPatch()
    settings = isolated_env(mp, tmp_path_factory.mktemp("demo-lakehouse"))
    generate_shop(
        ShopConfig(customers=DEMO_CUSTOMERS, days=DEMO_DAYS, seed=DEMO_SEED),
        settings.source_url,
        settings.truth_dir,
        progress=False,
    )
    result, checks = run_job("shoplake_all")
    yield settings, result, checks
    mp.undo()
