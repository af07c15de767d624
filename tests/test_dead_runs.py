"""Dead runs never block later runs (invariant 2): a run whose process is killed is marked failed and
its pool slots are freed by the next run, with no daemon and no manual step.

The first half tests the pieces on a real Dagster instance on disk with real (dead and live)
processes; the second half kills real `dagster` runs of the Shoplake code location.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, instance_for_test
from dagster._core.launcher import WorkerStatus
from dagster._core.test_utils import create_run_for_test

from orchestration.lakehouse.catalog import load_catalog
from orchestration.policies import WRITER_POOL, table_pool
from orchestration.run_health import (
    HealthCheckedRunLauncher,
    RunWorker,
    WorkerState,
    process_start_time,
    reap_dead_runs,
    worker_state,
)
from orchestration.settings import PROJECT_ROOT, Settings
from tests.conftest import clean_environ

HOST = socket.gethostname()


def exited_process() -> RunWorker:
    """The worker record of a process that has run and exited (and been collected by its parent)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    started = process_start_time(child.pid)
    child.wait()
    return RunWorker(HOST, child.pid, started)


def test_worker_tags_round_trip_and_unreadable_tags_mean_unknown():
    me = RunWorker.current()
    assert RunWorker.from_tags({"other": "x", **me.as_tags()}) == RunWorker(me.host, me.pid, round(me.started, 2))
    assert RunWorker.from_tags({}) is None
    assert RunWorker.from_tags({**me.as_tags(), "shoplake/worker_pid": "not a pid"}) is None


def test_a_worker_is_alive_gone_or_unknown():
    me = RunWorker.current()
    assert worker_state(me, HOST) is WorkerState.ALIVE
    assert worker_state(exited_process(), HOST) is WorkerState.GONE
    # the same pid now held by a process that started later: the worker itself is gone
    assert worker_state(RunWorker(HOST, me.pid, me.started - 60), HOST) is WorkerState.GONE
    assert worker_state(RunWorker("another-host", me.pid, me.started), HOST) is WorkerState.UNKNOWN
    assert worker_state(None, HOST) is WorkerState.UNKNOWN


def test_an_exited_worker_its_parent_has_not_collected_is_gone():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    worker = RunWorker(HOST, child.pid, process_start_time(child.pid))
    try:
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # wait for the exit, leave the status uncollected
        assert worker_state(worker, HOST) is WorkerState.GONE
    finally:
        child.wait()


def run_failure_message(instance, run_id: str) -> str:
    [event] = instance.all_logs(run_id, of_type=DagsterEventType.RUN_FAILURE)
    return event.message


def holders(instance, pool: str) -> list[str]:
    return [slot.run_id for slot in instance.event_log_storage.get_concurrency_info(pool).claimed_slots]


def test_reaping_fails_dead_runs_of_this_host_and_frees_every_finished_runs_slots():
    churn_pool = table_pool("prod.churn_scores")
    with instance_for_test(overrides={"concurrency": {"pools": {"default_limit": 1}}}) as instance:
        storage = instance.event_log_storage
        for pool in (WRITER_POOL, churn_pool):
            storage.set_concurrency_slots(pool, 1)
        dead_worker = exited_process()

        def run(status, worker: RunWorker | None):
            tags = worker.as_tags() if worker else {}
            return create_run_for_test(instance, job_name="shoplake_all", status=status, tags=tags)

        dead = run(DagsterRunStatus.STARTED, dead_worker)
        alive = run(DagsterRunStatus.STARTED, RunWorker.current())
        elsewhere = run(DagsterRunStatus.STARTED, RunWorker("another-host", dead_worker.pid, dead_worker.started))
        unrecorded = run(DagsterRunStatus.STARTED, None)
        marked_failed = run(DagsterRunStatus.FAILURE, dead_worker)  # failed by hand, slot kept
        assert storage.claim_concurrency_slot(WRITER_POOL, dead.run_id, "extract_source_tables").is_claimed
        assert storage.claim_concurrency_slot(churn_pool, marked_failed.run_id, "prod__churn_scores").is_claimed
        assert not storage.claim_concurrency_slot(WRITER_POOL, alive.run_id, "dbt_curated_and_prod").is_claimed

        lines = reap_dead_runs(instance, current_run_id="the-next-run")

        assert lines == [
            f"Run {dead.run_id} (shoplake_all): worker {dead_worker} is gone; marked failed, 1 pool slots freed",
            f"Run {marked_failed.run_id} (shoplake_all) is FAILURE but held 1 pool slots: freed",
        ]
        assert instance.get_run_by_id(dead.run_id).status == DagsterRunStatus.FAILURE
        assert run_failure_message(instance, dead.run_id) == (
            f"Run worker {dead_worker} is gone (killed or crashed) while the run was STARTED: marked failed and "
            "its pool slots freed by run the-next-run. The next run redoes what this one did not finish."
        )
        for live_or_unknown in (alive, elsewhere, unrecorded):
            assert instance.get_run_by_id(live_or_unknown.run_id).status == DagsterRunStatus.STARTED
        assert holders(instance, churn_pool) == []
        # the waiting run gets the writer slot the dead run held
        assert storage.claim_concurrency_slot(WRITER_POOL, alive.run_id, "dbt_curated_and_prod").is_claimed
        assert holders(instance, WRITER_POOL) == [alive.run_id]
        assert reap_dead_runs(instance, current_run_id="the-next-run") == []


