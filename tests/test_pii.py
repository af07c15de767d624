"""The card-number masking of extraction and the keyed tokens every layer relies on (invariant 1).

Masking must catch a card number however a person types it, and leave alone everything that only
looks like one: a masked session id or order number is data lost."""

import random
import re
import sqlite3
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from demo_shop.generate import ShopConfig, generate_shop
from orchestration.defs.extract.protect import candidate_rows
from orchestration.lakehouse.pii import (
    TEST_CARD_NUMBERS,
    find_card_numbers,
    is_card_number,
    keyed_token,
    luhn_valid,
    mask_card_numbers,
    normalize,
    normalize_email,
)

VISA = "4539148803436467"  # Luhn-valid, Visa range
MC = "5425233430109903"
AMEX = "371449635398431"
DISCOVER = "6011000990139424"
DINERS = "30569309025904"  # 14 digits
VISA13 = "4222222222222"
JCB = "3530111333300000"
MC2 = "2223003122003222"  # the 2-series Mastercard range


def _luhn(body: str) -> str:
    for d in "0123456789":
        if luhn_valid(body + d):
            return body + d
    raise AssertionError


VISA19 = _luhn("453914880343646712")
FULLWIDTH = str.maketrans("0123456789 ", "０１２３４５６７８９　")
ARABIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
DEVANAGARI = str.maketrans("0123456789", "०१२३४५६७८९")
SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def groups(pan: str, sizes: tuple[int, ...], sep: str) -> str:
    out, i = [], 0
    for n in sizes:
        out.append(pan[i : i + n])
        i += n
    if i < len(pan):
        out.append(pan[i:])
    return sep.join(out)


# (typed text, the card number in it): every class of the issue and combinations of them.
CARDS = [
    # one run, the printed groups
    (VISA, VISA),
    (f"card {VISA} thanks", VISA),
    ("4539 1488 0343 6467", VISA),
    ("4539-1488-0343-6467", VISA),
    ("amex 3714 496353 98431", AMEX),
    (f"diners {groups(DINERS, (4, 6, 4), ' ')}", DINERS),
    (VISA13, VISA13),
    (f"new card {VISA19}", VISA19),
    (groups(MC2, (4, 4, 4, 4), " "), MC2),
    (JCB, JCB),
    # other separators
    ("4539.1488.0343.6467", VISA),
    ("4539/1488/0343/6467", VISA),
    ("4539_1488_0343_6467", VISA),
    ("4539  1488  0343  6467", VISA),
    ("4539 - 1488 - 0343 - 6467", VISA),
    ("4539\t1488\t0343\t6467", VISA),
    ("4539\n1488\n0343\n6467", VISA),
    ("4539,1488,0343,6467", VISA),
    ("4539*1488*0343*6467", VISA),
    ("(4539) 1488 0343 6467", VISA),
    ("4539...1488...0343...6467", VISA),
    ("4539 | 1488 | 0343 | 6467", VISA),
    ("5425–2334–3010–9903", MC),
    ("5425—2334—3010—9903", MC),
    ("4539\u00a01488\u00a00343\u00a06467", VISA),
    ("4539\u20091488\u20090343\u20096467", VISA),
    ("4539\u200b1488\u200b0343\u200b6467", VISA),
    ("4539-1488 0343.6467", VISA),
    ("'4539' '1488' '0343' '6467'", VISA),
    # letters touching the digits
    (f"ref{VISA}", VISA),
    (f"{VISA}exp1227", VISA),
    (f"VISA:{VISA}/CVV", VISA),
    ("cc#4539-1488-0343-6467x", VISA),
    (f"card{groups(MC, (4, 4, 4, 4), ' ')}please", MC),
    (f"n°{DISCOVER}", DISCOVER),
    # other groupings
    (groups(VISA, (2,) * 8, " "), VISA),
    (groups(VISA, (3,) * 5, " "), VISA),
    (groups(VISA, (5, 5, 6), "-"), VISA),
    (groups(VISA, (8, 8), " "), VISA),
    (groups(AMEX, (4, 4, 4, 3), " "), AMEX),
    (groups(VISA, (1,) * 16, " "), VISA),
    (groups(DISCOVER, (6, 10), "-"), DISCOVER),
    (groups(VISA, (4, 12), " "), VISA),
    # non-ASCII digits and spaces
    (VISA.translate(FULLWIDTH), VISA),
    ("4539 1488 0343 6467".translate(FULLWIDTH), VISA),
    (VISA.translate(ARABIC), VISA),
    (VISA.translate(DEVANAGARI), VISA),
    (groups(VISA, (4,) * 4, " ").translate(SUPERSCRIPT), VISA),
    ("カード番号４５３９－１４８８－０３４３－６４６７です", VISA),
    ("Карта 4539 1488 0343 6467, спасибо", VISA),
    # combinations
    ("ref:４５３９.1488.٠٣٤٣/6467end", VISA),
    (f"x{groups(MC, (2,) * 8, '.')}y", MC),
    ("pay 12.50 with 4539 / 1488 / 0343 / 6467 on 2026-10-12", VISA),
]

