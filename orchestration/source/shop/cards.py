"""Payment card numbers: realistic enough that the PII scanner must find them, never a real test card.

The lakehouse masks card numbers in text (orchestration/lakehouse/pii.py); the shop plants them in
notes and ticket bodies in the ways shoppers type them, so that masking is tested against the real thing.
"""

from __future__ import annotations

import numpy as np

from orchestration.lakehouse.pii import TEST_CARD_NUMBERS


def card_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """Luhn-valid 16-digit PANs in real issuer ranges: Visa 4xxxxx, Mastercard 51-55."""
    digits = rng.integers(0, 10, size=(n, 16), dtype=np.int64)
    visa = rng.random(n) < 0.6
    digits[:, 0] = np.where(visa, 4, 5)
    digits[:, 1] = np.where(visa, digits[:, 1], rng.integers(1, 6, size=n))
    body = digits[:, :15]
    doubled = body[:, 0::2] * 2
    doubled = np.where(doubled > 9, doubled - 9, doubled)
    total = doubled.sum(1) + body[:, 1::2].sum(1)
    digits[:, 15] = (10 - total % 10) % 10
    chars = (digits + 48).astype(np.uint8)
    out = np.array([s.decode() for s in np.ascontiguousarray(chars).view("S16").ravel()], dtype=object)
    for i in np.flatnonzero(np.isin(out, list(TEST_CARD_NUMBERS))):  # astronomically rare; stay off the list anyway
        out[i] = "4" + out[i][1:14] + str((int(out[i][14]) + 1) % 10) + "0"
        out[i] = fix_luhn(out[i])
    return out


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
    return sep.join(pan[i:i + 4] for i in range(0, len(pan), 4))
