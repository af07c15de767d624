"""The synthetic demo shop: determinism, consistency, planted dirty rows, truth, and simulation."""

from __future__ import annotations

import csv
import json
import re
import shutil
import sqlite3
import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from demo_shop import reference_data
from demo_shop.generate import COUNTRIES, CURRENCIES, ShopConfig, generate_shop
from demo_shop.simulate import simulate_shop
from orchestration.contract import quality_rules, schema, vocabulary
from orchestration.contract.database import SourceDatabase
from orchestration.lakehouse.pii import TEST_CARD_NUMBERS, find_card_numbers, is_card_number

SMALL = ShopConfig(customers=300, days=60, seed=11, dirty_rate=0.05)


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


def _generate(tmp: Path, config: ShopConfig = SMALL) -> tuple[Path, Path, dict]:
    tmp.mkdir(parents=True, exist_ok=True)
    db, truth = tmp / "shop.db", tmp / "truth"
    counts = generate_shop(config, _url(db), truth, progress=False)
    return db, truth, counts


def _rows(db: Path, table: str) -> list[tuple]:
    t = schema.table(table)
    con = sqlite3.connect(db)
    try:
        return con.execute(f'SELECT * FROM "{table}" ORDER BY {", ".join(t.primary_key)}').fetchall()
    finally:
        con.close()


def _query(db: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _dirty(truth: Path) -> list[dict]:
    return pq.read_table(truth / "dirty_rows.parquet").to_pylist()


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> tuple[Path, Path, dict]:
    return _generate(tmp_path_factory.mktemp("shop"))


# ---------------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"customers": 0}, "customers"),
        ({"customers": -5}, "customers"),
        ({"customers": 2.5}, "customers"),
        ({"days": 0}, "days"),
        ({"days": "30"}, "days"),
        ({"seed": -1}, "seed"),
        ({"dirty_rate": -0.01}, "dirty_rate"),
        ({"dirty_rate": 0.6}, "dirty_rate"),
        ({"dirty_rate": float("nan")}, "dirty_rate"),
        ({"end_date": "2026-10-31"}, "end_date"),
    ],
)
def test_bad_config_raises_value_error(tmp_path, kwargs, message):
    config = ShopConfig(**({"customers": 100, "days": 10, "seed": 1} | kwargs))
    with pytest.raises(ValueError, match=message):
        config.validate()
    with pytest.raises(ValueError, match=message):
        generate_shop(config, _url(tmp_path / "shop.db"), tmp_path / "truth", progress=False)
    assert not (tmp_path / "shop.db").exists(), "a bad config must fail before touching the database"


def test_simulate_rejects_bad_days_and_missing_state(tmp_path, shop):
    db, truth, _ = shop
    with pytest.raises(ValueError, match="days"):
        simulate_shop(0, _url(db), truth, progress=False)
    with pytest.raises(FileNotFoundError, match="generate"):
        simulate_shop(1, _url(db), tmp_path / "no-truth", progress=False)


# ---------------------------------------------------------------------------------------------
# determinism and sizes
# ---------------------------------------------------------------------------------------------


def test_same_seed_same_data_different_seed_different_data(tmp_path, shop):
    db_a, truth_a, counts_a = shop
    db_b, truth_b, counts_b = _generate(tmp_path / "b")
    db_c, _, _ = _generate(tmp_path / "c", ShopConfig(customers=300, days=60, seed=12, dirty_rate=0.05))
    assert counts_a == counts_b
    for t in schema.TABLES:
        assert _rows(db_a, t.name) == _rows(db_b, t.name), f"{t.name} differs for the same seed"
    for name in ("customers.parquet", "payments.parquet", "demand.parquet", "dirty_rows.parquet"):
        assert pq.read_table(truth_a / name).equals(pq.read_table(truth_b / name)), name
    assert _rows(db_a, "orders") != _rows(db_c, "orders")
    assert _rows(db_a, "customers") != _rows(db_c, "customers")


