"""What a user sees when they get a command wrong: one clear line, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import clean_environ

SHOPLAKE = str(Path(sys.executable).parent / "shoplake")


def run(*args: str, env_home: Path) -> subprocess.CompletedProcess:
    env = clean_environ(env_home)
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


@pytest.mark.mariadb
def test_generate_refuses_a_mysql_shop_that_holds_rows_and_leaves_it_intact(tmp_path):
    import pymysql

    from tests.conftest import MARIADB, scratch_mariadb

    with scratch_mariadb() as (name, url):
        assert (
            run(
                "generate", "--customers", "20", "--days", "5", "--quiet", "--source", url, env_home=tmp_path
            ).returncode
            == 0
        )
        shop = pymysql.connect(**MARIADB, database=name, autocommit=True).cursor()
        shop.execute("INSERT INTO categories (category_id, name, department) VALUES (9999, 'typed by hand', 'staff')")
        shop.execute("SELECT count(*) FROM customers")
        customers = shop.fetchone()[0]

        proc = run("generate", "--customers", "30", "--days", "5", "--quiet", "--source", url, env_home=tmp_path)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert proc.stderr.startswith(f"shoplake generate: error: a shop in {url} (rows in customers, categories")
        assert proc.stderr.rstrip().endswith("already exists: pass --overwrite to replace it")
        shop.execute("SELECT name FROM categories WHERE category_id = 9999")
        assert shop.fetchone() == ("typed by hand",)
        shop.execute("SELECT count(*) FROM customers")
        assert shop.fetchone()[0] == customers
        shop.connection.close()


@pytest.mark.parametrize("args", [["generate", "--customers", "20", "--days", "5", "--quiet"], ["sql", "select 1"]])
def test_a_home_that_cannot_be_written_is_one_line(tmp_path, args):
    (tmp_path / "a-file").write_text("")
    home = tmp_path / "a-file" / "home"  # no folder can be made under a file (root may write anywhere else)
    proc = run(*args, env_home=home)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert f"Not a directory: {home}/" in proc.stderr and f"SHOPLAKE_HOME, now {home}" in proc.stderr


def test_a_malformed_timeout_setting_is_one_line(tmp_path):
    proc = subprocess.run(
        [SHOPLAKE, "where"],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_environ(tmp_path, SHOPLAKE_SOURCE_READ_TIMEOUT="soon"),
    )
    assert proc.returncode == 2 and proc.stderr == (
        "shoplake where: error: SHOPLAKE_SOURCE_READ_TIMEOUT must be a number of seconds above 0, got 'soon': "
        "fix or unset it\n"
    )


def test_scan_pans_prints_one_line_per_card_number_and_fails(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "step.out").write_text("all good\nretrying payment 4539-1488-0343-6467 for order 12\n")
    proc = run("scan-pans", env_home=tmp_path)
    assert proc.returncode == 1
    assert proc.stdout == f"{tmp_path / 'logs' / 'step.out'}: line 2: 453914******6467\n"
    assert "1 card number found" in proc.stderr and "4539148803436467" not in proc.stdout + proc.stderr
    clean = run("scan-pans", "--path", str(tmp_path / "missing"), env_home=tmp_path)
    assert clean.returncode == 2 and "does not exist" in clean.stderr
