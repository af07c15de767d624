import contextlib
import faulthandler
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestration.settings import DBT_PROJECT_DIR, Settings

# Variables that point the code at a lakehouse, a source, a store, an instance or a key: a test's own
# home clears them all, so nothing of the developer's shell (or of another test) leaks in.
ENV_PREFIXES = ("SHOPLAKE_", "MLFLOW_", "DAGSTER_")


def _outside_env(name: str) -> bool:
    return name.startswith(ENV_PREFIXES)


def clean_environ(home: Path | None = None, **extra: str) -> dict[str, str]:
    """os.environ without the lakehouse variables, SHOPLAKE_HOME set to ``home``: for subprocesses."""
    env = {k: v for k, v in os.environ.items() if not _outside_env(k)}
    if home is not None:
        env["SHOPLAKE_HOME"] = str(home)
    return {**env, **extra}


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
    return isolated_env(monkeypatch, tmp_path / "home")


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
    """The one environment set-up: clears every lakehouse variable (SHOPLAKE_*, MLFLOW_*, DAGSTER_*)
    and points SHOPLAKE_HOME at ``home``; ``mp.undo()`` puts the caller's environment back. Module- and
    session-scoped fixtures pass a ``pytest.MonkeyPatch()`` of their own."""
    for var in [k for k in os.environ if _outside_env(k)]:
        mp.delenv(var, raising=False)
    mp.setenv("SHOPLAKE_HOME", str(home))
    return Settings.from_env()


@pytest.fixture(scope="module")
def module_home(tmp_path_factory, request) -> Settings:
    """A private SHOPLAKE_HOME for a whole module (its module-scoped fixtures build one lakehouse)."""
    mp = pytest.MonkeyPatch()
    settings = isolated_env(mp, tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1]))
    yield settings
    mp.undo()


def _sync_in_place(source: Path, target: Path) -> int:
    """Make ``target`` a copy of ``source``: files that differ (size or mtime) are rewritten in place,
    files ``source`` lacks are removed. Rewriting in place keeps every inode, so a SQLite or DuckDB
    connection some library still holds open (MLflow caches its store per URI) sees the restored
    content, not a deleted file. Returns the number of files copied."""
    copied = 0
    for directory, dirnames, filenames in os.walk(target, topdown=True):
        here = Path(directory)
        there = source / here.relative_to(target)
        for name in list(dirnames):
            if not (there / name).is_dir():
                shutil.rmtree(here / name)
                dirnames.remove(name)
        for name in filenames:
            if not (there / name).is_file():
                (here / name).unlink()
    for directory, _, filenames in os.walk(source):
        here = Path(directory)
        there = target / here.relative_to(source)
        there.mkdir(exist_ok=True)
        for name in filenames:
            src, dst = here / name, there / name
            a = src.stat()
            if dst.exists():
                b = dst.stat()
                if (a.st_size, a.st_mtime_ns) == (b.st_size, b.st_mtime_ns):
                    continue
            with open(src, "rb") as fin, open(dst, "wb") as fout:
                shutil.copyfileobj(fin, fout, 1 << 20)
            shutil.copystat(src, dst)
            copied += 1
    return copied


@dataclass
class DemoLakehouse:
    settings: Settings
    result: object
    checks: list
    pristine: Path  # a copy of the home as the build left it
    changed: bool = False

    def __iter__(self):  # settings, result, checks = demo_lakehouse
        return iter((self.settings, self.result, self.checks))

    def restore(self) -> None:
        if self.changed:
            _sync_in_place(self.pristine, self.settings.home)
            self.changed = False

    @contextlib.contextmanager
    def changing(self):
        """The lakehouse as built, for code that changes it (SHOPLAKE_HOME pointing at it); put back
        afterwards. Fixtures of any scope use it."""
        self.restore()
        self.changed = True
        mp = pytest.MonkeyPatch()
        try:
            isolated_env(mp, self.settings.home)
            yield self
        finally:
            mp.undo()
            self.restore()


@pytest.fixture(scope="session")
def demo_lakehouse(tmp_path_factory):
    """(settings, result, checks) of `shoplake_all` on the demo shop, in a private SHOPLAKE_HOME.

    Built once per session and read-only for the tests that use it: a test that changes it asks for
    ``demo_lakehouse_to_change`` instead."""
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
    pristine = tmp_path_factory.mktemp("demo-lakehouse-as-built") / "home"
    shutil.copytree(settings.home, pristine)
    lake = DemoLakehouse(settings, result, checks, pristine)
    yield lake
    mp.undo()


@pytest.fixture
def demo_lakehouse_to_change(demo_lakehouse):
    """The session's demo lakehouse for a test that changes it (simulates days, runs jobs on it).

    Iceberg metadata, the catalog and MLflow hold absolute paths, so a copy elsewhere would still point
    into the original: the test gets the original, and after it the home is put back, file by file,
    from the copy taken after the build (only what the test changed is copied back: seconds)."""
    with demo_lakehouse.changing() as lake:
        yield lake
