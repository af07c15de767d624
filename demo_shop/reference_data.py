"""The shop's fixed world: what it sells where, at what prices, with which carriers, plus the numpy
arrays the engine indexes them with.

The countries, their regions and currencies, and the code lists of the source's enumerated columns
are the source contract's (orchestration/contract/vocabulary.py, whose country list is the dbt seed
``orchestration/contract/seeds/countries.csv``): the shop draws from them and adds only what it
tunes itself, such as each country's share of customers and price level. Everything the activity
engine tunes per country or per category lives here, so changing the world (a new category, a
market's weight) is an edit of this one file; a new market is a row of the seed plus its entry in
``COUNTRY_MIX``, ``CURRENCIES`` and ``COUNTRY_CARRIERS``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from orchestration.contract import vocabulary
from orchestration.contract.vocabulary import (  # noqa: F401  (the shop's code lists are the contract's)
    ACQUISITION_CHANNELS,
    DEVICES,
    EVENT_TYPES,
    ORDER_CHANNELS,
    ORDER_STATUSES,
    PAYMENT_STATUSES,
    RETURN_REASONS,
    SHIPMENT_STATUSES,
    TICKET_STATUSES,
    TICKET_TOPICS,
    TRAFFIC_SOURCES,
    WEB_CHANNELS,
)

METHODS = vocabulary.PAYMENT_METHODS


class Country(NamedTuple):
    country: str
    country_name: str
    region: str
    currency: str
    weight: float  # share of customers
    price_factor: float  # local price = USD list price x fx x price_factor


# country -> (share of customers, price factor): the shop's own tuning of the contract's countries
COUNTRY_MIX: dict[str, tuple[float, float]] = {
    "US": (0.30, 1.00),
    "CA": (0.06, 1.05),
    "GB": (0.10, 1.10),
    "DE": (0.09, 1.08),
    "FR": (0.07, 1.10),
    "ES": (0.05, 1.02),
    "IT": (0.05, 1.05),
    "NL": (0.03, 1.08),
    "JP": (0.06, 1.15),
    "AU": (0.05, 1.20),
    "IN": (0.05, 0.85),
    "BR": (0.05, 1.25),
    "MX": (0.04, 0.95),
}
_unmixed = [c.country for c in vocabulary.COUNTRIES if c.country not in COUNTRY_MIX]
if _unmixed:
    raise ValueError(f"countries of the contract's seed without a COUNTRY_MIX entry: {', '.join(_unmixed)}")

# in the seed's order, which the engine's country indices follow
COUNTRIES: tuple[Country, ...] = tuple(Country(*c, *COUNTRY_MIX[c.country]) for c in vocabulary.COUNTRIES)

# currency -> (USD per unit around which the rate wanders, daily volatility of its log)
CURRENCIES: dict[str, tuple[float, float]] = {
    "USD": (1.0, 0.0),
    "CAD": (0.73, 0.0035),
    "GBP": (1.31, 0.0045),
    "EUR": (1.12, 0.0040),
    "JPY": (0.0068, 0.0055),
    "AUD": (0.66, 0.0055),
    "INR": (0.0118, 0.0030),
    "BRL": (0.18, 0.0090),
    "MXN": (0.055, 0.0070),
}
if set(CURRENCIES) != set(vocabulary.CURRENCIES):
    raise ValueError(f"CURRENCIES must price exactly the seed's currencies: {', '.join(vocabulary.CURRENCIES)}")
ZERO_DECIMAL_CURRENCIES = ("JPY",)  # charged in whole units


class Category(NamedTuple):
    name: str
    department: str
    code: str
    share: float  # share of orders on an average day
    price_usd: float  # median list price
    price_sigma: float  # lognormal spread of list prices
    return_rate: float  # probability a delivered line is returned (before dissatisfaction and lateness)
    extra_units: tuple[int, float]  # units per line = 1 + Binomial(n, p)
    season: tuple[tuple[int, float, float], ...]  # (day of year, width in days, amplitude) bumps


CATEGORIES: tuple[Category, ...] = (
    Category(
        "Electronics",
        "Electronics",
        "ELE",
        0.10,
        180.0,
        0.70,
        0.08,
        (1, 0.05),
        ((335, 14, 1.3), (355, 10, 0.8), (200, 8, 0.2)),
    ),
    Category("Home & Kitchen", "Home", "HOM", 0.14, 40.0, 0.60, 0.06, (2, 0.15), ((345, 25, 0.4), (95, 30, 0.2))),
    Category(
        "Apparel",
        "Fashion",
        "APP",
        0.16,
        38.0,
        0.50,
        0.22,
        (2, 0.20),
        ((100, 25, 0.35), (270, 25, 0.35), (350, 15, 0.3)),
    ),
    Category("Shoes", "Fashion", "SHO", 0.07, 80.0, 0.45, 0.18, (1, 0.08), ((95, 25, 0.3), (250, 25, 0.3))),
    Category("Books", "Media", "BOO", 0.12, 15.0, 0.40, 0.03, (3, 0.15), ((350, 15, 0.6), (235, 15, 0.4))),
    Category("Toys & Games", "Toys", "TOY", 0.07, 28.0, 0.60, 0.05, (2, 0.15), ((350, 16, 2.6), (330, 10, 0.6))),
    Category("Garden & Outdoor", "Home", "GAR", 0.06, 55.0, 0.70, 0.05, (2, 0.10), ((140, 45, 1.4),)),
    Category("Sports & Fitness", "Sports", "SPO", 0.07, 50.0, 0.70, 0.08, (1, 0.15), ((8, 14, 0.9), (180, 40, 0.4))),
    Category(
        "Beauty & Personal Care",
        "Health & Beauty",
        "BEA",
        0.10,
        22.0,
        0.50,
        0.04,
        (3, 0.20),
        ((44, 7, 0.7), (348, 18, 0.6)),
    ),
    Category("Grocery & Gourmet", "Grocery", "GRO", 0.08, 11.0, 0.50, 0.01, (4, 0.30), ((355, 12, 0.5),)),
    Category("Jewelry & Watches", "Fashion", "JEW", 0.03, 140.0, 0.80, 0.10, (0, 0.0), ((44, 6, 1.6), (350, 15, 1.3))),
)

ACQUISITION_P = np.array([0.30, 0.22, 0.15, 0.08, 0.10, 0.15])
MARKETPLACE = ACQUISITION_CHANNELS.index("marketplace")
DEVICE_P = np.array([0.45, 0.45, 0.10])
METHOD_MIX = {
    "DE": (0.40, 0.35, 0.25),
    "NL": (0.35, 0.30, 0.35),
    "IN": (0.55, 0.15, 0.30),
    "BR": (0.75, 0.10, 0.15),
    "JP": (0.75, 0.15, 0.10),
}
DEFAULT_METHOD_MIX = (0.65, 0.25, 0.10)
TRAFFIC_P = np.array([0.35, 0.20, 0.15, 0.05, 0.07, 0.18])

# carrier -> (promised days, z = how many sigmas the promise is above the median transit, sigma)
CARRIERS: dict[str, tuple[float, float, float]] = {
    "UPS": (3, 1.3, 0.35),
    "FedEx": (2, 1.6, 0.30),
    "USPS": (5, 0.9, 0.45),
    "Canada Post": (5, 1.1, 0.40),
    "Royal Mail": (3, 1.0, 0.45),
    "DHL": (3, 1.3, 0.35),
    "DPD": (2, 1.4, 0.35),
    "PostNL": (2, 1.5, 0.35),
    "Japan Post": (2, 1.8, 0.30),
    "Australia Post": (5, 1.0, 0.45),
    "Delhivery": (5, 0.8, 0.50),
    "Correios": (10, 0.7, 0.55),
    "Estafeta": (5, 0.9, 0.50),
}
COUNTRY_CARRIERS: dict[str, tuple[tuple[str, float], ...]] = {
    "US": (("UPS", 0.40), ("FedEx", 0.25), ("USPS", 0.35)),
    "CA": (("Canada Post", 0.60), ("UPS", 0.25), ("FedEx", 0.15)),
    "GB": (("Royal Mail", 0.55), ("DPD", 0.30), ("DHL", 0.15)),
    "DE": (("DHL", 0.60), ("DPD", 0.30), ("UPS", 0.10)),
    "FR": (("DPD", 0.40), ("DHL", 0.30), ("UPS", 0.30)),
    "ES": (("DHL", 0.50), ("DPD", 0.50)),
    "IT": (("DHL", 0.50), ("DPD", 0.30), ("UPS", 0.20)),
    "NL": (("PostNL", 0.60), ("DHL", 0.30), ("DPD", 0.10)),
    "JP": (("Japan Post", 0.70), ("DHL", 0.30)),
    "AU": (("Australia Post", 0.75), ("DHL", 0.25)),
    "IN": (("Delhivery", 0.70), ("DHL", 0.30)),
    "BR": (("Correios", 0.70), ("DHL", 0.30)),
    "MX": (("Estafeta", 0.60), ("DHL", 0.25), ("FedEx", 0.15)),
}


# ---- the same, as arrays indexed by category, country, currency or carrier number -----------------

C = len(CATEGORIES)
SHARES = np.array([c.share for c in CATEGORIES])
SHARES = SHARES / SHARES.sum()
QTY_N = np.array([c.extra_units[0] for c in CATEGORIES])
QTY_P = np.array([c.extra_units[1] for c in CATEGORIES])
MEAN_UNITS = 1 + QTY_N * QTY_P
RETURN_RATE = np.array([c.return_rate for c in CATEGORIES])
NCTRY = len(COUNTRIES)
COUNTRY_W = np.array([c.weight for c in COUNTRIES])
COUNTRY_W = COUNTRY_W / COUNTRY_W.sum()
PRICE_FACTOR = np.array([c.price_factor for c in COUNTRIES])
CURRENCY_CODES = tuple(CURRENCIES)
COUNTRY_CURRENCY = np.array([CURRENCY_CODES.index(c.currency) for c in COUNTRIES])
ZERO_DECIMAL = np.array([code in ZERO_DECIMAL_CURRENCIES for code in CURRENCY_CODES])
COUNTRY_CODES = tuple(c.country for c in COUNTRIES)
CARRIER_NAMES = tuple(CARRIERS)
CARRIER_CUM = np.zeros((NCTRY, len(CARRIER_NAMES)))  # (country, carrier): cumulative shares
for _i, _c in enumerate(COUNTRIES):
    for _name, _w in COUNTRY_CARRIERS[_c.country]:
        CARRIER_CUM[_i, CARRIER_NAMES.index(_name)] = _w
CARRIER_CUM = np.cumsum(CARRIER_CUM / CARRIER_CUM.sum(1, keepdims=True), 1)
del _i, _c, _name, _w
METHOD_CUM = np.cumsum(  # (country, payment method): cumulative shares
    np.array([METHOD_MIX.get(c.country, DEFAULT_METHOD_MIX) for c in COUNTRIES]), 1
)


def round_local(cents: np.ndarray, currency: np.ndarray) -> np.ndarray:
    """Round float minor units to what the currency can charge (whole yen, cents otherwise)."""
    zero = ZERO_DECIMAL[currency]
    return np.where(zero, np.round(cents / 100.0) * 100.0, np.round(cents)).astype(np.int64)
