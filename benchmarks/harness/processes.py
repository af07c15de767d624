"""Run a command and measure it: wall and CPU seconds, peak RSS of its process tree, machine load."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

SAMPLE_SECONDS = 0.2
MB = 1024 * 1024
QUIET_OTHERS_SHARE = 0.10  # other processes used at most a tenth of the machine's CPU: a quiet machine


@dataclass
class Measured:
    command: str
    returncode: int
    seconds: float
    cpu_seconds: float  # user + system of the command's process tree
    peak_rss_mb: float  # the largest single process (ru_maxrss of the waited-for tree)
    peak_tree_rss_mb: float  # the process and its descendants alive at the same time, sampled
    largest_processes: list = field(default_factory=list)
    others_cpu_share: float = 0.0  # CPU used by other processes on the machine, share of all cores
    load_average: list = field(default_factory=list)  # 1-minute load average at start and at end
    started_at: float = 0.0  # epoch seconds, to line the command up with its event log
    ended_at: float = 0.0

    @property
    def quiet(self) -> bool:
        return self.others_cpu_share <= QUIET_OTHERS_SHARE

    def figures(self) -> dict:
        return asdict(self) | {"quiet_machine": self.quiet}


class TreeSampler(threading.Thread):
    """Samples a process and its descendants: peak of their summed RSS, each one's peak, their CPU."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak = pid, 0
        self.by_process: dict[int, tuple[str, int]] = {}
        self.cpu: dict[int, float] = {}  # last seen user + system seconds per process
        self._done = threading.Event()

    def run(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._done.is_set():
            total = 0
            try:
                processes = [root, *root.children(recursive=True)]
            except psutil.Error:
                return
            for p in processes:
                try:
                    with p.oneshot():
                        rss = p.memory_info().rss
                        times = p.cpu_times()
                except psutil.Error:
                    continue
                total += rss
                self.cpu[p.pid] = times.user + times.system
                name, peak = self.by_process.get(p.pid) or (process_name(p), 0)
                self.by_process[p.pid] = (name, max(peak, rss))
            self.peak = max(self.peak, total)
            self._done.wait(SAMPLE_SECONDS)

    def stop(self) -> None:
        self._done.set()
        self.join()

    def largest(self, n: int = 3) -> list[dict]:
        ranked = sorted(self.by_process.values(), key=lambda v: -v[1])[:n]
        return [{"process": name, "peak_rss_mb": round(peak / MB, 1)} for name, peak in ranked]


def process_name(p: psutil.Process) -> str:
    """`dbt build`, `dagster job`: the program and its first argument."""
    try:
        cmdline = p.cmdline()
    except psutil.Error:
        return "?"
    if any("multiprocessing" in w for w in cmdline):
        return "step process"  # forked from the run's forkserver, whose command line it keeps
    words = [Path(w).name for w in cmdline[:3]]
    if words and words[0].startswith("python"):
        words = words[1:]
    return " ".join(words[:2]) or "?"


def _busy_cpu_seconds() -> float:
    """CPU seconds the whole machine spent working (guest time is already inside user time; time the
    hypervisor gave to other machines counts as busy: this machine could not use it)."""
    t = psutil.cpu_times()._asdict()
    return sum(t.get(k, 0.0) for k in ("user", "nice", "system", "irq", "softirq", "steal"))


def run_measured(cmd: list[str], env: dict, cwd: Path, log: Path) -> Measured:
    """Run ``cmd`` to completion, its output appended to ``log``."""
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(cmd)}\n".encode())
        out.flush()
        load_start = os.getloadavg()[0]
        busy_start, started_at, started = _busy_cpu_seconds(), time.time(), time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        sampler.stop()
        busy = _busy_cpu_seconds() - busy_start
        proc.returncode = os.waitstatus_to_exitcode(status)
    # The waited-for tree's CPU, or what the samples saw when a descendant was not waited for.
    own_cpu = max(usage.ru_utime + usage.ru_stime, sum(sampler.cpu.values()))
    cores = os.cpu_count() or 1
    return Measured(
        command=" ".join(Path(w).name if i == 0 else w for i, w in enumerate(cmd)),
        returncode=proc.returncode,
        seconds=round(seconds, 3),
        cpu_seconds=round(own_cpu, 3),
        peak_rss_mb=round(usage.ru_maxrss / 1024, 1),
        peak_tree_rss_mb=round(sampler.peak / MB, 1),
        largest_processes=sampler.largest(),
        others_cpu_share=round(max(0.0, busy - own_cpu) / (seconds * cores), 3) if seconds else 0.0,
        load_average=[round(load_start, 2), round(os.getloadavg()[0], 2)],
        started_at=started_at,
        ended_at=started_at + seconds,
    )
