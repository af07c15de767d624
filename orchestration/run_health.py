"""Dead runs never block later runs.

A run whose process is killed (kill -9, OOM, a reboot) stays STARTED in the Dagster instance and keeps
the pool slots its steps claimed (`lakehouse_writer` and the scoring tables' pools): every later run
then waits on those pools for ever, and under the daemon the run queue also counts it as the one
writer run allowed at a time. Two mechanisms clear it, one for each way users run jobs:

- Every run records its worker process (host, pid, process start time) as run tags, then, before its
  steps wait on a pool, marks failed the runs of this host whose worker process is gone and frees the
  pool slots of every finished run (`reap_dead_runs`, called by the code location's executor). This
  needs no daemon: `dagster job execute`, `dagster job launch`, the UI and the daemon all go through it.
- Under the daemon, run monitoring (orchestration/dagster.yaml) polls in-progress runs through
  `HealthCheckedRunLauncher`, which tells from the same tags whether a worker process is still alive:
  Dagster's default launcher has no such check, and without it a dead writer run would hold the run
  queue before any new run could start and clean up.

The start time tells a live worker from a new process that reuses a dead worker's pid. A run worker
on another host cannot be checked from here; it is left alone (its own host's runs clear it).
"""

from __future__ import annotations

import enum
import socket
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import dagster as dg
import psutil
from dagster import DagsterRunStatus, RunsFilter
from dagster._core.events import DagsterEvent, DagsterEventType, EngineEventData, JobFailureData, RunFailureReason
from dagster._core.executor.base import Executor
from dagster._core.launcher import CheckRunHealthResult, DefaultRunLauncher, WorkerStatus
from dagster._core.storage.dagster_run import FINISHED_STATUSES

if TYPE_CHECKING:
    from dagster._core.execution.context.system import PlanOrchestrationContext
    from dagster._core.execution.plan.plan import ExecutionPlan
    from dagster._core.execution.retries import RetryMode
    from dagster._core.execution.step_dependency_config import StepDependencyConfig

WORKER_HOST_TAG = "shoplake/worker_host"
WORKER_PID_TAG = "shoplake/worker_pid"
WORKER_STARTED_TAG = "shoplake/worker_started"  # the process's start time, seconds since the epoch
# Process start times are read from the kernel in clock ticks; the same process reads back within this.
START_TIME_TOLERANCE_S = 1.0
# Runs whose worker may still be writing: a run leaves these statuses only when it ends or is marked.
IN_PROGRESS = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]


class WorkerState(enum.Enum):
    ALIVE = "alive"
    GONE = "gone"
    UNKNOWN = "unknown"  # not recorded (the run never reached its executor) or on another host


@dataclass(frozen=True)
class RunWorker:
    """The process that orchestrates a run's steps (its step processes are its children)."""

    host: str
    pid: int
    started: float

    @classmethod
    def current(cls) -> RunWorker:
        return cls(socket.gethostname(), psutil.Process().pid, psutil.Process().create_time())

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> RunWorker | None:
        try:
            return cls(tags[WORKER_HOST_TAG], int(tags[WORKER_PID_TAG]), float(tags[WORKER_STARTED_TAG]))
        except (KeyError, ValueError):
            return None

    def as_tags(self) -> dict[str, str]:
        return {WORKER_HOST_TAG: self.host, WORKER_PID_TAG: str(self.pid), WORKER_STARTED_TAG: f"{self.started:.2f}"}

    def __str__(self) -> str:
        return f"process {self.pid} on {self.host}"


def process_start_time(pid: int) -> float | None:
    """When process ``pid`` started, or None if there is no such process (a zombie counts as gone:
    it has exited and only waits for its parent to collect its status)."""
    try:
        process = psutil.Process(pid)
        return None if process.status() == psutil.STATUS_ZOMBIE else process.create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None


def worker_state(worker: RunWorker | None, host: str, start_time=process_start_time) -> WorkerState:
    if worker is None or worker.host != host:
        return WorkerState.UNKNOWN
    started = start_time(worker.pid)
    if started is None or abs(started - worker.started) > START_TIME_TOLERANCE_S:
        return WorkerState.GONE  # no such process, or its pid now belongs to a newer one
    return WorkerState.ALIVE


