"""Benchmark: extraction from MariaDB into Iceberg raw, side by side with the raw client.

Fills `web_events` (13 columns: ids, text, JSON, timestamps) in a scratch MariaDB database with
N rows, then measures in one run:
  - the raw client: `mariadb --quick -e "select * from web_events" > /dev/null`
  - Shoplake's full extraction (read, protect, diff, write Parquet, one Iceberg commit), in a child
    process whose peak RSS is its own
  - the same at a smaller size, to show memory does not grow with the table
  - an incremental run after 1% of the rows changed (0.8% updated, 0.1% inserted, 0.1% deleted),
    beside what the source alone needs for it: the raw client reading the changed rows, and the
    key-only scan that finds deletes
The server's InnoDB buffer pool decides the incremental cost (changed rows scattered over the table
are random page reads): `--buffer-pool-mb` sets it for the run and restores it afterwards.

`--binlog` runs the same on a private MariaDB started for the run with the binary log on
(log_bin, binlog_format=ROW, binlog_row_metadata=FULL; the server on 3306 runs without it) and
also times what log-based CDC would cost for the same 1% change: decoding its row events from the
binlog with mysql-replication (`pip install -e ".[bench]"`).
Prints a table and writes the figures as JSON (the last line printed is the JSON file's path).

    .venv/bin/python benchmarks/extract_mysql.py --rows 5000000
    .venv/bin/python benchmarks/extract_mysql.py --rows 5000000 --binlog
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pymysql

DATABASE = "shoplake_bench_extract"
SERVER = {"host": "127.0.0.1", "port": 3306}  # --binlog points this at a private server
FILL = """
INSERT INTO web_events (event_id, session_id, customer_id, event_type, product_id, order_id, channel,
                        traffic_source, device_type, country, occurred_at, properties, updated_at)
SELECT seq, CONCAT('sess-', LPAD(seq DIV 5, 10, '0')), IF(seq % 3 = 0, NULL, seq DIV 50),
       ELT(1 + seq % 5, 'session_start', 'product_view', 'add_to_cart', 'checkout', 'purchase'),
       IF(seq % 5 = 0, NULL, seq % 1000), IF(seq % 5 = 4, seq DIV 5, NULL),
       ELT(1 + seq % 2, 'web', 'mobile_app'),
       ELT(1 + seq % 6, 'organic', 'paid_search', 'social', 'email', 'referral', 'direct'),
       ELT(1 + seq % 3, 'desktop', 'mobile', 'tablet'), ELT(1 + seq % 4, 'US', 'DE', 'GB', 'JP'),
       TIMESTAMP('2025-01-01') + INTERVAL seq SECOND,
       CONCAT('{{"page": "/product/', seq % 1000, '", "referrer": "search"}}'),
       TIMESTAMP('2025-01-01') + INTERVAL seq SECOND
