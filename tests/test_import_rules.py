"""The layers import one way: the contracts of .importlinter, checked by import-linter.

A stage (orchestration/defs/extract, transform, checks, and ml_assets) imports only the source
contract, the lakehouse library, resources, settings and policies (never another stage, the jobs of
defs/schedules.py or an entry point); only definitions.py and the CLI import the stages; the demo shop
depends only on the source contract.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("orchestration", "ml_assets", "demo_shop")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess:
    """lint-imports over the packages under ``root``, which come first on its import path. No cache:
    the import graph of the three packages builds in about a second, and nothing is written."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    args = [str(LINT_IMPORTS), str(root / ".importlinter"), "--no-logo", "--no-cache"]
    return subprocess.run(args, cwd=root, env=env, capture_output=True, text=True, timeout=300)


def test_the_import_rules_hold():
    result = _lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 kept, 0 broken" in result.stdout


def test_a_stage_importing_another_stage_breaks_the_rules(tmp_path):
    for package in PACKAGES:
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(REPO / ".importlinter", tmp_path / ".importlinter")
    stage = tmp_path / "orchestration" / "defs" / "extract" / "assets.py"
    lines = stage.read_text(encoding="utf-8").splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith(("import ", "from ")) and "__future__" not in line)
    lines.insert(at, "from orchestration.defs.checks import audit  # noqa: F401\n")
    stage.write_text("".join(lines), encoding="utf-8")

    result = _lint(tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    report = " ".join(result.stdout.split())  # the report wraps long lines
    assert "orchestration.defs.extract is not allowed to import orchestration.defs.checks" in report
    assert f"orchestration.defs.extract.assets -> orchestration.defs.checks.audit (l.{at + 1})" in report