def test_row_counts_are_sane(shop):
    db, truth, counts = shop
    assert set(counts) == {t.name for t in schema.TABLES}
    for t in schema.TABLES:
        assert _query(db, f'SELECT COUNT(*) FROM "{t.name}"')[0][0] == counts[t.name], t.name
    clean_customers = counts["customers"] - sum(1 for d in _dirty(truth) if d["table"] == "customers")
    assert clean_customers == SMALL.customers
    assert counts["categories"] >= 8 and counts["products"] >= 100 and counts["inventory"] == counts["products"]
    assert counts["fx_rates"] == SMALL.days * len(CURRENCIES)
    assert 50 < counts["orders"] < 1000
    assert counts["order_items"] > counts["orders"]
    assert counts["payments"] >= 0.9 * (counts["orders"] - 30) and counts["shipments"] > 0.8 * (counts["orders"] - 30)
    assert counts["web_events"] > 20 * counts["orders"]
    assert counts["promotions"] > 0 and counts["support_tickets"] > 0
    dates = _query(db, "SELECT MIN(rate_date), MAX(rate_date), COUNT(DISTINCT rate_date) FROM fx_rates")[0]
    assert dates == ("2026-09-02", "2026-10-31", SMALL.days)
    first, last = _query(db, "SELECT MIN(ordered_at), MAX(ordered_at) FROM orders")[0]
    assert first >= "2026-09-02" and last <= "2026-10-31 23:59:59.999"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}", last), "timestamps carry milliseconds"
    info = json.loads((truth / "generation.json").read_text())
    assert info["counts"] == counts and info["churn"]["window_days"] == 90
    assert info["config"]["seed"] == SMALL.seed


def test_funnel_statuses_and_realism(tmp_path):
    db, truth, _ = _generate(tmp_path, ShopConfig(customers=3000, days=120, seed=5))
    planted = {int(d["key"]) for d in _dirty(truth) if d["table"] == "orders" and d["rule"] != "card_number_in_text"}
    sessions, purchases = _query(db, "SELECT COUNT(DISTINCT session_id), SUM(event_type = 'purchase') FROM web_events")[
        0
    ]
    assert 0.03 <= purchases / sessions <= 0.07, "session conversion should be a few percent"
    statuses = dict(_query(db, "SELECT status, COUNT(*) FROM orders GROUP BY 1"))
    assert statuses["delivered"] > 0.6 * sum(statuses.values())
    assert {"placed", "paid", "shipped", "cancelled", "returned"} <= set(statuses)
    # recent orders are still in flight, old ones are done
    old_open = _query(
        db, "SELECT order_id FROM orders WHERE status IN ('placed','paid','shipped') AND ordered_at < '2026-10-01'"
    )
    assert {r[0] for r in old_open} <= planted
    countries = _query(
        db, "SELECT COUNT(DISTINCT country), COUNT(DISTINCT currency) FROM customers JOIN orders USING (customer_id)"
    )[0]
    assert countries[0] >= 10 and countries[1] >= 8
    late = _query(db, "SELECT AVG(delivered_at > promised_at) FROM shipments WHERE delivered_at IS NOT NULL")[0][0]
    assert 0.03 < late < 0.3
    apparel, books = (
        _query(
            db,
            f"""SELECT 1.0 * COUNT(DISTINCT r.return_id) / COUNT(DISTINCT i.order_item_id)
        FROM order_items i JOIN products p USING (product_id) JOIN orders o USING (order_id)
        LEFT JOIN returns r USING (order_item_id) WHERE p.category_id = {c} AND o.status IN ('delivered','returned')""",
        )[0][0]
        for c in (3, 5)
    )
    assert apparel > 2 * books, "apparel is returned far more often than books"
    assert _query(db, "SELECT COUNT(*) FROM orders WHERE promo_code IS NOT NULL")[0][0] > 0
    emoji = _query(db, "SELECT COUNT(*) FROM products WHERE name || COALESCE(attributes, '') GLOB '*[🎁🔥🌿🎧🌱]*'")[0][
        0
    ]
    assert emoji > 0, "some products carry 4-byte UTF-8 characters"


# ---------------------------------------------------------------------------------------------
# consistency of the clean data
# ---------------------------------------------------------------------------------------------


def test_clean_orders_add_up(shop):
    _assert_clean_data_consistent(*shop[:2])


