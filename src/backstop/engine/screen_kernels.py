"""The float screen's loops: each numba kernel beside the numpy expression that gives the
same codes (the fallback when numba is missing, and the tests' reference for the loops).

Per slot, in float64 (see :meth:`backstop.engine.screen.RiskScreen.screen` for the bound):
``v = sk·pm`` (signed value at the mark, money units), ``m = |v|·rate + en·erate`` (MM +
liquidation fee: ``rate`` is mmr + fee for a mark-valued class and the fee alone for an
entry-valued one, whose MM is its slot's entry notional ``en`` × ``erate`` = mmr; ``en`` is 0
for a mark-valued slot), ``base`` (margin − cost, or −cost for cross).

- Liquidation: ``t = v + base − m − ε(|v| + |base| + m) − A ≤ 0`` → a candidate
  (bit :data:`LIQ`).
- Warning at ratio ``w`` (equity < w·(MM + fee)), with ``err = ε(|v| + |base| + w·m) +
  A·max(w, 1)``: ``v + base − w·m_lo + err < 0`` is surely below, ``v + base − w·m − err ≥ 0``
  surely not; ``m_lo = |v|·rate_lo + en·erate_lo`` is ``m`` except for tiers with an MM deduction (Binance
  ``cum``), whose exact requirement lies between tier 1's line (``rate_lo``) and ``m``.
  Bit :data:`WARN` is set unless the sure answer agrees with the slot's ``warn`` flag, so
  only changes and near-threshold units reach the exact check.

A cross book sums ``v + base``, ``m`` and ``|v| + |base|`` over its slots and adds its cash;
a book without positions is never a candidate and is surely not below.
"""

from __future__ import annotations

import numpy as np

try:  # numba is optional: the numpy expressions give the same codes, more slowly
    import numba
except ImportError:  # pragma: no cover
    numba = None

LIQ = 1
"""Code bit: a liquidation candidate (exact check follows)."""
WARN = 2
"""Code bit: the warning state may differ from the flag (exact check follows)."""
_BLOCK = 2048


# ---- numpy ----------------------------------------------------------------------------------
def iso_codes_numpy(cls, sk, base, en, warn, pm, rate, rate_lo, erate, erate_lo, w, eps, slack):
    """``(slots, codes)``: the isolated slots with a non-zero code, in slot order."""
    v = sk * pm[cls]
    av, ab = np.abs(v), np.abs(base)
    m = av * rate[cls] + en * erate[cls]
    liq = v + base - m - eps * (av + ab + m) - slack <= 0.0
    err = eps * (av + ab + w * m) + slack * max(w, 1.0)
    below = v + base - w * (av * rate_lo[cls] + en * erate_lo[cls]) + err < 0.0
    above = v + base - w * m - err >= 0.0
    report = np.where(warn != 0, ~below, ~above)
    code = liq.astype(np.int8) | (report.astype(np.int8) << 1)
    hits = np.flatnonzero(code)
    return hits, code[hits]


def cross_codes_numpy(cls, acct, sk, base, en, pm, rate, rate_lo, erate, erate_lo, cash, count,
                      warn, w, eps, slack, equity, scale):
    """``(books, codes)``: the book slots with a non-zero code; writes each book's float
    equity (cash + Σ upl) into ``equity`` and ``|cash| + Σ(|v| + |base|)``, the magnitude its
    rounding errors scale with, into ``scale``."""
    n_acct = len(cash)
    v = sk * pm[cls]
    av = np.abs(v)
    m = av * rate[cls] + en * erate[cls]
    with np.errstate(over="ignore", invalid="ignore"):  # dead slots pile up in book 0
        e = np.bincount(acct, weights=v + base, minlength=n_acct)
        msum = np.bincount(acct, weights=m, minlength=n_acct)
        mlo = np.bincount(acct, weights=av * rate_lo[cls] + en * erate_lo[cls], minlength=n_acct)
        g = np.bincount(acct, weights=av + np.abs(base), minlength=n_acct)
        ac = np.abs(cash)
        equity[:] = cash + e
        scale[:] = ac + g
        live = count > 0
        s = cash - eps * ac + e - msum - eps * (g + msum) - slack * count
        err = eps * (ac + g + w * msum) + slack * max(w, 1.0) * count
        below = cash + e - w * mlo + err < 0.0
        above = cash + e - w * msum - err >= 0.0
        report = np.where(live, np.where(warn != 0, ~below, ~above), warn != 0)
        code = ((s <= 0.0) & live).astype(np.int8) | (report.astype(np.int8) << 1)
    hits = np.flatnonzero(code)
    return hits, code[hits]


