"""The check-results ledger: every check evaluation of every run, in the Iceberg table ``raw.check_results``.

This is how check results reach dbt. The step that evaluates the last checks of a run (the
quality-check step, or the dbt step when dbt itself failed and nothing downstream will run) rewrites
the run's rows with every evaluation the run has recorded so far: the raw card scans of extraction,
the dbt tests and the pandera and card-scan checks on curated and prod, read back from the run's own
event log. ``prod.compliance_report`` (dbt) reads the ledger through the DuckDB view
``raw.check_results``; nothing in the report is typed in by hand.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import astuple, dataclass, fields

import dagster as dg
import pandera
import pyarrow as pa
from pyiceberg.expressions import And, EqualTo

from orchestration.lakehouse.catalog import commit_with_retry, iceberg_compatible, load_catalog, load_or_create
from orchestration.lakehouse.publish import PUBLISHED_BY_PROPERTY
from orchestration.settings import Settings

CHECK_RESULTS_TABLE = "raw.check_results"

PANDERA_CHECK = "pandera_schema"
CARD_CHECK = "no_card_numbers"  # the same name as the raw leak check of extraction

# Check metadata read into the ledger: which snapshot was checked, by which version of the checks.
SNAPSHOT_METADATA, VERSION_METADATA = "iceberg_snapshot_id", "check_version"


# The version of the rules that decide a card-scan or pandera check (card_scan.py, pii.py and
# orchestration/defs/checks/pandera_batches.py; the pandera schemas add their own digest). A result of
# older rules is never the base of an incremental check, so bump this whenever those rules change what
# passes. tests/test_check_version.py fails when their code changes and this did not (comments and
# docstrings do not count).
CHECK_RULES_VERSION = 2

CHECK_VERSION = f"rules{CHECK_RULES_VERSION}.pandera{pandera.__version__}"


@dataclass(frozen=True)
class CheckRecord:
    run_id: str
    evaluated_at: dt.datetime
    layer: str  # raw | curated | quarantine | prod: the first part of the asset key
    table_name: str  # layer.table, the name users query
    check_name: str
    check_kind: str  # card_scan | pandera | dbt_test
    blocking: bool
    passed: bool
    failures: int | None  # failing rows, failure cases or card numbers found, when the check counts them
    rows_checked: int | None
    summary: str
    snapshot_id: int | None = None  # the Iceberg snapshot checked (card scans and pandera)
    check_version: str | None = None  # CHECK_VERSION of the code that checked it


SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("evaluated_at", pa.timestamp("us")),
        ("layer", pa.string()),
        ("table_name", pa.string()),
        ("check_name", pa.string()),
        ("check_kind", pa.string()),
        ("blocking", pa.bool_()),
        ("passed", pa.bool_()),
        ("failures", pa.int64()),
        ("rows_checked", pa.int64()),
        ("summary", pa.string()),
        ("snapshot_id", pa.int64()),
        ("check_version", pa.string()),
    ]
)
assert [f.name for f in fields(CheckRecord)] == SCHEMA.names


def check_kind(check_name: str) -> str:
    if check_name == CARD_CHECK:
        return "card_scan"
    if check_name == PANDERA_CHECK:
        return "pandera"
    return "dbt_test"


def _int_metadata(metadata: dict, *keys: str) -> int | None:
    for key in keys:
        value = metadata.get(key)
        if value is None:
            continue
        value = getattr(value, "value", value)
        if isinstance(value, int | float):
            return int(value)
    return None


def make_record(
    run_id: str,
    asset_key: dg.AssetKey,
    check_name: str,
    passed: bool,
    blocking: bool,
    metadata: dict | None,
    evaluated_at: dt.datetime | None = None,  # UTC, naive; now when not given
) -> CheckRecord:
    metadata = dict(metadata or {})
    evaluated_at = evaluated_at or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    key = asset_key.path
    summary = metadata.get("summary")
    return CheckRecord(
        run_id=run_id,
        evaluated_at=evaluated_at,
        layer=key[0],
        table_name=".".join((key[0], key[-1])),
        check_name=check_name,
        check_kind=check_kind(check_name),
        blocking=bool(blocking),
        passed=bool(passed),
        failures=_int_metadata(metadata, "card_numbers_found", "failure_cases", "dagster_dbt/failed_row_count"),
        rows_checked=_int_metadata(metadata, "rows_scanned", "rows_validated"),
        summary=str(getattr(summary, "value", summary) or ("passed" if passed else "failed")),
        snapshot_id=_int_text(metadata.get(SNAPSHOT_METADATA)),
        check_version=_text(metadata.get(VERSION_METADATA)),
    )


def _text(value) -> str | None:
    value = getattr(value, "value", value)
    return None if value is None else str(value)


def _int_text(value) -> int | None:
    # Snapshot ids are 64-bit: metadata carries them as text (Dagster's integers are 32-bit in the UI).
    text = _text(value)
    return int(text) if text and text.lstrip("-").isdigit() else None


def run_check_records(instance: dg.DagsterInstance, run_id: str) -> list[CheckRecord]:
    """Every check evaluation the run has logged so far (the latest one per check, on retries)."""
    latest: dict[tuple, CheckRecord] = {}
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation: dg.AssetCheckEvaluation = entry.dagster_event.event_specific_data
        record = make_record(
            run_id,
            evaluation.asset_key,
            evaluation.check_name,
            evaluation.passed,
            evaluation.blocking,
            evaluation.metadata,
            dt.datetime.fromtimestamp(entry.timestamp, dt.UTC).replace(tzinfo=None),
        )
        latest[(record.table_name, record.check_name)] = record
    return list(latest.values())


def write_check_results(settings: Settings, run_id: str, records: list[CheckRecord]) -> int:
    """Replace the run's rows of the ledger with ``records`` in one snapshot (idempotent on retry)."""
    ledger = ensure_ledger(settings)
    data = pa.Table.from_pylist([dict(zip(SCHEMA.names, astuple(r))) for r in records], schema=SCHEMA)

    def replace_run(table):
        with warnings.catch_warnings():  # the run's first write has nothing to replace: not worth a warning
            warnings.filterwarnings("ignore", message="Delete operation did not match any records")
            table.overwrite(
                data, overwrite_filter=EqualTo("run_id", run_id), snapshot_properties={PUBLISHED_BY_PROPERTY: run_id}
            )

    commit_with_retry(ledger, replace_run)
    return data.num_rows


