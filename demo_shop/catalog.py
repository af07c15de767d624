"""The catalog: categories, products and their stock.

Products are created once, before the first day, with list prices in USD and a popularity weight
that decides how often they sell; inventory then follows the sales day by day, so stock levels,
restocks and their updated_at are consequences of the orders rather than independent noise.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from demo_shop.clock import DAY_MS, HOUR_MS
from demo_shop.columns import decimals, ints, source_table, strings, timestamps
from demo_shop.frames import flen
from demo_shop.reference_data import CATEGORIES, C
from demo_shop.word_lists import BADGES, BRANDS, COLOURS, MATERIALS, NAME_EMOJI, PRODUCT_WORDS

if TYPE_CHECKING:
    from demo_shop.engine import Run


def create_catalog(run: Run) -> None:
    """The categories and products, once, before the first day: the catalog is fixed afterwards.
    A shop of fewer categories (``config.categories``) sells the first ones only."""
    st, rng = run.state, run.rng["catalog"]
    origin_ms = st.meta["origin_day"] * DAY_MS
    customers = st.meta["config"]["customers"]
    k = run.config.categories
    cat_ms = origin_ms - 1500 * DAY_MS + rng.integers(0, DAY_MS, size=C)
    run.out.insert(
        "categories",
        source_table(
            "categories",
            {
                "category_id": pa.array(np.arange(1, k + 1, dtype=np.int32)),
                "name": strings([c.name for c in CATEGORIES[:k]]),
                "department": strings([c.department for c in CATEGORIES[:k]]),
                "updated_at": timestamps(cat_ms[:k]),
            },
        ),
    )
    per_cat = np.clip(np.round((10 + customers / 2500) * rng.uniform(0.8, 1.2, C)), 10, 50).astype(np.int64)
    per_cat[k:] = 0
    cat = np.repeat(np.arange(C), per_cat)
    n = len(cat)
    price_usd = np.array([CATEGORIES[c].price_usd for c in cat]) * np.exp(
        rng.standard_normal(n) * np.array([CATEGORIES[c].price_sigma for c in cat])
    )
    price = np.maximum(np.ceil(price_usd) * 100 - 1, 99).astype(np.int64)  # x.99 price points
    cost = np.round(price * rng.uniform(0.40, 0.70, n)).astype(np.int64)
    weight = np.exp(rng.standard_normal(n))
    active = rng.random(n) < 0.95
    for c in range(C):  # every category keeps sellable products
        idx = np.flatnonzero(cat == c)
        active[idx[:3]] = True
    weight = np.where(active, weight, 0.0)
    created = origin_ms - rng.integers(60 * DAY_MS, 1500 * DAY_MS, size=n)
    ids = st.take_ids("products", n)
    names, skus, attrs = [], [], []
    for i in range(n):
        spec = CATEGORIES[cat[i]]
        nouns, adjs = (s.split(", ") for s in PRODUCT_WORDS[spec.code])
        brand = BRANDS[rng.integers(len(BRANDS))]
        name = f"{brand} {adjs[rng.integers(len(adjs))]} {nouns[rng.integers(len(nouns))]}"
        if rng.random() < 0.06:
            name += NAME_EMOJI[rng.integers(len(NAME_EMOJI))]
        names.append(name)
        skus.append(f"{spec.code}-{ids[i]:06d}")
        a = {"brand": brand, "colour": COLOURS[rng.integers(len(COLOURS))]}
        if rng.random() < 0.6:
            a["material"] = MATERIALS[rng.integers(len(MATERIALS))]
        if spec.code in ("APP", "SHO"):
            a["sizes"] = ["XS", "S", "M", "L", "XL"] if spec.code == "APP" else [str(s) for s in range(36, 47)]
        a["rating"] = round(float(rng.uniform(3.2, 5.0)), 1)
        if rng.random() < 0.15:
            a["badge"] = BADGES[rng.integers(len(BADGES))]
        attrs.append(json.dumps(a, ensure_ascii=False) if rng.random() < 0.97 else None)
    st.products = {
        "product_id": ids,
        "category": cat.astype(np.int64),
        "price_cents": price,
        "cost_cents": cost,
        "weight": weight,
        "active": active,
        "created_ms": created.astype(np.int64),
    }
    run.out.insert(
        "products",
        source_table(
            "products",
            {
                "product_id": ints(ids),
                "sku": strings(skus),
                "name": strings(names),
                "category_id": ints(cat + 1, pa.int32()),
                "list_price_usd": decimals(price),
                "unit_cost_usd": decimals(cost),
                "is_active": pa.array(active),
                "attributes": strings(attrs),
                "created_at": timestamps(created),
                "updated_at": timestamps(created),
            },
        ),
    )


def product_picker(products: dict) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """pick(categories, u): a product of each category, by popularity (weight), for uniform u;
    one searchsorted over all categories at once instead of a draw per category."""
    p = products
    cat, w = p["category"], p["weight"]
    key = np.empty(len(cat))
    for c in range(C):
        idx = np.flatnonzero(cat == c)
        if not len(idx):  # a category the shop does not sell: never asked for
            continue
        cw = np.cumsum(w[idx])
        cw = cw / cw[-1]
        cw[-1] = 1.0
        key[idx] = c + cw
    order = np.argsort(key, kind="stable")
    skey = key[order]

    def pick(categories: np.ndarray, u: np.ndarray) -> np.ndarray:
        j = np.searchsorted(skey, categories + (1.0 - u), side="left")
        return order[np.minimum(j, len(skey) - 1)]

    return pick


def update_inventory(run: Run) -> None:
    """Stock per product: every sale decrements it, a restock arrives in the morning whenever
    the day would otherwise go below the reorder point. Never negative."""
    st, rng, ln, o = run.state, run.rng["inventory"], run.lines, run.o
    P = flen(st.products)
    day = o["day"][ln["order"]] if len(ln["order"]) else np.zeros(0, np.int64)
    sales = np.zeros((run.n, P), dtype=np.int64)
    np.add.at(sales, (day, ln["prod"]), ln["qty"])
    last_sale = np.full(P, -1, dtype=np.int64)
    np.maximum.at(last_sale, ln["prod"], o["t"][ln["order"]])
    inv = st.inventory
    first = not flen(inv)
    if first:
        daily = sales.sum(0) / run.n
        rp = np.maximum(5, np.ceil(10 * daily)).astype(np.int64)
        rq = np.maximum(20, np.ceil(30 * daily)).astype(np.int64)
        inv = {
            "product_id": st.products["product_id"].copy(),
            "qoh": rp + (rng.random(P) * rq).astype(np.int64),
            "reorder_point": rp,
            "restock_qty": rq,
            "restocked_ms": np.full(P, -1, np.int64),
            "updated_ms": st.products["created_ms"].copy(),
        }
    before = {k: v.copy() for k, v in inv.items()}
    qoh, restocked = inv["qoh"].copy(), inv["restocked_ms"].copy()
    rp, rq = inv["reorder_point"], inv["restock_qty"]
    morning = rng.integers(5 * HOUR_MS, 7 * HOUR_MS, size=(run.n, P))
    for d in range(run.n):
        need = (qoh < rp) | (qoh < sales[d])
        if need.any():
            qoh = qoh + np.where(need, np.maximum(rq, sales[d] - qoh + rp), 0)
            restocked = np.where(need, run.P0 + d * DAY_MS + morning[d], restocked)
        qoh = qoh - sales[d]
    inv["qoh"], inv["restocked_ms"] = qoh, restocked
    inv["updated_ms"] = np.maximum.reduce([inv["updated_ms"], restocked, last_sale])
    st.inventory = inv

    def rows(idx: np.ndarray) -> pa.Table:
        return source_table(
            "inventory",
            {
                "product_id": ints(inv["product_id"][idx]),
                "quantity_on_hand": ints(inv["qoh"][idx], pa.int32()),
                "reorder_point": ints(inv["reorder_point"][idx], pa.int32()),
                "last_restocked_at": timestamps(inv["restocked_ms"][idx], inv["restocked_ms"][idx] >= 0),
                "updated_at": timestamps(inv["updated_ms"][idx]),
            },
        )

    if first:
        run.out.insert("inventory", rows(np.arange(P)))
    else:
        changed = np.flatnonzero((inv["qoh"] != before["qoh"]) | (inv["updated_ms"] != before["updated_ms"]))
        if len(changed):
            run.out.update(
                "inventory", rows(changed).select(["product_id", "quantity_on_hand", "last_restocked_at", "updated_at"])
            )
