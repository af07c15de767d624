"""The leak scanner: independent of the masking and looser than it, so it catches what masking misses."""

import hashlib
import random
import sqlite3
import uuid

import duckdb
import pyarrow.parquet as pq
import pytest

from demo_shop.generate import ShopConfig, generate_shop
from orchestration.lakehouse.card_scan import find_pans, prefilter_sql, scan_relation
from orchestration.lakehouse.digests import letters_digest
from orchestration.lakehouse.pii import find_card_numbers, keyed_token
from tests.test_pii import CARDS, LOOKALIKES

VISA = "4539148803436467"

# What the masking deliberately lets through (no issuer, letters between the groups, longer gaps,
# a phone-like '+'), each still a Luhn-valid 13-19 digit number: the scanner must flag every one.
BYPASSED = [
    "9539148803436466",
    "1234567890123452",
    "card 4539x1488y0343z6467",
    "4539o1488o0343o6467",
    "4539 - - 1488 - - 0343 - - 6467",
    "4539ab1488cd0343ef6467",
    "٤٥٣٩x١٤٨٨x٠٣٤٣x٦٤٦٧",
    "45391488034364678",  # 17 digits: no Visa has 17
]


@pytest.mark.parametrize("text", BYPASSED)
def test_the_scanner_finds_what_the_masking_lets_through(text):
    assert find_card_numbers(text) == []
    assert find_pans(text), text


@pytest.mark.parametrize(
    "text",
    [
        "+49 30 12345678 / +49 30 87654321",
        "call +1 (555) 123-4567 or +44 20 7946 0958",
        "+49 1512 3456789 0",
        "tracking 1Z999AA10123456784, 1Z12345E0205271688",
        "IBAN DE89 3704 0044 0532 0130 00",
        "pay to GB82WEST12345698765432 please",
        "2026/12/07 20:31:46 INFO mlflow.store.db.utils: Creating initial MLflow database tables...",
        "delivered 07.12.2026 20:31, signed 12/07/2026 09:15:02",
    ],
)
def test_phone_iban_tracking_numbers_and_dates_do_not_stop_the_blocking_check(text):
    # Real shops' tickets hold them, and a Luhn-valid stretch is in one of every few: each would block every run.
    assert find_pans(text) == []


def test_a_card_behind_a_plus_or_in_an_invalid_iban_is_still_found():
    assert find_pans("+4539 1488 0343 6467") == ["4539148803436467"]
    assert find_pans("DE89 4539 1488 0343 6467 00") == ["453914880343646700"]


@pytest.mark.parametrize(("text", "pan"), CARDS, ids=range(len(CARDS)))
def test_the_scanner_finds_every_card_the_masking_finds(text, pan):
    assert pan in find_pans(text)


def test_the_scanner_is_looser_than_the_masking_on_random_text():
    # 20,000 random strings of digits, separators and letters: whatever the masking would mask, the scanner flags
    rng = random.Random(5)
    alphabet = "0123456789" * 6 + " -./_x+" + "٤４"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(13, 40))) for _ in range(20_000)]
    masked = [t for t in texts if find_card_numbers(t)]
    assert len(masked) > 100
    assert [t for t in masked if not find_pans(t)] == []


def test_the_scanner_does_not_import_the_masking():
    import orchestration.lakehouse.card_scan as card_scan

    source = open(card_scan.__file__).read()
    assert "lakehouse.pii" not in source and "lakehouse import pii" not in source


