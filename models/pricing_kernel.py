"""The numeric kernel of guarantee pricing: present values over a loan's periods.

For each loan (timing and units as in :mod:`models.pricing`): periods ``t = 1..ceil(T)``
cover ``[t-1, min(t, T)]``; ``f_t`` is the outstanding share of the original amount at the
period's start (bullet 1, linear ``1 - (t-1)/T``, annuity ``(1 - v^(T-t+1)) / (1 - v^T)``
with ``v = 1/(1+r)``, linear when ``r = 0``); survival ``S(tau) = (1-PD)^tau``, or from a
curve of cumulative PDs at whole years with a constant hazard within each year:
``S(end_t) = S(t-1) (S(t) / S(t-1))^len_t`` with ``S(t) = 1 - cum_pd[t-1]``; ``DF(tau) = (1+d)^-tau``.

* ``el_pv = sum_t (S(t-1) - S(end_t)) f_t w_el DF(end_t)`` (currency units),
* ``coc_pv = sum_t S(t-1) f_t len_t w_coc DF(end_t)`` (currency units),
* ``base_pv = sum_t S(t-1) f_t len_t DF(t-1)`` (years, per unit of covered amount),
* ``base_nominal = sum_t f_t len_t`` (years, per unit of covered amount, no default),
* ``survival = S(T)``.

:func:`pricing_kernel` is the vectorised kernel (loans sorted by tenor, in-place ufuncs,
no per-period allocations: about a second for a million loans); :func:`reference_kernel`
is the same sum written loan by loan, period by period, in plain Python, which tests
compare it with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class KernelResult:
    """Per-loan sums of the kernel (see the module docstring for units)."""

    el_pv: np.ndarray
    coc_pv: np.ndarray
    base_pv: np.ndarray
    base_nominal: np.ndarray
    survival: np.ndarray


def pricing_kernel(p: np.ndarray, tenor: np.ndarray, code: np.ndarray, rate: np.ndarray, w_el: np.ndarray,
                   w_coc: np.ndarray, discount_rate: float, cumulative_pd: Any = None) -> KernelResult:
    """Vectorised kernel. ``code``: 0 bullet, 1 linear, 2 annuity; ``w_el`` = coverage x
    LGD x (1 - s) x amount, ``w_coc`` = hurdle x K x coverage x (1 - s) x amount;
    ``cumulative_pd`` (n, ceil(max T)) or None for a constant hazard."""
    n = p.size
    n_periods = int(math.ceil(float(tenor.max())))
    # Sort loans by decreasing tenor so the loans still running in period t are a prefix
    # (slices are views: no gathers in the period loop); results are unsorted at the end.
    order = np.argsort(-tenor, kind="stable")
    ten_s = tenor[order]
    n_live = np.searchsorted(-ten_s, -np.arange(n_periods, dtype=float), side="left")  # count tenor > t-1
    log_q = np.log1p(-p)[order]
    log1r = np.log1p(rate)[order]
    code_s = code[order]
    use_annuity = (code_s == 2) & (rate[order] > 1e-12)
    ann_denom = np.where(use_annuity, -np.expm1(-ten_s * log1r), 1.0)
    w_el_s = w_el[order]
    w_coc_s = w_coc[order]
    cum_s = None if cumulative_pd is None else np.asarray(cumulative_pd, dtype=float)[order]
    inv_t = 1.0 / ten_s
    is_bullet = code_s == 0
    el_s = np.zeros(n)
    coc_s = np.zeros(n)
    base_s = np.zeros(n)
    nominal_s = np.zeros(n)
    surv_s = np.ones(n)
    log_df = math.log1p(discount_rate)
    b_end, b_len, b_frac, b_s1, b_df, b_tmp, b_ey = (np.empty(n) for _ in range(7))
    for t in range(1, n_periods + 1):
        m = int(n_live[t - 1])
        live = slice(0, m)
        end, length, frac, s1, dfe, tmp, ey = (b[:m] for b in (b_end, b_len, b_frac, b_s1, b_df, b_tmp, b_ey))
        np.minimum(ten_s[live], float(t), out=end)
        np.subtract(end, t - 1, out=length)
        # remaining share: bullet 1, linear (T - (t-1)) / T, annuity (1 - v^(T-t+1)) / (1 - v^T)
        np.multiply(inv_t[live], -(t - 1), out=frac)
        frac += 1.0
        np.copyto(frac, 1.0, where=is_bullet[live])
        ua = use_annuity[live]
        if ua.any():
            np.subtract(ten_s[live], t - 1, out=tmp)
            tmp *= log1r[live]
            np.negative(tmp, out=tmp)
            np.expm1(tmp, out=tmp)
            np.negative(tmp, out=tmp)
            tmp /= ann_denom[live]
            np.copyto(frac, tmp, where=ua)
        s0 = surv_s[live]
        if cum_s is None:
            np.multiply(end, log_q[live], out=s1)
            np.exp(s1, out=s1)
        else:  # constant hazard within the year: S(t-1) * (S(t) / S(t-1)) ** length
            np.subtract(1.0, cum_s[live, t - 1], out=s1)
            np.divide(s1, s0, out=tmp, where=s0 > 0)
            np.copyto(tmp, 0.0, where=s0 <= 0)
            np.power(tmp, length, out=tmp)
            np.multiply(s0, tmp, out=s1)
        np.multiply(end, -log_df, out=dfe)
        np.exp(dfe, out=dfe)
        df_start = math.exp(-(t - 1) * log_df)
        np.subtract(s0, s1, out=tmp)
        tmp *= frac
        tmp *= w_el_s[live]
        tmp *= dfe
        el_s[live] += tmp
        np.multiply(s0, frac, out=ey)
        ey *= length
        np.multiply(ey, w_coc_s[live], out=tmp)
        tmp *= dfe
        coc_s[live] += tmp
        np.multiply(ey, df_start, out=tmp)
        base_s[live] += tmp
        np.multiply(frac, length, out=tmp)
        nominal_s[live] += tmp
        s0[...] = s1
    res = [np.empty(n) for _ in range(5)]
    for dst, src in zip(res, (el_s, coc_s, base_s, nominal_s, surv_s), strict=True):
        dst[order] = src
    return KernelResult(*res)


def reference_kernel(p: np.ndarray, tenor: np.ndarray, code: np.ndarray, rate: np.ndarray, w_el: np.ndarray,
                     w_coc: np.ndarray, discount_rate: float, cumulative_pd: Any = None) -> KernelResult:
    """The kernel's sums written out loan by loan and period by period (slow; for tests)."""
    n = len(p)
    out = [np.zeros(n) for _ in range(5)]
    for i in range(n):
        T, r, q = float(tenor[i]), float(rate[i]), 1.0 - float(p[i])
        el = coc = base = nominal = 0.0
        surv_start = 1.0
        for t in range(1, math.ceil(T) + 1):
            start, end = t - 1.0, min(float(t), T)
            length = end - start
            if code[i] == 0:
                share = 1.0
            elif code[i] == 2 and r > 1e-12:
                v = 1.0 / (1.0 + r)
                share = (1.0 - v ** (T - start)) / (1.0 - v ** T)
            else:
                share = (T - start) / T
            if cumulative_pd is None:
                surv_end = q ** end
            else:
                surv_year = 1.0 - float(cumulative_pd[i][t - 1])
                surv_end = surv_start * (surv_year / surv_start) ** length if surv_start > 0 else 0.0
            df_end = (1.0 + discount_rate) ** -end
            el += (surv_start - surv_end) * share * float(w_el[i]) * df_end
            coc += surv_start * share * length * float(w_coc[i]) * df_end
            base += surv_start * share * length * (1.0 + discount_rate) ** -start
            nominal += share * length
            surv_start = surv_end
        for arr, v in zip(out, (el, coc, base, nominal, surv_start), strict=True):
            arr[i] = v
    return KernelResult(*out)
