"""Planted dirty rows: how many, the shared ways of planting them, and their record.

The curated layer's quality rules (orchestration/contract/quality_rules.py) must catch exactly the
rows planted here, so every planted row is recorded with its rule in truth/dirty_rows.parquet and
the tests compare the two. Each kind is planted where its table's rows are built:

* customers.sign_up: ``malformed_email``, ``null_required_field`` (email), as extra customers who never buy;
* orders._number_orders: ``orphan_customer``, ``null_required_field`` (customer_id, ordered_at) as
  extra orders; ``non_positive_quantity``, ``orphan_product``, ``null_required_field`` (product_id)
  as extra lines on real orders;
* plans (order notes, ticket bodies): ``card_number_in_text``, with ``paste_card_numbers``;
* web_events: ``duplicate_event``, a client retry of a real event.

The business rules of quality_rules.py (totals, amounts, stock, fx) have no planted rows: the
engine's clean rows keep them by construction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from demo_shop.cards import card_number, format_card
from orchestration.contract import quality_rules

if TYPE_CHECKING:
    from demo_shop.engine import Output, Run

DIRTY_SCHEMA = pa.schema(
    [
        ("table", pa.string()),
        ("key", pa.string()),
        ("rule", pa.string()),
        ("action", pa.string()),
        ("column", pa.string()),
    ]
)


def dirty_count(rate: float, clean_rows: int) -> int:
    """Dirty rows of one kind for ``clean_rows`` clean ones: at least one in any table of 100 rows,
    so that even a small shop exercises every rule."""
    if rate <= 0 or clean_rows <= 0:
        return 0
    k = int(round(rate * clean_rows))
    if clean_rows >= 100:
        k = max(k, 1)
    return min(k, clean_rows)


def pick_rows(rng: np.random.Generator, rate: float, n: int) -> np.ndarray:
    """``dirty_count(rate, n)`` distinct positions out of n, in drawing order."""
    k = dirty_count(rate, n)
    return rng.choice(n, size=k, replace=False) if k else np.zeros(0, np.int64)


def paste_card_numbers(run: Run, texts: np.ndarray, customer_ids: np.ndarray, templates: tuple[str, ...]) -> np.ndarray:
    """Shoppers paste their own card number, typed as they like, into free text; ``texts`` is
    changed in place. A template has ``{card}`` and may keep the original text as ``{body}``.
    Returns the positions changed."""
    rng, cu = run.rng["dirty"], run.state.customers
    pick = pick_rows(rng, run.dirty_rate, len(texts))
    for i in pick:
        pan = card_number(cu["card"][np.searchsorted(cu["customer_id"], customer_ids[i])])
        template = templates[rng.integers(len(templates))]
        texts[i] = template.format(body=texts[i], card=format_card(pan, int(rng.integers(3))))
    return pick


def dirty_table(out: Output) -> pa.Table:
    """The run's planted rows as truth/dirty_rows.parquet rows, with the action their rule takes."""
    parts = []
    for d in out.dirty:
        n = len(d["key"])
        parts.append(
            pa.table(
                {
                    "table": pa.array([d["table"]] * n, pa.string()),
                    "key": pa.array(d["key"].astype(np.int64)).cast(pa.string()),
                    "rule": pa.array([d["rule"]] * n, pa.string()),
                    "action": pa.array([quality_rules.RULES[d["rule"]][1]] * n, pa.string()),
                    "column": pa.array([d["column"]] * n, pa.string()),
                },
                schema=DIRTY_SCHEMA,
            )
        )
    return pa.concat_tables(parts) if parts else DIRTY_SCHEMA.empty_table()