def _assert_clean_data_consistent(db: Path, truth: Path) -> None:
    dirty = {(d["table"], d["key"]) for d in _dirty(truth)}
    orders = {
        r[0]: r for r in _query(db, "SELECT order_id, subtotal, discount, shipping_fee, total, ordered_at FROM orders")
    }
    lines: dict[int, Decimal] = {}
    for item_id, order_id, qty, unit, disc in _query(
        db, "SELECT order_item_id, order_id, quantity, unit_price, line_discount FROM order_items"
    ):
        if ("order_items", str(item_id)) in dirty:
            continue
        assert qty > 0
        lines[order_id] = lines.get(order_id, Decimal(0)) + qty * Decimal(unit) - Decimal(disc)
    clean = [o for o in orders.values() if ("orders", str(o[0])) not in dirty or o[0] in lines]
    assert clean
    for order_id, subtotal, discount, fee, total, _ in clean:
        assert Decimal(total) == Decimal(subtotal) - Decimal(discount) + Decimal(fee), order_id
        assert Decimal(subtotal) == lines[order_id], f"order {order_id}: subtotal != sum of its clean lines"
        assert Decimal(discount) >= 0 and Decimal(total) >= 0
    for order_id, amount, _status in _query(db, "SELECT order_id, amount, status FROM payments"):
        assert Decimal(amount) == Decimal(orders[order_id][4]), "payment amount = order total"
    assert (
        _query(db, "SELECT COUNT(*) FROM payments p JOIN orders o USING (order_id) WHERE p.currency <> o.currency")[0][
            0
        ]
        == 0
    )
    # an exchange rate exists for every currency on every day it is used (orders: order date, payments: paid date)
    for table, column in (("orders", "ordered_at"), ("payments", "paid_at")):
        missing = _query(
            db,
            f"""SELECT COUNT(*) FROM {table} t WHERE t.{column} IS NOT NULL AND NOT EXISTS
            (SELECT 1 FROM fx_rates f WHERE f.currency = t.currency AND f.rate_date = date(t.{column}))""",
        )
        assert missing[0][0] == 0, table
    bad_ship = _query(
        db,
        "SELECT COUNT(*) FROM shipments s JOIN orders o USING (order_id) WHERE s.shipped_at < o.ordered_at "
        "OR s.delivered_at < s.shipped_at OR s.promised_at < s.shipped_at",
    )[0][0]
    assert bad_ship == 0
    over = _query(
        db,
        "SELECT COUNT(*) FROM returns r JOIN order_items i USING (order_item_id) WHERE r.quantity > "
        "i.quantity OR r.quantity < 1",
    )
    assert over[0][0] == 0
    assert (
        _query(db, "SELECT COUNT(*) FROM (SELECT order_item_id FROM returns GROUP BY 1 HAVING COUNT(*) > 1)")[0][0] == 0
    )
    assert _query(db, "SELECT MIN(quantity_on_hand) FROM inventory")[0][0] >= 0
    # statuses agree with the child rows
    assert (
        _query(
            db,
            "SELECT COUNT(*) FROM orders o WHERE status IN ('shipped','delivered') AND NOT EXISTS "
            "(SELECT 1 FROM shipments s WHERE s.order_id = o.order_id)",
        )[0][0]
        == 0
    )
    assert (
        _query(
            db,
            "SELECT COUNT(*) FROM orders o JOIN shipments s USING (order_id) WHERE o.status = 'delivered' AND "
            "s.delivered_at IS NULL",
        )[0][0]
        == 0
    )
    # every ordering customer browsed the site
    assert (
        _query(
            db,
            "SELECT COUNT(DISTINCT o.customer_id) FROM orders o JOIN customers c USING (customer_id) WHERE NOT EXISTS "
            "(SELECT 1 FROM web_events w WHERE w.customer_id = o.customer_id)",
        )[0][0]
        == 0
    )
    # converting sessions end with a purchase event at the order's time
    mism = _query(
        db,
        "SELECT COUNT(*) FROM web_events w JOIN orders o USING (order_id) WHERE w.event_type = 'purchase' AND "
        "w.occurred_at <> o.ordered_at",
    )
    assert mism[0][0] == 0


