"""The leak scanner: independent of the masking and looser than it, so it catches what masking misses."""

import random
import sqlite3
import uuid

import duckdb
import pyarrow.parquet as pq
import pytest

from orchestration.checks.card_scan import find_pans, prefilter_sql, scan_relation
from orchestration.lakehouse.pii import find_card_numbers, keyed_token
from orchestration.source.generate import ShopConfig, generate_shop
from tests.test_pii import CARDS, LOOKALIKES

VISA = "4539148803436467"

# What the masking deliberately lets through (no issuer, letters between the groups, longer gaps,
# a phone-like '+'), each still a Luhn-valid 13-19 digit number: the scanner must flag every one.
BYPASSED = [
    "9539148803436466", "1234567890123452", "card 4539x1488y0343z6467", "4539 o 1488 o 0343 o 6467",
    "4539 - - 1488 - - 0343 - - 6467", "4539 +1488 +0343 +6467", "4539ab1488cd0343ef6467",
    "٤٥٣٩ x ١٤٨٨ x ٠٣٤٣ x ٦٤٦٧", "45391488034364678",  # 17 digits: no Visa has 17
    "+49 30 12345678 / +49 30 87654321",
]


@pytest.mark.parametrize("text", BYPASSED)
def test_the_scanner_finds_what_the_masking_lets_through(text):
    assert find_card_numbers(text) == []
    assert find_pans(text), text


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
    import orchestration.checks.card_scan as card_scan

    source = open(card_scan.__file__).read()
    assert "lakehouse.pii" not in source and "lakehouse import pii" not in source


def test_no_false_positive_on_identifiers_or_the_demo_shops_text(tmp_path):
    rng = random.Random(2)
    ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(50_000)]
    ids += [uuid.UUID(int=rng.getrandbits(128), version=4).hex for _ in range(20_000)]
    ids += [keyed_token(str(i), "k") for i in range(20_000)]
    assert [v for v in ids if find_pans(v)] == []
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    generate_shop(ShopConfig(customers=300, days=40, seed=8, dirty_rate=0.05), url, tmp_path / "truth", progress=False)
    db = sqlite3.connect(tmp_path / "shop.db")
    values = db.execute(
        "SELECT 'orders', order_id, notes FROM orders UNION ALL SELECT 'support_tickets', ticket_id, body FROM support_tickets "
        "UNION ALL SELECT 'web_events', event_id, properties FROM web_events UNION ALL SELECT 'products', product_id, "
        "attributes FROM products"
    ).fetchall()
    dirty = pq.read_table(tmp_path / "truth" / "dirty_rows.parquet").to_pylist()
    planted = {(d["table"], int(d["key"])) for d in dirty if d["rule"] == "card_number_in_text"}
    assert {(t, k) for t, k, v in values if find_pans(v)} == planted


def test_duckdb_prefilter_passes_every_flagged_value():
    values = BYPASSED + [t for t, _ in CARDS] + LOOKALIKES + [str(uuid.uuid4()) for _ in range(200)]
    con = duckdb.connect()
    con.execute("CREATE TABLE t (v VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?)", [[v] for v in values])
    passed = {r[0] for r in con.execute(f'SELECT v FROM t WHERE {prefilter_sql(chr(34) + "v" + chr(34))}').fetchall()}
    assert [v for v in values if find_pans(v) and v not in passed] == []
    result = scan_relation(con, "t", "t", ["v"])
    assert result.leaks == sum(len(find_pans(v)) for v in values) and not result.passed
    assert all(VISA not in s for s in result.samples) and "v: 453914******6467" in result.samples
