"""The data-quality rules of the curated layer, shared by the generator (which plants violations
and records them) and the dbt quarantine models (which must catch exactly those rows).

Each rule's name is what users see in ``quarantine.<table>.rule`` and in the compliance report.
"""

from __future__ import annotations

QUARANTINE = "quarantine"  # the row is moved to quarantine.<table>
MASK = "mask"  # the value is masked in flight; the row stays

# rule name -> (tables it applies to, action, what it means)
RULES: dict[str, tuple[tuple[str, ...], str, str]] = {
    "malformed_email": (("customers",), QUARANTINE, "email is present but not a valid address"),
    "null_required_field": (
        ("customers", "orders", "order_items"),
        QUARANTINE,
        "a field the business needs is NULL (customers.email, orders.customer_id, orders.ordered_at, order_items.product_id)",
    ),
    "orphan_customer": (("orders",), QUARANTINE, "orders.customer_id names no customer"),
    "orphan_product": (("order_items",), QUARANTINE, "order_items.product_id names no product"),
    "non_positive_quantity": (("order_items",), QUARANTINE, "order_items.quantity is zero or negative"),
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
    "shipped_before_ordered": (("shipments",), QUARANTINE, "shipments.shipped_at is earlier than its order's ordered_at"),
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

EMAIL_PATTERN = r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$"