def test_local_prices_follow_fx_and_country(shop):
    db, _, _ = shop
    rows = _query(
        db,
        """SELECT i.unit_price, p.list_price_usd, f.usd_per_unit, o.currency FROM order_items i
        JOIN orders o USING (order_id) JOIN products p USING (product_id)
        JOIN fx_rates f ON f.rate_date = date(o.ordered_at) AND f.currency = o.currency""",
    )
    factors = {c.currency: set() for c in COUNTRIES}
    for unit, usd, rate, cur in rows:
        factors[cur].add(round(float(unit) * float(rate) / float(usd), 1))
    for cur, seen in factors.items():
        for f in seen:
            assert 0.8 <= f <= 1.3, f"{cur}: local price / USD price = {f}"
    usd = _query(db, "SELECT DISTINCT usd_per_unit FROM fx_rates WHERE currency = 'USD'")
    assert usd == [("1.00000000",)]


def test_card_numbers_are_luhn_valid_real_issuer_ranges(shop):
    db, _, _ = shop
    cards = [r[0] for r in _query(db, "SELECT card_number FROM payments WHERE method = 'card'")]
    assert cards
    for pan in cards:
        assert is_card_number(pan) and pan not in TEST_CARD_NUMBERS and pan[0] in "45"
    assert (
        _query(
            db,
            "SELECT COUNT(*) FROM payments WHERE method <> 'card' AND (card_number IS NOT NULL OR "
            "card_country IS NOT NULL)",
        )[0][0]
        == 0
    )


# ---------------------------------------------------------------------------------------------
# planted dirty rows
# ---------------------------------------------------------------------------------------------

EXPECTED_KINDS = {
    ("customers", "malformed_email", "email"),
    ("customers", "null_required_field", "email"),
    ("orders", "orphan_customer", "customer_id"),
    ("orders", "null_required_field", "customer_id"),
    ("orders", "null_required_field", "ordered_at"),
    ("orders", "card_number_in_text", "notes"),
    ("order_items", "non_positive_quantity", "quantity"),
    ("order_items", "orphan_product", "product_id"),
    ("order_items", "null_required_field", "product_id"),
    ("web_events", "duplicate_event", None),
    ("support_tickets", "card_number_in_text", "body"),
}


def _check_violation(db: Path, table: str, key: str, rule: str, column: str | None) -> None:
    pk = schema.table(table).primary_key[0]
    row = dict(zip(schema.table(table).column_names, _query(db, f'SELECT * FROM "{table}" WHERE {pk} = {int(key)}')[0]))
    if rule == "malformed_email":
        assert row["email"] and not re.match(vocabulary.EMAIL_PATTERN, row["email"]), row["email"]
    elif rule == "null_required_field":
        assert column in quality_rules.REQUIRED_FIELDS[table] and row[column] is None
    elif rule == "orphan_customer":
        assert row["customer_id"] is not None and not _query(
            db, f"SELECT 1 FROM customers WHERE customer_id = {row['customer_id']}"
        )
    elif rule == "orphan_product":
        assert row["product_id"] is not None and not _query(
            db, f"SELECT 1 FROM products WHERE product_id = {row['product_id']}"
        )
    elif rule == "non_positive_quantity":
        assert row["quantity"] <= 0
    elif rule == "duplicate_event":
        con = sqlite3.connect(db)
        earlier = con.execute(
            "SELECT COUNT(*) FROM web_events WHERE event_id < ? AND session_id = ? AND event_type = ? "
            "AND product_id IS ? AND occurred_at = ?",
            (row["event_id"], row["session_id"], row["event_type"], row["product_id"], row["occurred_at"]),
        ).fetchone()[0]
        con.close()
        assert earlier >= 1
    elif rule == "card_number_in_text":
        found = find_card_numbers(row[column])
        assert found and all(is_card_number(p) and p not in TEST_CARD_NUMBERS for p in found), row[column]
    else:  # pragma: no cover
        raise AssertionError(f"unknown rule {rule}")


def test_every_dirty_kind_is_planted_recorded_and_really_violates(shop):
    db, truth, _ = shop
    dirty = _dirty(truth)
    kinds = {(d["table"], d["rule"], d["column"]) for d in dirty}
    assert kinds == EXPECTED_KINDS
    keys = [(d["table"], d["key"]) for d in dirty]
    assert len(keys) == len(set(keys)), "never two rules on one row"
    for d in dirty:
        rule_tables, action, _ = quality_rules.RULES[d["rule"]]
        assert d["table"] in rule_tables and d["action"] == action
        _check_violation(db, d["table"], d["key"], d["rule"], d["column"])


