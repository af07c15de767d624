"""Card numbers and personal data: the keyed tokens and the masking detector of extraction.

Extraction tokenizes the card-number column and masks card numbers typed into free text before a
row touches disk. The leak scanner (orchestration/lakehouse/card_scan.py) deliberately has its own,
looser detector: a number this one misses is what the scanner exists to catch.

How the detector reads text:

1. Unicode NFKC, then every decimal digit of any script becomes its ASCII digit: full-width,
   Arabic-Indic, Devanagari, superscript or circled digits, no-break and thin spaces all count.
2. Identifiers are set aside: ISO dates and times, UUIDs (a random one often holds 8-4-4 digit-only
   groups) and hex ids of 32, 40 or 64 characters (a 32-character one holds a 13-digit run now and then).
3. A *chain* is a run of digit groups split by separators: runs of at most ``MAX_SEPARATOR``
   characters that are neither letters nor digits (space, dash, dot, slash, underscore, newline,
   zero-width space, ...). A letter ends a chain, but letters may touch the digits; so does a "+",
   which starts a phone number ("+49 30 12345678 / +49 30 87654321" holds a Luhn-valid 16 digits),
   and a list's comma (", " or '", "').
4. Every stretch of whole groups of a chain holding 13-19 digits is a candidate; it is a card number
   when it passes Luhn and lies in an issuer (IIN) range. Whole groups only: a card is never typed
   with a digit of something else glued to it, while sliding over every digit would find a Luhn-valid
   number in most long numeric texts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import unicodedata

from orchestration.contract.vocabulary import TEST_CARD_NUMBERS  # noqa: F401  (the scanner's allowlist)

MIN_DIGITS, MAX_DIGITS = 13, 19
MAX_SEPARATOR = 4  # "4539 - 1488", "4539 / 1488", "4539...1488"; longer gaps are prose between numbers
# No shorter value can hold a card number: callers skip those before any regular expression.
MIN_CARD_CHARS = MIN_DIGITS

# Supersets of the candidates, cheap enough for a vectorised pre-filter (pyarrow and DuckDB use RE2:
# no look-around, no back-references). RE2 runs ASCII classes far faster than Unicode ones, so
# the ASCII pattern (13 digits, each at most MAX_SEPARATOR non-alphanumeric characters from the
# next; a non-ASCII character counts as a separator) goes over every value. Only a value holding a
# character that may become a digit or vanish under NFKC (one outside ASCII, letters, marks,
# punctuation, symbols and spaces: other scripts' digits, zero-width characters) also needs the
# Unicode one, 13 numeric characters of any script. NFKC never makes a letter a digit, so whatever
# the detector finds passes one of them.
CANDIDATE_PREFILTER = r"[0-9](?:[^a-zA-Z0-9]{0,4}[0-9]){12}"
NEEDS_UNICODE_PREFILTER = r"[^\x00-\x7F\pL\pM\pP\pS\pZ]"
CANDIDATE_PREFILTER_UNICODE = r"(?:\pN\PN*){13}"

# A separator character; a comma followed by a space or a quote (or a quote by a comma) separates
# the items of a list ("sizes": ["36", "37", "38", ...]), never the digits of one number.
_SEPARATOR = r"""(?:(?!,[\s"']|["'],)(?:[^\w+]|_))"""
_CHAIN = re.compile(r"[0-9]+(?:%s{1,%d}[0-9]+)*" % (_SEPARATOR, MAX_SEPARATOR))
_GROUP = re.compile(r"[0-9]+")
# Identifiers set aside before the search: ISO dates and times ("2026-10-12 22:49:51.710" is 17
# digits), UUIDs, and hex digests or ids of 32, 40 or 64 characters (MD5, UUIDs without dashes as
# MLflow's run ids, SHA-1, SHA-256) with at least one letter.
ISO_DATETIME = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]+)?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?"
)
_IDENTIFIER = re.compile(
    r"(?<![0-9A-Za-z])(?:" + ISO_DATETIME + "|"
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|(?=[0-9]*[a-fA-F])(?:[0-9a-fA-F]{64}|[0-9a-fA-F]{40}|[0-9a-fA-F]{32}))(?![0-9A-Za-z])"
)

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


