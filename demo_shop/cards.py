"""Payment card numbers: realistic enough that the PII scanner must find them, never a real test card.

The lakehouse masks card numbers in text (orchestration/lakehouse/pii.py); the shop plants them in
notes and ticket bodies in the ways shoppers type them, so that masking is tested against the real thing.

Card numbers live only in the shop itself. The engine's state and ground truth under the home hold a
*card key* per card ("v" or "m" for the brand, then base32: no digit run a scanner could take for a
card), and the number is derived from the key at the moment a row is written to the shop. The
derivation is the generator's own (a hash), so the keys are synthetic test data, not a vault: what
they buy is that nothing Shoplake writes under its home holds a card number.
"""

from __future__ import annotations

import base64
import hashlib

import numpy as np

from orchestration.contract.vocabulary import TEST_CARD_NUMBERS

_PERSON = b"shoplake-cards"


def card_keys(rng: np.random.Generator, n: int) -> np.ndarray:
    """Keys of ``n`` new cards: 60% Visa, 40% Mastercard.

    The draws are the ones the card numbers were once drawn from, so every other column of a shop
    made with the same seed stays as it was."""
    digits = rng.integers(0, 10, size=(n, 16), dtype=np.int64)
    visa = rng.random(n) < 0.6
    second = rng.integers(1, 6, size=n)
    seeds = np.column_stack([digits, second]).astype(np.uint8)
    digests = (hashlib.blake2b(row.tobytes(), digest_size=10).digest() for row in seeds)
    brands = np.where(visa, "v", "m")
    return np.array(
        [b + base64.b32encode(d).decode().lower() for b, d in zip(brands, digests, strict=True)], dtype=object
    )


def card_number(key: str) -> str:
    """The 16-digit, Luhn-valid number of a card key: Visa 4xxxxx or Mastercard 51-55."""
    h = hashlib.blake2b(key.encode(), digest_size=16, person=_PERSON).digest()
    first, second = ("4", str(h[0] % 10)) if key[0] == "v" else ("5", str(1 + h[0] % 5))
    pan = fix_luhn(first + second + "".join(str(b % 10) for b in h[1:14]) + "0")
    if pan in TEST_CARD_NUMBERS:  # astronomically rare; stay off the list anyway
        pan = fix_luhn(pan[:14] + str((int(pan[14]) + 1) % 10) + "0")
    return pan


def card_numbers(keys: np.ndarray) -> np.ndarray:
    """``card_number`` of every key; None stays None (payments not made by card)."""
    return np.array([card_number(k) if isinstance(k, str) else None for k in keys], dtype=object)


def fix_luhn(pan: str) -> str:
    """The same number with its last digit replaced by the right check digit."""
    body = pan[:-1]
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


def format_card(pan: str, style: int) -> str:
    """How shoppers type a card number: one run of digits, or 4-4-4-4 groups with spaces or dashes."""
    if style == 0:
        return pan
    sep = " " if style == 1 else "-"
    return sep.join(pan[i : i + 4] for i in range(0, len(pan), 4))