def test_clean_rows_do_not_violate_any_rule(shop):
    db, truth, _ = shop
    dirty = {(d["table"], d["key"]) for d in _dirty(truth)}
    clean = lambda table, key: (table, str(key)) not in dirty  # noqa: E731
    for cid, email in _query(db, "SELECT customer_id, email FROM customers"):
        if clean("customers", cid):
            assert email and re.match(vocabulary.EMAIL_PATTERN, email), email
    customers = {r[0] for r in _query(db, "SELECT customer_id FROM customers")}
    for oid, cid, ts in _query(db, "SELECT order_id, customer_id, ordered_at FROM orders"):
        if clean("orders", oid):
            assert cid in customers and ts is not None
    products = {r[0] for r in _query(db, "SELECT product_id FROM products")}
    for iid, pid, qty in _query(db, "SELECT order_item_id, product_id, quantity FROM order_items"):
        if clean("order_items", iid):
            assert pid in products and qty > 0
    dupes = _query(
        db,
        """SELECT MAX(event_id) FROM web_events GROUP BY session_id, event_type, product_id, occurred_at
        HAVING COUNT(*) > 1""",
    )
    assert {("web_events", str(r[0])) for r in dupes} <= dirty
    # no accidental card numbers anywhere in free text (names, notes, bodies, JSON, ids)
    for t in schema.TABLES:
        for c in t.columns:
            if not c.is_text or c.card_number:
                continue
            pk = t.primary_key[0]
            for key, value in _query(db, f'SELECT {pk}, "{c.name}" FROM "{t.name}" WHERE "{c.name}" IS NOT NULL'):
                if find_card_numbers(value):
                    assert (t.name, str(key)) in dirty, f"{t.name}.{c.name} of {key} holds a card number: {value!r}"


def test_default_rate_plants_at_least_one_per_kind_in_tables_of_100_rows(tmp_path):
    db, truth, counts = _generate(tmp_path, ShopConfig(customers=300, days=60, seed=11))
    per_kind: dict[tuple, int] = {}
    for d in _dirty(truth):
        per_kind[(d["table"], d["rule"], d["column"])] = per_kind.get((d["table"], d["rule"], d["column"]), 0) + 1
    for table, rule, column in EXPECTED_KINDS:
        if counts[table] >= 110:
            assert per_kind.get((table, rule, column), 0) >= 1, (table, rule, column)
    assert per_kind[("web_events", "duplicate_event", None)] == round(
        0.005 * (counts["web_events"] - per_kind[("web_events", "duplicate_event", None)])
    )
    clean = ShopConfig(customers=300, days=60, seed=11, dirty_rate=0.0)
    _, truth0, _ = _generate(tmp_path / "clean", clean)
    assert _dirty(truth0) == []


# ---------------------------------------------------------------------------------------------
# truth
# ---------------------------------------------------------------------------------------------


def test_truth_covers_every_customer_and_payment(shop):
    db, truth, _ = shop
    cust = pq.read_table(truth / "customers.parquet").to_pylist()
    assert sorted(c["customer_id"] for c in cust) == sorted(
        r[0] for r in _query(db, "SELECT customer_id FROM customers")
    )
    info = json.loads((truth / "generation.json").read_text())
    cutoff = date.fromisoformat(info["churn"]["cutoff_date"])
    assert info["churn"]["window_end"] == "2026-10-31"
    for c in cust:
        assert c["purchase_rate_per_day"] >= 0 and c["churn_hazard_per_day"] > 0
        if c["signed_up_at"].date() <= cutoff:
            assert 0.0 <= c["churn_probability"] <= 1.0
        else:
            assert c["churn_probability"] is None
        if c["churned_at"] is not None:
            assert c["churned_at"] > c["signed_up_at"] and c["churned_at"].date() <= date(2026, 10, 31)
    pay = {p["payment_id"]: p for p in pq.read_table(truth / "payments.parquet").to_pylist()}
    assert sorted(pay) == sorted(r[0] for r in _query(db, "SELECT payment_id FROM payments"))
    assert all(0.0 < p["fraud_probability"] < 1.0 for p in pay.values())
    for pid, status, paid, cb in _query(db, "SELECT payment_id, status, paid_at, chargeback_at FROM payments"):
        if status == "chargeback":
            assert pay[pid]["is_fraud"] and cb is not None and cb > paid
        else:
            assert cb is None
    demand = pq.read_table(truth / "demand.parquet")
    assert demand.num_rows == SMALL.days * _query(db, "SELECT COUNT(*) FROM categories")[0][0]
    assert set(demand.column_names) == {"date", "category_id", "expected_units", "expected_orders"}
    sources = _query(db, "SELECT COUNT(*) FROM orders")[0][0]
    assert 0.5 * sources < sum(demand.column("expected_units").to_pylist()) < 5 * sources