FROM seq_{lo}_to_{hi}
"""

CHILD = """
import json, resource, sys, time
from orchestration.defs.extract.extract_table import extract_table
from orchestration.settings import Settings
from orchestration.contract.schema import table
start = time.perf_counter()
r = extract_table(table("web_events"), Settings.from_env(), run_id=sys.argv[1])
print(json.dumps({"seconds": time.perf_counter() - start, "rows_read": r.rows_read, "written": r.rows_written,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def sh(sql: str, database: str | None = DATABASE) -> None:
    con = pymysql.connect(**SERVER, user="root", database=database, autocommit=True)
    con.cursor().execute(sql)
    con.close()


def fill(rows: int) -> float:
    from orchestration.contract.database import SourceDatabase

    sh(f"DROP DATABASE IF EXISTS {DATABASE}", None)
    sh(f"CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4", None)
    SourceDatabase(source_url()).create_schema()
    started = time.perf_counter()
    step = 1_000_000
    for lo in range(1, rows + 1, step):
        sh(FILL.format(lo=lo, hi=min(rows, lo + step - 1)))
    return time.perf_counter() - started


def source_url() -> str:
    return f"mysql://root@{SERVER['host']}:{SERVER['port']}/{DATABASE}"


def raw_client_seconds(sql: str = "select * from web_events") -> float:
    client = shutil.which("mariadb") or shutil.which("mysql")
    started = time.perf_counter()
    subprocess.run(
        [client, "--quick", f"-h{SERVER['host']}", f"-P{SERVER['port']}", "-uroot", DATABASE, "-e", sql],
        stdout=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - started


def query_row(sql: str, database: str | None = DATABASE) -> tuple:
    con = pymysql.connect(**SERVER, user="root", database=database, autocommit=True)
    cur = con.cursor()
    cur.execute(sql)
    row = cur.fetchone()
    con.close()
    return row


def query_one(sql: str, database: str | None = DATABASE):
    return query_row(sql, database)[0]


def change_one_percent(rows: int) -> dict:
    """0.8% of the rows updated, 0.1% deleted, 0.1% inserted: 1% of the table changed."""
    sh('UPDATE web_events SET properties = \'{"page": "/changed"}\' WHERE event_id % 125 = 0')
    sh("DELETE FROM web_events WHERE event_id % 1000 = 7")
    sh(FILL.format(lo=rows + 1, hi=rows + rows // 1000))
    sh(f"UPDATE web_events SET updated_at = CURRENT_TIMESTAMP(3) WHERE event_id > {rows}")  # inserted now
    return {"updated": rows // 125, "deleted": rows // 1000, "inserted": rows // 1000}


def extract(home: Path, run_id: str) -> dict:
    env = {**os.environ, "SHOPLAKE_HOME": str(home), "SHOPLAKE_SOURCE_URL": source_url()}
    out = subprocess.run([sys.executable, "-c", CHILD, run_id], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def private_server_with_binlog(work: Path, pool_mb: int):
    """A throw-away MariaDB with the binary log on, listening on a free port; removed afterwards."""
    import socket

    datadir = work / "mariadb"
    subprocess.run(
        [
            "mariadb-install-db",
            "--no-defaults",
            f"--datadir={datadir}",
            "--user=root",
            "--auth-root-authentication-method=normal",
        ],
        check=True,
        capture_output=True,
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [
            "mariadbd",
            "--no-defaults",
            f"--datadir={datadir}",
            "--user=root",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--socket={work / 'mariadb.sock'}",
            f"--log-bin={datadir / 'binlog'}",
            "--binlog-format=ROW",
            "--binlog-row-metadata=FULL",
            "--server-id=1",
            f"--innodb-buffer-pool-size={pool_mb}M",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(120):
            try:
                pymysql.connect(host="127.0.0.1", port=port, user="root").close()
                break
            except pymysql.err.OperationalError:
                time.sleep(0.5)
        else:
            raise RuntimeError("the private MariaDB did not start within 60 s")
        SERVER["port"] = port
        yield port
    finally:
        SERVER["port"] = 3306
        server.terminate()
        server.wait(timeout=60)


def binlog_position() -> tuple[str, int]:
    file, position = query_row("SHOW MASTER STATUS", None)[:2]
    return file, position


def binlog_decode_seconds(since: tuple[str, int]) -> dict:
    """What log-based CDC costs for the change: stream the row events written since `since` and
    decode every row image (python-mysql-replication, as a CDC extractor would)."""
    from pymysqlreplication import BinLogStreamReader
    from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

    started = time.perf_counter()
    stream = BinLogStreamReader(
        connection_settings={**SERVER, "user": "root", "passwd": ""},
        server_id=4242,
        log_file=since[0],
        log_pos=since[1],
        resume_stream=True,
        blocking=False,
        only_events=[WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent],
        only_schemas=[DATABASE],
        only_tables=["web_events"],
        enable_logging=False,
    )
    rows = {"inserted": 0, "updated": 0, "deleted": 0}
    kind = {WriteRowsEvent: "inserted", UpdateRowsEvent: "updated", DeleteRowsEvent: "deleted"}
    try:
        for event in stream:
            rows[kind[type(event)]] += len(event.rows)
    finally:
        stream.close()
    return {"seconds": round(time.perf_counter() - started, 2), **rows}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--small-rows", type=int, default=1_000_000)
    parser.add_argument(
        "--buffer-pool-mb", type=int, default=None, help="InnoDB buffer pool for the run (restored after)"
    )
    parser.add_argument(
        "--binlog",
        action="store_true",
        help="run on a private MariaDB with the binary log on and time decoding the change from it",
    )
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="shoplake-bench-"))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, work, ignore_errors=True)
        if args.binlog:
            stack.enter_context(private_server_with_binlog(work, args.buffer_pool_mb or 128))
        run(args, work)


def run(args: argparse.Namespace, work: Path) -> None:
    pool_before = query_one("SELECT @@innodb_buffer_pool_size", None)
    if args.buffer_pool_mb:
        sh(f"SET GLOBAL innodb_buffer_pool_size = {args.buffer_pool_mb * 2**20}", None)
    figures: dict = {
        "machine": {
            "cores": os.cpu_count(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "platform": platform.platform(),
        },
        "date": dt.date.today().isoformat(),
        "table": "web_events (13 columns)",
    }
    try:
        # Small size first: same code, fewer rows, to compare peak memory.
        fill(args.small_rows)
        small = extract(work / "small", "bench-small")
        figures["small"] = {"rows": args.small_rows, **small}

        figures["fill_seconds"] = round(fill(args.rows), 1)
        figures["innodb_buffer_pool_mb"] = query_one("SELECT @@innodb_buffer_pool_size") // 2**20
        raw = raw_client_seconds()
        full = extract(work / "large", "bench-full")
        since = query_one("SELECT max(updated_at) FROM web_events")
        binlog_since = binlog_position() if args.binlog else None
        changed = change_one_percent(args.rows)
        if args.binlog:
            figures["binlog_decode"] = binlog_decode_seconds(binlog_since)
        # What the source alone needs for an incremental run: the changed rows, and every key.
        source_changed = raw_client_seconds(f"select * from web_events where updated_at >= '{since}'")
        source_keys = raw_client_seconds("select event_id from web_events")
        incremental = extract(work / "large", "bench-incremental")
        figures.update(
            rows=args.rows,
            raw_client={"seconds": round(raw, 2), "rows_per_second": round(args.rows / raw)},
            full={**full, "rows_per_second": round(args.rows / full["seconds"])},
            incremental={**incremental, "changed_rows": sum(changed.values()), **changed},
            raw_client_changed_rows_seconds=round(source_changed, 2),
            raw_client_key_scan_seconds=round(source_keys, 2),
        )
        figures["full_vs_raw_client"] = round((args.rows / full["seconds"]) / (args.rows / raw), 2)
        figures["incremental_fraction"] = round(incremental["seconds"] / full["seconds"], 3)
        figures["source_floor_fraction"] = round(max(source_changed, source_keys) / full["seconds"], 3)
    finally:
        sh(f"DROP DATABASE IF EXISTS {DATABASE}", None)
        sh(f"SET GLOBAL innodb_buffer_pool_size = {pool_before}", None)

    print(
        f"\nExtraction of {figures['table']} from MariaDB into Iceberg raw "
        f"({figures['machine']['cores']} cores, {figures['machine']['memory_gb']} GiB, {figures['date']})\n"
    )
    print(f"{'run':<34}{'rows':>12}{'seconds':>10}{'rows/s':>12}{'peak RSS MB':>13}")
    print(
        f"{'mariadb --quick > /dev/null':<34}{args.rows:>12,}{figures['raw_client']['seconds']:>10.2f}"
        f"{figures['raw_client']['rows_per_second']:>12,}{'':>13}"
    )
    for label, key, rows in (
        ("shoplake full extract (small)", "small", args.small_rows),
        ("shoplake full extract", "full", args.rows),
    ):
        f = figures[key]
        print(f"{label:<34}{rows:>12,}{f['seconds']:>10.2f}{round(rows / f['seconds']):>12,}{f['peak_rss_mb']:>13.0f}")
    inc = figures["incremental"]
    print(
        f"{'mariadb: changed rows only':<34}{inc['updated'] + inc['inserted']:>12,}"
        f"{figures['raw_client_changed_rows_seconds']:>10.2f}"
    )
    print(f"{'mariadb: key-only scan':<34}{args.rows:>12,}{figures['raw_client_key_scan_seconds']:>10.2f}")
    if "binlog_decode" in figures:
        b = figures["binlog_decode"]
        print(
            f"{'binlog: decode the change (CDC)':<34}{b['inserted'] + b['updated'] + b['deleted']:>12,}"
            f"{b['seconds']:>10.2f}"
        )
        figures["binlog_decode_fraction"] = round(b["seconds"] / figures["full"]["seconds"], 3)
    print(
        f"{'shoplake incremental (1% changed)':<34}{inc['written']:>12,}{inc['seconds']:>10.2f}{'':>12}"
        f"{inc['peak_rss_mb']:>13.0f}"
    )
    print(
        f"\nfull extract / raw client rate: {figures['full_vs_raw_client']}x   "
        f"incremental / full time: {figures['incremental_fraction']:.1%} "
        f"(the source alone: {figures['source_floor_fraction']:.1%})   "
        f"InnoDB buffer pool: {figures['innodb_buffer_pool_mb']} MB"
    )
    if "binlog_decode_fraction" in figures:
        print(
            f"binlog decode / full time: {figures['binlog_decode_fraction']:.1%} (private server, log_bin=ON, "
            "ROW, FULL metadata)"
        )
    suffix = "_binlog" if args.binlog else ""
    out = Path(
        args.output
        or Path(__file__).with_name("results")
        / f"extract_mysql_{args.rows}_pool{figures['innodb_buffer_pool_mb']}mb{suffix}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))
    print(out)


if __name__ == "__main__":
    main()
