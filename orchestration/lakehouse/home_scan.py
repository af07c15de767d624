"""`shoplake scan-pans`: the leak scanner over every file Shoplake writes under its home.

Iceberg data files (Parquet: every string column of every row group, so old snapshots' files and
the string bounds their manifests copy are covered too), Iceberg metadata and Avro manifests, the
transform DuckDB file, Dagster's SQLite event logs and compute logs, MLflow's database and artifacts
(input examples), the generator's ground truth: each is read the way its format stores text, and
every text value goes through the leak scanner's own test (card_scan.find_pans). What machines
write is set aside first, which the blocking checks on tables do not need: JSON is read as JSON (its
numbers, timestamps and snapshot ids, and integer strings under a counting key such as
"total-files-size" are not text anyone typed), and file paths, URIs, hex digests, a float's long
fraction and the lakehouse's own Iceberg snapshot ids (Dagster's events and logs quote them) are not
cards either.

Two places are left out on purpose and reported as such: the demo shop's own database (card numbers
belong there: it is the source) and DuckDB's extension binaries.

``record_home_scan`` keeps each scan's outcome in the Iceberg table ``ledger.home_pan_scans``, one of
the ledgers (ledger.py).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import sqlite3
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from orchestration.lakehouse.card_scan import (
    ALLOWED_TEST_NUMBERS,
    SCAN_NEEDS_UNICODE,
    SCAN_PREFILTER,
    SCAN_PREFILTER_UNICODE,
    find_pans,
    masked_pan,
    prefilter_sql,
)
from orchestration.settings import Settings

HOME_SCANS_TABLE = "ledger.home_pan_scans"  # a ledger (ledger.py), beside the check results
STATE_FILE = "home_scan_state.json"  # under <home>/lakehouse: the files the last scans found clean
MAX_REPORTED = 50  # findings kept in the table's detail column
_CHUNK = 8 << 20
_COUNTING_KEY = re.compile(
    r"(?:^|[-_ .])(?:id|ids|ms|size|bytes|count|records|files|rows|seconds|time|timestamp|"
    r"sequence|number|snapshot|version|watermark)s?$",
    re.IGNORECASE,
)
_INTEGER = re.compile(r"-?[0-9]+")
# Set aside in files, where machines name things: UUIDs, numbers under an id key, ISO dates and
# times (an input example's "2026-09-08 00:00:00" is 14 digits), decimal numbers (a metrics table's
# "| 0.8138 | 0.7977 |", a float's long fraction; never a card typed with dots, which has 3 of them),
# file paths and URIs
# (Iceberg names files by snapshot id: snap-2449149119140389625-0-<uuid>.avro) and hex digests of
# 12 characters or more (check versions, commit ids).
_MACHINE_TOKENS = re.compile(
    r"(?<![0-9A-Za-z])[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![0-9A-Za-z])"
    r"|(?:snapshot|sequence|[a-z])[-_](?:id|number)[^0-9A-Za-z]{0,3}[0-9]+(?![0-9A-Za-z])"  # Avro headers: snapshot-id
    r"|[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?"
    r"|(?<![0-9.])(?:[0-9]{1,12}\.[0-9]{5,}|[0-9]{1,3}\.[0-9]+)(?:[eE][-+]?[0-9]+)?(?![0-9]|\.[0-9])"
    r"|[a-z][a-z0-9+]*://[^\s\"'<>]+"
    r"|(?<![\w.])/(?:[\w.@+=-]+/)+[\w.@+=-]*"
    r"|[\w.=-]+\.(?:avro|parquet|json|db|duckdb|wal|log|out|err|txt|yaml|pkl|ubj|npy|npz|skops|arrow|csv)\b"
    r"|(?<![0-9A-Za-z])(?=[0-9]*[a-fA-F])[0-9a-fA-F]{12,}(?![0-9A-Za-z])"
)
_ASCII_CANDIDATE = re.compile(SCAN_PREFILTER)

HOME_SCANS_SCHEMA = pa.schema(
    [
        ("scan_id", pa.string()),  # the Dagster run id, or "cli-<time>" for a scan from the command line
        ("scanned_at", pa.timestamp("us")),
        ("root", pa.string()),
        ("files_scanned", pa.int64()),  # read by this scan
        ("files_unchanged", pa.int64()),  # found clean by an earlier scan and not changed since
        ("bytes_scanned", pa.int64()),
        ("findings", pa.int64()),
        ("detail", pa.string()),  # "file: location: 453914******6467" lines, at most MAX_REPORTED
        ("skipped", pa.string()),
    ]
)


@dataclass(frozen=True)
class Finding:
    path: str
    location: str
    number: str  # masked: first six and last four digits

    def line(self) -> str:
        return f"{self.path}: {self.location}: {self.number}"


@dataclass
class HomeScan:
    root: str
    files: int = 0
    bytes: int = 0
    findings: list[Finding] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    unchanged: int = 0  # files left as they were when an earlier scan found them clean
    clean: dict[str, list[int]] = field(default_factory=dict)  # path -> [size, mtime_ns] of every clean file

    @property
    def passed(self) -> bool:
        return not self.findings


def scan_home(
    settings: Settings, root: Path | None = None, known_clean: dict[str, list[int]] | None = None
) -> HomeScan:
    """Scan every file under ``root`` (default: the home), but the ones ``known_clean`` (path -> [size,
    mtime_ns], from an earlier scan's ``clean``) lists with their size and modification time unchanged."""
    global _known_numbers
    known_clean = known_clean or {}
    warehouse = Path(settings.warehouse.removeprefix("file://"))
    _known_numbers = ALLOWED_TEST_NUMBERS | snapshot_ids(warehouse)
    root = Path(root or settings.home).resolve()
    scan = HomeScan(root=str(root))
    left_out = _left_out(settings)
    files = [root] if root.is_file() else sorted(Path(d) / f for d, _, names in os.walk(root) for f in names)
    for path in files:
        prefix = next((p for p in left_out if path == p or p in path.parents), None)
        if prefix is not None:
            if not any(line.startswith(f"{prefix}:") for line in scan.skipped):
                scan.skipped.append(f"{prefix}: {left_out[prefix]}")
            continue
        try:
            stat = path.stat()
            signature = [stat.st_size, stat.st_mtime_ns]
            if known_clean.get(str(path)) == signature:
                scan.unchanged += 1
                scan.clean[str(path)] = signature
                continue
            found = [Finding(str(path), location, masked_pan(digits)) for location, digits in _scan_file(path)]
        except (OSError, sqlite3.Error, duckdb.Error, pa.ArrowException) as exc:
            scan.skipped.append(f"{path}: unreadable ({str(exc).splitlines()[0]})")
            continue
        scan.findings += found
        if not found:
            scan.clean[str(path)] = signature
        scan.files += 1
        scan.bytes += stat.st_size
    return scan


# The lakehouse's own Iceberg snapshot ids (18-19 digits, written into Dagster's events and logs):
# set by scan_home for the scan under way.
_known_numbers: frozenset[str] = ALLOWED_TEST_NUMBERS
_SNAPSHOT_ID = re.compile(r'"(?:snapshot-id|parent-snapshot-id|current-snapshot-id)"\s*:\s*([0-9]+)')


def _pans(text: str) -> list[str]:
    return find_pans(_without_machine_tokens(text), _known_numbers)


def snapshot_ids(warehouse: Path) -> frozenset[str]:
    """Every snapshot id any Iceberg metadata file under ``warehouse`` names."""
    ids = set()
    for path in warehouse.rglob("*.metadata.json") if warehouse.is_dir() else ():
        ids.update(_SNAPSHOT_ID.findall(path.read_text(errors="replace")))
    return frozenset(ids)


def _left_out(settings: Settings) -> dict[Path, str]:
    out = {settings.duckdb_extension_dir.resolve(): "DuckDB extension binaries"}
    if settings.source_url.startswith("sqlite:///"):
        shop = Path(settings.source_url.removeprefix("sqlite://")).resolve()
        for suffix in ("", "-journal", "-wal", "-shm"):
            out[shop.with_name(shop.name + suffix)] = "the shop's own database (card numbers belong there)"
    return out


def _scan_file(path: Path) -> Iterator[tuple[str, str]]:
    with open(path, "rb") as f:
        head = f.read(16)
    if head.startswith(b"PAR1"):
        yield from _scan_parquet(path)
    elif head.startswith(b"SQLite format 3\x00"):
        yield from _scan_sqlite(path)
    elif head[8:12] == b"DUCK":
        yield from _scan_duckdb(path)
    elif head.startswith(b"ARROW1"):
        yield from _scan_arrow(path)
    elif head.startswith(b"PK\x03\x04"):
        yield from _scan_zip(path)
    elif path.suffix == ".json" and path.stat().st_size < 256 << 20:
        text = path.read_text(errors="replace")
        try:
            yield from ((f"JSON {where}", d) for where, d in _scan_json(json.loads(text), "$"))
        except ValueError:
            yield from _scan_text(text)
    else:
        yield from _scan_bytes(path)


def _scan_parquet(path: Path) -> Iterator[tuple[str, str]]:
    pf = pq.ParquetFile(path)
    columns = [
        f.name
        for f in pf.schema_arrow
        if pa.types.is_string(f.type)
        or pa.types.is_large_string(f.type)
        or (pa.types.is_dictionary(f.type) and pa.types.is_string(f.type.value_type))
    ]
    offset = 0
    for group in range(pf.num_row_groups):
        batch = pf.read_row_group(group, columns=columns) if columns else None
        for name in columns:
            values = batch.column(name)
            if pa.types.is_dictionary(values.type):
                values = values.cast(pa.string())
            for i in _candidate_rows(values):
                for digits in _pans(values[i].as_py()):
                    yield f"column {name}, row {offset + i}", digits
        offset += pf.metadata.row_group(group).num_rows


def _scan_zip(path: Path) -> Iterator[tuple[str, str]]:
    """Zip archives (a skops model): each member as what it is; compressed bytes are not text."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            data = archive.read(member)
            if member.endswith(".json"):
                try:
                    found = list(_scan_json(json.loads(data), "$"))
                except ValueError:
                    found = list(_scan_text(data.decode("utf-8", "replace")))
            elif data[:6] == b"\x93NUMPY":
                continue  # a numeric array: no text in it
            else:
                found = list(_scan_text(data.decode("utf-8", "replace")))
            yield from ((f"member {member}, {where}", digits) for where, digits in found)


def _scan_arrow(path: Path) -> Iterator[tuple[str, str]]:
    """Arrow IPC files (extraction's key state): string buffers hold values back to back, so read values."""
    import pyarrow.ipc

    with pa.memory_map(str(path)) as source:
        table = pyarrow.ipc.open_file(source).read_all()
    for name in table.column_names:
        values = table.column(name)
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            for i in _candidate_rows(values):
                for digits in _pans(values[i].as_py()):
                    yield f"column {name}, row {i}", digits


def _candidate_rows(values: pa.ChunkedArray) -> list[int]:
    """The scanner's pre-filter (card_scan.prefilter_sql) in pyarrow."""
    if len(values) == 0:  # pyarrow 25's indices_nonzero crashes (SIGSEGV) on a chunked array without chunks
        return []
    hits = pc.fill_null(pc.match_substring_regex(values, SCAN_PREFILTER), False)
    unusual = pc.fill_null(pc.match_substring_regex(values, SCAN_NEEDS_UNICODE), False)
    if pc.any(unusual).as_py():
        unicode_hits = pc.fill_null(pc.match_substring_regex(values, SCAN_PREFILTER_UNICODE), False)
        hits = pc.or_(hits, pc.and_(unusual, unicode_hits))
    return pc.indices_nonzero(hits).to_pylist()


def _scan_sqlite(path: Path) -> Iterator[tuple[str, str]]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            cursor = con.execute(f'SELECT * FROM "{table}"')
            names = [d[0] for d in cursor.description]
            for n, row in enumerate(cursor):
                for name, value in zip(names, row):
                    if isinstance(value, bytes):
                        value = value.decode("utf-8", "replace")
                    if isinstance(value, str) and len(value) >= 13:
                        for where, digits in _scan_value(value):
                            yield f"table {table}, column {name}, row {n + 1}{where}", digits
    finally:
        con.close()


def _scan_duckdb(path: Path) -> Iterator[tuple[str, str]]:
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.IOException:  # the pipeline holds it: read a copy
        with tempfile.TemporaryDirectory(prefix="shoplake-scan-") as tmp:
            copy = Path(tmp) / path.name
            shutil.copyfile(path, copy)
            yield from _scan_duckdb(copy)
        return
    try:
        columns = con.execute(
            "SELECT c.schema_name, c.table_name, c.column_name FROM duckdb_columns() c JOIN duckdb_tables() t "
            "USING (database_name, schema_name, table_name) "
            "WHERE c.data_type = 'VARCHAR' AND c.database_name = current_database()"
        ).fetchall()
        for schema, table, column in columns:
            quoted = '"' + column.replace('"', '""') + '"'
            sql = f'SELECT {quoted} FROM "{schema}"."{table}" WHERE {prefilter_sql(quoted)}'
            for (value,) in con.execute(sql).fetchall():
                for where, digits in _scan_value(value):
                    yield f"table {schema}.{table}, column {column}{where}", digits
    finally:
        con.close()


def _scan_value(value: str) -> Iterator[tuple[str, str]]:
    """A stored text value; JSON documents (Dagster's events, MLflow's tags) are read as JSON."""
    if value[:1] in "{[":
        try:
            yield from ((f", JSON {where}", d) for where, d in _scan_json(json.loads(value), "$"))
            return
        except ValueError:
            pass
    for digits in _pans(value):
        yield "", digits


def _scan_json(node, where: str, key: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _scan_json(k, f"{where}.{k}", "")
            yield from _scan_json(v, f"{where}.{k}", str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _scan_json(v, f"{where}[{i}]", key)
    elif isinstance(node, str) and len(node) >= 13:
        if _INTEGER.fullmatch(node) and _COUNTING_KEY.search(key):
            return
        for digits in _pans(node):
            yield where, digits


def _without_machine_tokens(text: str) -> str:
    return _MACHINE_TOKENS.sub(lambda m: "~" * len(m.group()), text)


def _scan_text(text: str, first_line: int = 1) -> Iterator[tuple[str, str]]:
    for match in _candidate_lines(text):
        line_no = first_line + text.count("\n", 0, match.start())
        line_end = text.find("\n", match.end())
        line = text[text.rfind("\n", 0, match.start()) + 1 : line_end if line_end >= 0 else len(text)]
        for digits in _pans(line):
            yield f"line {line_no}", digits


def _candidate_lines(text: str) -> Iterator[re.Match]:
    """One match per line that may hold a card number (the scanner's pre-filter)."""
    last_line_start = -1
    for match in _ASCII_CANDIDATE.finditer(text if text.isascii() else _ascii_digits(text)):
        start = text.rfind("\n", 0, match.start()) + 1
        if start != last_line_start:
            last_line_start = start
            yield match


def _ascii_digits(text: str) -> str:
    # positions must stay: map each numeric character to one ASCII digit, everything else as it is
    return "".join("0" if ch.isnumeric() and not ch.isascii() else ch for ch in text)


def _scan_bytes(path: Path) -> Iterator[tuple[str, str]]:
    """Any other file (logs, YAML, Avro manifests, pickled or binary models) as UTF-8 text, by chunks."""
    seen: set[tuple[int, str]] = set()
    with open(path, "rb") as f:
        offset, lines_before, carry = 0, 0, b""
        while chunk := f.read(_CHUNK):
            data = carry + chunk
            cut = data.rfind(b"\n") + 1 or len(data)  # never split a line between chunks
            if len(chunk) < _CHUNK:
                cut = len(data)
            text = data[:cut].decode("utf-8", "replace")
            for location, digits in _scan_text(text, lines_before + 1):
                if (hash(location), digits) not in seen:
                    seen.add((hash(location), digits))
                    yield location, digits
            lines_before += data[:cut].count(b"\n")
            carry = data[cut:]
            offset += len(chunk)
        if carry:
            yield from _scan_text(carry.decode("utf-8", "replace"), lines_before + 1)


def record_home_scan(settings: Settings, scan: HomeScan, scan_id: str) -> None:
    """Keep the scan's outcome in ``ledger.home_pan_scans`` (one row per scan; a rerun replaces its row)."""
    from pyiceberg.expressions import EqualTo

    from orchestration.lakehouse.catalog import commit_with_retry
    from orchestration.lakehouse.ledger import ledger_table  # with Dagster and pandera: not for `shoplake scan-pans`

    row = pa.Table.from_pylist(
        [
            {
                "scan_id": scan_id,
                "scanned_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
                "root": scan.root,
                "files_scanned": scan.files,
                "files_unchanged": scan.unchanged,
                "bytes_scanned": scan.bytes,
                "findings": len(scan.findings),
                "detail": "\n".join(f.line() for f in scan.findings[:MAX_REPORTED]) or None,
                "skipped": "\n".join(scan.skipped) or None,
            }
        ],
        schema=HOME_SCANS_SCHEMA,
    )
    table = ledger_table(settings, HOME_SCANS_TABLE, HOME_SCANS_SCHEMA)

    def replace_scan(t):
        with warnings.catch_warnings():  # a scan's first write has nothing to replace: not worth a warning
            warnings.filterwarnings("ignore", message="Delete operation did not match any records")
            t.overwrite(row, overwrite_filter=EqualTo("scan_id", scan_id))

    commit_with_retry(table, replace_scan)


def scan_and_record(settings: Settings, scan_id: str) -> HomeScan:
    """The check step's scan of the whole home, its outcome kept in ``ledger.home_pan_scans``.

    Files found clean before and unchanged since (Iceberg's data and metadata files never change) are
    not read again; a change to the scanner's code rescans everything."""
    state_path = settings.home / "lakehouse" / STATE_FILE
    version = _scanner_version()
    known = {}
    if state_path.exists():
        state = json.loads(state_path.read_text())
        known = state.get("clean", {}) if state.get("version") == version else {}
    scan = scan_home(settings, known_clean=known)
    record_home_scan(settings, scan, scan_id)
    state_path.parent.mkdir(parents=True, exist_ok=True)
    state_path.write_text(json.dumps({"version": version, "clean": scan.clean}))
    return scan


def _scanner_version() -> str:
    from orchestration.lakehouse import card_scan
    from orchestration.lakehouse.digests import letters_digest

    return letters_digest(Path(card_scan.__file__).read_bytes() + Path(__file__).read_bytes())