def test_truth_model_is_calibrated(tmp_path):
    """Churn probabilities match observed no-purchase rates, expected demand matches realised."""
    db, truth, _ = _generate(tmp_path, ShopConfig(customers=4000, days=200, seed=3))
    info = json.loads((truth / "generation.json").read_text())
    buyers = {
        r[0]
        for r in _query(
            db, f"SELECT DISTINCT customer_id FROM orders WHERE ordered_at >= '{info['churn']['window_start']}'"
        )
    }
    probs = [
        (c["churn_probability"], c["customer_id"] not in buyers)
        for c in pq.read_table(truth / "customers.parquet").to_pylist()
        if c["churn_probability"] is not None
    ]
    expected = sum(p for p, _ in probs)
    observed = sum(o for _, o in probs)
    sd = sum(p * (1 - p) for p, _ in probs) ** 0.5
    assert abs(expected - observed) < 4 * sd + 1, (expected, observed, sd)
    units = _query(
        db,
        "SELECT SUM(i.quantity) FROM order_items i JOIN orders o USING (order_id) JOIN customers c USING (customer_id) "
        "JOIN products p USING (product_id) WHERE i.quantity > 0",
    )[0][0]
    exp_units = sum(pq.read_table(truth / "demand.parquet").column("expected_units").to_pylist())
    assert abs(units - exp_units) < 0.05 * exp_units
    pay = pq.read_table(truth / "payments.parquet").to_pylist()
    rate = sum(p["is_fraud"] for p in pay) / len(pay)
    assert 0.004 < rate < 0.03


# ---------------------------------------------------------------------------------------------
# simulation
# ---------------------------------------------------------------------------------------------


def _snapshot(db: Path) -> dict[str, dict]:
    out = {}
    for t in schema.TABLES:
        n = len(t.primary_key)
        out[t.name] = {r[:n]: r for r in _rows(db, t.name)}
    return out


