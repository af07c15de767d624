"""What a result file records about where it was measured, and how result files are named."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import tarfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = PROJECT_ROOT / "benchmarks" / "results"


def machine() -> dict:
    return {
        "cores": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def code_version(commit: str | None = None) -> str:
    """The git short hash of ``commit``; of the working tree by default, with ``+`` when it had
    uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", commit or "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if commit:
            return head
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+" if dirty else "")


def export_commit(commit: str, dest: Path) -> Path:
    """The files of ``commit`` (``git archive``) in ``dest``: a run from there imports exactly that code,
    whatever is uncommitted in the working tree (its folder goes first on PYTHONPATH)."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.Popen(["git", "archive", "--format=tar", commit], cwd=PROJECT_ROOT, stdout=subprocess.PIPE)
    with tarfile.open(fileobj=archive.stdout, mode="r|") as tar:
        tar.extractall(dest, filter="data")
    if archive.wait():
        raise RuntimeError(f"git archive {commit} failed")
    return dest


def result_path(kind: str, scale: str, date: dt.date, code: str) -> Path:
    """``benchmarks/results/<kind>_<scale>_<date>_<code>.json`` (``+`` for uncommitted changes: ``-dirty``)."""
    return RESULTS_DIR / f"{kind}_{scale}_{date.isoformat()}_{code.replace('+', '-dirty')}.json"


def write(path: Path, figures: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2) + "\n")
    return path
