"""Web events: the sessions expanded into their clickstream, the source's biggest table.

Built column-wise with no per-event Python: session ids are a dictionary of one UUID per session,
properties a dictionary of a few hundred JSON texts, so millions of events cost arrays, not objects.
A client retry sometimes re-sends an event (a planted duplicate); sessions that put something in
the cart and never bought are remembered, because the shop deletes them 30 days later.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from demo_shop.columns import ints, labels, source_table, timestamps
from demo_shop.dirty_rows import pick_rows
from demo_shop.frames import flen
from demo_shop.reference_data import (
    COUNTRY_CODES,
    CURRENCY_CODES,
    DEVICES,
    EVENT_TYPES,
    TRAFFIC_SOURCES,
    WEB_CHANNELS,
)
from demo_shop.word_lists import LANDING_PAGES, VIEW_LISTS

if TYPE_CHECKING:
    from demo_shop.engine import Run


def add_web_events(run: Run, s: dict) -> None:
    """The sessions' events, with planted duplicates; remembers the abandoned carts for the shop's
    retention job (hard_deletes.py)."""
    st, o, rs = run.state, run.o, run.rng["sessions"]
    cu = st.customers
    N, S = len(o["t"]), flen(s)
    sess, pos, etype, prod, qty, ts = _expand_events(run, s)
    E = len(sess)
    order = s["order"][sess]
    nc = s["nc"][sess]
    texts, prop = _properties(run, s, etype, qty, order, nc)
    # ---- planted duplicates: a client retry re-sends an event (new event_id, same everything else)
    rd = run.rng["dirty"]
    dup_src = np.sort(pick_rows(rd, run.dirty_rate, E))
    ev = np.concatenate([np.arange(E), dup_src])
    is_dup = np.concatenate([np.zeros(E, bool), np.ones(len(dup_src), bool)])
    # events are laid out by (session, position) with the copies last: a stable sort on time
    # keeps that order for ties, so a copy always gets a larger event_id than its original
    eorder = np.argsort(ts[ev], kind="stable")
    ev, is_dup = ev[eorder], is_dup[eorder]
    ids = st.take_ids("web_events", len(ev))
    se = sess[ev]
    occurred = timestamps(ts[ev])
    sid = uuid_strings(rs, S)
    cust_id = np.where(s["cust"] >= 0, cu["customer_id"][np.maximum(s["cust"], 0)], -1)
    pid = np.where(prod[ev] >= 0, st.products["product_id"][np.maximum(prod[ev], 0)], -1)
    oid = np.where((etype[ev] == 4) & (order[ev] >= 0), o["id"][np.maximum(order[ev], 0)] if N else -1, -1)
    p = prop[ev]
    props = pa.DictionaryArray.from_arrays(
        pa.array(np.maximum(p, 0).astype(np.int32), mask=p < 0), pa.array(texts if texts else [""], pa.string())
    )
    run.out.insert(
        "web_events",
        source_table(
            "web_events",
            {
                "event_id": ints(ids),
                # indices into the per-session ids (from_buffers: from_arrays re-validates a big dictionary slowly)
                "session_id": pa.DictionaryArray.from_buffers(
                    pa.dictionary(pa.int32(), pa.string()),
                    len(se),
                    [None, pa.py_buffer(se.astype(np.int32))],
                    dictionary=sid,
                ),
                "customer_id": ints(cust_id[se], null=-1),
                "event_type": labels(etype[ev], EVENT_TYPES),
                "product_id": ints(pid, null=-1),
                "order_id": ints(oid, null=-1),
                "channel": labels(s["channel"][se], WEB_CHANNELS),
                "traffic_source": labels(s["traffic"][se], TRAFFIC_SOURCES),
                "device_type": labels(s["device"][se], DEVICES),
                "country": labels(s["country"][se], COUNTRY_CODES),
                "occurred_at": occurred,
                "properties": props,
                "updated_at": occurred,
            },
        ),
    )
    run.out.plant("web_events", ids[is_dup], "duplicate_event", None)
    # abandoned carts (add_to_cart, no purchase): hard deleted by the shop after 30 days
    abandoned_s = (s["nc"] > 0) & (s["npu"] == 0)
    sel = abandoned_s[se]
    last = ts[np.append(np.flatnonzero(np.diff(sess)), E - 1)]  # each session's last event (times increase within it)
    run.out.abandoned_new = {"event_id": ids[sel], "customer_id": cust_id[se][sel], "last_ms": last[se][sel]}


def _expand_events(run: Run, s: dict) -> tuple[np.ndarray, ...]:
    """One row per event of every session: (session, position, type, product, quantity, time).
    Funnel: session_start -> product_view(s) -> add_to_cart -> checkout -> purchase, with drop-off."""
    cu, o, ln, re_ = run.state.customers, run.o, run.lines, run.rng["events"]
    S, N = flen(s), len(o["t"])
    logged = s["cust"] >= 0
    lb = np.where(logged, np.maximum(run.P0, cu["signup_ms"][np.maximum(s["cust"], 0)]), run.P0)
    tot = 1 + s["nv"] + s["nc"] + s["nk"] + s["npu"]
    sess = np.repeat(np.arange(S, dtype=np.int64), tot)
    start = np.cumsum(tot) - tot
    pos = (np.arange(len(sess)) - start[sess]).astype(np.int32)
    nv, nc, nk = s["nv"][sess], s["nc"][sess], s["nk"][sess]
    etype = np.where(
        pos == 0, 0, np.where(pos <= nv, 1, np.where(pos <= nv + nc, 2, np.where(pos <= nv + nc + nk, 3, 4)))
    ).astype(np.int8)
    del nk
    E = len(sess)
    order = s["order"][sess]
    conv_e = order >= 0
    prod = np.full(E, -1, dtype=np.int64)
    qty = np.ones(E, dtype=np.int32)
    L_e = np.where(conv_e, o["L"][np.maximum(order, 0)] if N else 0, 0)
    off_e = np.where(conv_e, o["line_off"][np.maximum(order, 0)] if N else 0, 0)
    del order
    view = etype == 1
    k = pos - 1
    from_line = view & conv_e & (k < L_e)
    prod[from_line] = ln["prod"][off_e[from_line] + k[from_line]]
    rnd_view = view & ~from_line
    prod[rnd_view] = run.pick(s["cat"][sess[rnd_view]], re_.random(int(rnd_view.sum())))
    del view, k, from_line, rnd_view, L_e
    cart = etype == 2
    kc = pos - 1 - nv
    cl = cart & conv_e
    prod[cl] = ln["prod"][off_e[cl] + kc[cl]]
    qty[cl] = ln["qty"][off_e[cl] + kc[cl]]
    cn = cart & ~conv_e
    prod[cn] = prod[start[sess[cn]] + 1 + kc[cn] % np.maximum(nv[cn], 1)]
    del cart, kc, cl, cn, off_e, conv_e, nv, nc
    # times: gaps of seconds to minutes; converting sessions end exactly at the order
    gap = np.where(pos == 0, 0, 3_000 + re_.exponential(35_000, E).astype(np.int64))
    off = np.cumsum(gap)
    del gap
    off -= off[start[sess]]
    dur = off[start + tot - 1]
    ts = np.where(s["end"][sess], s["anchor"][sess] - (dur[sess] - off), s["anchor"][sess] + off)
    del off
    np.maximum(ts, lb[sess] + pos, out=ts)
    np.minimum(ts, run.now - (tot[sess] - 1 - pos), out=ts)
    return sess, pos, etype, prod, qty, ts


def _properties(
    run: Run, s: dict, etype: np.ndarray, qty: np.ndarray, order: np.ndarray, nc: np.ndarray
) -> tuple[list[str], np.ndarray]:
    """Event properties (JSON) as indices into a small dictionary of texts plus one per purchase:
    a few hundred distinct strings instead of one per event. -1: no properties."""
    o, re_ = run.o, run.rng["events"]
    E = len(etype)
    texts = [json.dumps({"landing_page": p}) for p in LANDING_PAGES]
    view_base = len(texts)
    texts += [json.dumps({"position": p, "list": li}) for p in range(1, 13) for li in VIEW_LISTS]
    cart_base = len(texts)
    max_q = int(max(qty.max(initial=1), 1))
    texts += [json.dumps({"quantity": q}) for q in range(1, max_q + 1)]
    chk_base = len(texts)
    max_items = int(max(s["nc"].max(initial=1), 1))
    texts += [json.dumps({"items": q}) for q in range(1, max_items + 1)]
    pur_base = len(texts)
    cur_codes = CURRENCY_CODES
    texts += [
        f'{{"value": "{v // 100}.{v % 100:02d}", "currency": "{cur_codes[c]}"}}'
        for v, c in zip(o["total"].tolist(), o["cur"].tolist())
    ]
    prop = np.full(E, -1, dtype=np.int32)
    view, cart = etype == 1, etype == 2
    st0 = etype == 0
    prop[st0] = np.where(re_.random(int(st0.sum())) < 0.3, -1, re_.integers(0, len(LANDING_PAGES), size=int(st0.sum())))
    prop[view] = view_base + re_.integers(0, 12 * len(VIEW_LISTS), size=int(view.sum()))
    prop[cart] = cart_base + qty[cart] - 1
    chk = etype == 3
    prop[chk] = chk_base + np.maximum(nc[chk], 1) - 1
    pur = etype == 4
    prop[pur] = pur_base + order[pur]
    return texts, prop


def uuid_strings(rng: np.random.Generator, n: int) -> pa.Array:
    """n random version-4 UUID strings, built without a Python loop."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    pairs = np.array([int.from_bytes(f"{i:02x}".encode(), "little") for i in range(256)], dtype=np.uint16)
    hexed = pairs[raw].view(np.uint8)  # (n, 32): two hex characters per byte
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    for src, dst in (
        (slice(0, 8), slice(0, 8)),
        (slice(8, 12), slice(9, 13)),
        (slice(12, 16), slice(14, 18)),
        (slice(16, 20), slice(19, 23)),
        (slice(20, 32), slice(24, 36)),
    ):
        out[:, dst] = hexed[:, src]
    offsets = np.arange(0, 36 * (n + 1), 36, dtype=np.int32 if 36 * n < 2**31 else np.int64)
    type_ = pa.string() if offsets.dtype == np.int32 else pa.large_string()
    arr = pa.Array.from_buffers(type_, n, [None, pa.py_buffer(offsets), pa.py_buffer(out.ravel())])
    return arr if type_ == pa.string() else arr.cast(pa.string())