def test_no_false_positive_on_identifiers_or_the_demo_shops_text(tmp_path):
    rng = random.Random(2)
    ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(50_000)]
    ids += [uuid.UUID(int=rng.getrandbits(128), version=4).hex for _ in range(20_000)]
    ids += [keyed_token(str(i), "k") for i in range(20_000)]
    assert [v for v in ids if find_pans(v)] == []
    # prose with numbers: amounts, dates, times and phone numbers between words
    prose = [
        f"order #{rng.randint(1, 10**7)} paid {rng.randint(1, 999)}.{rng.randint(0, 99):02d} on "
        f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} "
        f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}, "
        f"call +1 555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)} or 090 {rng.randint(1000, 9999)} "
        f"{rng.randint(1000, 9999)}"
        for _ in range(20_000)
    ]
    assert [v for v in prose if find_pans(v)] == []
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    generate_shop(ShopConfig(customers=300, days=40, seed=8, dirty_rate=0.05), url, tmp_path / "truth", progress=False)
    db = sqlite3.connect(tmp_path / "shop.db")
    values = db.execute(
        "SELECT 'orders', order_id, notes FROM orders "
        "UNION ALL SELECT 'support_tickets', ticket_id, body FROM support_tickets "
        "UNION ALL SELECT 'web_events', event_id, properties FROM web_events UNION ALL SELECT 'products', product_id, "
        "attributes FROM products"
    ).fetchall()
    dirty = pq.read_table(tmp_path / "truth" / "dirty_rows.parquet").to_pylist()
    planted = {(d["table"], int(d["key"])) for d in dirty if d["rule"] == "card_number_in_text"}
    assert {(t, k) for t, k, v in values if find_pans(v)} == planted


def test_stored_digests_never_look_like_card_numbers():
    # hex digests chain into Luhn-valid digit runs often enough to trip the scans of the ledger
    hex_hits = [i for i in range(20_000) if find_pans(hashlib.sha256(str(i).encode()).hexdigest()[:28])]
    assert hex_hits, "a hex digest can read as a card number: the reason digests are written in letters"
    assert not any(find_pans(f"rules2.pandera0.35.0.{letters_digest(str(i), 12)}") for i in range(20_000))
    assert letters_digest("x", 12) == "cnhbbgeclhcg"  # stable: a stored version must not change by itself


def test_duckdb_prefilter_passes_every_flagged_value():
    values = BYPASSED + [t for t, _ in CARDS] + LOOKALIKES + [str(uuid.uuid4()) for _ in range(200)]
    con = duckdb.connect()
    con.execute("CREATE TABLE t (v VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?)", [[v] for v in values])
    passed = {r[0] for r in con.execute(f"SELECT v FROM t WHERE {prefilter_sql(chr(34) + 'v' + chr(34))}").fetchall()}
    assert [v for v in values if find_pans(v) and v not in passed] == []
    result = scan_relation(con, "t", "t", ["v"])
    assert result.leaks == sum(len(find_pans(v)) for v in values) and not result.passed
    assert all(VISA not in s for s in result.samples) and "v: 453914******6467" in result.samples


# ---- the whole home: every file Shoplake writes


def test_a_generated_shops_home_holds_no_card_number_outside_the_shop(shoplake_home):
    from demo_shop.simulate import simulate_shop
    from orchestration.lakehouse.home_scan import scan_home

    generate_shop(
        ShopConfig(customers=150, days=30, seed=4, dirty_rate=0.05),
        shoplake_home.source_url,
        shoplake_home.truth_dir,
        progress=False,
    )
    simulate_shop(2, shoplake_home.source_url, shoplake_home.truth_dir, seed=1, progress=False)
    shop = sqlite3.connect(shoplake_home.home / "source" / "shop.db")
    assert shop.execute("SELECT count(*) FROM payments WHERE card_number IS NOT NULL").fetchone()[0] > 0
    scan = scan_home(shoplake_home)
    assert scan.files >= 10 and scan.findings == []
    assert any("the shop's own database" in s for s in scan.skipped)