def test_run_monitoring_sees_a_dead_worker_as_failed_and_an_unchecked_one_as_running():
    with instance_for_test() as instance:
        launcher = HealthCheckedRunLauncher()

        def health(worker: RunWorker | None):
            tags = worker.as_tags() if worker else {}
            run = create_run_for_test(instance, status=DagsterRunStatus.STARTED, tags=tags)
            return launcher.check_run_worker_health(run).status

        assert health(exited_process()) == WorkerStatus.FAILED
        assert health(RunWorker.current()) == WorkerStatus.RUNNING
        assert health(None) == WorkerStatus.RUNNING
        assert health(RunWorker("another-host", 1, 0.0)) == WorkerStatus.RUNNING


# ---------------------------------------------------------------------------------------------------
# Real runs of the code location, killed with SIGKILL and run again the way users run them.

DG_BIN = str(Path(sys.executable).parent / "dg")  # runs the job in its own process, as `make demo` does
RUN_TIMEOUT_S = 1500  # a run that waits on a dead run's pool slot waits for ever: fail instead


@dataclass
class Home:
    """A SHOPLAKE_HOME and its own Dagster instance (the project's dagster.yaml), as `make prepare` sets up."""

    root: Path

    @property
    def env(self) -> dict[str, str]:
        return clean_environ(self.root / "home", DAGSTER_HOME=str(self.root / "dagster"))

    @property
    def settings(self) -> Settings:
        return Settings.from_env({"SHOPLAKE_HOME": str(self.root / "home")})

    @classmethod
    def create(cls, root: Path, shop_db: Path) -> Home:
        (root / "dagster").mkdir(parents=True)
        shutil.copy(PROJECT_ROOT / "orchestration" / "dagster.yaml", root / "dagster" / "dagster.yaml")
        (root / "home" / "source").mkdir(parents=True)
        shutil.copy(shop_db, root / "home" / "source" / "shop.db")
        return cls(root)

    @contextlib.contextmanager
    def instance(self):
        with DagsterInstance.from_config(str(self.root / "dagster")) as instance:
            yield instance

    def start(self, *args: str) -> subprocess.Popen:
        """A `dg` command in its own process group (the run worker, its step processes, dbt)."""
        with open(self.root / "runs.log", "a") as log:
            log.write(f"\n$ dg {' '.join(args)}\n")
            log.flush()
            return subprocess.Popen(
                [DG_BIN, *args],
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log_tail(self) -> str:
        return (self.root / "runs.log").read_text()[-4000:]


def newest_run(instance, after: set[str]):
    runs = [r for r in instance.get_runs() if r.run_id not in after]
    return runs[0] if runs else None


def kill_when(home: Home, process: subprocess.Popen, reached, known: set[str]) -> str:
    """SIGKILL the run's whole process group once ``reached(instance, run_id)`` says it is at the
    point under test; returns the killed run's id."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    with home.instance() as instance:
        while time.monotonic() < deadline:
            run = newest_run(instance, known)
            if run is not None and reached(home, instance, run.run_id, process):
                os.killpg(process.pid, signal.SIGKILL)
                assert process.wait(timeout=60) == -signal.SIGKILL
                return run.run_id
            assert process.poll() is None, f"the run ended before the kill point\n{home.log_tail()}"
            time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    raise AssertionError(f"the run never reached the kill point\n{home.log_tail()}")


def run_to_end(home: Home, *args: str) -> None:
    process = home.start(*args)
    try:
        returncode = process.wait(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise AssertionError(f"`dagster {' '.join(args)}` did not finish (blocked?)\n{home.log_tail()}") from None
    assert returncode == 0, home.log_tail()


def events(instance, run_id: str, kind: DagsterEventType, step: str | None = None):
    return [e for e in instance.all_logs(run_id, of_type=kind) if step is None or e.step_key == step]


def held_slots(instance, run_id: str) -> int:
    storage = instance.event_log_storage
    slots = [s for key in storage.get_concurrency_keys() for s in storage.get_concurrency_info(key).claimed_slots]
    return sum(s.run_id == run_id for s in slots)


def assert_reaped(home: Home, dead_run_id: str) -> None:
    with home.instance() as instance:
        assert instance.get_run_by_id(dead_run_id).status == DagsterRunStatus.FAILURE
        assert "is gone (killed or crashed)" in run_failure_message(instance, dead_run_id)
        assert held_slots(instance, dead_run_id) == 0


def _generate(root: Path, config) -> Path:
    from demo_shop.generate import generate_shop

    settings = Settings.from_env({"SHOPLAKE_HOME": str(root)})
    generate_shop(config, settings.source_url, settings.truth_dir, progress=False)
    return root / "source" / "shop.db"


@pytest.mark.slow
def test_a_run_killed_holding_the_writer_slot_does_not_block_the_next_run(tmp_path):
    from demo_shop.generate import ShopConfig

    home = Home.create(tmp_path / "lake", _generate(tmp_path / "gen", ShopConfig(customers=60, days=20, seed=3)))
    extract = ("launch", "--assets", "raw/orders,raw/customers")

    def extracting(home, instance, run_id, process):  # the extraction step has its writer slot
        return bool(events(instance, run_id, DagsterEventType.STEP_START, "extract_source_tables"))

    dead = kill_when(home, home.start(*extract), extracting, set())
    with home.instance() as instance:
        assert instance.get_run_by_id(dead).status == DagsterRunStatus.STARTED  # what Dagster leaves behind
        assert held_slots(instance, dead) == 1
    run_to_end(home, *extract)
    assert_reaped(home, dead)
    with home.instance() as instance:
        [run] = [r for r in instance.get_runs() if r.run_id != dead]
        assert run.status == DagsterRunStatus.SUCCESS
        assert held_slots(instance, run.run_id) == 0
        notes = [e.message for e in events(instance, run.run_id, DagsterEventType.ENGINE_EVENT)]
        assert any(
            n.startswith(f"Run {dead} (__ASSET_JOB): worker process ")
            and "is gone; marked failed, 1 pool slots freed" in n
            for n in notes
        ), notes


# The kill test at every step. Each run of one lakehouse is killed at the next point, the next run
# starting from whatever the previous one left (dead run, held pool slots, half-published tables):
# the final ordinary run must be green and equal to an uninterrupted run of the same shop.
KILL_SHOP = {"customers": 300, "days": 200, "seed": 5}
# A training step and the scoring step it feeds (on KILL_SHOP every family earns a first champion).
TRAINING_STEP, SCORING_STEP = "ml__churn_model", "prod__churn_scores"
ALL = ("launch", "--job", "shoplake_all")
RETRAIN = ("launch", "--job", "weekly_retrain")
# Columns that legitimately differ between two homes built from the same shop: when each row was
# extracted (the raw row version's wall-clock time, carried into curated, quarantine and the facts),
# and the registry's number of the model version that scored a row (a run killed after registering a
# challenger and before promoting it leaves that number used: the next run registers the same model as
# the following one).
VOLATILE_COLUMNS = {"_extracted_at", "model_version", "mlflow_run_id"}  # which run, not what it found
# prod.compliance_report is a per-run log (one block per run, with its run id, time and each model's
# outcome: "promoted" in a first run, "champion_kept" in a later one), not a function of the shop.
PER_RUN_TABLES = {"prod.compliance_report"}


def step_started(step: str):
    def reached(home, instance, run_id, process) -> bool:
        return bool(events(instance, run_id, DagsterEventType.STEP_START, step))

    return reached


def extraction_committed_a_table(home, instance, run_id, process) -> bool:
    """Some raw tables committed, the others not yet."""
    return bool(events(instance, run_id, DagsterEventType.ASSET_MATERIALIZATION, "extract_source_tables"))


def dbt_building(home, instance, run_id, process) -> bool:
    """The `dbt build` process of the dbt step is running."""
    for child in psutil.Process(process.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if {"dbt", "build"} <= {Path(a).name for a in child.cmdline()}:
                return True
    return False


def publishing(home, instance, run_id, process) -> bool:
    """The first curated/prod table is in the Iceberg catalog (nothing was published before)."""
    return published_count(home) > 0


def checking(home, instance, run_id, process) -> bool:
    """The quality-check step has evaluated some checks, not all."""
    return bool(events(instance, run_id, DagsterEventType.ASSET_CHECK_EVALUATION, "lakehouse_quality_checks"))


def published_count(home: Home) -> int:
    with contextlib.closing(sqlite3.connect(home.settings.catalog_uri.removeprefix("sqlite:///"))) as con:
        with contextlib.suppress(sqlite3.OperationalError):  # no catalog table yet
            return con.execute(
                "SELECT count(*) FROM iceberg_tables WHERE table_namespace IN ('curated', 'quarantine', 'prod')"
            ).fetchone()[0]
    return 0


def published_tables(settings: Settings) -> dict[str, list[tuple]]:
    """Every curated, quarantine and prod table's rows (sorted, without the volatile columns)."""
    catalog = load_catalog(settings)
    out = {}
    for namespace in ("curated", "quarantine", "prod"):
        for identifier in catalog.list_tables(namespace):
            name = ".".join(identifier)
            if name in PER_RUN_TABLES:
                continue
            rows = catalog.load_table(name).scan().to_arrow().to_pylist()
            out[name] = sorted(tuple((k, str(v)) for k, v in r.items() if k not in VOLATILE_COLUMNS) for r in rows)
    return out


@pytest.fixture(scope="module")
def kill_shop(tmp_path_factory):
    """The shop, and its tables after one uninterrupted `shoplake_all` run."""
    from demo_shop.generate import ShopConfig

    base = tmp_path_factory.mktemp("kill-shop")
    shop_db = _generate(base / "gen", ShopConfig(**KILL_SHOP))
    reference = Home.create(base / "reference", shop_db)
    run_to_end(reference, *ALL)
    return shop_db, published_tables(reference.settings)


@pytest.mark.slow
def test_sigkill_at_every_step_then_an_ordinary_run_equals_an_uninterrupted_run(kill_shop, tmp_path):
    shop_db, reference = kill_shop
    home = Home.create(tmp_path / "lake", shop_db)
    points = [
        ("extraction", ALL, extraction_committed_a_table),
        ("dbt build", ALL, dbt_building),
        ("publish", ALL, publishing),
        ("quality checks", ALL, checking),
        ("training", RETRAIN, step_started(TRAINING_STEP)),
        ("scoring", RETRAIN, step_started(SCORING_STEP)),
    ]
    killed: list[str] = []
    for point, job, reached in points:
        run_id = kill_when(home, home.start(*job), reached, set(killed))
        with home.instance() as instance:
            assert instance.get_run_by_id(run_id).status == DagsterRunStatus.STARTED, point
        if point == "publish":  # killed between the first published table and the last
            assert 0 < published_count(home) < len(reference) + len(PER_RUN_TABLES), point
        if killed:
            assert_reaped(home, killed[-1])  # by the run that was killed next
        killed.append(run_id)

    run_to_end(home, *ALL)
    assert_reaped(home, killed[-1])
    with home.instance() as instance:
        assert instance.get_runs()[0].status == DagsterRunStatus.SUCCESS
        assert all(instance.get_run_by_id(r).status == DagsterRunStatus.FAILURE for r in killed)
    published = published_tables(home.settings)
    assert sorted(published) == sorted(reference)
    assert {t for t in reference if published[t] != reference[t]} == set()
