"""Blocking quality checks on every published curated, quarantine and prod table.

Two checks per table, both read the table's new Iceberg snapshot while it is staged on the table's
audit branch (write-audit-publish: audit.py), both blocking. Once they are in, each staged table whose
checks passed, and whose upstream tables' checks passed, is made current, before anything downstream
(the ML assets) reads it; a table that failed keeps its last good snapshot for readers.

They share one step, so a failure fails the step and stops everything
downstream of the checked tables in the same run: coarser than one step per table, but one process
start instead of thirty-nine, and every downstream asset of this pipeline reads several of them.

* ``pandera_schema``: the table's pandera model (schemas_curated.py, schemas_prod.py), validated
  lazily so that every failure case is collected, in batches for large tables (pandera_batches.py);
  a sample of the failure cases goes into the check's metadata.
* ``no_card_numbers``: the card-number leak scanner of the raw layer (card_scan.py) over every
  string column.

The step then writes the run's check results to the check ledger (orchestration/lakehouse/ledger.py)
and scans every file under the home for card numbers, before Dagster fails it for any failed check:
a failed blocking check skips the run's compliance report (compliance.py), whose next build reports
this run's checks from the ledger.
"""

import time
from collections import defaultdict
from collections.abc import Iterator

import dagster as dg
import duckdb
import pandera.polars as pa
import polars as pl

from orchestration.defs.checks import audit, pandera_batches
from orchestration.defs.checks.schemas_curated import CURATED_SCHEMAS, QUARANTINE_TABLES, quarantine_schema
from orchestration.defs.checks.schemas_prod import PROD_SCHEMAS
from orchestration.lakehouse.card_scan import scan_published_table
from orchestration.lakehouse.digests import letters_digest
from orchestration.lakehouse.home_scan import scan_and_record
from orchestration.lakehouse.increments import Increment, files_since
from orchestration.lakehouse.ledger import (
    CARD_CHECK,
    CHECK_VERSION,
    PANDERA_CHECK,
    SNAPSHOT_METADATA,
    VERSION_METADATA,
    CheckRecord,
    last_passed_snapshots,
    make_record,
    record_run_checks,
)
from orchestration.lakehouse.pii import mask_card_numbers
from orchestration.policies import WRITER_POOL
from orchestration.resources import LakehouseResource, shoplake_dbt_project

MAX_FAILURE_SAMPLES = 20
MAX_VALUE_CHARS = 160


def schema_for(layer: str, table: str) -> pa.DataFrameModel | pa.DataFrameSchema:
    """The pandera schema of a published table; looked up at run time, so a test can swap one."""
    if layer == "curated":
        return CURATED_SCHEMAS[table]
    if layer == "quarantine":
        return quarantine_schema(table)
    return PROD_SCHEMAS[table]


# prod.compliance_report is built after these checks and checks itself (compliance.py).
SELF_CHECKED = frozenset({("prod", "compliance_report")})
CHECKED_TABLES: tuple[tuple[str, str], ...] = (
    *(("curated", t) for t in CURATED_SCHEMAS),
    *(("quarantine", t) for t in QUARANTINE_TABLES),
    *(("prod", t) for t in PROD_SCHEMAS if ("prod", t) not in SELF_CHECKED),
)

CHECK_SPECS = [
    spec
    for layer, table in CHECKED_TABLES
    for spec in (
        dg.AssetCheckSpec(
            PANDERA_CHECK,
            asset=[layer, table],
            blocking=True,
            description=f"The published {layer}.{table} matches its pandera model: dtypes, ranges, "
            "vocabularies, keys and the rules between columns.",
        ),
        dg.AssetCheckSpec(
            CARD_CHECK,
            asset=[layer, table],
            blocking=True,
            description="No Luhn-valid card number in any string column of the published table (free text included).",
        ),
    )
]