def reap_dead_runs(instance: dg.DagsterInstance, current_run_id: str | None = None) -> list[str]:
    """Mark failed the in-progress runs of this host whose worker process is gone, and free the pool
    slots of every finished run whose worker is not alive; returns one line per run cleared."""
    host = socket.gethostname()
    lines = []
    for record in instance.get_run_records(RunsFilter(statuses=IN_PROGRESS)):
        run = record.dagster_run
        worker = RunWorker.from_tags(run.tags)
        if run.run_id == current_run_id or worker_state(worker, host) is not WorkerState.GONE:
            continue
        latest = instance.get_run_by_id(run.run_id)
        if latest is None or latest.is_finished:  # another run or the daemon got there first
            continue
        message = (
            f"Run worker {worker} is gone (killed or crashed) while the run was {run.status.value}: "
            f"marked failed and its pool slots freed by run {current_run_id or 'cleanup'}. "
            "The next run redoes what this one did not finish."
        )
        instance.report_run_failed(latest, message, JobFailureData(None, RunFailureReason.UNEXPECTED_TERMINATION))
        freed = free_slots(instance, run.run_id)
        lines.append(
            f"Run {run.run_id} ({run.job_name}): worker {worker} is gone; marked failed, {freed} pool slots freed"
        )
    if instance.event_log_storage.supports_global_concurrency_limits:
        holders = instance.event_log_storage.get_concurrency_run_ids() - {current_run_id}
        if holders:
            for record in instance.get_run_records(RunsFilter(run_ids=list(holders), statuses=FINISHED_STATUSES)):
                run = record.dagster_run
                if worker_state(RunWorker.from_tags(run.tags), host) is WorkerState.ALIVE:
                    continue  # marked finished, but its steps still run: they free their own slots
                freed = free_slots(instance, run.run_id)
                status = run.status.value
                lines.append(f"Run {run.run_id} ({run.job_name}) is {status} but held {freed} pool slots: freed")
    return lines


def free_slots(instance: dg.DagsterInstance, run_id: str) -> int:
    """Free every pool slot ``run_id`` claimed or waits for; returns how many it held."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return 0
    held = sum(
        1
        for key in storage.get_concurrency_keys()
        for slot in storage.get_concurrency_info(key).claimed_slots
        if slot.run_id == run_id
    )
    storage.free_concurrency_slots_for_run(run_id)
    return held


def _waits_on_pool(event: DagsterEvent) -> bool:
    """Dagster's 'Step blocked by limit for pool ...' engine event (repeated while the step waits)."""
    return (
        event.event_type == DagsterEventType.ENGINE_EVENT
        and event.engine_event_data is not None
        and "pool" in (event.engine_event_data.metadata or {})
    )


class HealthCheckedExecutor(Executor):
    """Runs the steps with the wrapped executor, after recording this run's worker process and
    clearing dead runs; clears them again each time a step reports that it waits on a pool (at once,
    then every five minutes while it waits), so a run killed while this one waits unblocks it too."""

    def __init__(self, inner: Executor):
        self._inner = inner

    @property
    def retries(self) -> RetryMode:
        return self._inner.retries

    @property
    def step_dependency_config(self) -> StepDependencyConfig:
        return self._inner.step_dependency_config

    def execute(self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan) -> Iterator[DagsterEvent]:
        instance, run = plan_context.instance, plan_context.dagster_run
        worker = RunWorker.current()
        instance.add_run_tags(run.run_id, worker.as_tags())
        yield DagsterEvent.engine_event(
            plan_context, f"Run worker: {worker}", EngineEventData(metadata=worker.as_tags())
        )
        yield from self._reap(plan_context)
        for event in self._inner.execute(plan_context, execution_plan):
            yield event
            if _waits_on_pool(event):
                yield from self._reap(plan_context)

    @staticmethod
    def _reap(plan_context: PlanOrchestrationContext) -> Iterator[DagsterEvent]:
        started = time.perf_counter()
        try:
            lines = reap_dead_runs(plan_context.instance, plan_context.dagster_run.run_id)
        except Exception as exc:  # housekeeping: a storage hiccup here must not fail this run
            yield DagsterEvent.engine_event(plan_context, f"Dead-run cleanup skipped: {type(exc).__name__}: {exc}")
            return
        for line in lines:
            yield DagsterEvent.engine_event(
                plan_context, f"{line} ({time.perf_counter() - started:.2f}s)", EngineEventData()
            )


@dg.executor(
    name="multiprocess_health_checked",
    config_schema=dg.multiprocess_executor.config_schema.as_field(),
    requirements=dg.multiple_process_executor_requirements(),
)
def multiprocess_health_checked_executor(init_context) -> Executor:
    """Dagster's multiprocess executor (same configuration), which first clears dead runs."""
    return HealthCheckedExecutor(dg.multiprocess_executor.executor_creation_fn(init_context))


class HealthCheckedRunLauncher(DefaultRunLauncher):
    """Dagster's default launcher (a process per run beside the code server), plus the worker health
    check run monitoring needs: a run whose recorded worker process is gone is FAILED. A worker that
    cannot be checked from here (not recorded yet, another host) counts as running."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run) -> CheckRunHealthResult:
        worker = RunWorker.from_tags(run.tags)
        state = worker_state(worker, socket.gethostname())
        if state is WorkerState.GONE:
            return CheckRunHealthResult(WorkerStatus.FAILED, f"run worker {worker} is gone (killed or crashed)")
        if state is WorkerState.ALIVE:
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"run worker {worker} is alive")
        return CheckRunHealthResult(WorkerStatus.RUNNING, "run worker not checkable from this host")
