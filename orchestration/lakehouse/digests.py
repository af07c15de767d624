"""Digests the project stores (check versions, scanner versions, run keys), written in letters only.

The leak scanners (card_scan.py) read every stored text for runs of 13-19 digits, chaining through
short gaps of letters and punctuation, as people type card numbers ("4539ab1488..."). A hex digest
mixes digits and letters ("035089a4...1561") and can chain into a number that passes the Luhn check,
which the scanners then rightly report. The same bits written with the letters a-p instead of
0-9a-f can never look like a card number.
"""

import hashlib

_LETTERS = str.maketrans("0123456789abcdef", "abcdefghijklmnop")


def letters_digest(data: bytes | str, length: int = 16) -> str:
    """The first ``length`` hex digits of the SHA-256 of ``data``, each written as a letter a-p."""
    if isinstance(data, str):
        data = data.encode()
    return hashlib.sha256(data).hexdigest()[:length].translate(_LETTERS)
