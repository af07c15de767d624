"""Web sessions: who visits, when, from where, and how far down the funnel they get.

Every web or app order has the session it was placed in, so conversion, attribution and funnel
analyses on web_events agree with the orders; the rest is logged-in browsing on the same seasonal
clock as purchases, plus anonymous traffic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from demo_shop.clock import HOUR_MS, MINUTE_MS
from demo_shop.frames import concat, flen, take
from demo_shop.reference_data import COUNTRY_W, DEVICE_P, NCTRY, TRAFFIC_P
from demo_shop.sampling import choose

if TYPE_CHECKING:
    from demo_shop.engine import Run

BROWSE_SESSIONS_PER_ORDER = 4.0  # logged-in non-converting sessions, per expected order
ANONYMOUS_SESSIONS_PER_ORDER = 12.0


def plan_sessions(run: Run) -> dict:
    """The run's sessions, in time order: one converting session per web/app order, a browsing
    visit before each marketplace order, logged-in browsing while alive, and anonymous traffic."""
    st, cal, o, ln = run.state, run.cal, run.o, run.lines
    rs = run.rng["sessions"]
    cu = st.customers
    N = len(o["t"])
    first_cat = ln["cat"][o["line_off"]] if N else np.zeros(0, np.int64)
    parts = []

    def traffic_for(cust: np.ndarray) -> np.ndarray:
        n = len(cust)
        u = rs.random(n)
        acq_map = np.array([0, 1, 2, 3, 4, 4])  # acquisition channel -> traffic source (marketplace -> referral)
        own = acq_map[cu["acq"][cust]] if n else np.zeros(0, np.int64)
        rnd = choose(np.cumsum(TRAFFIC_P), 0, rs.random(n))
        return np.where(u < 0.35, 5, np.where(u < 0.65, own, rnd))

    # A: converting sessions (end at the order), B: a look around before marketplace orders
    conv = np.flatnonzero(o["channel"] != 2)
    mk = np.flatnonzero(o["channel"] == 2)
    for idx, converting in ((conv, True), (mk, False)):
        n = len(idx)
        nv = (o["L"][idx] if converting else 1) + rs.poisson(0.8, n)
        parts.append(
            dict(
                cust=o["cust"][idx],
                anchor=o["t"][idx] - (0 if converting else rs.integers(10 * MINUTE_MS, 6 * HOUR_MS, size=n)),
                end=np.ones(n, bool),
                nv=nv,
                nc=o["L"][idx] if converting else np.zeros(n, np.int64),
                nk=np.full(n, int(converting)),
                npu=np.full(n, int(converting)),
                order=idx if converting else np.full(n, -1),
                cat=first_cat[idx],
                channel=np.where(converting, o["channel"][idx], (o["device"][idx] != 0) & (rs.random(n) < 0.5)).astype(
                    np.int64
                ),
                traffic=traffic_for(o["cust"][idx]),
                device=o["device"][idx],
                country=o["ip_c"][idx],
            )
        )
    # C: logged-in browsing, a Poisson process like purchases; D: anonymous visitors
    alive = run.alive
    rep, bt = cal.arrivals(alive.La, alive.Lb, rs.poisson(BROWSE_SESSIONS_PER_ORDER * alive.expected_orders), rs)
    bc = alive.idx[rep]
    n_anon = int(rs.poisson(ANONYMOUS_SESSIONS_PER_ORDER * max(float(alive.expected_orders.sum()), 0.2 * run.n)))
    at = cal.inverse(rs.random(n_anon) * cal.cum[-1])
    for cust, start in ((bc, bt), (np.full(n_anon, -1), at)):
        n = len(cust)
        logged = cust >= 0
        cs = np.maximum(cust, 0)
        u = rs.random(n)
        nv = np.where(u < 0.45, 0, 1 + rs.poisson(0.9, n))
        nc = np.where((nv > 0) & (rs.random(n) < 0.25), 1 + (rs.random(n) < 0.2), 0)
        nk = ((nc > 0) & (rs.random(n) < 0.35)).astype(np.int64)
        device = np.where(logged & (rs.random(n) < 0.8), cu["device"][cs] if n else 0, rs.choice(3, n, p=DEVICE_P))
        home = cu["country"][cs] if n else np.zeros(0, np.int64)
        country = np.where(
            logged,
            np.where(rs.random(n) < 0.93, home, rs.choice(NCTRY, n, p=COUNTRY_W)),
            rs.choice(NCTRY, n, p=COUNTRY_W),
        )
        traffic = np.where(logged, traffic_for(cs), choose(np.cumsum(TRAFFIC_P), 0, rs.random(n)))
        parts.append(
            dict(
                cust=cust,
                anchor=start,
                end=np.zeros(n, bool),
                nv=nv,
                nc=nc,
                nk=nk,
                npu=np.zeros(n, np.int64),
                order=np.full(n, -1),
                cat=choose(cal.pcum, cal.day_of(start), rs.random(n)),
                channel=((device != 0) & (rs.random(n) < 0.5)).astype(np.int64),
                traffic=traffic,
                device=device,
                country=country,
            )
        )
    s = concat(*parts)
    # sessions in (roughly) time order: the events come out nearly sorted, which makes the
    # final sort by time and every gather after it cheap
    return take(s, np.argsort(s["anchor"], kind="stable")) if flen(s) else s
