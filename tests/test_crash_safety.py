"""Invariant 2: killing extraction anywhere, or losing the database mid-run, then running again gives
the same raw tables as an uninterrupted run: no duplicate, no lost row."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys

import pymysql
import pytest

from demo_shop.generate import ShopConfig, generate_shop
from orchestration.contract import schema
from orchestration.contract.database import SourceDatabase, SourceUnavailable
from orchestration.defs.extract import extract_table as et
from orchestration.lakehouse.catalog import load_catalog
from orchestration.settings import Settings
from tests.conftest import MARIADB, scratch_mariadb
from tests.tcp_proxy import Proxy

METADATA = {"_extracted_at", "_dagster_run_id"}
CHUNK_ROWS = 300

# Runs in a child process, which SIGKILLs itself at the named point while extracting `orders`
# (tables before it in TABLES have committed by then, tables after it have not started).
CHILD = """
import os, signal, sys
from orchestration.defs.extract import extract_table as et
from orchestration.settings import Settings
from orchestration.contract.schema import TABLES

point, victim = sys.argv[1], "orders"
die = lambda: os.kill(os.getpid(), signal.SIGKILL)
read, markers = et.read_changed_rows, et._delete_markers

def read_then_die(db, table, *args, **kwargs):
    for i, chunk in enumerate(read(db, table, *args, **kwargs)):
        if point == "during_read" and table.name == victim and i == 1:
            die()
        yield chunk

def markers_then_die(con, table, *args, **kwargs):
    if point == "between_read_and_commit" and table.name == victim:
        die()
    return markers(con, table, *args, **kwargs)

et.read_changed_rows, et._delete_markers = read_then_die, markers_then_die
settings = Settings.from_env()
for table in TABLES:
    et.extract_table(table, settings, run_id="killed", chunk_rows=50)