def ensure_ledger(settings: Settings):
    ledger = load_or_create(load_catalog(settings), CHECK_RESULTS_TABLE, SCHEMA)
    if set(SCHEMA.names) - set(ledger.schema().as_arrow().names):  # a ledger of an earlier version: add the columns
        with ledger.update_schema() as update:
            update.union_by_name(iceberg_compatible(SCHEMA))
    return ledger


def last_passed_snapshots(settings: Settings, check_name: str) -> dict[tuple[str, str], int]:
    """(table name, check version) -> the snapshot of the table's latest passing ``check_name`` under
    that version of the checks.

    The base for checking only what a table gained since (orchestration/lakehouse/increments.py):
    a failed evaluation never becomes a base, so what it found is checked again until it is gone.
    """
    rows = (
        ensure_ledger(settings)
        .scan(
            row_filter=And(EqualTo("check_name", check_name), EqualTo("passed", True)),
            selected_fields=("table_name", "snapshot_id", "check_version", "evaluated_at"),
        )
        .to_arrow()
        .to_pylist()
    )
    latest: dict[tuple[str, str], tuple] = {}
    for row in rows:
        key = (row["table_name"], row["check_version"])
        if (
            row["snapshot_id"] is not None
            and row["check_version"]
            and (key not in latest or row["evaluated_at"] > latest[key][0])
        ):
            latest[key] = (row["evaluated_at"], row["snapshot_id"])
    return {key: snapshot for key, (_, snapshot) in latest.items()}