@dg.multi_asset_check(
    specs=CHECK_SPECS,
    name="lakehouse_quality_checks",
    can_subset=True,
    pool=WRITER_POOL,  # makes the passing tables current and writes the check ledger
    description="pandera schemas and card-number scans of the published curated, quarantine and prod tables; "
    "then makes the tables that passed current and records the run's check results in the check ledger.",
)
def lakehouse_quality_checks(
    context: dg.AssetCheckExecutionContext, lakehouse: LakehouseResource
) -> Iterator[dg.AssetCheckResult]:
    settings = lakehouse.settings()
    run_id = context.run.run_id
    selected: dict[tuple[str, str], set[str]] = defaultdict(set)
    for key in context.selected_asset_check_keys:
        selected[(key.asset_key.path[0], key.asset_key.path[-1])].add(key.name)

    con, tables = audit.open_session(settings, sorted({layer for layer, _ in CHECKED_TABLES}))
    passed_before = {check: last_passed_snapshots(settings, check) for check in (PANDERA_CHECK, CARD_CHECK)}
    try:
        results = [
            r
            for table, names in sorted(selected.items())
            for r in evaluate_table(con, table, names, tables, passed_before)
        ]
    finally:
        con.close()
    records = [check_record(run_id, r) for r in results]
    failed = [r for r in results if not r.passed]
    context.log.info(
        f"{len(results) - len(failed)} of {len(results)} checks passed"
        + (f"; failed: {_names(failed)}" if failed else "")
    )
    # Before anything downstream runs: it reads what passed.
    promotion = audit.promote_passing(tables, results, audit.model_parents(shoplake_dbt_project.manifest_path))
    (context.log.warning if promotion.kept_back else context.log.info)(promotion.describe())

    # Before Dagster fails the step for a failed check: the ledger keeps this run's checks either way.
    written = record_run_checks(context.instance, settings, run_id, records)
    context.log.info(f"recorded {written} check results of run {run_id} in the check ledger")
    scan = scan_and_record(settings, run_id)  # every file under the home, kept in ledger.home_pan_scans
    (context.log.warning if scan.findings else context.log.info)(
        f"home scan for card numbers: {scan.files} files read, {scan.unchanged} unchanged since a clean scan, "
        f"{len(scan.findings)} found" + "".join(f"\n  {f.line()}" for f in scan.findings[:20])
    )
    yield from results


def evaluate_table(
    con: duckdb.DuckDBPyConnection,
    table: tuple[str, str],
    checks: set[str],
    tables: dict[str, audit.AuditedTable] | None = None,
    passed_before: dict[str, dict[tuple[str, str], int]] | None = None,
) -> Iterator[dg.AssetCheckResult]:
    """The table's checks over the snapshot its view reads (``tables``: the session's Iceberg tables,
    audit.open_session: the staged snapshot, else the current one).

    Where a check passed on an earlier snapshot (``passed_before``: check -> (table, check version) -> snapshot, from
    the ledger), its row-by-row part looks only at the files the table gained since."""
    layer, name = table
    relation = f"{layer}.{name}"
    audited = (tables or {}).get(relation)
    if audited is None:
        try:
            con.execute(f"SELECT 1 FROM {relation} LIMIT 0")
        except duckdb.CatalogException:
            for check in sorted(checks):
                yield _result(
                    table, check, False, {"summary": f"{relation} has not been published", "failure_cases": 1}
                )
            return

    versions = {CARD_CHECK: CHECK_VERSION, PANDERA_CHECK: f"{CHECK_VERSION}.{schema_digest(schema_for(layer, name))}"}

    increments: dict[int | None, Increment | None] = {}  # both checks usually start from the same snapshot

    def since(check: str) -> Increment | None:
        base = (passed_before or {}).get(check, {}).get((relation, versions[check]))
        if audited is None:
            return None
        if base not in increments:
            increments[base] = files_since(audited.table, base, snapshot_id=audited.snapshot_id)
        return increments[base]

    def checked(check: str) -> dict:
        """What the ledger keeps to make this evaluation the base of the next one, and whether readers
        see that snapshot yet (staged: not until every blocking check passes)."""
        if audited is None:
            return {}
        return {
            SNAPSHOT_METADATA: str(audited.snapshot_id),
            VERSION_METADATA: versions[check],
            "snapshot_staged": audited.staged,
        }

    if PANDERA_CHECK in checks:
        yield validate_with_pandera(con, table, since(PANDERA_CHECK), checked(PANDERA_CHECK))
    if CARD_CHECK in checks:
        started = time.perf_counter()
        scan = scan_published_table(con, relation, since(CARD_CHECK))
        metadata = {**scan.as_metadata(), "seconds": round(time.perf_counter() - started, 3)}
        metadata["summary"] = "no card number found" if scan.passed else f"{scan.leaks} card numbers found"
        yield _result(table, CARD_CHECK, scan.passed, {**metadata, **checked(CARD_CHECK)})