die()  # after_commit: every table committed, the run never reports back
"""


def raw_content(settings: Settings) -> dict[str, list[tuple]]:
    catalog = load_catalog(settings)
    out = {}
    for t in schema.TABLES:
        rows = catalog.load_table(f"raw.{t.name}").scan().to_arrow().to_pylist()
        out[t.name] = sorted(tuple(sorted((k, str(v)) for k, v in r.items() if k not in METADATA)) for r in rows)
    return out


def extract_all(settings: Settings, run_id: str) -> None:
    for t in schema.TABLES:
        et.extract_table(t, settings, run_id=run_id, chunk_rows=CHUNK_ROWS)


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """A small generated shop and the raw tables of an uninterrupted extraction of it."""
    base = tmp_path_factory.mktemp("shop")
    settings = Settings.from_env({"SHOPLAKE_HOME": str(base / "reference")})
    generate_shop(ShopConfig(customers=150, days=40, seed=9), settings.source_url, settings.truth_dir, progress=False)
    extract_all(settings, "reference")
    return base, raw_content(settings)


@pytest.mark.slow
@pytest.mark.parametrize("point", ["during_read", "between_read_and_commit", "after_commit"])
def test_sigkill_then_rerun_equals_an_uninterrupted_run(shop, point, tmp_path):
    base, reference = shop
    home = tmp_path / "home"
    (home / "source").mkdir(parents=True)
    shutil.copy(base / "reference" / "source" / "shop.db", home / "source" / "shop.db")
    settings = Settings.from_env({"SHOPLAKE_HOME": str(home)})
    env = {"SHOPLAKE_HOME": str(home), "PATH": "/usr/bin:/bin"}
    child = subprocess.run([sys.executable, "-c", CHILD, point], env=env, capture_output=True, text=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    extract_all(settings, "rerun")
    assert raw_content(settings) == reference


@pytest.mark.mariadb
def test_database_lost_mid_run_fails_clearly_commits_nothing_then_recovers(shoplake_home, monkeypatch):
    with (
        scratch_mariadb() as (name, direct),
        contextlib.closing(Proxy()) as proxy,
        contextlib.closing(pymysql.connect(**MARIADB, autocommit=True)) as admin,
    ):
        SourceDatabase(direct).create_schema()
        admin.cursor().execute(
            f"INSERT INTO `{name}`.categories (category_id, name, department, updated_at) "
            f"SELECT seq, concat('c', seq), 'd', '2026-01-01 00:00:00.000' FROM `{name}`.seq_1_to_3000"
        )
        settings = Settings.from_env(
            {
                "SHOPLAKE_HOME": str(shoplake_home.home),
                "SHOPLAKE_SOURCE_URL": f"mysql://root@127.0.0.1:{proxy.port}/{name}",
            }
        )
        categories = schema.table("categories")

        read = et.read_changed_rows

        def read_then_cut(*args, **kwargs):
            for i, chunk in enumerate(read(*args, **kwargs)):
                yield chunk
                if i == 0:
                    proxy.cut()

        monkeypatch.setattr(et, "read_changed_rows", read_then_cut)
        with pytest.raises(
            SourceUnavailable, match=r"cannot (read from|connect to) the source database mysql://root@127\.0\.0\.1"
        ):
            et.extract_table(categories, settings, run_id="cut", chunk_rows=500)
        raw = load_catalog(settings).load_table("raw.categories")
        assert raw.current_snapshot() is None  # nothing partial committed

        monkeypatch.undo()
        proxy.restore()
        result = et.extract_table(categories, settings, run_id="after", chunk_rows=500)
        assert (result.inserted, result.rows_read) == (3000, 3000)
        assert load_catalog(settings).load_table("raw.categories").scan().to_arrow().num_rows == 3000


@pytest.mark.mariadb
def test_a_source_that_goes_silent_mid_read_times_out_commits_nothing_then_recovers(shoplake_home):
    """A blackhole: the connection stays open and no byte arrives. connectorx has no read timeout of
    its own; without the read deadline this extraction waited for ever and held the writer pool."""
    import threading

    with (
        scratch_mariadb() as (name, direct),
        contextlib.closing(Proxy()) as proxy,
        contextlib.closing(pymysql.connect(**MARIADB, database=name, autocommit=True)) as connection,
    ):
        SourceDatabase(direct).create_schema()
        source = connection.cursor()
        source.execute(
            "INSERT INTO categories (category_id, name, department, updated_at) "
            "SELECT seq, concat('category number ', seq), 'department', '2026-01-01 00:00:00.000' FROM seq_1_to_20000"
        )
        settings = Settings.from_env(
            {
                "SHOPLAKE_HOME": str(shoplake_home.home),
                "SHOPLAKE_SOURCE_URL": f"mysql://root@127.0.0.1:{proxy.port}/{name}",
                "SHOPLAKE_SOURCE_READ_TIMEOUT": "3",
            }
        )
        categories = schema.table("categories")
        assert et.extract_table(categories, settings, run_id="healthy").inserted == 20000
        before = load_catalog(settings).load_table("raw.categories").current_snapshot().snapshot_id

        source.execute("UPDATE categories SET name = concat(name, ' (renamed)') WHERE category_id <= 5000")
        source.execute(
            "INSERT INTO categories (category_id, name, department) "
            "SELECT 20000 + seq, concat('new category ', seq), 'department' FROM seq_1_to_5000"
        )
        proxy.stall(after_bytes=30_000)  # the handshakes and the schema check pass; the rows' read goes silent
        outcome = {}

        def extract():
            try:
                et.extract_table(categories, settings, run_id="blackholed")
            except Exception as exc:  # examined below
                outcome["error"] = exc

        worker = threading.Thread(target=extract, daemon=True)
        worker.start()
        worker.join(120)  # a hang guard only: the read deadline is 3 s
        assert not worker.is_alive(), "extraction hung on a silent source"
        error = outcome.get("error")
        assert isinstance(error, SourceUnavailable), error
        assert "stopped answering: a read took longer than 3 s (SHOPLAKE_SOURCE_READ_TIMEOUT)" in str(error)
        assert error.transient  # a retry may find the network back
        assert load_catalog(settings).load_table("raw.categories").current_snapshot().snapshot_id == before

        proxy.restore()
        result = et.extract_table(categories, settings, run_id="after")
        assert (result.inserted, result.updated, result.deleted) == (5000, 5000, 0)
        raw = load_catalog(settings).load_table("raw.categories").scan().to_arrow()
        assert raw.num_rows == 20000 + 5000 + 5000  # each version once
        latest = {}
        for row in sorted(raw.to_pylist(), key=lambda r: (r["category_id"], r["updated_at"])):
            latest[row["category_id"]] = row["name"]
        source.execute("SELECT category_id, name FROM categories")
        assert latest == dict(source.fetchall())