def test_simulate_inserts_updates_and_deletes(tmp_path, shop):
    src_db, src_truth, _ = shop
    db, truth = tmp_path / "shop.db", tmp_path / "truth"
    shutil.copy(src_db, db)
    shutil.copytree(src_truth, truth)
    before = _snapshot(db)
    old_max = max(r[-1] for t in before.values() for r in t.values())
    result = simulate_shop(40, _url(db), truth, progress=False)
    after = _snapshot(db)
    assert result["start_date"] == "2026-11-01" and result["end_date"] == "2026-12-10"
    for t in (
        "customers",
        "orders",
        "order_items",
        "payments",
        "shipments",
        "web_events",
        "fx_rates",
        "support_tickets",
    ):
        assert result["inserted"][t] > 0, t
    for t in ("orders", "payments", "shipments", "inventory"):
        assert result["updated"][t] > 0, t
    assert result["deleted"]["customers"] >= 1 and result["deleted"]["web_events"] > 0
    assert result["inserted"]["fx_rates"] == 40 * len(CURRENCIES)
    # every table: counts match, and all inserted / changed rows carry updated_at after the old last day
    for t in schema.TABLES:
        b, a = before[t.name], after[t.name]
        new_keys = a.keys() - b.keys()
        gone = b.keys() - a.keys()
        changed = [k for k in a.keys() & b.keys() if a[k] != b[k]]
        assert len(new_keys) == result["inserted"][t.name], t.name
        assert len(gone) == result["deleted"][t.name], t.name
        assert len(changed) == result["updated"][t.name], t.name
        for k in list(new_keys) + changed:
            assert a[k][-1] > old_max and a[k][-1] <= "2026-12-10 23:59:59.999", (t.name, k, a[k][-1])
    # order statuses only move forward
    rank = {"placed": 0, "paid": 1, "shipped": 2, "delivered": 3, "cancelled": 3, "returned": 4}
    for k in after["orders"].keys() & before["orders"].keys():
        assert rank[after["orders"][k][3]] >= rank[before["orders"][k][3]]
    # GDPR: nothing of an erased customer is left
    erased = [k[0] for k in before["customers"].keys() - after["customers"].keys()]
    for table, column in (("orders", "customer_id"), ("support_tickets", "customer_id"), ("web_events", "customer_id")):
        assert not _query(db, f"SELECT 1 FROM {table} WHERE {column} IN ({','.join(map(str, erased))})")
    assert not _query(
        db,
        "SELECT 1 FROM order_items i LEFT JOIN orders o USING (order_id) LEFT JOIN customers c USING (customer_id) "
        "WHERE o.order_id IS NULL AND i.order_id IN (SELECT order_id FROM orders)",
    )
    # abandoned carts older than 30 days are gone
    stale = _query(
        db,
        """SELECT COUNT(*) FROM (SELECT session_id FROM web_events GROUP BY session_id
        HAVING SUM(event_type = 'add_to_cart') > 0 AND SUM(event_type = 'purchase') = 0
           AND MAX(occurred_at) < '2026-11-10 23:59:59.999')""",
    )
    assert stale[0][0] == 0
    # the clean data still adds up, and truth stays consistent with the source
    _assert_clean_data_consistent(db, truth)
    customers = pq.read_table(truth / "customers.parquet").column("customer_id").to_pylist()
    assert sorted(customers) == sorted(k[0] for k in after["customers"])
    pay = pq.read_table(truth / "payments.parquet").column("payment_id").to_pylist()
    assert sorted(pay) == sorted(k[0] for k in after["payments"])
    for d in _dirty(truth):
        assert (int(d["key"]),) in after[d["table"]], f"dirty row {d} not in the source"
        _check_violation(db, d["table"], d["key"], d["rule"], d["column"])
    demand = pq.read_table(truth / "demand.parquet")
    assert demand.num_rows == (SMALL.days + 40) * len(after["categories"])
    info = json.loads((truth / "generation.json").read_text())
    assert info["end_date"] == "2026-12-10" and info["churn"]["cutoff_date"] == "2026-09-11"
    assert [r["kind"] for r in info["runs"]] == ["generate", "simulate"]
    assert info["counts"] == {t: len(after[t]) for t in after}
    # and it can go on, deterministically
    copy_db, copy_truth = tmp_path / "copy.db", tmp_path / "copy_truth"
    shutil.copy(db, copy_db)
    shutil.copytree(truth, copy_truth)
    r1 = simulate_shop(3, _url(db), truth, progress=False)
    r2 = simulate_shop(3, _url(copy_db), copy_truth, progress=False)
    assert {k: v for k, v in r1.items() if k != "seconds"} == {k: v for k, v in r2.items() if k != "seconds"}
    assert _snapshot(db) == _snapshot(copy_db)


def test_simulate_refuses_a_truth_dir_of_another_shop(tmp_path, shop):
    db, truth, _ = _generate(tmp_path / "other", ShopConfig(customers=120, days=10, seed=2, end_date=date(2026, 6, 30)))
    with pytest.raises(ValueError, match="different shops"):
        simulate_shop(1, _url(shop[0]), truth, progress=False)


def test_the_shop_sells_in_the_contracts_countries():
    path = Path(__file__).resolve().parent.parent / "orchestration" / "contract" / "seeds" / "countries.csv"
    with path.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["country", "country_name", "region", "currency"]
    # the seed is the list: the shop's countries are its rows, in its order, plus the shop's own tuning
    assert [(r["country"], r["country_name"], r["region"], r["currency"]) for r in rows] == [
        (c.country, c.country_name, c.region, c.currency) for c in COUNTRIES
    ]
    assert len(COUNTRIES) == 13 and all(c.weight > 0 and c.price_factor > 0 for c in COUNTRIES)
    assert {c.region for c in COUNTRIES} == {"north_america", "europe", "asia_pacific", "latin_america"}
    assert {c.currency for c in COUNTRIES} == set(CURRENCIES) == set(vocabulary.CURRENCIES)


