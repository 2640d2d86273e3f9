"""Fast path with feedback: several instruments, isolated and cross accounts, liquidations that
move the price (:mod:`backstop.sim.feedback`), and insurance funds with ADL.

Floats throughout; a statistical model whose results the exact engine re-checks
(:mod:`backstop.sim.agreement`). Per path, with one-minute steps of ``dt_s`` seconds:

1. **Step start**, per instrument: the outstanding forced flow ``Q`` decays, the resting depth is
   ``D·depth_share(σ)`` with ``σ`` the realized vol after the previous step, and the mark is
   ``exogenous·exp(impact(Q))``. ``D`` is the calm depth scaled to the population
   (:meth:`FeedbackParams.depth_for_population`).
2. **Walk.** Isolated positions have fixed liquidation prices (all enter at step 0), kept sorted per
   instrument and side: longs from the highest, shorts from the lowest, each with a pointer. While
   the mark is at or through the next one, that position is liquidated: its close (a sell for a
   long) adds to ``Q``, the mark moves by the new impact, and the walk goes on *within the step*,
   so one liquidation can cause the next. Longs (falling triggers) are walked before shorts; among
   equal triggers isolated before cross, then by index. Cost: O(steps + liquidations) per
   instrument, plus O(log n) per cross event.
3. **Cross accounts** (the stated approximation): an account's equity is ``C + Σ side·q·(P - e)``
   and it is liquidated (all legs at once, at the current marks plus each close's impact) when
   that falls to ``r·Σ q·P`` (``r = mmr + taker_fee``, as for isolated). Each leg holds a trigger
   on its losing side (down for a long, up for a short): the nearer of a band edge ``b`` away in
   log price (``b`` sized to the account's equity gap, see :func:`_cross_intervals`) and the leg's
   liquidation price *given the other legs at the losing edge of their bands*. Equity minus
   maintenance is monotone in each price, so while no leg has passed its trigger the account
   cannot be in breach (a leg that moves the winning way only adds equity); when one does, the
   account is re-evaluated at the current marks: liquidated if in breach, else given fresh
   triggers. Intervals sit in one indexed heap per instrument and direction.
   Instruments are walked in universe order and again until none moves, so a cross liquidation
   that closes a leg in another coin moves that coin within the same step (contagion). The
   approximation is the order within a step: marks are checked at the moments the walk visits
   them, not continuously, and a cross account's legs close together.
4. **Fills and the fund.** An order that moves the impact from ``I0`` to ``I1`` fills at
   ``mark·exp((I1 - I0)/(1 + exponent))`` (the mean price along a power-law curve, exact from an
   empty book). The account's fund flow is its equity at the fills, ``C + Σ side·q·(fill - e)``:
   a surplus goes to the fund, a deficit comes from it. Per leg, a cross account's flow is split
   with its collateral pro rata to notional, so it can be charged to each instrument's family.
5. **Feedback off** (open loop): orders still fill against the calm depth (each against an empty
   book), but the mark stays at the exogenous path.
6. **ADL** (:func:`fund_with_adl`): a fund pays deficits until it is exhausted or falls more than
   ``decline_share`` below its peak over ``decline_window_steps``; from then on deficits it cannot
   (exhausted) or may not (decline trigger) pay are socialised by ADL, surpluses still come in. ADL
   transfers positions at the bankruptcy price between accounts and does not hit the book, so it
   does not move the price here. Funds: one shared pool, or one per instrument family with the
   initial fund split by the population's open interest, compared.

**Agreement.** Checked here: the walk equals its rescan exactly; the open loop against a bottomless
book equals the first-passage fast path; cross detection without feedback equals a brute-force
margin scan. Against the exact engine with feedback: :mod:`backstop.sim.agreement` (its
tolerances, and where and why the two part).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numba
import numpy as np

from backstop.sim.feedback import FeedbackParams, decay_factor, depth_share, ewma_variance, impact_log_return
from backstop.sim.montecarlo import FundConfig, fund_needed
from backstop.sim.population import Book

NEVER = -1
CROSS_BAND_MAX_LOG = 0.5
"""Largest adverse move (log price) of a cross leg before the account is re-evaluated."""
CROSS_GAP_SHARE = 0.9
"""Share of a cross account's equity gap its legs' bands may consume together (see
:func:`_cross_intervals`); below 1 so the linearised band rarely needs halving."""
_BAND_HALVINGS = 40


@dataclass(frozen=True)
class FeedbackArrays:
    """Per-instrument feedback parameters as arrays (n_inst,), depth scaled to the population."""

    depth_usd: np.ndarray
    exponent: np.ndarray
    half_life_s: np.ndarray
    vol_ref: np.ndarray
    elasticity: np.ndarray
    min_share: np.ndarray

    @classmethod
    def build(cls, params: list[FeedbackParams], book: Book, oi_share: float = 1.0) -> FeedbackArrays:
        """``oi_share``: the population's open interest as a share of the market's; the depth it
        meets is the real one times ``population OI / (oi_share × market OI)``."""
        if not 0.0 < oi_share <= 1.0:
            raise ValueError(f"oi_share must be in (0, 1], got {oi_share}")
        gross = book.gross_notional_usdt(len(params)) / oi_share
        return cls(
            np.array([p.depth_for_population(g) for p, g in zip(params, gross, strict=True)]),
            *(np.array([getattr(p, name) for p in params], dtype=np.float64) for name in
              ("impact_exponent", "half_life_s", "vol_ref", "withdrawal_elasticity", "min_depth_share")),
        )


@dataclass(frozen=True)
class CascadeOutcome:
    """What the walk produced; money in USDT, per path arrays.

    ``flows_usdt`` (n_paths, n_inst, n_times): the fund inflow charged to each instrument's family
    at each step. ``n_liquidations`` (n_paths, n_inst): legs closed. ``n_cross`` (n_paths,): cross
    accounts liquidated. ``n_contagion`` (n_paths,): legs closed by a cross liquidation that a
    *different* instrument's move triggered. ``exog_drawdown``/``mark_drawdown`` (n_paths, n_inst):
    largest peak-to-trough fall (a fraction) of the exogenous path and of the mark. ``marks``
    (n_paths, n_inst, n_times): log marks, when recorded. ``account_step`` (n_rec, A): liquidation
    step (-1 never) and ``account_flow_usdt`` its fund flow, ``leg_fill`` (n_rec, L) fill prices,
    for the first ``n_rec`` paths.
    """

    flows_usdt: np.ndarray
    n_liquidations: np.ndarray
    n_cross: np.ndarray
    n_contagion: np.ndarray
    exog_drawdown: np.ndarray
    mark_drawdown: np.ndarray
    marks: np.ndarray
    account_step: np.ndarray
    account_flow_usdt: np.ndarray
    leg_fill: np.ndarray


# ---- indexed binary min-heap on (key, leg); one block per instrument --------------------------

@numba.njit(cache=True, inline="always")
def _before(keys, a, b):
    return keys[a] < keys[b] or (keys[a] == keys[b] and a < b)


@numba.njit(cache=True)
def _sift_up(heap, pos, keys, base, i):
    leg = heap[base + i]
    while i > 0:
        parent = (i - 1) >> 1
        other = heap[base + parent]
        if not _before(keys, leg, other):
            break
        heap[base + i] = other
        pos[other] = i
        i = parent
    heap[base + i] = leg
    pos[leg] = i


@numba.njit(cache=True)
def _sift_down(heap, pos, keys, base, n, i):
    leg = heap[base + i]
    while True:
        child = 2 * i + 1
        if child >= n:
            break
        if child + 1 < n and _before(keys, heap[base + child + 1], heap[base + child]):
            child += 1
        other = heap[base + child]
        if not _before(keys, other, leg):
            break
        heap[base + i] = other
        pos[other] = i
        i = child
    heap[base + i] = leg
    pos[leg] = i


@numba.njit(cache=True)
def _heap_set(heap, pos, keys, base, n, leg, key):
    """Change ``leg``'s key and restore the heap."""
    old = keys[leg]
    if key == old:
        return
    keys[leg] = key
    if key < old:
        _sift_up(heap, pos, keys, base, pos[leg])
    else:
        _sift_down(heap, pos, keys, base, n, pos[leg])


