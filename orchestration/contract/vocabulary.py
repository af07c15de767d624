"""The vocabularies and formats of the source's columns: the one place they are written.

A value outside its column's vocabulary or format is quarantined as ``invalid_value`` (a malformed
e-mail as ``malformed_email``). Four readers use these lists, and none writes its own copy:

- the demo shop's generator draws its values from them (by position: the order here is the order
  its random draws index, so reordering a list changes every generated shop);
- the pandera schemas of the curated and prod tables (orchestration/defs/checks/schemas_*.py);
- dbt: the quarantine models (``one_of('status', var('vocabularies')['order_status'])``) and the
  ``accepted_values`` tests of schema.yml read the vars of dbt_project.yml, whose block between the
  ``BEGIN``/``END`` markers is written from this module (``python -m orchestration.contract.vocabulary``)
  so that a hand-run ``dbt build`` needs nothing generated; tests/test_schema.py fails when it differs;
- the countries: ``seeds/countries.csv`` is the list itself (dbt seeds it as ``curated.countries``),
  read here into ``COUNTRIES``, ``REGIONS`` and ``CURRENCIES``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import NamedTuple

ACQUISITION_CHANNELS = ("organic", "paid_search", "social", "email", "referral", "marketplace")
ORDER_STATUSES = ("placed", "paid", "shipped", "delivered", "cancelled", "returned")
ORDER_CHANNELS = ("web", "mobile_app", "marketplace")
WEB_CHANNELS = ("web", "mobile_app")  # the channels with web sessions: ORDER_CHANNELS without the marketplace
PAYMENT_METHODS = ("card", "paypal", "bank_transfer")
PAYMENT_STATUSES = ("captured", "failed", "refunded", "chargeback")
DEVICES = ("desktop", "mobile", "tablet")
SHIPMENT_STATUSES = ("in_transit", "delivered")
RETURN_REASONS = ("damaged", "wrong_size", "not_as_described", "changed_mind", "late_delivery")
TICKET_TOPICS = ("delivery", "refund", "product", "payment", "account")
TICKET_STATUSES = ("open", "resolved")
EVENT_TYPES = ("session_start", "product_view", "add_to_cart", "checkout", "purchase")
TRAFFIC_SOURCES = ("organic", "paid_search", "social", "email", "referral", "direct")

# Formats. Anchored, and within what both Python's re and DuckDB's RE2 read alike.
EMAIL_PATTERN = r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$"  # the malformed_email rule
COUNTRY_CODE_PATTERN = r"^[A-Z]{2}$"  # ISO 3166-1 alpha-2
CURRENCY_CODE_PATTERN = r"^[A-Z]{3}$"  # ISO 4217

# Published test numbers of the card schemes: not a leak when they appear in a shop's text, and never
# a number the demo shop plants.
TEST_CARD_NUMBERS = frozenset({"4111111111111111", "4242424242424242", "5555555555554444", "378282246310005"})

COUNTRIES_SEED = Path(__file__).resolve().parent / "seeds" / "countries.csv"


class Country(NamedTuple):
    country: str  # ISO 3166-1 alpha-2
    country_name: str
    region: str  # sales region
    currency: str  # ISO 4217: what the shop charges there


def _read_countries(path: Path = COUNTRIES_SEED) -> tuple[Country, ...]:
    with path.open(newline="", encoding="utf-8") as fh:
        return tuple(Country(**row) for row in csv.DictReader(fh))


COUNTRIES: tuple[Country, ...] = _read_countries()
REGIONS = tuple(dict.fromkeys(c.region for c in COUNTRIES))  # in the order the seed first names them
CURRENCIES = tuple(dict.fromkeys(c.currency for c in COUNTRIES))

# column vocabulary name (the key of dbt's ``vocabularies`` var) -> its values
VOCABULARIES: dict[str, tuple[str, ...]] = {
    "acquisition_channel": ACQUISITION_CHANNELS,
    "order_status": ORDER_STATUSES,
    "order_channel": ORDER_CHANNELS,
    "payment_method": PAYMENT_METHODS,
    "payment_status": PAYMENT_STATUSES,
    "device_type": DEVICES,
    "shipment_status": SHIPMENT_STATUSES,
    "return_reason": RETURN_REASONS,
    "ticket_topic": TICKET_TOPICS,
    "ticket_status": TICKET_STATUSES,
    "event_type": EVENT_TYPES,
    "web_channel": WEB_CHANNELS,
    "traffic_source": TRAFFIC_SOURCES,
    "region": REGIONS,
}


# (source table, column) -> the vocabulary its values come from
COLUMN_VOCABULARIES: dict[tuple[str, str], str] = {
    ("customers", "acquisition_channel"): "acquisition_channel",
    ("orders", "status"): "order_status",
    ("orders", "channel"): "order_channel",
    ("payments", "method"): "payment_method",
    ("payments", "device_type"): "device_type",
    ("payments", "status"): "payment_status",
    ("shipments", "status"): "shipment_status",
    ("returns", "reason"): "return_reason",
    ("support_tickets", "topic"): "ticket_topic",
    ("support_tickets", "status"): "ticket_status",
    ("web_events", "event_type"): "event_type",
    ("web_events", "channel"): "web_channel",
    ("web_events", "traffic_source"): "traffic_source",
    ("web_events", "device_type"): "device_type",
}


def dbt_vars() -> dict:
    """The vars dbt_project.yml must hold, as YAML reads them."""
    return {
        "email_pattern": EMAIL_PATTERN,
        "country_code_pattern": COUNTRY_CODE_PATTERN,
        "currency_code_pattern": CURRENCY_CODE_PATTERN,
        "vocabularies": {name: list(values) for name, values in VOCABULARIES.items()},
    }


DBT_PROJECT_YML = Path(__file__).resolve().parents[2] / "dbt_project" / "dbt_project.yml"
BEGIN = "  # BEGIN vocabularies: written by `python -m orchestration.contract.vocabulary`, do not edit"
END = "  # END vocabularies"


def _yaml_string(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def dbt_vars_block() -> str:
    """The lines between (and including) the markers in dbt_project.yml's ``vars:``."""
    v = dbt_vars()
    lines = [BEGIN]
    lines += [
        f"  {k}: {_yaml_string(v[k])}" for k in ("email_pattern", "country_code_pattern", "currency_code_pattern")
    ]
    lines.append("  vocabularies:")
    lines += [f"    {name}: [{', '.join(values)}]" for name, values in v["vocabularies"].items()]
    lines.append(END)
    return "\n".join(lines) + "\n"


def rewrite_dbt_vars(text: str) -> str:
    """``text`` (dbt_project.yml) with its vocabulary block replaced by ``dbt_vars_block()``."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"dbt_project.yml has no block between {BEGIN!r} and {END!r} under vars:")
    return text[:start] + dbt_vars_block() + text[end + len(END) + 1 :]


def main() -> None:
    text = DBT_PROJECT_YML.read_text(encoding="utf-8")
    new = rewrite_dbt_vars(text)
    if new != text:
        DBT_PROJECT_YML.write_text(new, encoding="utf-8")
        print(f"rewrote the vocabularies of {DBT_PROJECT_YML}")
    else:
        print(f"{DBT_PROJECT_YML} is current")


if __name__ == "__main__":
    main()
