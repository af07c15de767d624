"""Start `dagster dev -w workspace.yaml` for a test, the way a user does, and stop it cleanly."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from orchestration.settings import PROJECT_ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())["data"]


@contextlib.contextmanager
def dagster_dev(workdir: Path, env: dict[str, str]):
    """Yields the port of a running `dagster dev` whose code location has loaded."""
    port = free_port()
    dagster_home = Path(env["DAGSTER_HOME"])
    dagster_home.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "dagster-dev.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "dg"),  # dg dev: dagster dev without its supersession warning
            "dev",
            "-w",
            "workspace.yaml",
            "--host",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                nodes = graphql(port, "{ assetNodes { id } }")["assetNodes"]
                if nodes:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dagster dev did not load the code location:\n{log_path.read_text()[-4000:]}")
            time.sleep(2)
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
