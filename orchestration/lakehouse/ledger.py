"""The ledgers: what every run checked and what every model family did, in the Iceberg namespace ``ledger``.

They are not source data, so they have a namespace of their own, apart from raw:

- ``ledger.check_results``: every check evaluation of every run. The step that evaluates the last
  checks of a run (the quality-check step, or the dbt step when dbt itself failed and nothing
  downstream will run) rewrites the run's rows with every evaluation the run has recorded so far:
  the raw card scans of extraction, the dbt tests and the pandera and card-scan checks on curated
  and prod, read back from the run's own event log (``record_run_checks``). It writes them before
  Dagster fails the step for a failed blocking check, so a failed run's checks are kept too.
- ``ledger.model_outcomes``: per run, model family and stage (training, promotion, scoring), which
  candidate won and by how much, the champion kept, or why the family skipped (``record_model_outcome``,
  called by the model steps through ml_assets/registry.py).
- ``ledger.home_pan_scans``: each run's scan of every file under the home (home_scan.py).

``prod.compliance_report`` (orchestration/defs/checks/compliance.py) is built from them; nothing in
the report is typed in by hand. A ledger an earlier version kept in raw (``raw.check_results`` ...)
is moved here by its first use (``ledger_table``): a rename in the catalog, so its history and its
files stay as they are.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import astuple, dataclass, fields

import dagster as dg
import pandera
import pyarrow as pa
from pyiceberg.exceptions import NoSuchTableError, TableAlreadyExistsError
from pyiceberg.expressions import And, EqualTo
from pyiceberg.table import Table as IcebergTable

from orchestration.lakehouse.catalog import commit_with_retry, iceberg_compatible, load_catalog, load_or_create
from orchestration.lakehouse.publish import PUBLISHED_BY_PROPERTY
from orchestration.settings import Settings

LEDGER_NAMESPACE = "ledger"
CHECK_RESULTS_TABLE = f"{LEDGER_NAMESPACE}.check_results"
MODEL_OUTCOMES_TABLE = f"{LEDGER_NAMESPACE}.model_outcomes"
FORMER_NAMESPACE = "raw"  # where the ledgers lived before they had a namespace of their own


def ledger_table(settings: Settings, identifier: str, schema: pa.Schema) -> IcebergTable:
    """The ledger ``identifier`` (``ledger.<name>``), created empty when it does not exist.

    A ledger an earlier version wrote to ``raw.<name>`` is moved here the first time: renamed in the
    catalog, with all its snapshots and files (they stay under raw's folder of the warehouse, where
    its metadata points). The rename is one catalog statement, so two steps moving it at once do not
    copy it twice: the second finds it moved."""
    catalog = load_catalog(settings)
    catalog.create_namespace_if_not_exists(LEDGER_NAMESPACE)
    try:
        return catalog.load_table(identifier)
    except NoSuchTableError:
        pass
    former = f"{FORMER_NAMESPACE}.{identifier.split('.', 1)[1]}"
    try:
        return catalog.rename_table(former, identifier)
    except (NoSuchTableError, TableAlreadyExistsError):
        return load_or_create(catalog, identifier, schema)


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


def record_run_checks(
    instance: dg.DagsterInstance, settings: Settings, run_id: str, own_records: list[CheckRecord] = ()
) -> int:
    """Write every check evaluation the run has logged so far, plus ``own_records`` (the calling
    step's, not yet logged), as the run's rows of the ledger; returns how many."""
    records = {(r.table_name, r.check_name): r for r in run_check_records(instance, run_id)}
    records.update({(r.table_name, r.check_name): r for r in own_records})
    return write_check_results(settings, run_id, list(records.values()))


def add_check_results(settings: Settings, run_id: str, records: list[CheckRecord]) -> int:
    """Add ``records`` to the run's rows of the ledger, replacing those of the same table and check;
    returns the run's rows now."""
    kept = (
        ensure_ledger(settings)
        .scan(row_filter=EqualTo("run_id", run_id))
        .to_arrow()
        .select(SCHEMA.names)
        .cast(SCHEMA)
        .to_pylist()
    )
    merged = {(r["table_name"], r["check_name"]): CheckRecord(**r) for r in kept}
    merged.update({(r.table_name, r.check_name): r for r in records})
    return write_check_results(settings, run_id, list(merged.values()))


def ensure_ledger(settings: Settings) -> IcebergTable:
    ledger = ledger_table(settings, CHECK_RESULTS_TABLE, SCHEMA)
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


# ---- model outcomes: which candidate won, by how much, or why a family skipped

MODEL_OUTCOME_STATUSES = ("promoted", "champion_kept", "no_champion", "skipped", "scored", "not_scored")
MODEL_OUTCOMES_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("recorded_at", pa.timestamp("us")),
        ("family", pa.string()),  # churn | fraud | forecasting
        ("stage", pa.string()),  # training | promotion | scoring
        ("table_name", pa.string()),  # the prod table the family publishes
        ("status", pa.string()),  # one of MODEL_OUTCOME_STATUSES
        ("champion_version", pa.int64()),
        ("candidate", pa.string()),  # the winning candidate, when one won
        ("detail", pa.string()),  # why: the scores compared, or the reason for a skip
    ]
)


def record_model_outcome(
    settings: Settings,
    run_id: str,
    family: str,
    stage: str,
    table_name: str,
    status: str,
    detail: str,
    champion_version: str | int | None = None,
    candidate: str | None = None,
) -> None:
    """Record one family's outcome at one stage of the run in ``ledger.model_outcomes`` (idempotent
    per run, family and stage: a retried step replaces its row). The run's compliance report, built
    after the model steps, reports it."""
    if status not in MODEL_OUTCOME_STATUSES:
        raise ValueError(f"model outcome status {status!r} is not one of {MODEL_OUTCOME_STATUSES}")
    row = {
        "run_id": run_id,
        "recorded_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
        "family": family,
        "stage": stage,
        "table_name": table_name,
        "status": status,
        "champion_version": None if champion_version is None else int(champion_version),
        "candidate": candidate,
        "detail": detail,
    }
    data = pa.Table.from_pylist([row], schema=MODEL_OUTCOMES_SCHEMA)
    ledger = ledger_table(settings, MODEL_OUTCOMES_TABLE, MODEL_OUTCOMES_SCHEMA)

    def replace(table):
        with warnings.catch_warnings():  # the first outcome has nothing to replace
            warnings.filterwarnings("ignore", message="Delete operation did not match any records")
            table.overwrite(
                data,
                overwrite_filter=And(EqualTo("run_id", run_id), EqualTo("family", family), EqualTo("stage", stage)),
                snapshot_properties={PUBLISHED_BY_PROPERTY: run_id},
            )

    commit_with_retry(ledger, replace)
