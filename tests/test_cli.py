"""What a user sees when they get a command wrong: one clear line, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SHOPLAKE = str(Path(sys.executable).parent / "shoplake")


def run(*args: str, env_home: Path) -> subprocess.CompletedProcess:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPLAKE_")}
    env["SHOPLAKE_HOME"] = str(env_home)
    return subprocess.run([SHOPLAKE, *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["generate", "--customers", "-5"], "--customers must be at least 1, got -5"),
        (["generate", "--days", "abc"], "--days must be a whole number, got 'abc'"),
        (["generate", "--colour", "red"], "unrecognized arguments: --colour red"),
        (["generate", "--dirty-rate", "2"], "dirty_rate"),
        (["generate", "--source", "postgres://x@127.0.0.1/shop"], "unsupported source URL"),
        (["generate", "--source", "mysql://shop:secret@127.0.0.1:1/shop"], "cannot connect to the source database"),
    ],
)
def test_bad_generator_arguments_end_in_one_clear_message(tmp_path, args, message):
    proc = run(*args, env_home=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "secret" not in proc.stderr  # passwords never echoed


def test_existing_shop_is_not_overwritten_by_accident(tmp_path):
    assert run("generate", "--customers", "20", "--days", "5", "--quiet", env_home=tmp_path).returncode == 0
    proc = run("generate", "--customers", "20", "--days", "5", "--quiet", env_home=tmp_path)
    assert proc.returncode == 2 and "--overwrite" in proc.stderr


def test_sql_on_unknown_table_lists_what_exists(tmp_path):
    proc = run("sql", "select * from prod.nope", env_home=tmp_path)
    assert proc.returncode == 2
    assert "Tables you can query" in proc.stderr and "Traceback" not in proc.stderr
