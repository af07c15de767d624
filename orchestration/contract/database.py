"""Connections to the shop's OLTP database: SQLite (the embedded demo) or MySQL/MariaDB.

Writers (the generator, ``shoplake simulate``) use a DB-API connection; the extractor reads
through connectorx straight into Arrow. Every failure to reach the database becomes a
``SourceUnavailable`` naming the URL (without its password) and what to check.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import pyarrow as pa
import pyarrow.compute as pc

from orchestration.contract import schema


class SourceUnavailable(RuntimeError):
    """The source database cannot be reached or opened.

    ``transient`` says whether trying again later can help: a refused connection or a timeout can
    clear up on its own; a wrong password, an unknown database or a missing demo shop cannot, so
    those fail at once instead of being retried.
    """

    def __init__(self, message: str, transient: bool = True):
        super().__init__(message)
        self.transient = transient


# MySQL client errors that no retry can fix: access denied (to the server, to the database), unknown database.
PERMANENT_MYSQL_ERRORS = frozenset({1044, 1045, 1049, 1698})
CONNECT_ERROR_FIXES = {
    1044: "Grant the user access to that database, or fix the database name in the URL (SHOPLAKE_SOURCE_URL).",
    1045: "Check the user and password in the URL (SHOPLAKE_SOURCE_URL).",
    1049: "Check the database name in the URL (SHOPLAKE_SOURCE_URL), or create the database.",
    None: "Check that the server is running, the host and port are right and the user may log in.",
}
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 300.0


@dataclass(frozen=True)
class SourceDatabase:
    url: str
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    """Seconds to open a connection."""
    read_timeout: float = DEFAULT_READ_TIMEOUT
    """Seconds one query may take, from sending it to its last row (extraction reads are bounded by it too)."""

    def __post_init__(self) -> None:
        if self.kind not in ("sqlite", "mysql"):
            raise SourceUnavailable(
                f"unsupported source URL {self.redacted_url!r}: use sqlite:///path/to/shop.db "
                "or mysql://user:password@host:3306/database"
            )

    @property
    def kind(self) -> str:
        scheme = urlsplit(self.url).scheme.split("+")[0]
        return "mysql" if scheme in ("mysql", "mariadb") else scheme

    @property
    def redacted_url(self) -> str:
        parts = urlsplit(self.url)
        if parts.password:
            return self.url.replace(f":{parts.password}@", ":***@")
        return self.url

    @property
    def sqlite_path(self) -> Path:
        # SQLAlchemy's convention: everything after "sqlite:///" is the path (absolute if it starts with /).
        return Path(unquote(self.url.split(":///", 1)[1]))

    @property
    def connectorx_url(self) -> str:
        if self.kind == "sqlite":
            return f"sqlite://{self.sqlite_path}"
        parts = urlsplit(self.url)
        # The Rust driver would switch a connection to 127.0.0.1 over to the server's Unix socket
        # behind the URL's back; it keeps to the address given, and gets the connect timeout.
        params = dict(parse_qsl(parts.query))
        params.setdefault("prefer_socket", "false")
        params.setdefault("tcp_connect_timeout_ms", str(int(self.connect_timeout * 1000)))
        return parts._replace(scheme="mysql", query=urlencode(params)).geturl()

    # -- connections ------------------------------------------------------------------------
    def connect(self, create: bool = False):
        """A DB-API connection. ``create`` allows a new SQLite file (the generator's case)."""
        if self.kind == "sqlite":
            path = self.sqlite_path
            if not create and not path.exists():
                raise SourceUnavailable(
                    f"the demo shop {path} does not exist: run `shoplake generate` first "
                    "(or set SHOPLAKE_SOURCE_URL to your MySQL database)",
                    transient=False,
                )
            path.parent.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(path, timeout=60)
            # connectorx opens SQLite files in a way that does not read a write-ahead log: keep the
            # rollback journal so every committed write is in the main file.
            con.execute("PRAGMA journal_mode=DELETE")
            return con
        import pymysql

        parts = urlsplit(self.url)
        try:
            return pymysql.connect(
                host=parts.hostname or "127.0.0.1",
                port=parts.port or 3306,
                user=unquote(parts.username or "root"),
                password=unquote(parts.password or ""),
                database=parts.path.lstrip("/") or None,
                charset="utf8mb4",
                connect_timeout=self.connect_timeout,
                read_timeout=self.read_timeout,
                write_timeout=self.read_timeout,
                autocommit=False,
                local_infile=True,
            )
        except pymysql.err.MySQLError as exc:
            code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
            raise SourceUnavailable(
                f"cannot connect to the source database {self.redacted_url}: {exc.args[-1] if exc.args else exc}. "
                + CONNECT_ERROR_FIXES.get(code, CONNECT_ERROR_FIXES[None]),
                transient=code not in PERMANENT_MYSQL_ERRORS,
            ) from exc

    def ensure_reachable(self) -> None:
        """Fail fast with a clear message (connectorx alone would retry for half a minute)."""
        self.connect().close()

    def clock(self) -> dt.datetime:
        """The source's own current time, as its ``updated_at`` columns are stamped (naive).

        MySQL stamps ``updated_at`` with CURRENT_TIMESTAMP(3) of the writing session, in the server's
        time zone; the demo's SQLite shop writes UTC. Opening the connection is also the reachability
        check, so this replaces ``ensure_reachable`` where both are wanted.
        """
        con = self.connect()
        try:
            cur = con.cursor()
            if self.kind == "sqlite":
                cur.execute("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")
                return dt.datetime.fromisoformat(cur.fetchone()[0])
            cur.execute("SELECT NOW(3)")
            return cur.fetchone()[0]
        except Exception as exc:  # pymysql's timeouts and lost connections: the server stopped answering
            if isinstance(exc, SourceUnavailable) or self.kind == "sqlite":
                raise
            raise SourceUnavailable(
                f"the source database {self.redacted_url} did not answer: {exc}. "
                "Check that the server is running and reachable, then run again: nothing was committed."
            ) from exc
        finally:
            con.close()

    def tables_with_rows(self) -> list[str]:
        """The shop tables that exist at the source and hold at least one row."""
        if self.kind == "sqlite" and not self.sqlite_path.exists():
            return []
        con = self.connect()
        try:
            cur = con.cursor()
            if self.kind == "sqlite":
                cur.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            else:
                cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()")
            existing = {row[0] for row in cur.fetchall()}
            found = []
            for t in schema.TABLES:
                if t.name in existing:
                    cur.execute(f"SELECT 1 FROM {self.quote(t.name)} LIMIT 1")
                    if cur.fetchone():
                        found.append(t.name)
            return found
        finally:
            con.close()

    def placeholder(self) -> str:
        return "?" if self.kind == "sqlite" else "%s"

    def quote(self, identifier: str) -> str:
        return f'"{identifier}"' if self.kind == "sqlite" else f"`{identifier}`"

    # -- schema -------------------------------------------------------------------------------
    def create_schema(self, drop_existing: bool = False) -> None:
        con = self.connect(create=True)
        try:
            cur = con.cursor()
            if drop_existing:
                for t in schema.TABLES:
                    cur.execute(f"DROP TABLE IF EXISTS {self.quote(t.name)}")
            if self.kind == "sqlite":
                for stmt in schema.sqlite_ddl():
                    cur.execute(stmt)
            else:
                for stmt in schema.mysql_create_statements():
                    cur.execute(stmt)
            con.commit()
        finally:
            con.close()

    # -- writes -------------------------------------------------------------------------------
    def insert(self, con, table_name: str, data: pa.Table, batch_rows: int = 20_000) -> int:
        """Insert an Arrow table whose columns are a subset of the source table's, in batches."""
        t = schema.table(table_name)
        cols = data.column_names
        unknown = set(cols) - set(t.column_names)
        if unknown:
            raise ValueError(f"{table_name}: columns not in the source schema: {sorted(unknown)}")
        sql = (
            f"INSERT INTO {self.quote(table_name)} ({', '.join(self.quote(c) for c in cols)}) "
            f"VALUES ({', '.join([self.placeholder()] * len(cols))})"
        )
        cur = con.cursor()
        for batch in data.to_batches(max_chunksize=batch_rows):
            cur.executemany(sql, list(_python_rows(batch)))
        return data.num_rows

    def execute(self, con, sql: str, params: Sequence = ()) -> None:
        con.cursor().execute(sql, params)


def _python_rows(batch: pa.RecordBatch) -> Iterator[tuple]:
    """Rows of DB-API friendly values: text timestamps for SQLite, exact decimals as strings."""
    # Vectorised conversions (Arrow compute) instead of one Python object per value: the same
    # texts ('2026-10-31 12:00:00.123', '12.30', '2026-10-31', 0/1) at a fraction of the cost.
    columns = []
    for col in batch.columns:
        if pa.types.is_dictionary(col.type):  # dictionary-encoded text: decode in bulk first
            col = col.dictionary_decode()
        if pa.types.is_timestamp(col.type):
            ms = pc.cast(col, pa.timestamp("ms", tz=col.type.tz), safe=False)
            if col.type.tz is not None:
                ms = pc.cast(
                    pc.cast(ms, pa.timestamp("ms", tz="UTC")), pa.timestamp("ms")
                )  # naive UTC, like isoformat of the stored value
            values = pc.cast(ms, pa.string()).to_pylist()  # 'YYYY-MM-DD HH:MM:SS.mmm' (much faster than strftime)
        elif pa.types.is_decimal(col.type) or pa.types.is_date(col.type):
            values = pc.cast(col, pa.string()).to_pylist()
        elif pa.types.is_boolean(col.type):
            values = pc.cast(col, pa.int8()).to_pylist()
        elif pa.types.is_integer(col.type) and col.null_count == 0:
            values = col.to_numpy().tolist()
        else:
            values = col.to_pylist()
        columns.append(values)
    return zip(*columns)