# Numbers that are not cards, in the same shapes: nothing here may change.
LOOKALIKES = [
    "order 1234567890123 shipped",
    "call +44 20 7946 0958",
    "call +1 (555) 123-4567",
    "tel. 090-1234-5678",
    "4539 1488 0343 6468",
    "9539148803436467",
    "1234 5678 9012 3456",
    "0000 0000 0000 0000",
    "2026-10-12 22:49:51.710",
    "2026-10-12T22:49:51.710Z",
    "12/10/2026 10:45",
    "paid 1,234,567.89 USD",
    "total 3600.00 JPY, fee 981.00",
    "133de05e-b46e-4c77-ab1a-83ab23c9be99",
    "12345678-1234-4123-8123-123456789012",
    "45391488-0343-4467-8123-456789012345",
    str(uuid.UUID(int=0x45391488034364671234567890123456)),
    "ORD-2026-000123",
    "order #1000234 and #1000235",
    "SKU ELE-000001",
    "FLASH-GRO-1021-26",
    "promo CODE2026",
    "IBAN GB82 WEST 1234 5698 7654 32",
    "tracking 1Z999AA10123456784",
    "ISBN 978-3-16-148410-0",
    '{"product_id": 12, "quantity": 2, "price": 19.99}',
    "IP 192.168.100.254",
    "MAC 00:1A:2B:3C:4D:5E",
    "version 1.13.27",
    "lat 35.689487, lon 139.691706",
    "qty 3 x 4539",
    "4539 1488 0343",
    "last four 6467",
    "****6467",
    "[card ****6467]",
    "453914******6467",
    "4539-14XX-XXXX-6467",
    "card ending in 6467 expires 12/27",
    "4539a1488b0343c6467",
    "4539 and 1488 and 0343 and 6467",
    keyed_token(VISA, "k"),
    "1" * 20,
    "4" * 12,
    "numbers 4539 1488 0343 6468 0000 1111 2222",  # 28 digits: no stretch of whole groups is a card
    "86f165812acf45498c4776944943993f",  # an MLflow run id holding a Luhn-valid Visa-range 13-digit run
    "sha1 0f4776944943993a2b3c4d5e6f708192a3b4c5d6",
    "+49 30 12345678 / +49 30 87654321",
    "tel 0800 123 4567",
    "invoice 2026/10/000123",
    "SSN 123-45-6789",
    "zip 10115 Berlin, 75001 Paris",
    "EAN 4006381333931",
    "25.12.2026 18:30 Uhr",
    "price 1.299,00 EUR",
    "order 4539148 qty 12",
    "batch 20261012-223045-001",
    "id 98765432101234567890123",
    '"sizes": ["36", "37", "38", "39", "40", "41", "42", "43", "44", "45", "46"]',
    "sizes 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46",
    "ticket 00012345 reply 2",
    "coordinates 48.858370, 2.294481",
    "session 7f2e8c4a-0b1d-4e5f-9a8b-7c6d5e4f3a2b page 3",
    "9780306406157",
    "+81 3 1234 5678",
]


def test_luhn():
    assert luhn_valid(VISA)
    assert not luhn_valid("4539148803436468")
    assert luhn_valid("79927398713")  # the textbook example


@pytest.mark.parametrize(("text", "pan"), CARDS, ids=range(len(CARDS)))
def test_every_way_of_typing_a_card_number_is_masked(text, pan):
    assert is_card_number(pan)
    assert find_card_numbers(text) == [pan]
    masked, n = mask_card_numbers(text)
    assert n == 1 and f"[card ****{pan[-4:]}]" in masked
    assert find_card_numbers(masked) == []
    assert pan[:-4] not in re.sub(r"\D", "", normalize(masked))  # only the last four digits are left


