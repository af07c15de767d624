"""Card numbers and personal data: the keyed tokens and detectors every layer shares.

Extraction tokenizes the card-number column and masks card numbers typed into free text before a
row touches disk; the leak scanner (a blocking check) uses the same detector over every string
column afterwards, so what extraction masks and what the check looks for can never drift apart.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

# How people write card numbers: 13-19 digits in one run, or in the groups printed on the card
# (4-4-4-4[-3] or American Express's 4-6-5) separated by one kind of space or dash. Looser patterns
# flag UUIDs and phone numbers.
# Groups must stand alone (no letter, digit or dash touching them): a UUID's 4-digit groups do not.
_CANDIDATE = re.compile(
    r"(?<!\d)\d{13,19}(?!\d)"
    r"|(?<![\w-])(?:\d{4}([ -])\d{4}\1\d{4}\1\d{4}(?:\1\d{3})?|\d{4}([ -])\d{6}\2\d{5})(?![\w-])"
)
# A superset of the above, cheap enough for a vectorised pre-filter (pyarrow, DuckDB: RE2 syntax,
# which has no look-around or back-references): the same shapes without the boundary rules. It
# must not be looser than that: a session id (a UUID, 15M rows of them) once matched a looser
# "13 digits with optional separators" and sent every value through the Python test.
CANDIDATE_PREFILTER = r"\d{4}(?:\d{9}|-\d{4}-\d{4}-\d{4}| \d{4} \d{4} \d{4}|[ -]\d{6}[ -]\d{5})"
# No shorter value can hold a card number: the scanner skips those before the regular expression.
MIN_CARD_CHARS = 13

# Issuer prefixes (IIN ranges) of the major schemes; a Luhn-valid number outside them is most
# likely an order number or a phone number, not a card.
_ISSUER = re.compile(
    r"^(?:4\d{12}(?:\d{3}){0,2}"  # Visa 13/16/19
    r"|5[1-5]\d{14}|2(?:2[2-9]\d|[3-6]\d\d|7[01]\d|720)\d{12}"  # Mastercard
    r"|3[47]\d{13}"  # American Express
    r"|6(?:011|5\d\d)\d{12,15}|64[4-9]\d{13}"  # Discover
    r"|35(?:2[89]|[3-8]\d)\d{12,15}"  # JCB
    r"|3(?:0[0-5]|[68]\d)\d{11,13})$"  # Diners
)

# Published test numbers of the card schemes: not a leak when they appear in documentation.
TEST_CARD_NUMBERS = frozenset({"4111111111111111", "4242424242424242", "5555555555554444", "378282246310005"})


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def is_card_number(digits: str) -> bool:
    return bool(_ISSUER.match(digits)) and luhn_valid(digits)


def find_card_numbers(text: str | None, allowlist: frozenset[str] = frozenset()) -> list[str]:
    """Card numbers (digits only) found in ``text``: Luhn-valid and within an issuer range."""
    if not text or len(text) < 13:
        return []
    found = []
    for m in _CANDIDATE.finditer(text):
        digits = re.sub(r"[ -]", "", m.group())
        if is_card_number(digits) and digits not in allowlist:
            found.append(digits)
    return found


def mask_card_numbers(text: str | None) -> tuple[str | None, int]:
    """Replace every card number in ``text`` with ``[card ****1234]``; returns (text, how many)."""
    if not text or len(text) < 13:
        return text, 0
    count = 0

    def _mask(m: re.Match) -> str:
        nonlocal count
        digits = re.sub(r"[ -]", "", m.group())
        if not is_card_number(digits):
            return m.group()
        count += 1
        return f"[card ****{digits[-4:]}]"

    return _CANDIDATE.sub(_mask, text), count


def keyed_token(value: str, key: str) -> str:
    """HMAC-SHA256 of ``value`` under ``key``: stable for joins, useless without the key.

    Base32 rather than hex on purpose: hex digests hold long digit runs that a card-number scanner
    would flag now and then; base32 only has the digits 2-7, never 13 in a row in practice.
    """
    digest = hmac.new(key.encode(), value.encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode().rstrip("=").lower()


def normalize_email(email: str) -> str:
    return email.strip().lower()
