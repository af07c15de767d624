"""The data-quality rules of the curated layer, shared by the generator (which plants violations
and records them) and the dbt quarantine models (which must catch exactly those rows).

Each rule's name is what users see in ``quarantine.<table>.rule`` and in the compliance report.
"""

from __future__ import annotations

from orchestration.contract.schema import TABLES

ALL_TABLES = tuple(table.name for table in TABLES)  # rules every source table is held to

QUARANTINE = "quarantine"  # the row is moved to quarantine.<table>
MASK = "mask"  # the value is masked in flight; the row stays

# rule name -> (tables it applies to, action, what it means)
RULES: dict[str, tuple[tuple[str, ...], str, str]] = {
    "malformed_email": (("customers",), QUARANTINE, "email is present but not a valid address"),
    "null_required_field": (
        ALL_TABLES,
        QUARANTINE,
        "a field the business needs is NULL (customers.email, orders.customer_id, orders.ordered_at, "
        "order_items.product_id, and every NOT NULL column, where a zero date arrives as NULL)",
    ),
    "orphan_customer": (
        ("orders", "support_tickets", "web_events"),
        QUARANTINE,
        "customer_id names no customer (orders: of curated.customers; tickets and events: at the source)",
    ),
    "orphan_product": (
        ("order_items", "inventory", "web_events"),
        QUARANTINE,
        "product_id names no product (order lines and stock: of curated.products; events: at the source)",
    ),
    "orphan_order": (
        ("order_items", "payments", "shipments", "support_tickets", "web_events"),
        QUARANTINE,
        "order_id names no order live at the source (a purchase event whose order was deleted, say)",
    ),
    "orphan_order_item": (("returns",), QUARANTINE, "returns.order_item_id names no order line live at the source"),
    "orphan_category": (("products", "promotions"), QUARANTINE, "category_id names no category of curated.categories"),
    "non_positive_quantity": (("order_items", "returns"), QUARANTINE, "quantity is zero or negative"),
    "invalid_value": (
        (
            "customers",
            "categories",
            "products",
            "promotions",
            "orders",
            "payments",
            "shipments",
            "returns",
            "support_tickets",
            "web_events",
            "fx_rates",
        ),
        QUARANTINE,
        "a value outside its column's vocabulary or format: an enum ('' is what non-strict MySQL stores "
        "for a bad one), a country or currency code, card details, an empty name, code or session",
    ),
    "out_of_range": (
        ALL_TABLES,
        QUARANTINE,
        "a number outside what the business allows: a key or reference below 1, a negative amount, price "
        "(0.00 is a free item) or discount, a list price of 0, a rating outside 1-5, a discount outside "
        "(0, 100) percent, an order line worth more than DECIMAL(12,2), a rate of 100,000 USD per unit or more",
    ),
    "inconsistent_fields": (
        ("customers", "promotions", "orders", "order_items", "payments", "shipments", "support_tickets", "web_events"),
        QUARANTINE,
        "fields of one row contradict each other: updated before created, ends before it starts, a discount "
        "above what it discounts, a status without its date (delivered, resolved, chargeback) or the reverse, "
        "a date before the one it follows, card details on the wrong method, an event without its product "
        "or order",
    ),
    "duplicate_event": (
        ("web_events",),
        QUARANTINE,
        "same session, event type, product and time as an earlier event_id (a client retry)",
    ),
    # Business rules of the shop platforms. They apply to rows that passed the rules above (a row
    # with a NULL key field or an orphan reference is quarantined for that alone).
    "order_total_mismatch": (
        ("orders",),
        QUARANTINE,
        "to the cent: total = subtotal - discount + shipping_fee, and subtotal = the sum of "
        "quantity * unit_price - line_discount over the order's valid lines",
    ),
    "payment_amount_mismatch": (
        ("payments",),
        QUARANTINE,
        "a payment that moved money (any status but failed) differs from its order's total or currency",
    ),
    "shipped_before_ordered": (
        ("shipments",),
        QUARANTINE,
        "shipments.shipped_at is earlier than its order's ordered_at",
    ),
    "return_exceeds_purchase": (
        ("returns",),
        QUARANTINE,
        "the returns of an order line add up to more units than were bought: the return that crosses "
        "the bought quantity and every later one",
    ),
    "negative_stock": (("inventory",), QUARANTINE, "inventory.quantity_on_hand is negative"),
    "missing_fx_rate": (
        ("orders", "payments"),
        QUARANTINE,
        "no fx_rates row for the currency on the day it is used (orders: order date, payments: payment "
        "date); USD, the reporting currency, needs none",
    ),
    "card_number_in_text": (
        ("orders", "support_tickets"),
        MASK,
        "a card number typed into free text (orders.notes, support_tickets.body); masked at extraction",
    ),
}

# Required fields whose NULL is the null_required_field rule (the source allows NULL there).
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "customers": ("email",),
    "orders": ("customer_id", "ordered_at"),
    "order_items": ("product_id",),
}
