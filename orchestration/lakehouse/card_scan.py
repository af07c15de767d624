"""The card-number leak scanner: every string column of an Iceberg table, free text included.

Independent of extraction's masking (orchestration/lakehouse/pii.py) on purpose, and looser: a
number the masking misses is what this scanner exists to catch, so it must not share its blind
spots. It normalizes text the same way (NFKC, any script's digits), then joins digit groups across
gaps of up to ``SCAN_MAX_GAP`` characters that are not letters (nor a list's comma), or of one or two
letters with no space around them ("4539x1488"),
and flags every stretch of whole groups of 13-19 digits that passes Luhn, in any issuer range or
none. Identifiers that fill whole columns (ISO times, UUIDs, hex ids, keyed tokens) are set aside,
as the masking does: a random one holds such a stretch too often for a blocking check.

DuckDB's RE2 pre-filter finds the few values with 13 digits close together; only those go through
the test in Python, so a scan of millions of rows takes seconds.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa
from pyiceberg.table import Table as IcebergTable

from orchestration.lakehouse.increments import WHOLE_TABLE, Increment, files_since

SCAN_MIN_DIGITS, SCAN_MAX_DIGITS = 13, 19
SCAN_MAX_GAP = 6  # the masking joins groups across 4 non-alphanumeric characters
# Published test numbers of the card schemes: not a leak when they appear in documentation.
ALLOWED_TEST_NUMBERS = frozenset({"4111111111111111", "4242424242424242", "5555555555554444", "378282246310005"})

_SCAN_DIGITS = {cp: str(unicodedata.decimal(chr(cp))) for cp in range(0x80, 0x20000) if chr(cp).isdecimal()}
# Any character but a digit, a letter, a "+" (which starts a phone number, as in the masking) or a list's comma.
_GAP_CHAR = r"""(?:(?!,[\s"']|["'],)[^\w+]|_)"""
# A gap: up to SCAN_MAX_GAP characters that are neither digits nor a list's comma, or up to two letters
# with no space around them ("4539x1488", "4539ab1488"; "paid 123.45 on 2026-05-12" is prose).
_SCAN_CHAIN = re.compile(r"[0-9]+(?:(?:%s{1,%d}|[^\W\d_]{1,2})[0-9]+)*" % (_GAP_CHAR, SCAN_MAX_GAP))
_SCAN_GROUP = re.compile(r"[0-9]+")
# Set aside as the masking does: ISO dates and times, UUIDs, hex ids of 32, 40 or 64 characters with a letter; and keyed
# tokens (base32, orchestration/lakehouse/pii.py) unless one holds 13 digits in a row.
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_HEX_ID = r"[0-9a-fA-F]{64}|[0-9a-fA-F]{40}|[0-9a-fA-F]{32}"
# Dates and times as programs and people write them ("2026-12-07T20:31:46Z", "2026/12/07 20:31:46" in a
# library's log line, "07.12.2026 20:31"): fourteen digits of a date and time are Luhn-valid one time in ten.
_ISO_DATETIME = (
    r"(?:[12][0-9]{3}(?P<ymd>[-/.])(?:0?[1-9]|1[0-2])(?P=ymd)(?:0?[1-9]|[12][0-9]|3[01])"
    r"|(?:0?[1-9]|[12][0-9]|3[01])(?P<dmy>[-/.])(?:0?[1-9]|[12][0-9]|3[01])(?P=dmy)[12][0-9]{3})"
    r"(?:[T ][0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]+)?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?"
)
_SCAN_IDENTIFIER = re.compile(
    r"(?<![0-9A-Za-z])(?:%s|%s|(?=[0-9]*[a-fA-F])(?:%s)|[a-z2-7]{52})(?![0-9A-Za-z])" % (_ISO_DATETIME, _UUID, _HEX_ID)
)
_THIRTEEN_DIGITS = re.compile(r"[0-9]{13}")
# Also set aside, because real shops' text holds them and a blocking check must not stop on them: IBANs
# whose mod-97 check passes (their digits hold a Luhn-valid stretch about every other time) and UPS
# tracking numbers ("1Z" and 16 letters or digits).
_IBAN_OR_TRACKING = re.compile(
    r"(?<![0-9A-Za-z])(?:([A-Z]{2}[0-9]{2}(?: ?[0-9A-Z]{1,4}){3,8})|1Z[0-9A-Z]{16})(?![0-9A-Za-z])"
)


def _iban_valid(text: str) -> bool:
    compact = text.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _set_aside_iban_or_tracking(match: re.Match) -> str:
    return "_" if match.group(1) is None or _iban_valid(match.group(1)) else match.group()


# For DuckDB (RE2): values with 13 digits, each at most SCAN_MAX_GAP non-letters or two letters from
# the next (a non-ASCII character counts as a non-letter), unless the whole value is one identifier (an
# all-digit one is too long to be a card number anyway); values holding a character NFKC may turn into
# a digit: 13 numeric characters of any script.
SCAN_PREFILTER = r"[0-9](?:(?:[^0-9A-Za-z]{0,%d}|[A-Za-z]{1,2})[0-9]){12}" % SCAN_MAX_GAP
SCAN_NEEDS_UNICODE = r"[^\x00-\x7F\pL\pM\pP\pS\pZ]"  # a character NFKC may make a digit (or drop)
SCAN_PREFILTER_UNICODE = r"(?:\pN\PN*){13}"
# (a keyed token with 13 digits in a row is set aside here but not by find_pans: harmless, never seen)
SCAN_WHOLE_IDENTIFIER = f"{_UUID}|{_HEX_ID}|[a-z2-7]{{52}}"


def luhn_passes(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def find_pans(text: str | None, allowlist: frozenset[str] = ALLOWED_TEST_NUMBERS) -> list[str]:
    """Every possible card number (digits only) in ``text``: the scanner's own, looser, test."""
    if not text or len(text) < SCAN_MIN_DIGITS:
        return []
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text).translate(_SCAN_DIGITS)
    text = _SCAN_IDENTIFIER.sub(_set_aside, text)
    text = _IBAN_OR_TRACKING.sub(_set_aside_iban_or_tracking, text)
    found = []
    for chain in _SCAN_CHAIN.finditer(text):
        groups = _SCAN_GROUP.findall(chain.group())
        i = 0
        while i < len(groups):
            digits, hit = "", None
            for j in range(i, len(groups)):
                digits += groups[j]
                if len(digits) > SCAN_MAX_DIGITS:
                    break
                if (
                    len(digits) >= SCAN_MIN_DIGITS
                    and luhn_passes(digits)
                    and digits not in allowlist
                    and digits.strip(digits[0])
                ):  # "0000 0000 0000 0000" is a placeholder
                    hit = (j, digits)
            if hit is None:
                i += 1
            else:
                found.append(hit[1])
                i = hit[0] + 1
    return found


def _set_aside(identifier: re.Match) -> str:
    token = identifier.group()
    return token if len(token) == 52 and _THIRTEEN_DIGITS.search(token) else "_"


def masked_pan(digits: str) -> str:
    """How a finding is shown: the first six and last four digits, never the whole number."""
    return f"{digits[:6]}{'*' * (len(digits) - 10)}{digits[-4:]}"


def prefilter_sql(column: str) -> str:
    """A DuckDB condition passing every value of ``column`` that ``find_pans`` could flag."""
    return (
        f"length({column}) >= {SCAN_MIN_DIGITS} AND CASE WHEN strlen({column}) = length({column}) "
        f"THEN regexp_matches({column}, '{SCAN_PREFILTER}') "
        f"AND NOT regexp_full_match({column}, '{SCAN_WHOLE_IDENTIFIER}') "
        f"ELSE regexp_matches({column}, '{SCAN_PREFILTER}') OR (regexp_matches({column}, '{SCAN_NEEDS_UNICODE}') "
        f"AND regexp_matches({column}, '{SCAN_PREFILTER_UNICODE}')) END"
    )


MAX_SAMPLES = 20


@dataclass
class ScanResult:
    table: str
    rows: int = 0
    string_columns: list[str] = field(default_factory=list)
    candidates: int = 0
    leaks: int = 0
    samples: list[str] = field(default_factory=list)  # "column: 453914******6467", never the full number
    scope: str = WHOLE_TABLE

    @property
    def passed(self) -> bool:
        return self.leaks == 0

    def as_metadata(self) -> dict:
        return {
            "rows_scanned": self.rows,
            "string_columns_scanned": len(self.string_columns),
            "digit_runs_inspected": self.candidates,
            "card_numbers_found": self.leaks,
            "samples": ", ".join(self.samples) or "none",
            "scope": self.scope,
        }


def scan_iceberg_table(
    con: duckdb.DuckDBPyConnection, name: str, table: IcebergTable, since: int | None = None
) -> ScanResult:
    """Scan the table's current snapshot; only the files added since snapshot ``since`` when the
    scan passed there (orchestration/lakehouse/increments.py)."""
    if table.current_snapshot() is None:
        return ScanResult(table=name)
    arrow_schema = table.schema().as_arrow()
    string_columns = [f.name for f in arrow_schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    return scan_relation(
        con, name, f"iceberg_scan('{table.metadata_location}')", string_columns, files_since(table, since)
    )


def scan_published_table(con: duckdb.DuckDBPyConnection, name: str, increment: Increment | None = None) -> ScanResult:
    """Scan a table of a query session (orchestration.query.connect), e.g. ``prod.fct_orders``;
    only ``increment``'s files when given."""
    schema, table = name.split(".", 1)
    string_columns = [
        row[0]
        for row in con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? AND data_type = 'VARCHAR' ORDER BY ordinal_position",
            [schema, table],
        ).fetchall()
    ]
    return scan_relation(con, name, f'"{schema}"."{table}"', string_columns, increment)


def scan_relation(
    con: duckdb.DuckDBPyConnection,
    name: str,
    source: str,
    string_columns: list[str],
    increment: Increment | None = None,
) -> ScanResult:
    """Every value of ``string_columns`` of the relation ``source`` (or of ``increment``'s files)
    with a long digit run, Luhn-tested."""
    result = ScanResult(table=name, string_columns=list(string_columns))
    if increment is not None:
        result.scope = increment.describe()
        if not increment.files:
            return result
        source = increment.parquet_source()
    result.rows = con.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
    if not result.string_columns:
        return result
    union = " UNION ALL ".join(
        f"SELECT '{c}' AS col, \"{c}\" AS val FROM {source} WHERE {prefilter_sql(chr(34) + c + chr(34))}"
        for c in result.string_columns
    )
    for column, value in con.execute(union).fetchall():
        result.candidates += 1
        for digits in find_pans(value):
            result.leaks += 1
            if len(result.samples) < MAX_SAMPLES:
                result.samples.append(f"{column}: {masked_pan(digits)}")
    return result
