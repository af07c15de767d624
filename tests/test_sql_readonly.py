"""`shoplake sql` and the notebooks' session are read-only by construction: nothing they run can
write, attach, install or read outside the published prod, curated and quarantine tables."""

import hashlib

import duckdb
import pyarrow as pa
import pytest

from orchestration import query
from orchestration.cli import main
from orchestration.lakehouse.catalog import load_catalog, load_or_create

SCHEMA = pa.schema([("order_id", pa.int64()), ("total", pa.float64()), ("email", pa.string())])


@pytest.fixture
def lakehouse(shoplake_home):
    """A small lakehouse: raw, curated, quarantine and prod tables in the real catalog, and a
    transform database, as a pipeline run leaves them."""
    catalog = load_catalog(shoplake_home)
    for ns in ("raw", "curated", "quarantine", "prod"):
        catalog.create_namespace_if_not_exists(ns)
        table = load_or_create(catalog, f"{ns}.orders", SCHEMA)
        table.append(
            pa.table(
                {
                    "order_id": [1, 2, 3],
                    "total": [10.0, 20.5, 7.25],
                    "email": [f"{ns}-a@example.com", "b@example.com", "c@example.com"],
                },
                schema=SCHEMA,
            )
        )
    con = duckdb.connect(str(shoplake_home.duckdb_path))
    con.execute("CREATE SCHEMA prod; CREATE TABLE prod.fct_orders AS SELECT 1 AS order_id, 10.0 AS total")
    con.close()
    return shoplake_home


def state(settings) -> tuple[dict, dict]:
    """Every table's current snapshot and every file's checksum under the home's lakehouse."""
    catalog = load_catalog(settings)
    snapshots = {
        f"{ns}.orders": catalog.load_table(f"{ns}.orders").current_snapshot().snapshot_id
        for ns in ("raw", "curated", "quarantine", "prod")
    }
    root = settings.duckdb_path.parent
    files = {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "duckdb_extensions" not in p.parts
    }
    return snapshots, files


def refused(settings) -> list[tuple[str, str]]:
    catalog = load_catalog(settings)
    prod = catalog.load_table("prod.orders")
    data_file = next(iter(prod.scan().plan_files())).file.file_path
    raw = catalog.load_table("raw.orders").metadata_location
    return [
        (
            f"COPY (SELECT 42 AS order_id, 0.0 AS total, 'x' AS email) TO '{data_file}' "
            "(FORMAT parquet, USE_TMP_FILE false)",
            "COPY is not allowed",
        ),
        (f"COPY prod.orders TO '{settings.home}/out.csv'", "COPY is not allowed"),
        (f"ATTACH '{settings.duckdb_path}' AS w", "ATTACH is not allowed"),
        ("INSTALL httpfs", "INSTALL is not allowed"),
        ("LOAD iceberg", "LOAD is not allowed"),
        ("CREATE TABLE t AS SELECT 1", "CREATE is not allowed"),
        ("CREATE OR REPLACE VIEW prod.orders AS SELECT 1", "CREATE is not allowed"),
        ("INSERT INTO prod.orders VALUES (4, 1.0, 'd')", "INSERT is not allowed"),
        ("UPDATE prod.orders SET total = 0", "UPDATE is not allowed"),
        ("DELETE FROM prod.orders", "DELETE is not allowed"),
        ("DROP VIEW prod.orders", "DROP is not allowed"),
        ("SET enable_external_access = true", "SET/RESET/USE is not allowed"),
        ("RESET lock_configuration", "SET/RESET/USE is not allowed"),
        ("SELECT 1; DROP VIEW curated.orders", "DROP is not allowed"),
        ("SELECT * FROM read_csv('/etc/passwd')", "reading /etc/passwd is not allowed"),
        (f"SELECT * FROM read_parquet('{settings.warehouse}/raw/orders/data/*.parquet')", "is not allowed"),
        (f"SELECT * FROM iceberg_scan('{raw}')", f"reading {raw} is not allowed"),
        (f"SELECT * FROM read_text('{settings.duckdb_path}')", "is not allowed"),
        ("EXPORT DATABASE '/tmp/shoplake-export'", "EXPORT is not allowed"),
        ("CHECKPOINT", "is not allowed"),
    ]


def test_every_writing_or_escaping_statement_is_refused_in_one_line_and_changes_nothing(lakehouse, capsys):
    before = state(lakehouse)
    cases = refused(lakehouse)
    for sql, message in cases:
        assert main(["sql", sql]) == 2, sql
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err, (sql, err)
    assert state(lakehouse) == before
    assert not (lakehouse.home / "out.csv").exists()
    # and the tables still answer as published
    assert main(["sql", "SELECT sum(total) AS s FROM prod.orders", "--format", "csv"]) == 0
    assert capsys.readouterr().out == "s\n37.75\n"


def test_the_notebooks_session_is_the_same_read_only_session(lakehouse):
    before = state(lakehouse)
    con = query.connect(lakehouse)
    assert con.sql("SELECT count(*) AS n FROM curated.orders").df()["n"].tolist() == [3]
    first = con.execute("SELECT email FROM quarantine.orders ORDER BY order_id").fetchone()
    assert first == ("quarantine-a@example.com",)
    assert query.published_tables(con) == ["curated.orders", "prod.orders", "quarantine.orders"]  # never raw
    for sql, _ in refused(lakehouse):
        with pytest.raises(query.NotAllowed):
            con.execute(sql)
    for escape in ("cursor", "register", "install_extension", "load_extension", "table", "read_csv"):
        with pytest.raises(AttributeError, match="read-only"):
            getattr(con, escape)
    assert state(lakehouse) == before


def test_output_still_exports_a_result(lakehouse, tmp_path):
    out = tmp_path / "orders.parquet"
    sql = "SELECT order_id, total FROM prod.orders ORDER BY 1"
    assert main(["sql", sql, "--format", "parquet", "--output", str(out)]) == 0
    import pyarrow.parquet as pq

    assert pq.read_table(out).to_pydict() == {"order_id": [1, 2, 3], "total": [10.0, 20.5, 7.25]}