@pytest.mark.parametrize("text", LOOKALIKES, ids=range(len(LOOKALIKES)))
def test_what_only_looks_like_a_card_number_is_left_alone(text):
    assert find_card_numbers(text) == []
    assert mask_card_numbers(text) == (text, 0)


def test_the_case_lists_are_as_long_as_promised():
    assert len(CARDS) >= 40 and len(LOOKALIKES) >= len(CARDS)
    assert len({pan for _, pan in CARDS}) >= 8  # Visa 13/16/19, Mastercard 5 and 2 series, Amex, Discover, Diners, JCB


def test_masking_keeps_the_rest_of_the_text_as_typed():
    text = "Ｃａｒｄ: ４５３９ １４８８ ０３４３ ６４６７ — ありがとう ①"
    assert mask_card_numbers(text) == ("Ｃａｒｄ: [card ****6467] — ありがとう ①", 1)
    masked, n = mask_card_numbers("pay with 4539 1488 0343 6467 or 5555555555554444 ok")
    assert (masked, n) == ("pay with [card ****6467] or [card ****4444] ok", 2)


def test_the_prefilter_passes_every_card_text():
    # The vectorised pre-filter decides which values the detector ever sees.
    texts = [t for t, _ in CARDS] + [f"note: {t}." for t, _ in CARDS]
    assert candidate_rows(pa.chunked_array([pa.array(texts)])) == list(range(len(texts)))


def test_false_positive_rate_on_random_identifiers_is_zero():
    # Session ids (UUIDs), keyed tokens and hex ids fill whole columns: 200,000 of them, none masked.
    rng = random.Random(1)
    values = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(100_000)]
    values += [uuid.UUID(int=rng.getrandbits(128), version=4).hex for _ in range(50_000)]
    values += [keyed_token(str(i), "k") for i in range(50_000)]
    rows = candidate_rows(pa.chunked_array([pa.array(values)]))
    assert [values[i] for i in rows if find_card_numbers(values[i])] == []
    # the pre-filter sends 1.6% of them (13 digits close together) to the detector
    assert len(rows) == 3_267


def test_false_positive_rate_on_the_demo_shops_free_text_is_zero(tmp_path):
    # Every free-text and id value the generator writes: only the rows it planted a card number in
    # (its ground truth says which) hold one.
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    generate_shop(ShopConfig(customers=400, days=60, seed=3, dirty_rate=0.05), url, tmp_path / "truth", progress=False)
    db = sqlite3.connect(tmp_path / "shop.db")
    values = db.execute(
        "SELECT 'orders', order_id, notes FROM orders "
        "UNION ALL SELECT 'support_tickets', ticket_id, body FROM support_tickets "
        "UNION ALL SELECT 'web_events', event_id, properties FROM web_events "
        "UNION ALL SELECT 'web_events', event_id, session_id "
        "FROM web_events UNION ALL SELECT 'products', product_id, attributes FROM products "
        "UNION ALL SELECT 'customers', customer_id, email FROM customers"
    ).fetchall()
    dirty = pq.read_table(tmp_path / "truth" / "dirty_rows.parquet").to_pylist()
    planted = {(d["table"], int(d["key"])) for d in dirty if d["rule"] == "card_number_in_text"}
    found = {(table, key) for table, key, text in values if find_card_numbers(text)}
    assert len(values) > 5_000 and len(planted) >= 2
    assert found == planted  # every planted one found, no false positive among the others


def test_allowlist_skips_published_test_numbers():
    assert find_card_numbers("docs: 4111 1111 1111 1111", allowlist=TEST_CARD_NUMBERS) == []
    assert find_card_numbers("docs: 4111 1111 1111 1111") == ["4111111111111111"]


def test_tokens_are_keyed_stable_and_base32():
    a, b = keyed_token(VISA, "key-1"), keyed_token(VISA, "key-2")
    assert a == keyed_token(VISA, "key-1")
    assert a != b
    assert re.fullmatch(r"[a-z2-7]{52}", a)
    assert is_card_number(VISA) and not is_card_number(a)


def test_email_normalization_makes_pseudonyms_join():
    assert keyed_token(normalize_email("  Ana.Lopez@Example.COM "), "k") == keyed_token("ana.lopez@example.com", "k")