def test_the_home_scan_finds_a_leak_planted_in_any_kind_of_file(shoplake_home):
    import json

    import pyarrow as pa

    from orchestration.lakehouse.catalog import load_catalog
    from orchestration.lakehouse.home_scan import HOME_SCANS_TABLE, record_home_scan, scan_home

    home = shoplake_home.home
    (home / "lakehouse" / "warehouse" / "raw" / "t" / "data").mkdir(parents=True)
    ids = [str(uuid.UUID(int=i * 7919, version=4)) for i in range(1_000)]
    notes = [f"note {i}: shipped 2026-10-{1 + i % 28:02d} 12:00:00, 3 items, 19.99" for i in range(1_000)]
    notes[617] = "customer wrote 4539x1488y0343z6467"  # the masking lets this through; the scanner must not
    pq.write_table(
        pa.table({"session_id": ids, "notes": notes}),
        home / "lakehouse" / "warehouse" / "raw" / "t" / "data" / "00000-0-x.parquet",
        row_group_size=300,
    )
    (home / "dagster" / "storage").mkdir(parents=True)
    log = sqlite3.connect(home / "dagster" / "storage" / "runs.db")
    log.execute("CREATE TABLE event_logs (id INTEGER PRIMARY KEY, run_id TEXT, event TEXT)")
    event = {
        "timestamp": 1796670243.836123,
        "snapshot_id": 876487995170630834,
        "message": "row failed: 5425 2334 3010 9903",
        "run_id": str(uuid.uuid4()),
    }
    log.execute(
        "INSERT INTO event_logs VALUES (1, 'r', ?), (2, 'r', ?)",
        [json.dumps({**event, "message": "ok"}), json.dumps(event)],
    )
    log.commit()
    log.close()
    (home / "dagster" / "storage" / "step.err").write_text(
        "2026-12-07 19:45:12 +0000 - dagster - INFO - took 0.123456789012345 s\n" * 48
        + "| xgboost | 0.8534 | 0.8475 | 0.8422 | 0.8706 | 0.8475 | 0.9466 | 1.3280 |\n"
        + "run_id: 22d2c2ec911c48a78b3836a8259bf864 file 140001325296368.npy\n"
        + "payload: {'card': '371449635398431'}\n"
    )
    artifacts = home / "mlflow" / "artifacts" / "m-1" / "artifacts"
    artifacts.mkdir(parents=True)
    (artifacts / "input_example.json").write_text(
        json.dumps(
            {
                "columns": ["day", "x", "text"],
                "data": [
                    ["2026-09-08 00:00:00", 0.30000000000000004, "n/a"],
                    ["2026-09-09 00:00:00", 1.5, "my card 6011000990139424"],
                ],
            }
        )
    )
    con = duckdb.connect(str(shoplake_home.duckdb_path))
    con.execute("CREATE SCHEMA curated; CREATE TABLE curated.tickets AS SELECT 'call me re 3530111333300000' AS body")
    con.close()

    scan = scan_home(shoplake_home)
    lines = sorted(f.line().removeprefix(str(home) + "/") for f in scan.findings)
    assert lines == [
        "dagster/storage/runs.db: table event_logs, column event, row 2, JSON $.message: 542523******9903",
        "dagster/storage/step.err: line 51: 371449*****8431",
        "lakehouse/transform.duckdb: table curated.tickets, column body: 353011******0000",
        "lakehouse/warehouse/raw/t/data/00000-0-x.parquet: column notes, row 617: 453914******6467",
        "mlflow/artifacts/m-1/artifacts/input_example.json: JSON $.data[1][2]: 601100******9424",
    ]
    assert all(VISA not in line for line in lines)

    record_home_scan(shoplake_home, scan, "run-1")
    row = load_catalog(shoplake_home).load_table(HOME_SCANS_TABLE).scan().to_arrow().to_pylist()
    assert len(row) == 1 and row[0]["findings"] == 5 and row[0]["files_scanned"] == scan.files
    assert "453914******6467" in row[0]["detail"] and VISA not in row[0]["detail"]


# ---- end to end through extraction, from a MariaDB shop


@pytest.fixture
def mariadb_shop(shoplake_home, monkeypatch):
    from orchestration.contract.database import SourceDatabase
    from orchestration.settings import Settings
    from tests.conftest import scratch_mariadb

    with scratch_mariadb() as (_, url):
        monkeypatch.setenv("SHOPLAKE_SOURCE_URL", url)
        SourceDatabase(url).create_schema()
        yield Settings.from_env()


