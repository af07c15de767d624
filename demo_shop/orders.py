"""Orders and their lines: when customers buy, what, at which price, and through which channel.

Prices are the USD list price converted at the day's rate and a country's price level, rounded to
what the currency can charge; promotions discount a line (category sale) or the order (site-wide).
Planted here too: extra orders without a valid customer or time, and extra lines with a bad
quantity or product, numbered among the clean ones as a real shop's would be.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pyarrow as pa

from demo_shop.cards import card_keys
from demo_shop.catalog import product_picker
from demo_shop.clock import DAY_MS, HOUR_MS, MINUTE_MS
from demo_shop.columns import decimals, ints, source_table, timestamps
from demo_shop.dirty_rows import dirty_count
from demo_shop.frames import flen, group_starts
from demo_shop.fraud import order_features
from demo_shop.reference_data import (
    COUNTRY_CURRENCY,
    CURRENCY_CODES,
    DEVICE_P,
    MARKETPLACE,
    METHOD_CUM,
    METHODS,
    NCTRY,
    PRICE_FACTOR,
    QTY_N,
    QTY_P,
    ZERO_DECIMAL,
    round_local,
)
from demo_shop.sampling import choose, other_country

if TYPE_CHECKING:
    from demo_shop.engine import Run

BURST_P, BURST_MEAN = 0.03, 1.5  # an order is followed the same day by 1 or 2 more (velocity)
EXTRA_LINES_N, EXTRA_LINES_P, SAME_CATEGORY_P = 4, 0.15, 0.4  # lines = 1 + Bin(N, P), mostly the first's category
LINES_PER_ORDER = 1 + EXTRA_LINES_N * EXTRA_LINES_P
PROMO_USE_P = 0.85
FREE_SHIPPING_USD = 49.0
SHIPPING_FEE_USD_CENTS = 599
ORPHAN_ID_BASE = 9_000_000_000  # ids no parent will ever have


class Alive(NamedTuple):
    """The customers alive during the run: browsing, account tickets and expected demand use the
    same intervals as the orders, so they are computed once."""

    idx: np.ndarray  # rows of state.customers
    a: np.ndarray  # alive from (ms) ...
    b: np.ndarray  # ... until (ms, exclusive)
    La: np.ndarray  # intensity integral at a
    Lb: np.ndarray  # intensity integral at b
    expected_orders: np.ndarray  # lambda * (L(b) - L(a)), before same-day bursts


def place_orders(run: Run) -> None:
    """Who orders when: each alive customer's purchases are a Poisson process on the seasonal
    clock, a few followed by more the same day (the velocity the fraud model looks at)."""
    st, cal, rng = run.state, run.cal, run.rng["orders"]
    cu = st.customers
    lam, signup, churn = cu["lam"], cu["signup_ms"], cu["churn_ms"]
    a = np.maximum(signup, run.P0)
    b = np.minimum(churn, run.P1)
    act = np.flatnonzero((a < b) & (lam > 0) & ~cu["extra"])
    La, Lb = cal.L(a[act]), cal.L(b[act])
    m = lam[act] * (Lb - La)
    run.alive = Alive(act, a[act], b[act], La, Lb, m)
    drop = 1.0 - run.config.repeat_rate
    run.expected_base_by_day = (
        cal.exposure_by_day(lam[act], a[act], b[act])
        if drop == 0.0
        else cal.exposure_by_day_with_dropout(lam[act], a[act], b[act], drop)
    )
    rep, t = cal.arrivals(La, Lb, rng.poisson(m), rng)
    cust = act[rep]
    lo = np.maximum(run.P0, signup[cust]) + MINUTE_MS
    t = np.minimum(np.maximum(t, lo), b[cust] - 1)
    if drop > 0.0:
        t, cust = _drop_out(run, t, cust, drop)
    # velocity: some orders are followed by one or two more the same day
    nb = (rng.random(len(t)) < BURST_P) * (1 + (rng.random(len(t)) < 0.5))
    bt0, bc = np.repeat(t, nb), np.repeat(cust, nb)
    day_end = run.P0 + (cal.day_of(bt0) + 1) * DAY_MS - 1
    hi = np.minimum(day_end, b[bc] - 1)
    bt = bt0 + (rng.random(len(bt0)) * np.maximum(hi - bt0, 0)).astype(np.int64)
    t = np.concatenate([t, bt]).astype(np.int64)
    cust = np.concatenate([cust, bc]).astype(np.int64)
    o = np.lexsort((cust, t))
    t, cust = t[o], cust[o]
    _build_orders(run, t, cust)
    _number_orders(run)


def _drop_out(run: Run, t: np.ndarray, cust: np.ndarray, drop: float) -> tuple[np.ndarray, np.ndarray]:
    """Repeat buying (``config.repeat_rate``): after each order a customer stops buying for good with
    probability ``drop`` (the BG/NBD story). Keeps each customer's orders up to the first that ends
    it, and sets their churn time to the end of that day (same-day bursts still follow it)."""
    o = np.lexsort((t, cust))
    t, cust = t[o], cust[o]
    ends = run.rng["options"].random(len(t)) < drop
    starts = group_starts(cust)
    ended = np.cumsum(ends) - ends  # ends before this order, counted from the start of the array ...
    ended = ended - np.maximum.accumulate(np.where(starts, ended, 0))  # ... and then of the customer
    keep = ended == 0
    last = keep & ends
    cu = run.state.customers
    day_end = (t[last] // DAY_MS + 1) * DAY_MS
    cu["churn_ms"][cust[last]] = np.minimum(cu["churn_ms"][cust[last]], day_end)
    return t[keep], cust[keep]


def _build_orders(run: Run, t: np.ndarray, cust: np.ndarray) -> None:
    """Lines, prices, discounts and the facts of each order (channel, device, countries, payment):
    ``run.o`` by order, ``run.lines`` by line."""
    st, cal = run.state, run.cal
    rng, rl = run.rng["orders"], run.rng["lines"]
    cu, pr = st.customers, st.products
    N = len(t)
    day = cal.day_of(t)
    pick = run.pick = product_picker(pr)
    # ---- lines: first line's category by the day's shares, extra lines mostly alike
    K = rl.binomial(EXTRA_LINES_N, EXTRA_LINES_P, N)
    lo = np.repeat(np.arange(N), 1 + K)
    first = group_starts(lo)
    cat_r = choose(cal.pcum, day[lo], rl.random(len(lo)))
    prim = cat_r[first]
    same = rl.random(len(lo)) < SAME_CATEGORY_P
    cat = np.where(first, cat_r, np.where(same, prim[lo], cat_r))
    prod = pick(cat, rl.random(len(lo)))
    qty = 1 + rl.binomial(QTY_N[cat], QTY_P[cat])
    key = lo * len(pr["product_id"]) + prod  # one line per product: merge repeats
    o = np.argsort(key, kind="stable")
    g = group_starts(key[o])
    gid = np.cumsum(g) - 1
    qty = np.bincount(gid, weights=qty[o]).astype(np.int64)
    lo, prod = lo[o][g], prod[o][g]
    cat = pr["category"][prod]
    L = np.bincount(lo, minlength=N)
    line_off = np.concatenate([[0], np.cumsum(L)[:-1]])
    # ---- prices in the shopper's currency (a one-currency shop charges its USD list prices everywhere)
    one = run.config.one_currency
    price_factor = np.ones_like(PRICE_FACTOR) if one else PRICE_FACTOR
    cc = cu["country"][cust]
    cur = np.zeros_like(cc) if one else COUNTRY_CURRENCY[cc]
    rate = run.fx[day, cur]
    ccl, curl = cc[lo], cur[lo]
    unit = round_local(pr["price_cents"][prod] * price_factor[ccl] * 1e8 / rate[lo], curl)
    if run.config.free_item_rate > 0:  # give-aways: a line at 0.00 (a legitimate sale)
        unit = np.where(run.rng["options"].random(len(unit)) < run.config.free_item_rate, 0, unit)
    gross = qty * unit
    # ---- promotions
    promos = st.promotions
    uses = rng.random(N) < PROMO_USE_P
    site = cal.site_promo[day]
    site_on = uses & (site >= 0)
    lp = cal.cat_promo[day[lo], cat]
    line_on = uses[lo] & (site[lo] < 0) & (lp >= 0)
    pct = promos["pct_bp"].astype(np.float64) / 10_000.0 if flen(promos) else np.zeros(1)
    line_disc = np.where(line_on, round_local(gross * pct[np.maximum(lp, 0)], curl), 0)
    net = gross - line_disc
    subtotal = np.round(np.bincount(lo, weights=net, minlength=N)).astype(np.int64)
    discount = np.where(site_on, round_local(subtotal * pct[np.maximum(site, 0)], cur), 0)
    promo = np.where(site_on, site, -1)
    lpo = np.full(N, -1, dtype=np.int64)
    np.maximum.at(lpo, lo[line_on], lp[line_on])
    promo = np.where(promo >= 0, promo, lpo)
    sub_usd = subtotal * rate / 1e8 / 100.0
    fee = np.where(
        sub_usd >= FREE_SHIPPING_USD, 0, round_local(SHIPPING_FEE_USD_CENTS * price_factor[cc] * 1e8 / rate, cur)
    )
    total = subtotal - discount + fee
    # ---- channel, device, countries, payment method
    device = np.where(rng.random(N) < 0.8, cu["device"][cust], rng.choice(3, N, p=DEVICE_P))
    market = rng.random(N) < np.where(cu["acq"][cust] == MARKETPLACE, 0.7, 0.04)
    app = (device != 0) & (rng.random(N) < 0.6)
    channel = np.where(market, 2, np.where(app, 1, 0))
    ship_c = np.where(rng.random(N) < 0.96, cc, other_country(cc, rng))
    ip_c = np.where(rng.random(N) < 0.93, cc, other_country(cc, rng))
    method = np.where(rng.random(N) < 0.9, cu["method"][cust], choose(METHOD_CUM, cc, rng.random(N)))
    if run.config.payment_method is not None:  # a shop that takes one method only
        method = np.full(N, METHODS.index(run.config.payment_method), dtype=np.int64)
    card = method == 0
    foreign = card & (rng.random(N) < 0.06)
    card_c = np.where(card, np.where(foreign, other_country(cc, rng), cu["card_country"][cust]), -1)
    card_no = np.where(card, np.where(foreign, card_keys(rng, N), cu["card"][cust]), None)
    # ---- fraud features, known at payment time (the probability is drawn per payment attempt, in lifecycle)
    fraud = order_features(cu, t, cust, day, total * rate / 1e8, card, card_c, ip_c, ship_c)
    run.o = dict(
        t=t,
        cust=cust,
        day=day,
        cc=cc,
        cur=cur,
        rate=rate,
        subtotal=subtotal,
        discount=discount,
        fee=fee,
        total=total,
        promo=promo,
        device=device,
        channel=channel,
        ship_c=ship_c,
        ip_c=ip_c,
        method=method,
        card_c=card_c,
        card_no=card_no,
        fraud=fraud,
        L=L,
        line_off=line_off,
    )
    run.lines = dict(order=lo, prod=prod, cat=cat, qty=qty, unit=unit, disc=line_disc, net=net)


def _number_orders(run: Run) -> None:
    """IDs for the new orders and their lines, in time order, with the planted extras among them:
    orders of unknown or no customer or without a time, and lines with a bad quantity or product."""
    st, o, ln = run.state, run.o, run.lines
    rng = run.rng["dirty"]
    cu = st.customers
    N = len(o["t"])
    # ---- extra dirty orders: orphan customer, NULL customer_id, NULL ordered_at (no lines, no payment)
    kinds = []
    for kind in range(3):
        kinds += [kind] * dirty_count(run.dirty_rate, N)
    kinds = np.array(kinds, dtype=np.int64)
    E = len(kinds)
    et = rng.integers(run.P0, run.P1, size=E).astype(np.int64)
    real = np.unique(o["cust"])  # a real shopper of this period whose order lost its timestamp
    if not len(real):
        real = np.flatnonzero(~cu["extra"]) if (~cu["extra"]).any() else np.arange(flen(cu))
    ecust = real[rng.integers(0, len(real), size=E)] if E else np.zeros(0, np.int64)
    et = np.where(kinds == 2, np.minimum(np.maximum(et, cu["signup_ms"][ecust] + HOUR_MS), run.now), et)
    all_t = np.concatenate([o["t"], et])
    order = np.lexsort((np.arange(N + E), all_t))
    ids = np.empty(N + E, dtype=np.int64)
    ids[order] = st.take_ids("orders", N + E)
    o["id"], eid = ids[:N], ids[N:]
    o["cust_id"] = cu["customer_id"][o["cust"]]
    # ---- order lines (clean) + extra dirty lines on real orders, ids by order then line
    lo = ln["order"]
    nl = len(lo)
    k_lines = [dirty_count(run.dirty_rate, nl) if N else 0 for _ in range(3)]
    xo = rng.integers(0, max(N, 1), size=sum(k_lines))
    xkind = np.repeat(np.arange(3), k_lines)
    nx = len(xo)
    xprod = run.pick(rng.integers(0, run.config.categories, size=nx), rng.random(nx))
    xqty = np.where(xkind == 0, -rng.integers(0, 3, size=nx), 1 + rng.integers(0, 2, size=nx))
    factor = np.ones_like(PRICE_FACTOR) if run.config.one_currency else PRICE_FACTOR
    xunit = (
        round_local(st.products["price_cents"][xprod] * factor[o["cc"][xo]] * 1e8 / o["rate"][xo], o["cur"][xo])
        if nx
        else np.zeros(0, np.int64)
    )
    xpid = np.where(
        xkind == 0,
        st.products["product_id"][xprod],
        np.where(xkind == 1, ORPHAN_ID_BASE + rng.integers(1, 1_000_000, size=nx), -1),
    )
    all_order = np.concatenate([lo, xo])
    seq = np.arange(nl + nx)
    lorder = np.lexsort((seq, np.concatenate([np.zeros(nl), np.ones(nx)]), o["id"][all_order]))
    lids = np.empty(nl + nx, dtype=np.int64)
    lids[lorder] = st.take_ids("order_items", nl + nx)
    ln["id"] = lids[:nl]
    xid = lids[nl:]
    pid = np.concatenate([st.products["product_id"][ln["prod"]], xpid])
    run.out.insert(
        "order_items",
        source_table(
            "order_items",
            {
                "order_item_id": ints(lids),
                "order_id": ints(o["id"][all_order]),
                "product_id": ints(pid, null=-1),
                "quantity": ints(np.concatenate([ln["qty"], xqty]), pa.int32()),
                "unit_price": decimals(np.concatenate([ln["unit"], xunit])),
                "line_discount": decimals(np.concatenate([ln["disc"], np.zeros(nx, np.int64)])),
                "updated_at": timestamps(o["t"][all_order]),
            },
        ).take(pa.array(lorder)),
    )
    for k, rule, col in (
        (0, "non_positive_quantity", "quantity"),
        (1, "orphan_product", "product_id"),
        (2, "null_required_field", "product_id"),
    ):
        run.out.plant("order_items", xid[xkind == k], rule, col)
    # extras' rows (built now, inserted with the clean orders when the plans are settled)
    ecur = rng.integers(0, len(CURRENCY_CODES), size=E)
    if run.config.one_currency:
        ecur = np.zeros_like(ecur)
    esub = rng.integers(500, 20_000, size=E) * np.where(ZERO_DECIMAL[ecur], 100, 1)
    run.extra_orders = dict(
        id=eid,
        kind=kinds,
        t=et,
        cust_id=cu["customer_id"][ecust],
        cur=ecur,
        sub=esub,
        country=rng.integers(0, NCTRY, size=E),
        orphan=ORPHAN_ID_BASE + rng.integers(1, 1_000_000, size=E),
    )
    for k, rule, col in (
        (0, "orphan_customer", "customer_id"),
        (1, "null_required_field", "customer_id"),
        (2, "null_required_field", "ordered_at"),
    ):
        run.out.plant("orders", eid[kinds == k], rule, col)