@numba.njit(cache=True)
def _heap_build(heap, pos, keys, base, n):
    for i in range(n):
        pos[heap[base + i]] = i
    for i in range(n // 2 - 1, -1, -1):
        _sift_down(heap, pos, keys, base, n, i)


# ---- the model ----------------------------------------------------------------------------------

@numba.njit(cache=True)
def _equity_gap(a, marks_log, collateral, leg_start, inst, side, qty, entry, r):
    """Equity minus maintenance (USDT) of account ``a`` at the current marks."""
    gap = collateral[a]
    for leg in range(leg_start[a], leg_start[a + 1]):
        price = math.exp(marks_log[inst[leg]])
        gap += qty[leg] * ((side[leg] - r) * price - side[leg] * entry[leg])
    return gap


@numba.njit(cache=True)
def _cross_intervals(a, marks_log, collateral, leg_start, inst, side, qty, entry, r, down, up):
    """Trigger intervals of account ``a``'s legs (module docstring, step 3) into ``down``/``up``
    (prices); returns False if even a vanishing band leaves a trigger crossed.

    Only the losing side needs a trigger: a leg that moves the winning way only adds equity. The
    band is sized so the legs' losing edges together take :data:`CROSS_GAP_SHARE` of the account's
    equity gap (``share·gap / Σ q·P·|side - r|`` in log price, linearised, at most
    :data:`CROSS_BAND_MAX_LOG`): then each leg's liquidation price given the others at their edges
    lies at or beyond its own edge, and a leg triggers after an adverse move of about the band.
    The band halves while a trigger is still crossed (the linearisation's convexity)."""
    gap, weight = collateral[a], 0.0
    for leg in range(leg_start[a], leg_start[a + 1]):
        price = math.exp(marks_log[inst[leg]])
        gap += qty[leg] * ((side[leg] - r) * price - side[leg] * entry[leg])
        weight += qty[leg] * price * abs(side[leg] - r)
    if gap <= 0.0:
        return False
    band = min(CROSS_BAND_MAX_LOG, CROSS_GAP_SHARE * gap / weight)
    for _ in range(_BAND_HALVINGS):
        widen = math.exp(band)
        worst = collateral[a]
        for leg in range(leg_start[a], leg_start[a + 1]):
            price = math.exp(marks_log[inst[leg]])
            edge = price / widen if side[leg] > 0 else price * widen
            worst += qty[leg] * ((side[leg] - r) * edge - side[leg] * entry[leg])
        crossed = False
        for leg in range(leg_start[a], leg_start[a + 1]):
            price = math.exp(marks_log[inst[leg]])
            lo, hi = price / widen, price * widen
            edge = lo if side[leg] > 0 else hi
            others = worst - qty[leg] * ((side[leg] - r) * edge - side[leg] * entry[leg])
            slope = qty[leg] * (side[leg] - r)
            threshold = (qty[leg] * side[leg] * entry[leg] - collateral[a] - others) / slope
            if side[leg] > 0:
                down[leg], up[leg] = max(lo, threshold), math.inf
            else:
                down[leg], up[leg] = -math.inf, min(hi, threshold)
            if down[leg] >= price or up[leg] <= price:
                crossed = True
        if not crossed:
            return True
        band *= 0.5
    return False


@numba.njit(cache=True)
def _impact(q, depth, exponent, share):
    return impact_log_return(q, depth * share, exponent)


@numba.njit(cache=True)
def _close_leg(leg, i, st, p_rec, k, side, qty, feedback, depth, exponent, leg_fill):
    """Close one leg at instrument ``i``'s mark; updates ``Q`` and the mark; returns the fill."""
    mark_log, q_out, share, exog = st[0], st[1], st[2], st[3]
    flow = -side[leg] * qty[leg] * math.exp(mark_log[i])
    if feedback:
        i0 = _impact(q_out[i], depth[i], exponent[i], share[i])
        q_out[i] += flow
        i1 = _impact(q_out[i], depth[i], exponent[i], share[i])
        mark_log[i] = exog[i] + i1
        fill = math.exp(mark_log[i] - i1 + i0 + (i1 - i0) / (1.0 + exponent[i]))
    else:
        i1 = _impact(flow, depth[i], exponent[i], 1.0)
        fill = math.exp(mark_log[i] + i1 / (1.0 + exponent[i]))
    if p_rec >= 0:
        leg_fill[p_rec, leg] = fill
    return fill


@numba.njit(cache=True)
def _liquidate(a, trigger_inst, st, p_rec, k, g, out):
    """Close every leg of account ``a`` and book its fund flows."""
    collateral, leg_start, inst, side, qty, entry, notional = g[0], g[1], g[2], g[3], g[4], g[5], g[6]
    feedback, depth, exponent = g[9], g[10], g[11]
    flows, n_liq, n_contagion, account_step, account_flow, leg_fill, alive = out
    alive[a] = False
    total_notional = 0.0
    for leg in range(leg_start[a], leg_start[a + 1]):
        total_notional += notional[leg]
    equity = collateral[a]
    for leg in range(leg_start[a], leg_start[a + 1]):
        i = inst[leg]
        fill = _close_leg(leg, i, st, p_rec, k, side, qty, feedback, depth, exponent, leg_fill)
        part = collateral[a] * notional[leg] / total_notional + side[leg] * qty[leg] * (fill - entry[leg])
        flows[i, k] += part
        equity += side[leg] * qty[leg] * (fill - entry[leg])
        n_liq[i] += 1
        if i != trigger_inst:
            n_contagion[0] += 1
    if p_rec >= 0:
        account_step[p_rec, a] = k
        account_flow[p_rec, a] = equity


@numba.njit(cache=True)
def _walk(i, st, p_rec, k, g, lists, heaps, out, rescan):
    """Liquidate everything instrument ``i``'s mark reaches, one trigger at a time; returns True if
    anything was liquidated."""
    collateral, leg_start, inst, side, qty, entry, r = g[0], g[1], g[2], g[3], g[4], g[5], g[7]
    long_list, long_start, short_list, short_start, liq_price, ptr = lists
    heap_down, heap_up, key_down, key_up, heap_start = heaps[0], heaps[1], heaps[4], heaps[5], heaps[6]
    alive = out[6]
    mark_log = st[0]
    account = g[12]
    acted = False
    hb, hn = heap_start[i], heap_start[i + 1] - heap_start[i]
    lb, ln = long_start[i], long_start[i + 1] - long_start[i]
    sb, sn = short_start[i], short_start[i + 1] - short_start[i]
    while True:
        mark = math.exp(mark_log[i])
        # Falling triggers: isolated longs, cross down-keys (stored negated).
        iso, iso_px = _next_isolated(long_list, lb, ln, ptr, 2 * i, liq_price, account, alive, mark, True,
                                     rescan)
        leg, leg_px = _next_cross(heap_down, key_down, hb, hn, account, alive, inst, i, -1.0, mark, rescan)
        which = 2 * i
        if iso < 0 and leg < 0:
            which = 2 * i + 1
            iso, iso_px = _next_isolated(short_list, sb, sn, ptr, 2 * i + 1, liq_price, account, alive, mark,
                                         False, rescan)
            leg, leg_px = _next_cross(heap_up, key_up, hb, hn, account, alive, inst, i, 1.0, mark, rescan)
            if iso < 0 and leg < 0:
                return acted
            take_iso = iso >= 0 and (leg < 0 or iso_px <= leg_px)
        else:
            take_iso = iso >= 0 and (leg < 0 or iso_px >= leg_px)
        acted = True
        if take_iso:
            ptr[which] += 1
            _liquidate(account[iso], i, st, p_rec, k, g, out)
            continue
        a = account[leg]
        if _equity_gap(a, mark_log, collateral, leg_start, inst, side, qty, entry, r) <= 0.0 or not \
                _cross_intervals(a, mark_log, collateral, leg_start, inst, side, qty, entry, r, st[4], st[5]):
            _liquidate(a, i, st, p_rec, k, g, out)
            for other in range(leg_start[a], leg_start[a + 1]):
                _set_keys(other, math.inf, math.inf, inst, heaps)
        else:
            for other in range(leg_start[a], leg_start[a + 1]):
                _set_keys(other, -st[4][other], st[5][other], inst, heaps)


@numba.njit(cache=True)
def _set_keys(leg, down_key, up_key, inst, heaps):
    heap_down, heap_up, pos_down, pos_up, key_down, key_up, heap_start = heaps
    i = inst[leg]
    base, n = heap_start[i], heap_start[i + 1] - heap_start[i]
    _heap_set(heap_down, pos_down, key_down, base, n, leg, down_key)
    _heap_set(heap_up, pos_up, key_up, base, n, leg, up_key)


@numba.njit(cache=True)
def _next_isolated(order, base, n, ptr, which, liq_price, account, alive, mark, falling, rescan):
    """The next isolated leg the mark reaches (-1 if none) and its liquidation price. Fast: the leg
    at the pointer into the sorted list (the caller advances it on liquidation); rescan: a scan of
    every open leg (same choice)."""
    if not rescan:
        j = ptr[which]
        if j < n:
            leg = order[base + j]
            px = liq_price[leg]
            if (falling and px >= mark) or (not falling and px <= mark):
                return leg, px
        return -1, 0.0
    best, best_px = -1, 0.0
    for j in range(n):
        leg = order[base + j]
        if leg < 0 or not alive[account[leg]]:
            continue
        px = liq_price[leg]
        if (falling and px >= mark and (best < 0 or px > best_px)) or \
                (not falling and px <= mark and (best < 0 or px < best_px)):
            best, best_px = leg, px
    return best, best_px


@numba.njit(cache=True)
def _next_cross(heap, keys, base, n, account, alive, inst, i, sign, mark, rescan):
    """The cross leg of instrument ``i`` whose trigger the mark reached first (-1 if none) and that
    trigger's price; ``sign`` -1 for falling triggers (keys hold minus the price), +1 rising."""
    if n == 0:
        return -1, 0.0
    if not rescan:
        leg = heap[base]
        price = sign * keys[leg]
        if math.isfinite(keys[leg]) and ((sign < 0 and price >= mark) or (sign > 0 and price <= mark)):
            return leg, price
        return -1, 0.0
    best = -1
    for j in range(n):
        leg = heap[base + j]
        if not math.isfinite(keys[leg]):
            continue
        price = sign * keys[leg]
        crossed = (sign < 0 and price >= mark) or (sign > 0 and price <= mark)
        if crossed and (best < 0 or _before(keys, leg, best)):
            best = leg
    if best < 0:
        return -1, 0.0
    return best, sign * keys[best]


@numba.njit(cache=True, inline="always")
def _reached(i, mark_log, lists, heaps):
    """Whether instrument ``i``'s mark is at or through any trigger (the next isolated liquidation
    price on either side, or the top of either cross heap): the walk's cheap entry test."""
    long_list, long_start, short_list, short_start, liq_price, ptr = lists
    mark = math.exp(mark_log)
    j = ptr[2 * i]
    if long_start[i] + j < long_start[i + 1] and liq_price[long_list[long_start[i] + j]] >= mark:
        return True
    j = ptr[2 * i + 1]
    if short_start[i] + j < short_start[i + 1] and liq_price[short_list[short_start[i] + j]] <= mark:
        return True
    base, end = heaps[6][i], heaps[6][i + 1]
    if base < end:
        down, up = heaps[4][heaps[0][base]], heaps[5][heaps[1][base]]
        if (math.isfinite(down) and -down >= mark) or (math.isfinite(up) and up <= mark):
            return True
    return False


@numba.njit(cache=True)
def _run_path(p, exog, dt_s, g, lists0, heaps0, n_rec, out_all, fb):
    """One path: steps 1..n_times-1 (see the module docstring)."""
    n_inst, n_times = exog.shape[1], exog.shape[2]
    depth, exponent, half_life, vol_ref, elasticity, min_share = fb
    flows_all, n_liq_all, n_cross_all, n_contagion_all, exog_dd, mark_dd, marks_all, acct_step, \
        acct_flow, leg_fill, record_marks = out_all
    ptr = lists0[5].copy()
    heaps = (heaps0[0].copy(), heaps0[1].copy(), heaps0[2].copy(), heaps0[3].copy(), heaps0[4].copy(),
             heaps0[5].copy(), heaps0[6])
    lists = (lists0[0], lists0[1], lists0[2], lists0[3], lists0[4], ptr)
    alive = np.ones(g[0].size, dtype=np.bool_)
    n_contagion = np.zeros(1, dtype=np.int64)
    n_liq = np.zeros(n_inst, dtype=np.int64)
    flows = flows_all[p]
    p_rec = np.int64(p) if p < n_rec else np.int64(-1)
    out = (flows, n_liq, n_contagion, acct_step, acct_flow, leg_fill, alive)
    mark_log = exog[p, :, 0].copy()
    q_out = np.zeros(n_inst)
    share = np.ones(n_inst)
    variance = np.zeros(n_inst)
    exog_now = exog[p, :, 0].copy()
    st = (mark_log, q_out, share, exog_now, np.empty(g[2].size), np.empty(g[2].size))
    prev = mark_log.copy()
    exog_peak, mark_peak = exog_now.copy(), mark_log.copy()
    rescan = g[13]
    feedback = g[9]
    decay = np.empty(n_inst)
    for i in range(n_inst):
        decay[i] = decay_factor(dt_s, half_life[i])
    max_drop_exog, max_drop_mark = np.zeros(n_inst), np.zeros(n_inst)
    for k in range(1, n_times):
        for i in range(n_inst):
            exog_now[i] = exog[p, i, k]
            if feedback:
                q_out[i] *= decay[i]
                share[i] = depth_share(math.sqrt(variance[i]), vol_ref[i], elasticity[i], min_share[i])
                mark_log[i] = exog_now[i] + _impact(q_out[i], depth[i], exponent[i], share[i])
            else:
                mark_log[i] = exog_now[i]
        moved = True
        while moved:
            moved = False
            for i in range(n_inst):
                if (rescan or _reached(i, mark_log[i], lists, heaps)) and \
                        _walk(i, st, p_rec, k, g, lists, heaps, out, rescan):
                    moved = True
            moved = moved and feedback
        for i in range(n_inst):
            variance[i] = ewma_variance(variance[i], mark_log[i] - prev[i], dt_s)
            prev[i] = mark_log[i]
            exog_peak[i] = max(exog_peak[i], exog_now[i])
            mark_peak[i] = max(mark_peak[i], mark_log[i])
            max_drop_exog[i] = max(max_drop_exog[i], exog_peak[i] - exog_now[i])
            max_drop_mark[i] = max(max_drop_mark[i], mark_peak[i] - mark_log[i])
            if record_marks:
                marks_all[p, i, k] = mark_log[i]
    if record_marks:
        marks_all[p, :, 0] = exog[p, :, 0]
    for i in range(n_inst):
        exog_dd[p, i] = 1.0 - math.exp(-max_drop_exog[i])
        mark_dd[p, i] = 1.0 - math.exp(-max_drop_mark[i])
    n_liq_all[p] = n_liq
    n_contagion_all[p] = n_contagion[0]
    n_cross = 0
    for a in range(alive.size):
        if not alive[a] and not g[8][a]:
            n_cross += 1
    n_cross_all[p] = n_cross


@numba.njit(parallel=True, cache=True)
def _run_paths(exog, dt_s, g, lists0, heaps0, n_rec, out_all, fb):
    for p in numba.prange(exog.shape[0]):
        _run_path(p, exog, dt_s, g, lists0, heaps0, n_rec, out_all, fb)


def _sorted_isolated(book: Book, liq: np.ndarray, n_inst: int, sign: int) -> tuple[np.ndarray, np.ndarray]:
    """Isolated legs of side ``sign`` grouped by instrument, each group in walk order (longs from
    the highest liquidation price, shorts from the lowest; ties by leg index), and CSR starts."""
    legs = np.flatnonzero(book.isolated[book.account] & (book.side == sign))
    order = np.lexsort((legs, -sign * liq[legs], book.inst[legs]))
    legs = legs[order]
    start = np.searchsorted(book.inst[legs], np.arange(n_inst + 1), side="left")
    return legs.astype(np.int64), start.astype(np.int64)


def _model_arrays(book: Book, feedback: bool, depth: np.ndarray, exponent: np.ndarray, rescan: bool) -> tuple:
    """The tuple the kernels index by position (see ``_liquidate``/``_walk``)."""
    return (book.collateral_usdt.astype(np.float64), book.leg_start.astype(np.int64), book.inst,
            book.side.astype(np.float64), book.qty, book.entry_price, book.notional_usdt,
            book.mmr + book.taker_fee, book.isolated, feedback, depth, exponent,
            book.account.astype(np.int64), rescan)


def _initial_heaps(book: Book, g: tuple, start_log: np.ndarray, n_inst: int) -> tuple:
    """Cross legs' trigger intervals at the start marks, in one heap per instrument and direction."""
    n_legs = book.n_legs
    cross_legs = np.flatnonzero(~book.isolated[book.account])
    cross_legs = cross_legs[np.argsort(book.inst[cross_legs], kind="stable")].astype(np.int64)
    heap_start = np.searchsorted(book.inst[cross_legs], np.arange(n_inst + 1), side="left").astype(np.int64)
    key_down, key_up = np.full(n_legs, np.inf), np.full(n_legs, np.inf)
    _start_keys(np.flatnonzero(~book.isolated).astype(np.int64), start_log, g, key_down, key_up)
    heaps = (cross_legs.copy(), cross_legs.copy(), np.zeros(n_legs, np.int64), np.zeros(n_legs, np.int64),
             key_down, key_up, heap_start)
    for i in range(n_inst):
        base, n = heap_start[i], heap_start[i + 1] - heap_start[i]
        _heap_build(heaps[0], heaps[2], key_down, base, n)
        _heap_build(heaps[1], heaps[3], key_up, base, n)
    return heaps


@numba.njit(cache=True)
def _start_keys(accounts, start_log, g, key_down, key_up):
    """Keys of every cross account's legs at the start; one already in breach triggers at step 1."""
    collateral, leg_start, inst, side, qty, entry, r = g[0], g[1], g[2], g[3], g[4], g[5], g[7]
    down, up = np.empty(key_down.size), np.empty(key_up.size)
    for a in accounts:
        ok = _equity_gap(a, start_log, collateral, leg_start, inst, side, qty, entry, r) > 0.0 and \
            _cross_intervals(a, start_log, collateral, leg_start, inst, side, qty, entry, r, down, up)
        for leg in range(leg_start[a], leg_start[a + 1]):
            key_down[leg] = -down[leg] if ok else -1e300
            key_up[leg] = up[leg] if ok else 1e300


def run_cascade(exog_log: np.ndarray, book: Book, params: list[FeedbackParams], feedback: bool = True,
                rescan: bool = False, n_record: int = 0, record_marks: bool = False,
                dt_s: float = 60.0, oi_share: float = 1.0) -> CascadeOutcome:
    """Walk every path of ``exog_log`` (n_paths, n_inst, n_times; log USDT per coin, all paths
    starting at the same prices) with ``book`` and one :class:`FeedbackParams` per instrument.

    ``feedback=False`` is the open loop; ``rescan=True`` finds each next trigger by scanning every
    open position at every step instead of pointers and heaps (the baseline: the same model and the
    same result). ``oi_share``: see :meth:`FeedbackArrays.build`. The first ``n_record`` paths
    record per-account steps, flows and fills; ``record_marks`` keeps every path's log marks.
    """
    exog_log = np.ascontiguousarray(exog_log, dtype=np.float64)
    n_paths, n_inst, n_times = exog_log.shape
    if len(params) != n_inst:
        raise ValueError(f"need one FeedbackParams per instrument ({n_inst}), got {len(params)}")
    if book.n_legs and book.inst.max() >= n_inst:
        raise ValueError(f"the book trades instrument {book.inst.max()} of only {n_inst}")
    if n_paths and not np.all(exog_log[:, :, 0] == exog_log[:1, :, 0]):
        raise ValueError("every path must start at the same prices (entries are at step 0)")
    start = np.exp(exog_log[0, :, 0]) if n_paths else np.ones(n_inst)
    if not np.allclose(start[book.inst], book.entry_price, rtol=1e-12):
        raise ValueError("the book's entry prices are not the paths' start prices")
    fb = FeedbackArrays.build(params, book, oi_share)
    g = _model_arrays(book, feedback, fb.depth_usd, fb.exponent, rescan)
    liq = np.nan_to_num(book.isolated_liquidation_prices())
    long_list, long_start = _sorted_isolated(book, liq, n_inst, 1)
    short_list, short_start = _sorted_isolated(book, liq, n_inst, -1)
    lists0 = (long_list, long_start, short_list, short_start, liq, np.zeros(2 * n_inst, np.int64))
    heaps0 = _initial_heaps(book, g, exog_log[0, :, 0] if n_paths else np.zeros(n_inst), n_inst)
    n_rec = min(n_record, n_paths)
    out = (np.zeros((n_paths, n_inst, n_times)), np.zeros((n_paths, n_inst), np.int64),
           np.zeros(n_paths, np.int64), np.zeros(n_paths, np.int64), np.zeros((n_paths, n_inst)),
           np.zeros((n_paths, n_inst)), np.zeros((n_paths if record_marks else 0, n_inst, n_times)),
           np.full((n_rec, book.n_accounts), NEVER, np.int64), np.zeros((n_rec, book.n_accounts)),
           np.full((n_rec, book.n_legs), np.nan), record_marks)
    fb_tuple = (fb.depth_usd, fb.exponent, fb.half_life_s, fb.vol_ref, fb.elasticity, fb.min_share)
    _run_paths(exog_log, float(dt_s), g, lists0, heaps0, n_rec, out, fb_tuple)
    return CascadeOutcome(*out[:10])


class FundLayout(enum.Enum):
    """How the insurance fund is organised: one shared pool, or one fund per instrument family."""

    SHARED = "shared"
    FAMILY = "family"


@dataclass(frozen=True)
class FundOutcome:
    """One fund layout over every path; money in USDT, arrays (n_paths,).

    ``balance_min``: the lowest total balance (all funds of the layout). ``socialized_usdt``:
    deficits ADL had to cover. ``adl_step``: the first step ADL fired, -1 never. ``required_usdt``:
    the smallest initial total (split as the layout splits it) that never goes below 0 without ADL.
    """

    layout: FundLayout
    initial_usdt: float
    split: np.ndarray
    balance_min: np.ndarray
    socialized_usdt: np.ndarray
    adl_step: np.ndarray
    exhausted: np.ndarray
    required_usdt: np.ndarray

    @property
    def p_adl(self) -> float:
        return float((self.adl_step != NEVER).mean())

    @property
    def p_exhausted(self) -> float:
        return float(self.exhausted.mean())

    def fund_needed(self, ruin_target: float) -> float:
        """Smallest initial total (USDT) with P(required > fund) <= ``ruin_target``."""
        return fund_needed(self.required_usdt, ruin_target)

    def expected_socialized(self, tail_q: float) -> float:
        """Mean of the worst ``tail_q`` share of socialized losses (USDT)."""
        n_tail = max(1, math.ceil(tail_q * self.socialized_usdt.size))
        return float(np.sort(self.socialized_usdt)[-n_tail:].mean())


@numba.njit(cache=True)
def _fund_with_adl(flows, initial, decline_share, window, balance_out):
    """One fund along one path (module docstring, step 6); ``balance_out`` gets the balance per
    step. The decline peak is the largest balance over the last ``window`` steps, the initial
    balance included while it is in the window. Returns (socialized USDT, first ADL step or -1,
    exhausted)."""
    balance = initial
    socialized = 0.0
    adl_step = -1
    exhausted = False
    queue = np.empty(flows.size, dtype=np.int64)
    head, tail = 0, 0
    for k in range(flows.size):
        f = flows[k]
        if f < 0.0 and (adl_step >= 0 or balance + f < 0.0):
            paid = 0.0 if adl_step >= 0 else balance
            socialized += -f - paid
            balance -= paid
            if adl_step < 0:
                adl_step = k
                exhausted = True
        else:
            balance += f
        balance_out[k] = balance
        while tail > head and balance_out[queue[tail - 1]] <= balance:
            tail -= 1
        queue[tail] = k
        tail += 1
        if queue[head] <= k - window:
            head += 1
        peak = balance_out[queue[head]]
        if k < window:
            peak = max(peak, initial)
        if adl_step < 0 and peak > 0.0 and balance < (1.0 - decline_share) * peak:
            adl_step = k
    return socialized, adl_step, exhausted


@numba.njit(parallel=True, cache=True)
def _funds_kernel(flows, initial, decline_share, window, balance_min, socialized, adl_step, exhausted):
    """``flows`` (n_paths, n_funds, n_times), ``initial`` (n_funds,): every fund on every path."""
    n_paths, n_funds, n_times = flows.shape
    for p in numba.prange(n_paths):
        total = np.zeros(n_times)
        balance = np.empty(n_times)
        first = -1
        for f in range(n_funds):
            lost, step, gone = _fund_with_adl(flows[p, f], initial[f], decline_share, window, balance)
            total += balance
            socialized[p] += lost
            exhausted[p] |= gone
            if step >= 0 and (first < 0 or step < first):
                first = step
        adl_step[p] = first
        balance_min[p] = total.min()


def fund_outcome(flows: np.ndarray, layout: FundLayout, initial_usdt: float, split: np.ndarray,
                 config: FundConfig) -> FundOutcome:
    """Run ``layout`` on per-family flows (n_paths, n_inst, n_times); ``split`` (n_inst,) sums to 1
    and gives each family's share of ``initial_usdt`` under :attr:`FundLayout.FAMILY`."""
    n_paths = flows.shape[0]
    per_fund = flows.sum(axis=1, keepdims=True) if layout is FundLayout.SHARED else flows
    shares = np.ones(1) if layout is FundLayout.SHARED else np.asarray(split, dtype=np.float64)
    balance_min, socialized = np.zeros(n_paths), np.zeros(n_paths)
    adl_step, exhausted = np.full(n_paths, NEVER, np.int64), np.zeros(n_paths, np.bool_)
    _funds_kernel(np.ascontiguousarray(per_fund), initial_usdt * shares, config.decline_share,
                  config.decline_window_steps, balance_min, socialized, adl_step, exhausted)
    need = np.maximum(0.0, -np.cumsum(per_fund, axis=2).min(axis=2))
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.where(need > 0, need / shares[None, :], 0.0)
    return FundOutcome(layout, initial_usdt, shares, balance_min, socialized, adl_step, exhausted,
                       scaled.max(axis=1))