@pytest.mark.mariadb
def test_cards_typed_into_a_mariadb_shops_text_never_reach_the_lakehouse(mariadb_shop):
    import datetime as dt

    import pyarrow as pa

    from orchestration.contract import schema
    from orchestration.contract.database import SourceDatabase
    from orchestration.defs.extract import extract_table as et
    from orchestration.lakehouse import duckdb_extensions
    from orchestration.lakehouse.card_scan import scan_iceberg_table
    from orchestration.lakehouse.catalog import load_catalog
    from orchestration.lakehouse.home_scan import scan_home

    t0 = dt.datetime(2026, 3, 1, 12, 0, 0, 250_000)
    # The scanner is looser than the masking by design: this lookalike would fail its blocking check.
    flagged = [text for text in LOOKALIKES if find_pans(text)]
    assert flagged == ["4539a1488b0343c6467"]
    lookalikes = [text for text in LOOKALIKES if text not in flagged]
    bodies = [text for text, _ in CARDS] + lookalikes
    tickets = schema.table("support_tickets")
    rows = [
        {
            "ticket_id": i + 1,
            "customer_id": 1,
            "order_id": None,
            "topic": "payment",
            "body": body,
            "status": "open",
            "satisfaction": None,
            "created_at": t0,
            "resolved_at": None,
            "updated_at": t0,
        }
        for i, body in enumerate(bodies)
    ]
    db = SourceDatabase(mariadb_shop.source_url)
    con = db.connect()
    db.insert(con, tickets.name, pa.Table.from_pylist(rows, schema=tickets.arrow_schema()))
    con.commit()
    con.close()

    result = et.extract_table(tickets, mariadb_shop, run_id="run-1")
    assert result.card_numbers_masked == len(CARDS)
    ice = load_catalog(mariadb_shop).load_table("raw.support_tickets")
    stored = dict(zip(*ice.scan().to_arrow().select(["ticket_id", "body"]).to_pydict().values(), strict=True))
    assert [stored[i + 1] for i in range(len(CARDS), len(bodies))] == lookalikes  # not a character changed
    assert all("[card ****" in stored[i + 1] for i in range(len(CARDS)))
    scan = scan_iceberg_table(duckdb_extensions.connect(mariadb_shop.duckdb_extension_dir), "raw.support_tickets", ice)
    assert scan.rows == len(bodies) and scan.passed, scan.samples
    assert scan_home(mariadb_shop).findings == []


def test_the_compliance_scan_rereads_only_what_changed_and_every_file_with_a_finding(shoplake_home):
    from orchestration.lakehouse.catalog import load_catalog
    from orchestration.lakehouse.home_scan import HOME_SCANS_TABLE, scan_and_record

    generate_shop(
        ShopConfig(customers=100, days=20, seed=6), shoplake_home.source_url, shoplake_home.truth_dir, progress=False
    )
    (shoplake_home.home / "notes.txt").write_text("refund to 4539 1488 0343 6467\n")
    first = scan_and_record(shoplake_home, "run-1")
    assert first.files >= 10 and first.unchanged == 0 and len(first.findings) == 1
    (shoplake_home.home / "later.log").write_text("card 5425233430109903 declined\n")
    second = scan_and_record(shoplake_home, "run-2")
    # the generator's files were clean and have not changed; the two files with a card number are read
    # (and so are the files the first scan itself wrote: the findings table and the scan state)
    assert second.unchanged == len(first.clean)
    assert sorted(f.number for f in second.findings) == ["453914******6467", "542523******9903"]
    rows = load_catalog(shoplake_home).load_table(HOME_SCANS_TABLE).scan().to_arrow().to_pylist()
    assert {(r["scan_id"], r["findings"]) for r in rows} == {("run-1", 1), ("run-2", 2)}
