"""Extraction assets: one ``raw/<table>`` asset per source table, each with a blocking leak check.

All tables are extracted by one step (one process start instead of thirteen), but each has its own
asset, its own atomic Iceberg commit and its own check, and any subset can be materialized.
"""

import datetime as dt
import traceback

import dagster as dg

from orchestration.contract.database import SourceUnavailable
from orchestration.contract.schema import INVALID_VALUES, TABLES, Table, table
from orchestration.defs.extract.extract_table import DEFAULT_LOOKBACK, extract_table, raw_schema
from orchestration.defs.extract.schema_drift import SchemaDrift
from orchestration.lakehouse import duckdb_extensions
from orchestration.lakehouse.card_scan import scan_iceberg_table
from orchestration.lakehouse.catalog import load_catalog
from orchestration.lakehouse.ledger import (
    CARD_CHECK,
    CHECK_VERSION,
    SNAPSHOT_METADATA,
    VERSION_METADATA,
    last_passed_snapshots,
    make_record,
    write_check_results,
)
from orchestration.policies import DATA_PLATFORM_OWNER, WRITER_POOL, column_schema
from orchestration.resources import LakehouseResource

# An unreachable or silent source is retried with backoff before the run fails; commits are per table
# and atomic, so a retry never duplicates what an earlier attempt already committed. Errors no retry
# can fix (wrong password, unknown database, missing table, schema drift) fail at once: see _failure.
EXTRACT_RETRY = dg.RetryPolicy(max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL)


# What each raw column beside the contract's holds (their types come from extract_table.raw_schema).
RAW_COLUMN_DOCS = {
    "card_bin": "first six digits of the card number (the contract's card column never lands in clear)",
    "card_last4": "last four digits of the card number",
    "card_token": "keyed token of the card number (SHOPLAKE_PII_KEY): the same card, the same token",
    INVALID_VALUES: "JSON of column -> source text for values no type can hold (zero dates), read as NULL",
    "_op": "insert | update | delete: what happened to the source row",
    "_extracted_at": "when this version of the row was extracted (UTC)",
    "_dagster_run_id": "the Dagster run that extracted it",
}


def raw_column_schema(source_table: Table) -> dg.TableSchema:
    """raw.<table>'s columns as Iceberg stores them: the contract's (its card column protected), then
    the extraction's own; described by the contract."""
    return column_schema(raw_schema(source_table), {c.name: c.doc for c in source_table.columns} | RAW_COLUMN_DOCS)


class ExtractConfig(dg.Config):
    full_refresh: bool = False
    """Re-read every table from scratch (raw keeps its history; only real changes are appended)."""
    full_refresh_tables: list[str] = []
    """Re-read only these tables from scratch."""
    lookback_seconds: int = int(DEFAULT_LOOKBACK.total_seconds())
    """How far before the watermark to re-read, for rows committed late with an older updated_at."""


@dg.multi_asset(
    name="extract_source_tables",
    specs=[
        dg.AssetSpec(
            ["raw", t.name],
            group_name="raw",
            description=f"Change history of source table `{t.name}`: {t.doc}",
            kinds={"iceberg"},
            skippable=True,
            owners=[DATA_PLATFORM_OWNER],
            metadata={
                "primary_key": ", ".join(t.primary_key),
                "dagster/column_schema": raw_column_schema(t),
                "dagster/table_name": f"raw.{t.name}",
            },
        )
        for t in TABLES
    ],
    check_specs=[
        dg.AssetCheckSpec(
            CARD_CHECK,
            asset=["raw", t.name],
            blocking=True,
            description="No Luhn-valid card number in any string column (free text included).",
        )
        for t in TABLES
    ],
    can_subset=True,
    retry_policy=EXTRACT_RETRY,
    pool=WRITER_POOL,
)
def extract_source_tables(context: dg.AssetExecutionContext, config: ExtractConfig, lakehouse: LakehouseResource):
    settings = lakehouse.settings()
    settings.warn_if_development_key(context.log)
    unknown = set(config.full_refresh_tables) - {t.name for t in TABLES}
    if unknown:
        raise dg.Failure(
            f"full_refresh_tables names unknown tables {sorted(unknown)}; known: {', '.join(t.name for t in TABLES)}"
        )
    catalog = load_catalog(settings)
    # raw only grows: a table whose scan passed before is scanned in the files it gained since
    scanned_before = last_passed_snapshots(settings, CARD_CHECK)
    scans = []
    con = duckdb_extensions.connect(settings.duckdb_extension_dir)
    try:
        for key in sorted(context.selected_asset_keys, key=lambda k: k.path[-1]):
            source_table = table(key.path[-1])
            try:
                result = extract_table(
                    source_table,
                    settings,
                    run_id=context.run.run_id,
                    full_refresh=config.full_refresh or source_table.name in config.full_refresh_tables,
                    lookback=dt.timedelta(seconds=config.lookback_seconds),
                )
            except (SourceUnavailable, SchemaDrift) as exc:
                raise _failure(context, exc) from None
            if result.rows_from_the_future:
                context.log.warning(
                    f"raw.{result.table}: {result.rows_from_the_future:,} rows have updated_at ahead of the source's "
                    f"clock ({result.source_clock}): extracted, but the watermark stays at the source's clock"
                )
            if result.rows_with_invalid_values:
                context.log.warning(
                    f"raw.{result.table}: {result.rows_with_invalid_values:,} rows hold dates no calendar has "
                    "(zero or partial-zero dates): read as NULL, original text kept in _invalid_values"
                )
            rate = result.rows_read / result.seconds if result.seconds else 0.0
            context.log.info(
                f"raw.{result.table}: read {result.rows_read:,} rows in {result.seconds:.2f}s ({rate:,.0f} rows/s); "
                f"+{result.inserted:,} inserted, {result.updated:,} updated, {result.deleted:,} deleted; "
                f"{result.card_numbers_masked} card numbers masked in free text"
            )
            yield dg.MaterializeResult(
                asset_key=key,
                metadata={**result.as_metadata(), "rows_per_second": round(rate, 1)},
            )
            name = f"raw.{source_table.name}"
            ice = catalog.load_table(name)
            scan = scan_iceberg_table(con, name, ice, since=scanned_before.get((name, CHECK_VERSION)))
            snapshot = ice.current_snapshot()
            metadata = {
                **scan.as_metadata(),
                SNAPSHOT_METADATA: str(snapshot.snapshot_id) if snapshot else "none",
                VERSION_METADATA: CHECK_VERSION,
            }
            scans.append(make_record(context.run.run_id, key, CARD_CHECK, scan.passed, True, metadata))
            yield dg.AssetCheckResult(
                asset_key=key,
                check_name=CARD_CHECK,
                passed=scan.passed,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata=metadata,
            )
    finally:
        con.close()
    # The scans go to the check ledger now, so that the next extraction scans only what raw gains
    # even when this run stops here; the run's last check step rewrites its rows with these included.
    if scans:
        write_check_results(settings, context.run.run_id, scans)


def _failure(context: dg.AssetExecutionContext, exc: SourceUnavailable | SchemaDrift) -> dg.Failure:
    """The step's failure for an expected source error: its one line, the traceback only at debug
    level, and no retry unless waiting can help (a refused connection, a timeout)."""
    context.log.debug("".join(traceback.format_exception(exc)))
    transient = isinstance(exc, SourceUnavailable) and exc.transient
    context.log.error(str(exc) if transient else f"{exc} (not retried: trying again cannot fix this)")
    return dg.Failure(description=str(exc), allow_retries=transient)