def test_the_shops_values_are_the_contracts_vocabularies(shop):
    # what the source contract (and so dbt and pandera) accepts is what the shop writes
    db, _, _ = shop
    for (table, column), name in vocabulary.COLUMN_VOCABULARIES.items():
        values = {r[0] for r in _query(db, f'SELECT DISTINCT "{column}" FROM "{table}"')}
        assert len(values) >= 2 and values <= set(vocabulary.VOCABULARIES[name]), (table, column, values)
    assert {r[0] for r in _query(db, "SELECT DISTINCT currency FROM orders")} == set(vocabulary.CURRENCIES)
    countries = {r[0] for r in _query(db, "SELECT DISTINCT shipping_country FROM orders")}
    assert countries == {c.country for c in vocabulary.COUNTRIES}


def test_the_shops_code_lists_are_the_contracts():
    assert (reference_data.ORDER_STATUSES, reference_data.METHODS, reference_data.WEB_CHANNELS) == (
        vocabulary.ORDER_STATUSES,
        vocabulary.PAYMENT_METHODS,
        vocabulary.WEB_CHANNELS,
    )


# ---------------------------------------------------------------------------------------------
# MariaDB
# ---------------------------------------------------------------------------------------------


@pytest.mark.mariadb
def test_mariadb_shop_matches_sqlite(tmp_path):
    pymysql = pytest.importorskip("pymysql")
    name = f"shoplake_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = pymysql.connect(host="127.0.0.1", port=3306, user="root", connect_timeout=5, autocommit=True)
    except pymysql.err.MySQLError as exc:
        pytest.skip(f"MariaDB on 127.0.0.1:3306 is not reachable: {exc}")
    config = ShopConfig(customers=150, days=20, seed=21, dirty_rate=0.05)
    try:
        admin.cursor().execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        url = f"mysql://root@127.0.0.1:3306/{name}"
        counts = generate_shop(config, url, tmp_path / "truth_mysql", progress=False)
        lite_counts = generate_shop(config, _url(tmp_path / "shop.db"), tmp_path / "truth_sqlite", progress=False)
        assert counts == lite_counts
        con = SourceDatabase(url).connect()
        try:
            cur = con.cursor()
            for t in schema.TABLES:
                cur.execute(f"SELECT COUNT(*) FROM `{t.name}`")
                assert cur.fetchone()[0] == counts[t.name], t.name
            cur.execute("SELECT SUM(total), MAX(updated_at) FROM orders")
            total, newest = cur.fetchone()
            lite_total, lite_newest = _query(
                tmp_path / "shop.db", "SELECT SUM(CAST(total AS REAL)), MAX(updated_at) FROM orders"
            )[0]
            assert (
                float(total) == pytest.approx(lite_total)
                and newest.isoformat(sep=" ", timespec="milliseconds") == lite_newest
            )
            # text, including 4-byte UTF-8 (emoji, 𠮷), survives utf8mb4 unchanged
            for table, columns in (
                ("customers", "customer_id, email, first_name, last_name, city"),
                ("products", "product_id, name, attributes"),
                ("support_tickets", "ticket_id, body"),
                ("orders", "order_id, notes"),
                ("web_events", "event_id, session_id, properties"),
            ):
                cur.execute(f"SELECT {columns} FROM `{table}` ORDER BY 1")
                assert [tuple(r) for r in cur.fetchall()] == _query(
                    tmp_path / "shop.db", f"SELECT {columns} FROM {table} ORDER BY 1"
                ), table
        finally:
            con.close()
        r_mysql = simulate_shop(5, url, tmp_path / "truth_mysql", progress=False)
        r_lite = simulate_shop(5, _url(tmp_path / "shop.db"), tmp_path / "truth_sqlite", progress=False)
        for k in ("inserted", "updated", "deleted"):
            assert r_mysql[k] == r_lite[k], k
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()