def schema_digest(schema: pa.DataFrameModel | pa.DataFrameSchema) -> str:
    """Changes with the schema's columns, types, checks and options (the code digest CHECK_VERSION
    covers the schema modules; this also covers a schema swapped in at run time)."""
    schema = schema if isinstance(schema, pa.DataFrameSchema) else schema.to_schema()
    parts = [repr(schema)] + [
        f"{name}:{column.nullable}:{column.unique}:{[repr(check) for check in column.checks]}"
        for name, column in schema.columns.items()
    ]
    return letters_digest("\n".join(parts), 12)  # stored in the ledger, which the card scans read


def validate_with_pandera(
    con: duckdb.DuckDBPyConnection,
    table: tuple[str, str],
    increment: Increment | None = None,
    extra_metadata: dict | None = None,
) -> dg.AssetCheckResult:
    layer, name = table
    started = time.perf_counter()
    rows, cases, scope = pandera_batches.failure_cases(
        con, f"{layer}.{name}", schema_for(layer, name), increment=increment
    )
    metadata = {"failure_cases": 0, "summary": "valid"} if cases is None else failure_metadata(cases)
    metadata.update(rows_validated=rows, scope=scope, seconds=round(time.perf_counter() - started, 3))
    return _result(table, PANDERA_CHECK, cases is None, {**metadata, **(extra_metadata or {})})


def failure_metadata(failure_cases: pl.DataFrame) -> dict:
    """Counts per failed check and a sample of failure cases; card numbers in a value are masked."""
    by_check = (
        failure_cases.group_by("column", "check")
        .len("failure_cases")
        .sort("failure_cases", "column", descending=[True, False])
    )
    key = ["key"] if "key" in failure_cases.columns else []  # the failing row's key (pandera_batches.py)
    sample = failure_cases.head(MAX_FAILURE_SAMPLES).select(
        "column",
        "check",
        *key,
        pl.col("index").alias("row"),
        pl.col("failure_case").map_elements(_safe_value, return_dtype=pl.String),
    )
    top = by_check.row(0, named=True)
    return {
        "failure_cases": failure_cases.height,
        "summary": (
            f"{failure_cases.height} failure cases, first: {top['column']} {top['check']} ({top['failure_cases']})"
        ),
        "failures_by_check": dg.MetadataValue.md(_markdown(by_check)),
        "failure_case_sample": dg.MetadataValue.md(_markdown(sample)),
    }


def _safe_value(value: str | None) -> str:
    if value is None:
        return "NULL"
    masked, _ = mask_card_numbers(str(value))
    return masked if len(masked) <= MAX_VALUE_CHARS else masked[: MAX_VALUE_CHARS - 1] + "…"


def _markdown(frame: pl.DataFrame) -> str:
    def cell(v) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * frame.width]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join(lines)


def _result(table: tuple[str, str], check: str, passed: bool, metadata: dict) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=list(table), check_name=check, passed=passed, severity=dg.AssetCheckSeverity.ERROR, metadata=metadata
    )


def check_record(run_id: str, result: dg.AssetCheckResult, blocking: bool = True) -> CheckRecord:
    return make_record(run_id, result.asset_key, result.check_name, result.passed, blocking, result.metadata)


def _names(results: list[dg.AssetCheckResult]) -> str:
    return ", ".join(f"{r.asset_key.to_user_string()}:{r.check_name}" for r in results)