# ---- numba (same expressions, fused loops) -----------------------------------------------------
def _iso_code(c, sk, b, e, flag, pm, rate, rate_lo, erate, erate_lo, w, eps,
              slack):  # pragma: no cover
    v = sk * pm[c]
    av, ab = abs(v), abs(b)
    m = av * rate[c] + e * erate[c]
    code = 0
    if v + b - m - eps * (av + ab + m) - slack <= 0.0:
        code = LIQ
    err = eps * (av + ab + w * m) + slack * max(w, 1.0)
    if flag:
        if not (v + b - w * (av * rate_lo[c] + e * erate_lo[c]) + err < 0.0):
            code |= WARN
    elif not (v + b - w * m - err >= 0.0):
        code |= WARN
    return code


def _iso_kernel(cls, sk, base, en, warn, pm, rate, rate_lo, erate, erate_lo, w, eps,
                slack):  # pragma: no cover
    """As :func:`iso_codes_numpy`: a counting pass per block (vectorises), then a collecting
    pass over the blocks that have any."""
    n = cls.shape[0]
    nb = (n + _BLOCK - 1) // _BLOCK
    counts = np.zeros(nb + 1, dtype=np.int64)
    for blk in numba.prange(nb):
        k = 0
        for i in range(blk * _BLOCK, min(n, blk * _BLOCK + _BLOCK)):
            if _iso_code(cls[i], sk[i], base[i], en[i], warn[i], pm, rate, rate_lo, erate, erate_lo,
                         w, eps, slack):
                k += 1
        counts[blk + 1] = k
    offsets = np.cumsum(counts)
    hits = np.empty(offsets[nb], dtype=np.int64)
    codes = np.empty(offsets[nb], dtype=np.int8)
    for blk in numba.prange(nb):
        j = offsets[blk]
        if counts[blk + 1]:
            for i in range(blk * _BLOCK, min(n, blk * _BLOCK + _BLOCK)):
                code = _iso_code(cls[i], sk[i], base[i], en[i], warn[i], pm, rate, rate_lo,
                                 erate, erate_lo, w, eps, slack)
                if code:
                    hits[j] = i
                    codes[j] = code
                    j += 1
    return hits, codes


def _cross_kernel(cls, acct, sk, base, en, pm, rate, rate_lo, erate, erate_lo, cash, count, warn,
                  w, eps, slack, equity, scale, work):  # pragma: no cover
    """As :func:`cross_codes_numpy`: per-chunk sums into ``work[chunk, book, 4]`` (zero on
    entry and on exit: the combining pass clears it), slots sorted by book so the adds walk
    in order."""
    n = cls.shape[0]
    n_chunks, n_acct = work.shape[0], work.shape[1]
    step = (n + n_chunks - 1) // n_chunks
    for ch in numba.prange(n_chunks):
        part = work[ch]
        for i in range(ch * step, min(n, ch * step + step)):
            v = sk[i] * pm[cls[i]]
            av = abs(v)
            a = acct[i]
            part[a, 0] += v + base[i]
            part[a, 1] += av * rate[cls[i]] + en[i] * erate[cls[i]]
            part[a, 2] += av + abs(base[i])
            part[a, 3] += av * rate_lo[cls[i]] + en[i] * erate_lo[cls[i]]
    code = np.zeros(n_acct, dtype=np.int8)
    wslack = slack * max(w, 1.0)
    for a in numba.prange(n_acct):
        e = 0.0
        msum = 0.0
        g = 0.0
        mlo = 0.0
        for ch in range(n_chunks):
            e += work[ch, a, 0]
            msum += work[ch, a, 1]
            g += work[ch, a, 2]
            mlo += work[ch, a, 3]
            for j in range(4):
                work[ch, a, j] = 0.0
        ca = cash[a]
        ac = abs(ca)
        equity[a] = ca + e
        scale[a] = ac + g
        if count[a] > 0:
            s = ca - eps * ac + e - msum - eps * (g + msum) - slack * count[a]
            err = eps * (ac + g + w * msum) + wslack * count[a]
            k = LIQ if s <= 0.0 else 0
            if warn[a]:
                if not (ca + e - w * mlo + err < 0.0):
                    k |= WARN
            elif not (ca + e - w * msum - err >= 0.0):
                k |= WARN
            code[a] = k
        elif warn[a]:
            code[a] = WARN
    hits = np.flatnonzero(code)
    return hits, code[hits]


KERNELS: dict[bool, tuple] = {}
"""``{parallel: (isolated kernel, cross kernel)}``; empty without numba."""
if numba is not None:
    _iso_code = numba.njit(inline="always")(_iso_code)
    # serial by default: on the 2-core VM an OpenMP launch can cost milliseconds (bench notes)
    KERNELS[True] = (numba.njit(parallel=True)(_iso_kernel), numba.njit(parallel=True)(_cross_kernel))
    KERNELS[False] = (numba.njit(cache=True)(_iso_kernel), numba.njit(cache=True)(_cross_kernel))
