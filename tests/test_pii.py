"""The card-number detector and tokens every layer relies on (invariant 1)."""

import random
import re
import uuid

import pytest

from orchestration.lakehouse.pii import (
    CANDIDATE_PREFILTER,
    TEST_CARD_NUMBERS,
    find_card_numbers,
    is_card_number,
    keyed_token,
    luhn_valid,
    mask_card_numbers,
    normalize_email,
)

VISA = "4539148803436467"  # Luhn-valid, Visa range


def test_luhn():
    assert luhn_valid(VISA)
    assert not luhn_valid("4539148803436468")
    assert luhn_valid("79927398713")  # the textbook example


@pytest.mark.parametrize(
    "text",
    [
        f"card {VISA} thanks",
        "card 4539 1488 0343 6467 thanks",
        "card 4539-1488-0343-6467.",
        f"ref{VISA}",  # glued to letters, still a run of 16 digits
        "amex 3782 822463 10005",
    ],
)
def test_finds_card_numbers_as_people_type_them(text):
    assert len(find_card_numbers(text)) == 1


@pytest.mark.parametrize(
    "text",
    [
        "order 1234567890123 shipped",  # 13 digits but not Luhn-valid in an issuer range
        "call +44 20 7946 0958",
        "4539 1488 0343 6468",  # one digit off: Luhn fails
        "9539148803436467",  # Luhn-valid, no issuer starts with 9
    ],
)
def test_ignores_numbers_that_are_not_cards(text):
    assert find_card_numbers(text) == []


def test_no_false_positives_on_uuids_or_tokens():
    # UUIDs (session ids) and tokens fill whole columns: one false positive would fail the blocking check.
    values = [str(uuid.UUID(int=i * 7919 + 17)) for i in range(50_000)]
    values += [str(uuid.uuid5(uuid.NAMESPACE_DNS, str(i))) for i in range(50_000)]
    values += [keyed_token(str(i), "k") for i in range(20_000)]
    assert [v for v in values if find_card_numbers(v)] == []


def test_the_vectorised_prefilter_passes_every_card_and_no_uuid():
    # The pre-filter (RE2, in DuckDB and pyarrow) decides what the detector ever sees: it must pass
    # every way of writing a card the detector knows, and not whole columns of session ids.
    prefilter = re.compile(CANDIDATE_PREFILTER)
    amex = "378282246310005"
    written = [VISA, "4539 1488 0343 6467", "4539-1488-0343-6467", "4539-1488-0343-6467-123", "4539 1488 0343 6467 123",
               "3782 822463 10005", "3782-822463-10005", "4222222222222", "4539148803436467123", f"ref{VISA}x", amex]
    for text in written + [f"note: {w}." for w in written]:
        assert find_card_numbers(text) and prefilter.search(text), text
    # random session ids: 114 in 100,000 pass (four all-digit groups in a row); the looser
    # "13 digits with optional separators" passed 2,162
    rng = random.Random(1)
    uuids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(100_000)]
    assert sum(1 for u in uuids if prefilter.search(u)) == 114


def test_mask_keeps_last_four_only():
    masked, n = mask_card_numbers("pay with 4539 1488 0343 6467 or 5555555555554444 ok")
    assert n == 2
    assert masked == "pay with [card ****6467] or [card ****4444] ok"
    assert find_card_numbers(masked) == []


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
