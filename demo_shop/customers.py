"""Customers: who signs up when, and the latent behaviour that drives everything they do later.

Every customer i has a latent purchase rate ``lambda_i`` (gamma distributed, so repeat-purchase
behaviour is heterogeneous), a latent dissatisfaction, and a churn hazard ``h_i`` that rises for
low-frequency, dissatisfied, marketplace-acquired and non-opted-in customers. The customer is alive
from sign-up until ``T_i ~ Exp(h_i)`` later and purchases at rate ``lambda_i * S(t)`` while alive.
These stay in the engine state (and the truth files), never in the source: the models must infer them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from demo_shop.cards import card_keys
from demo_shop.clock import DAY_MS
from demo_shop.columns import ints, labels, source_table, strings, timestamps
from demo_shop.dirty_rows import dirty_count
from demo_shop.frames import concat, take
from demo_shop.reference_data import (
    ACQUISITION_CHANNELS,
    ACQUISITION_P,
    COUNTRIES,
    COUNTRY_CODES,
    COUNTRY_W,
    DEVICE_P,
    MARKETPLACE,
    METHOD_CUM,
    NCTRY,
)
from demo_shop.sampling import choose, other_country
from demo_shop.word_lists import CITIES, COMMON_DOMAINS, COUNTRY_LANGUAGE, LOCAL_DOMAINS, MALFORMED_EMAILS, NAMES

if TYPE_CHECKING:
    from demo_shop.engine import Run

LEGACY_SHARE = 0.35  # customers who signed up before the first simulated day
LEGACY_YEARS = 2
MEAN_PURCHASE_RATE = 0.012  # orders per alive day at seasonal intensity 1
RATE_SHAPE = 0.9
BASE_HAZARD = 0.0016


def sign_up(run: Run, n_signups: int | None, n_legacy: int) -> None:
    """The run's new customers: ``n_signups`` spread like the purchase intensity (a first run also
    gets ``n_legacy`` who signed up in the years before it); later runs keep the first run's signup
    rate. Plus the planted extras: customers who never buy, with a malformed or missing e-mail."""
    st, rng, cal = run.state, run.rng["signups"], run.cal
    if n_signups is None:
        rate = st.meta["signup_rate"] or 0.0
        n_signups = int(rng.poisson(rate * cal.S.sum()))
    elif cal.S.sum() > 0:
        st.meta["signup_rate"] = n_signups / float(cal.S.sum())
    signup = np.sort(cal.inverse(rng.random(n_signups) * cal.cum[-1]))
    legacy = run.P0 - 1 - (rng.random(n_legacy) * LEGACY_YEARS * 365 * DAY_MS).astype(np.int64)
    signup = np.concatenate([np.sort(legacy), signup]).astype(np.int64)
    clean = new_customers(signup, run.rng["customers"])
    n_clean = len(signup)
    # Dirty: EXTRA customers (no activity) with a malformed or missing e-mail.
    rng_d = run.rng["dirty"]
    k_bad, k_null = dirty_count(run.dirty_rate, n_clean), dirty_count(run.dirty_rate, n_clean)
    lo = run.P0 - (LEGACY_YEARS * 365 * DAY_MS if n_legacy else 0)
    extra_ms = rng_d.integers(lo, run.P1, size=k_bad + k_null)
    extra = new_customers(extra_ms.astype(np.int64), rng_d)
    extra["lam"][:] = 0.0
    extra["extra"][:] = True
    kind = np.concatenate([np.zeros(n_clean, np.int64), np.full(k_bad, 1), np.full(k_null, 2)])
    new = concat(clean, extra)
    order = np.lexsort((np.arange(len(kind)), new["signup_ms"]))
    new, kind = take(new, order), kind[order]
    new["customer_id"] = st.take_ids("customers", len(kind))
    st.customers = concat(st.customers, new)
    run.out.insert("customers", customer_rows(new, kind, run.rng["customers"]))
    ids = new["customer_id"]
    run.out.plant("customers", ids[kind == 1], "malformed_email", "email")
    run.out.plant("customers", ids[kind == 2], "null_required_field", "email")


def new_customers(signup_ms: np.ndarray, rng: np.random.Generator) -> dict:
    """Latent parameters and fixed traits (country, channel, device, payment method, card) of new customers."""
    n = len(signup_ms)
    country = rng.choice(NCTRY, n, p=COUNTRY_W)
    acq = rng.choice(len(ACQUISITION_CHANNELS), n, p=ACQUISITION_P)
    opt_in = rng.random(n) < 0.55
    device = rng.choice(3, n, p=DEVICE_P)
    method = choose(METHOD_CUM, country, rng.random(n))
    market = acq == MARKETPLACE
    lam = rng.gamma(RATE_SHAPE, MEAN_PURCHASE_RATE / RATE_SHAPE, n) * np.where(market, 0.8, 1.0)
    dissat = rng.standard_normal(n)
    hazard = np.clip(
        BASE_HAZARD
        * (MEAN_PURCHASE_RATE / np.maximum(lam, 1e-5)) ** 0.3
        * np.exp(0.45 * dissat)
        * np.where(market, 1.5, 1.0)
        * np.where(opt_in, 0.8, 1.0),
        2e-4,
        0.03,
    )
    churn = signup_ms + np.minimum(rng.exponential(1.0 / hazard) * DAY_MS, 1e15).astype(np.int64)
    card_country = np.where(rng.random(n) < 0.95, country, other_country(country, rng))
    return {
        "customer_id": np.zeros(n, np.int64),
        "lam": lam,
        "hazard": hazard,
        "dissat": dissat,
        "signup_ms": signup_ms.astype(np.int64),
        "churn_ms": churn,
        "country": country.astype(np.int64),
        "acq": acq.astype(np.int64),
        "opt_in": opt_in,
        "device": device.astype(np.int64),
        "method": method.astype(np.int64),
        "card": card_keys(rng, n),
        "card_country": card_country.astype(np.int64),
        "basket_sum": np.zeros(n),
        "basket_n": np.zeros(n, np.int64),
        "extra": np.zeros(n, bool),
    }


def customer_rows(c: dict, kind: np.ndarray, rng: np.random.Generator) -> pa.Table:
    """The source rows: names, city and e-mail in the customer's language (``kind`` 1: malformed e-mail, 2: none)."""
    n = len(kind)
    u = rng.random((n, 7))
    first, last, email, city = [], [], [], []
    for i in range(n):
        code = COUNTRIES[c["country"][i]].country
        firsts, lasts = NAMES[COUNTRY_LANGUAGE[code]]
        f = firsts[int(u[i, 0] * len(firsts))]
        l_ = lasts[int(u[i, 1] * len(lasts))]
        cities = CITIES[code].split(", ")
        first.append(f[0])
        last.append(l_[0])
        city.append(cities[int(u[i, 2] * len(cities))])
        local = LOCAL_DOMAINS[code]
        dom = local[int(u[i, 3] * len(local))] if u[i, 4] < 0.3 else COMMON_DOMAINS[int(u[i, 3] * len(COMMON_DOMAINS))]
        cid = int(c["customer_id"][i])
        pattern = int(u[i, 5] * 3)
        handle = (f"{f[1]}.{l_[1]}{cid}", f"{f[1]}{l_[1][:1]}{cid}", f"{f[1][:1]}.{l_[1]}.{cid}")[pattern]
        if kind[i] == 1:
            tpl = MALFORMED_EMAILS[int(u[i, 6] * len(MALFORMED_EMAILS))]
            email.append(tpl.format(h=handle, d=dom, dn=dom.split(".")[0]))
        elif kind[i] == 2:
            email.append(None)
        else:
            email.append(f"{handle}@{dom}")
    signup = c["signup_ms"]
    age_days = (np.clip(rng.normal(38, 13, n), 18, 85) * 365.25 + rng.random(n) * 365).astype(np.int64)
    birth = signup // DAY_MS - age_days
    has_birth = rng.random(n) >= 0.12
    return source_table(
        "customers",
        {
            "customer_id": ints(c["customer_id"]),
            "email": strings(email),
            "first_name": strings(first),
            "last_name": strings(last),
            "country": labels(c["country"], COUNTRY_CODES),
            "city": strings(city),
            "acquisition_channel": labels(c["acq"], ACQUISITION_CHANNELS),
            "marketing_opt_in": pa.array(c["opt_in"]),
            "birth_date": pa.array(birth.astype(np.int32), pa.date32(), mask=~has_birth),
            "created_at": timestamps(signup),
            "updated_at": timestamps(signup),
        },
    )
