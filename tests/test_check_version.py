"""The check ledger's rules version moves with the code that decides card-scan and pandera checks."""

import ast
import hashlib
import inspect

from orchestration.defs.checks import pandera_batches
from orchestration.lakehouse import card_scan, ledger, pii

# The digest of the rules' code (comments and docstrings aside) at each CHECK_RULES_VERSION. When a
# rule changes, bump orchestration.lakehouse.ledger.CHECK_RULES_VERSION and record the new digest here.
RULES = {2: "fca4c1c43e596634"}  # 2: the card test numbers moved to the contract (same values)


def without_docstrings(source: str) -> ast.Module:
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return tree


def code_digest(*modules) -> str:
    digest = hashlib.sha256()
    for module in modules:
        digest.update(ast.dump(without_docstrings(inspect.getsource(module))).encode())
    return digest.hexdigest()[:16]


def test_the_rules_version_was_bumped_when_the_rules_changed():
    assert RULES.get(ledger.CHECK_RULES_VERSION) == code_digest(card_scan, pii, pandera_batches), (
        "the card-scan or pandera rules changed: bump CHECK_RULES_VERSION in orchestration/lakehouse/ledger.py "
        "and record the new digest in tests/test_check_version.py"
    )


def test_comments_and_docstrings_do_not_count_but_code_does():
    source = 'def f(x):\n    """Doc."""\n    return x + 1  # why\n'
    same = "def f(x):\n    # another comment\n    return x + 1\n"
    changed = "def f(x):\n    return x + 2\n"
    assert ast.dump(without_docstrings(source)) == ast.dump(without_docstrings(same))
    assert ast.dump(without_docstrings(source)) != ast.dump(without_docstrings(changed))