# Every decimal digit of any script (Unicode category Nd, all below U+20000) to its ASCII digit.
_DIGITS = {cp: str(unicodedata.decimal(chr(cp))) for cp in range(0x80, 0x20000) if chr(cp).isdecimal()}


def normalize(text: str) -> str:
    """NFKC, then every decimal digit made ASCII (NFKC leaves Arabic-Indic or Devanagari digits alone)."""
    return text if text.isascii() else unicodedata.normalize("NFKC", text).translate(_DIGITS)


def _normalize_with_origin(text: str) -> tuple[str, list[int]]:
    """``normalize`` character by character, with the index in ``text`` each character came from."""
    out, origin = [], []
    for i, ch in enumerate(text):
        for n in normalize(ch):
            out.append(n)
            origin.append(i)
    return "".join(out), origin


def _card_spans(text: str, allowlist: frozenset[str] = frozenset()) -> list[tuple[int, int, str]]:
    """(start, end, digits) of every card number in ``text``, in the original text's positions."""
    norm = normalize(text)
    spans = _normalized_spans(norm, allowlist)
    if spans and norm is not text:  # rare: map back to the original characters
        norm, origin = _normalize_with_origin(text)
        spans = [(origin[s], origin[e - 1] + 1, d) for s, e, d in _normalized_spans(norm, allowlist)]
    return spans


def _normalized_spans(norm: str, allowlist: frozenset[str]) -> list[tuple[int, int, str]]:
    if _IDENTIFIER.search(norm):
        norm = _IDENTIFIER.sub(lambda m: "u" * len(m.group()), norm)
    spans = []
    for chain in _CHAIN.finditer(norm):
        if chain.end() - chain.start() < MIN_DIGITS:
            continue
        groups = [(g.start(), g.end(), g.group()) for g in _GROUP.finditer(chain.group())]
        i = 0
        while i < len(groups):
            hit = _card_at(groups, i, allowlist)
            if hit is None:
                i += 1
                continue
            j, digits = hit
            spans.append((chain.start() + groups[i][0], chain.start() + groups[j][1], digits))
            i = j + 1
    return spans


def _card_at(groups: list[tuple[int, int, str]], i: int, allowlist: frozenset[str]) -> tuple[int, str] | None:
    """The longest card number made of groups i..j, as (j, digits)."""
    digits, best = "", None
    for j in range(i, len(groups)):
        digits += groups[j][2]
        if len(digits) > MAX_DIGITS:
            break
        if len(digits) >= MIN_DIGITS and is_card_number(digits) and digits not in allowlist:
            best = (j, digits)
    return best


def find_card_numbers(text: str | None, allowlist: frozenset[str] = frozenset()) -> list[str]:
    """Card numbers (digits only) found in ``text``: Luhn-valid and within an issuer range."""
    if not text or len(text) < MIN_CARD_CHARS:
        return []
    return [digits for _, _, digits in _card_spans(text, allowlist)]


def mask_card_numbers(text: str | None) -> tuple[str | None, int]:
    """Replace every card number in ``text`` with ``[card ****1234]``; returns (text, how many).

    Only the card numbers change: the rest of the text keeps its own characters."""
    if not text or len(text) < MIN_CARD_CHARS:
        return text, 0
    spans = _card_spans(text)
    for start, end, digits in reversed(spans):
        text = f"{text[:start]}[card ****{digits[-4:]}]{text[end:]}"
    return text, len(spans)


def keyed_token(value: str, key: str) -> str:
    """HMAC-SHA256 of ``value`` under ``key``: stable for joins, useless without the key.

    Base32 rather than hex on purpose: hex digests hold long digit runs that a card-number scanner
    would flag now and then; base32 only has the digits 2-7, never 13 in a row in practice.
    """
    digest = hmac.new(key.encode(), value.encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode().rstrip("=").lower()


def normalize_email(email: str) -> str:
    return email.strip().lower()
