"""Synthetic SME credit data with known truth: submissions for several banks plus answers.

Model (all vectorised over firms, one loop over years):

* each firm has a persistent latent credit quality ``q`` (AR(1) over years, stationary
  N(0, 1)), an ISIC industry, a region (Japanese postal code), a size and an age;
* a common business cycle ``c_t`` (AR(1), shared by all firms) moves growth, profits
  and default probabilities;
* the true one-year PD of each firm-year is ``logistic(a + b_q q + b_c c_t + industry
  + size + age)``, with ``a`` calibrated so the mean annual PD is about 2 %;
* financial statements are derived from ``q`` with firm-level and yearly noise, so
  ratios (equity ratio, ROA, debt/sales, liquidity, coverage, growth) are informative
  but imperfect; accounting identities hold exactly in whole JPY;
* a firm with a statement for fiscal year end ``F`` defaults with probability PD
  strictly inside ``(F + 3 months, F + 15 months)`` (end of month; the 3 months is
  the reporting lag) and then leaves: it produces no further statements.

Amounts are JPY (currency units); interest rates are fractions per annum; PD is
over one year. Columns follow ``pipelines.dictionary`` exactly.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from pipelines import dictionary as dd
from pipelines import synth_params as P

REPORTING_LAG_MONTHS = 3
WINDOW_MONTHS = 12


@dataclass
class SynthData:
    """Generated submissions (per bank) and the ground truth.

    ``statements`` / ``loans`` / ``defaults`` map a bank code to a DataFrame in the
    canonical columns of ``pipelines.dictionary``; ``answers`` has one row per
    submitted statement (bank, borrower_key, fiscal_year_end) with the true PD;
    ``errors`` maps a bank code to the injected errors (row, column, kind).
    """

    institutions: pd.DataFrame
    statements: dict[str, pd.DataFrame]
    loans: dict[str, pd.DataFrame]
    defaults: dict[str, pd.DataFrame]
    answers: pd.DataFrame
    errors: dict[str, pd.DataFrame] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- dates
def _eom(months: np.ndarray) -> np.ndarray:
    """Last day of the month, for months counted since 1970-01 (datetime64[M] as int)."""
    next_month = (np.asarray(months, dtype="int64") + 1).astype("datetime64[M]")
    return next_month.astype("datetime64[D]") - np.timedelta64(1, "D")


def _month_index(year: np.ndarray | int, month: np.ndarray | int) -> np.ndarray:
    return (np.asarray(year, dtype="int64") - 1970) * 12 + np.asarray(month, dtype="int64") - 1


def _iso(days: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """ISO strings for datetime64[D]; None where ``mask`` is False."""
    out = np.datetime_as_string(np.asarray(days, dtype="datetime64[D]"), unit="D").astype(object)
    if mask is not None:
        out[~mask] = None
    return out


def last_window_end(start_year: int, years: int) -> dt.date:
    """Latest possible default date of a simulation: December year-ends + 15 months."""
    last = _eom(_month_index(start_year + years - 1, 12) + REPORTING_LAG_MONTHS + WINDOW_MONTHS)
    return cast(dt.date, last.astype(dt.date))


def effective_years(start_year: int, years: int, today: dt.date | None = None) -> int:
    """Years actually simulated: clipped so that no date lies after ``today``."""
    today = today or dt.date.today()
    while years > 0 and last_window_end(start_year, years) > today:
        years -= 1
    return years


# ----------------------------------------------------------------------------- firms
def _logistic(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def corporate_check_digit(base: np.ndarray) -> np.ndarray:
    """Leading check digit of Japanese 13-digit corporate numbers (NTA specification).

    ``base`` holds the 12-digit numbers; check = 9 - (sum_i P_i Q_i mod 9), P_i the i-th
    digit counted from the right, Q_i = 1 for odd i and 2 for even i.
    """
    b = np.asarray(base, dtype=np.int64).copy()
    total = np.zeros(b.shape, dtype=np.int64)
    for i in range(1, 13):
        total += (b % 10) * (1 if i % 2 else 2)
        b //= 10
    return 9 - total % 9


def _corporate_numbers(n: int, rng: np.random.Generator) -> np.ndarray:
    """Distinct 13-digit corporate numbers (random base, valid check digit), as strings."""
    draws = rng.integers(0, 10**12, n + n // 10 + 16)
    _, first = np.unique(draws, return_index=True)
    base = draws[np.sort(first)[:n]]  # distinct, in draw order
    num = corporate_check_digit(base) * 10**12 + base
    return np.char.zfill(num.astype(str), 13).astype(object)


def _pick(rng: np.random.Generator, options: tuple[str, ...] | list[str], n: int) -> np.ndarray:
    return np.asarray(options, dtype=object)[rng.integers(0, len(options), n)]


@dataclass
class _Firms:
    n: int
    industry: np.ndarray
    ind_idx: np.ndarray
    region_idx: np.ndarray
    fiscal_month: np.ndarray
    entry_year: np.ndarray  # index of the first simulated year with a statement
    established: np.ndarray  # datetime64[D]
    log_sales0: np.ndarray
    fe: np.ndarray  # (n, 6) persistent firm effects of the ratios
    pii: dict[str, np.ndarray]
    postal_code: np.ndarray
    corporate_number: np.ndarray
    bank1: np.ndarray
    bank2: np.ndarray  # -1 when single-banked


def _make_firms(n: int, banks: int, start_year: int, years: int, rng: np.random.Generator) -> _Firms:
    codes = list(P.INDUSTRIES)
    shares = np.array([P.INDUSTRIES[c][0] for c in codes])
    ind_idx = rng.choice(len(codes), size=n, p=shares / shares.sum())
    industry = np.asarray(codes, dtype=object)[ind_idx]

    regions = list(P.REGIONS)
    rshares = np.array([P.REGIONS[r][2] for r in regions])
    region_idx = rng.choice(len(regions), size=n, p=rshares / rshares.sum())
    lo = np.array([P.REGIONS[r][0] for r in regions])[region_idx]
    hi = np.array([P.REGIONS[r][1] for r in regions])[region_idx]
    prefix = lo + (rng.random(n) * (hi - lo + 1)).astype(np.int64)
    tail = rng.integers(0, 10000, n)
    postal = np.array([f"{p:03d}-{t:04d}" for p, t in zip(prefix.tolist(), tail.tolist(), strict=False)], dtype=object)

    fiscal_month = rng.choice(P.FISCAL_MONTHS, size=n, p=P.FISCAL_MONTH_SHARES / P.FISCAL_MONTH_SHARES.sum())
    late = rng.random(n) < P.LATE_ENTRY_SHARE
    entry_year = np.where(late & (years > 1), rng.integers(1, max(years, 2), n), 0)

    # age at first statement: lognormal, median 18 years, at least 1 year
    age_years = np.clip(np.exp(rng.normal(np.log(18.0), 0.8, n)), 1.0, 90.0)
    first_fye_month = _month_index(start_year + entry_year, fiscal_month)
    est = _eom(first_fye_month).astype("int64") - (age_years * 365.25).astype(np.int64)
    established = est.astype("datetime64[D]")

    log_sales0 = np.log(P.SALES_MEDIAN) + P.SALES_LOG_SD * np.clip(rng.standard_normal(n), -2.4, 2.4)
    fe = rng.standard_normal((n, 6))

    width = max(6, len(str(n)))
    ids = rng.permutation(n) + 1  # name numbers unrelated to the answers' firm_ref
    names = _pick(rng, [f"{{}} {s}" for s in P.SUFFIXES], n)
    firm_name = np.array([t.format(f"Firm {i:0{width}d}") for t, i in zip(names.tolist(), ids.tolist(), strict=False)], dtype=object)
    town = _pick(rng, P.TOWNS, n)
    blk = rng.integers(1, 10, (n, 3))
    pref = np.asarray(regions, dtype=object)[region_idx]
    address = np.array([f"{a}-{b}-{c} {t}, {p}" for a, b, c, t, p in
                        zip(blk[:, 0].tolist(), blk[:, 1].tolist(), blk[:, 2].tolist(), town.tolist(), pref.tolist(), strict=False)],
                       dtype=object)
    given, family = _pick(rng, P.GIVEN_NAMES, n).tolist(), _pick(rng, P.SURNAMES, n).tolist()
    rep = np.array([f"{g} {s}" for g, s in zip(given, family, strict=False)], dtype=object)
    area = np.array([P.REGIONS[r][3] for r in regions], dtype=object)[region_idx]
    local_len = 10 - np.array([len(a) for a in area.tolist()])
    mid = rng.integers(0, 10**4, n)
    last = rng.integers(0, 10**4, n)
    phone = np.array([f"{a}-{m % 10**(k - 4):0{k - 4}d}-{x:04d}" for a, m, x, k in
                      zip(area.tolist(), mid.tolist(), last.tolist(), local_len.tolist(), strict=False)], dtype=object)

    corp = _corporate_numbers(n, rng)
    corp[rng.random(n) < P.FIRM_MISSING_SHARES["corporate_number"]] = None
    postal[rng.random(n) < P.FIRM_MISSING_SHARES["postal_code"]] = None

    # bank relationships: larger banks (lower numbers) hold more firms
    bw = 1.0 / np.sqrt(np.arange(1, banks + 1))
    bank1 = rng.choice(banks, size=n, p=bw / bw.sum())
    bank2 = np.full(n, -1)
    if banks > 1:
        dual = rng.random(n) < P.DUAL_BANK_SHARE
        other = (bank1 + rng.integers(1, banks, n)) % banks
        bank2 = np.where(dual, other, -1)
    return _Firms(n, industry, ind_idx, region_idx, fiscal_month, entry_year, established, log_sales0, fe,
                  {"firm_name": firm_name, "address": address, "representative": rep, "phone": phone},
                  postal, corp, bank1, bank2)


# ----------------------------------------------------------------------------- latent paths
def _intercept(extra_var: float) -> float:
    """Logit intercept giving mean PD = TARGET_DEFAULT_RATE for a N(0, extra_var) linear term.

    Uses the probit approximation E[logistic(a + sZ)] ~ Phi(a / sqrt(1.702^2 + s^2)).
    """
    from statistics import NormalDist

    return float(NormalDist().inv_cdf(P.TARGET_DEFAULT_RATE) * np.sqrt(1.702**2 + extra_var))


def _latent(f: _Firms, start_year: int, years: int,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Latent quality q (n, Y), cycle c (Y,), true one-year PD (n, Y)."""
    n = f.n
    q = np.empty((n, years))
    q[:, 0] = rng.standard_normal(n)
    s = np.sqrt(1 - P.QUALITY_AR**2)
    for t in range(1, years):
        q[:, t] = P.QUALITY_AR * q[:, t - 1] + s * rng.standard_normal(n)
    c = np.empty(years)
    c[0] = rng.standard_normal()
    for t in range(1, years):
        c[t] = P.CYCLE_AR * c[t - 1] + np.sqrt(1 - P.CYCLE_AR**2) * rng.standard_normal()
    if years > 1:  # the cycle varies around a neutral average over the simulated period
        c -= c.mean()
    c = np.clip(c, -2.0, 2.0)

    effects = np.array([v[1] for v in P.INDUSTRIES.values()])
    shares = np.array([v[0] for v in P.INDUSTRIES.values()])
    ind_eff = effects[f.ind_idx]
    size_z = (f.log_sales0 - np.log(P.SALES_MEDIAN)) / P.SALES_LOG_SD
    est_year = f.established.astype("datetime64[Y]").astype(np.int64) + 1970
    ind_var = float(np.average(effects**2, weights=shares))
    a = _intercept(P.QUALITY_LOADING**2 + P.CYCLE_LOADING**2 + P.SIZE_LOADING**2 + ind_var)
    pd_ = np.empty((n, years))
    for t in range(years):
        young = est_year > start_year + t - 5
        logit = (a + P.QUALITY_LOADING * q[:, t] + P.CYCLE_LOADING * c[t] + ind_eff
                 + P.SIZE_LOADING * size_z + P.YOUNG_FIRM_EFFECT * young)
        pd_[:, t] = _logistic(logit)
    return q, c, pd_


# ----------------------------------------------------------------------------- statements
def _financials(f: _Firms, q: np.ndarray, c: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """All statement amounts as (n, Y) int64 arrays; identities hold exactly."""
    n, years = q.shape
    ind = list(P.INDUSTRIES.values())
    turn_i = np.array([v[2] for v in ind])[f.ind_idx][:, None]
    gm_i = np.array([v[3] for v in ind])[f.ind_idx][:, None]
    ca_i = np.array([v[4] for v in ind])[f.ind_idx][:, None]
    spe_i = np.array([v[5] for v in ind])[f.ind_idx][:, None]
    inv_heavy = np.isin(f.industry, ["C", "G", "F", "A", "B", "L"])[:, None]
    fe = f.fe
    z = lambda: rng.standard_normal((n, years))  # noqa: E731

    dq = np.diff(q, axis=1, prepend=q[:, :1])
    growth = 0.01 + 0.03 * c[None, :] + 0.08 * dq + 0.02 * fe[:, 5:6] + 0.07 * z()
    growth[:, 0] = 0.0
    sales_f = np.clip(np.exp(f.log_sales0[:, None] + np.cumsum(growth, axis=1)), P.SALES_MIN, P.SALES_MAX)
    sales = np.rint(sales_f).astype(np.int64)

    turnover = turn_i * np.exp(0.25 * fe[:, 2:3] + 0.10 * z())
    ta = np.maximum(np.rint(sales_f / turnover), 1_000_000).astype(np.int64)
    er = np.clip(0.27 + 0.16 * q + 0.02 * c[None, :] + 0.09 * fe[:, 0:1] + 0.08 * z(), -0.8, 0.92)
    na = np.rint(er * ta).astype(np.int64)
    tl = ta - na

    roa = np.clip(0.022 + 0.028 * q + 0.01 * c[None, :] + 0.012 * fe[:, 1:2] + 0.018 * z(), -0.4, 0.35)
    ordinary = np.clip(np.rint(roa * ta), -0.6 * sales, 0.4 * sales).astype(np.int64)
    ibd_share = np.clip(0.62 - 0.12 * q + 0.08 * fe[:, 4:5] + 0.08 * z(), 0.0, 0.97)
    ibd = np.floor(tl * ibd_share).astype(np.int64)
    rate = np.clip(0.014 - 0.004 * q + 0.002 * z(), 0.003, 0.06)
    interest = np.rint(ibd * rate).astype(np.int64)
    nonop = np.rint(np.abs(z()) * 0.004 * sales).astype(np.int64)
    op = ordinary + interest - nonop
    gm = np.clip(gm_i + 0.04 * q + 0.05 * z(), 0.05, 0.9)
    gross = np.maximum(gm * sales, np.maximum(op, 0) / 0.9)
    cogs = np.clip(np.rint(sales - gross), 0, None).astype(np.int64)
    tax = np.rint(0.3 * np.maximum(ordinary, 0)).astype(np.int64)
    extra = np.where(rng.random((n, years)) < 0.2, np.rint(0.01 * sales * z()), 0).astype(np.int64)
    net_income = ordinary - tax + extra

    ca_share = np.clip(ca_i + 0.03 * q + 0.06 * fe[:, 3:4] + 0.05 * z(), 0.05, 0.97)
    ca = np.minimum(np.rint(ta * ca_share), ta).astype(np.int64)
    fa = ta - ca
    w_cash = rng.gamma(2.5, size=(n, years)) * np.exp(0.25 * q)
    w_rec = rng.gamma(2.5, size=(n, years))
    w_inv = rng.gamma(1.5, size=(n, years)) * np.where(inv_heavy, 1.2, 0.3)
    w_oth = rng.gamma(1.0, size=(n, years)) * 0.8
    wsum = w_cash + w_rec + w_inv + w_oth
    cash = np.floor(ca * (w_cash / wsum)).astype(np.int64)
    rec = np.floor(ca * (w_rec / wsum)).astype(np.int64)
    inv = np.floor(ca * (w_inv / wsum)).astype(np.int64)
    cl_share = np.clip(0.45 - 0.06 * q + 0.10 * z(), 0.05, 1.0)
    cl = np.minimum(np.rint(tl * cl_share), tl).astype(np.int64)
    dep = np.rint(fa * np.clip(0.07 + 0.02 * z(), 0.005, 0.3)).astype(np.int64)
    emp = np.maximum(1, np.rint(sales_f / (spe_i * np.exp(0.3 * fe[:, 5:6] * 0.5 + 0.05 * z())))).astype(np.int64)
    return {
        "employees": emp, "sales": sales, "cost_of_sales": cogs, "operating_profit": op,
        "ordinary_profit": ordinary, "net_income": net_income, "interest_expense": interest,
        "depreciation": dep, "cash": cash, "receivables": rec, "inventory": inv, "current_assets": ca,
        "fixed_assets": fa, "total_assets": ta, "current_liabilities": cl, "interest_bearing_debt": ibd,
        "total_liabilities": tl, "net_assets": na,
    }


#: ISIC section -> (class codes, shares) for ``isic_code``; the SME rules that need more than
#: the section (Japan: wholesale G46 / retail G47 / restaurants I56 / hotels I55 / software J62,
#: rubber C221) then have it.
ISIC_CLASSES: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "G": (("4610", "4690", "4711", "4719", "4530"), (0.25, 0.20, 0.30, 0.15, 0.10)),
    "C": (("1010", "2211", "2599", "2910", "1410"), (0.25, 0.05, 0.35, 0.15, 0.20)),
    "I": (("5510", "5610"), (0.25, 0.75)),
    "J": (("6201", "6311", "5811"), (0.5, 0.3, 0.2)),
}


def _sme_inputs(f: _Firms, fin: dict[str, np.ndarray],
                rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Paid-up capital, land and buildings (n, Y int64) and each firm's ISIC class code.

    Capital is set at the first year (lognormal around 2 % of sales, at least 1 million)
    and kept; land and buildings are firm-specific shares of fixed assets (together at
    most 80 %; a quarter of firms own no land).
    """
    n: int
    years: int
    n, years = fin["sales"].shape
    cap = np.clip(np.exp(np.log(0.02 * fin["sales"][:, 0].astype(float)) + 0.7 * rng.standard_normal(n)),
                  1e6, 1e10)
    paid_up = np.repeat(np.rint(cap / 1e5).astype(np.int64)[:, None] * 100_000, years, axis=1)
    land_share = np.where(rng.random(n) < 0.25, 0.0, rng.uniform(0.0, 0.45, n))
    bld_share = rng.uniform(0.0, 0.35, n)
    fa = fin["fixed_assets"].astype(float)
    land = np.floor(fa * land_share[:, None]).astype(np.int64)
    buildings = np.floor(fa * bld_share[:, None]).astype(np.int64)
    isic = np.full(n, None, dtype=object)
    for section, (codes, shares) in ISIC_CLASSES.items():
        sel = np.nonzero(f.industry == section)[0]
        if len(sel):
            p = np.asarray(shares) / np.sum(shares)
            isic[sel] = np.asarray(codes, dtype=object)[rng.choice(len(codes), size=len(sel), p=p)]
    return {"paid_up_capital": paid_up, "land": land, "buildings": buildings}, isic


def _add_months(days: np.ndarray, months: np.ndarray | int) -> np.ndarray:
    """Calendar month arithmetic on datetime64[D]; the day is clipped to the month's end."""
    days = np.asarray(days, dtype="datetime64[D]")
    m = days.astype("datetime64[M]")
    dom = (days - m.astype("datetime64[D]")).astype(np.int64)
    tm = m + np.asarray(months).astype("timedelta64[M]")
    last = ((tm + 1).astype("datetime64[D]") - tm.astype("datetime64[D]")).astype(np.int64) - 1
    return tm.astype("datetime64[D]") + np.minimum(dom, last).astype("timedelta64[D]")


def _months_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whole months elapsed from date a to date b (>= 0)."""
    am, bm = a.astype("datetime64[M]"), b.astype("datetime64[M]")
    k = (bm - am).astype(np.int64)
    adom = (a - am.astype("datetime64[D]")).astype(np.int64)
    bdom = (b - bm.astype("datetime64[D]")).astype(np.int64)
    return np.maximum(k - (bdom < adom), 0)


def outstanding_principal(amount: np.ndarray, annual_rate: np.ndarray, n_months: np.ndarray,
                          elapsed: np.ndarray, amortization: np.ndarray) -> np.ndarray:
    """Outstanding principal (currency units) after ``elapsed`` monthly instalments.

    ``annuity``: level payments at monthly rate r = annual_rate / 12,
    B_k = A ((1+r)^n - (1+r)^k) / ((1+r)^n - 1); ``linear``: A (1 - k/n);
    ``bullet``: A until maturity. Zero from maturity on.
    """
    amount = np.asarray(amount, dtype=float)
    k = np.minimum(np.asarray(elapsed, dtype=float), n_months)
    n = np.asarray(n_months, dtype=float)
    r = np.asarray(annual_rate, dtype=float) / 12.0
    g_n, g_k = (1 + r) ** n, (1 + r) ** k
    with np.errstate(invalid="ignore", divide="ignore"):
        ann = np.where(r > 0, amount * (g_n - g_k) / (g_n - 1), amount * (1 - k / n))
    lin = amount * (1 - k / n)
    bul = np.where(k < n, amount, 0.0)
    out = np.select([amortization == "annuity", amortization == "linear"], [ann, lin], bul)
    return np.where(k >= n, 0.0, out)


# ----------------------------------------------------------------------------- assembly
def _int_array(values: np.ndarray, missing: np.ndarray | None = None) -> pd.arrays.IntegerArray:
    values = np.asarray(values, dtype=np.int64)
    mask = np.zeros(len(values), dtype=bool) if missing is None else missing
    return pd.arrays.IntegerArray(values, mask)


def _str_array(values: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """Object array of str/None as a pandas string array (fast ``take``)."""
    return pd.array(values, dtype="str")


def _bank_codes(banks: int) -> list[str]:
    return [f"BK{b + 1}" for b in range(banks)]


def generate(firms: int, years: int, banks: int, seed: int, start_year: int = 2015,
             error_rate: float = 0.0, today: dt.date | None = None) -> SynthData:
    """Generate submissions of ``banks`` banks about ``firms`` SMEs over ``years`` fiscal years.

    Fiscal years end in calendar years ``start_year .. start_year + years - 1``; the
    number of years is clipped so that no generated date (default dates, statement
    dates, loan originations, the as-of date of outstanding balances) lies after
    ``today`` (default: the real date). ``error_rate`` is the share of statement rows
    (per bank) that get one injected error each. Same arguments -> identical data.
    """
    if firms < 1 or banks < 1 or years < 1:
        raise ValueError("firms, years and banks must be at least 1")
    if not 0.0 <= error_rate <= 1.0:
        raise ValueError("error_rate must be between 0 and 1")
    requested = years
    eff_years = effective_years(start_year, years, today)
    if eff_years < 1:
        raise ValueError(f"start_year {start_year} leaves no fiscal year whose default window has ended by today")
    years = eff_years
    as_of = np.datetime64(last_window_end(start_year, years), "D")
    ss = np.random.SeedSequence(seed)
    r_firm, r_lat, r_fin, r_def, r_bank, r_loan, r_err = (np.random.default_rng(s) for s in ss.spawn(7))

    f = _make_firms(firms, banks, start_year, years, r_firm)
    q, _cycle, pd_true = _latent(f, start_year, years, r_lat)
    fin = _financials(f, q, _cycle, r_fin)
    # the SME-definition inputs come from their own stream: the other columns stay as they were
    extra, isic = _sme_inputs(f, fin, np.random.default_rng([seed, 15]))
    fin.update(extra)

    # --- defaults, year by year
    n = firms
    fye_m = _month_index(start_year + np.arange(years)[None, :], f.fiscal_month[:, None])  # (n, Y)
    avail = _eom(fye_m + REPORTING_LAG_MONTHS)
    wend = _eom(fye_m + REPORTING_LAG_MONTHS + WINDOW_MONTHS)
    span = (wend - avail).astype(np.int64)
    u = r_def.random((n, years))
    offs = r_def.integers(1, span)  # strictly inside (avail, wend)
    exists = np.zeros((n, years), dtype=bool)
    dflt = np.zeros((n, years), dtype=bool)
    alive = np.ones(n, dtype=bool)
    for t in range(years):
        exists[:, t] = alive & (t >= f.entry_year)
        dflt[:, t] = exists[:, t] & (u[:, t] < pd_true[:, t])
        alive &= ~dflt[:, t]
    ddate_mat = avail + offs.astype("timedelta64[D]")
    firm_defaulted = np.asarray(dflt.any(axis=1))
    firm_ddate = np.where(firm_defaulted, ddate_mat[np.arange(n), dflt.argmax(axis=1)], as_of)

    # --- firm-year panel, firm-major; text columns are taken from firm-level arrays
    fi, ti = np.nonzero(exists)
    nr = len(fi)
    row_missing = {k: r_fin.random(nr) < s for k, s in P.MISSING_SHARES.items()}
    est_missing = r_fin.random(n) < P.FIRM_MISSING_SHARES["established"]
    m0 = int(fye_m.min())
    fye_lookup = _str_array(_iso(_eom(np.arange(m0, int(fye_m.max()) + 1))))
    fye_idx = fye_m[fi, ti] - m0
    consts = {"country": "JP", "currency": "JPY"}
    firm_text = {  # firm-level text, taken per bank by firm index
        "corporate_number": _str_array(f.corporate_number),
        **{k: _str_array(v) for k, v in f.pii.items()},
        "postal_code": _str_array(f.postal_code),
        "industry": _str_array(f.industry),
        "established": _str_array(_iso(f.established, ~est_missing)),
        "isic_code": _str_array(isic),
    }
    row_int = {"months": (np.full(nr, 12, dtype=np.int64), row_missing["months"])}
    for k, mat in fin.items():
        row_int[k] = (mat[fi, ti], row_missing.get(k, np.zeros(nr, dtype=bool)))
    stmt_cols = dd.names("statements")

    def bank_rows(sel: np.ndarray, keys: pd.api.extensions.ExtensionArray) -> pd.DataFrame:
        cols: dict[str, Any] = {}
        for c in stmt_cols:
            if c == "borrower_key":
                cols[c] = keys
            elif c in firm_text:
                cols[c] = firm_text[c].take(fi[sel])
            elif c == "fiscal_year_end":
                cols[c] = fye_lookup.take(fye_idx[sel])
            elif c in consts:
                cols[c] = _str_array(np.array([consts[c]], dtype=object)).take(np.zeros(len(sel), dtype=np.int64))
            else:
                v, miss = row_int[c]
                cols[c] = _int_array(v[sel], miss[sel])
        return pd.DataFrame(cols, copy=False)

    row_dflt = dflt[fi, ti]
    row_pd = pd_true[fi, ti]
    ddate_str = np.full(nr, None, dtype=object)
    ddate_str[row_dflt] = _iso(ddate_mat[fi[row_dflt], ti[row_dflt]])
    width = max(7, len(str(n)))
    firm_refs = _str_array(np.array([f"F{x:0{width}d}" for x in range(1, n + 1)], dtype=object))

    # --- per bank: borrower keys (bank's own customer numbers), statements, answers
    codes = _bank_codes(banks)
    statements: dict[str, pd.DataFrame] = {}
    answers_parts = []
    bkeys: list[np.ndarray] = []
    for b, code in enumerate(codes):
        in_bank = (f.bank1 == b) | (f.bank2 == b)
        cust = np.zeros(n, dtype=np.int64)
        cust[in_bank] = r_bank.permutation(int(in_bank.sum())) + 1
        keys = np.full(n, None, dtype=object)
        keys[in_bank] = [f"{code}-C{x:0{width}d}" for x in cust[in_bank].tolist()]
        bkeys.append(keys)
        sel = np.nonzero(in_bank[fi])[0]
        sel = sel[np.lexsort((ti[sel], cust[fi[sel]]))]
        bk = _str_array(keys).take(fi[sel])
        df = bank_rows(sel, bk)
        statements[code] = df
        answers_parts.append(pd.DataFrame({
            "firm_ref": firm_refs.take(fi[sel]),
            "bank": code,
            "borrower_key": bk,
            "primary": (f.bank1[fi[sel]] == b).astype(np.int64),
            "corporate_number": df["corporate_number"].array,
            "fiscal_year_end": df["fiscal_year_end"].array,
            "true_pd": np.round(row_pd[sel], 8),
            "defaulted_within_window": row_dflt[sel].astype(np.int64),
            "default_date": _str_array(ddate_str[sel]),
        }))
    answers = pd.concat(answers_parts, ignore_index=True)

    loans, defaults = _loans_and_defaults(f, codes, bkeys, pd_true, firm_defaulted, firm_ddate, as_of,
                                          start_year, years, r_loan)
    errors: dict[str, pd.DataFrame] = {}
    if error_rate > 0:
        for code in codes:
            statements[code], errors[code] = inject_errors(statements[code], error_rate, r_err)

    institutions = pd.DataFrame({"code": codes, "name": [f"Synthetic Regional Bank {b + 1}" for b in range(banks)],
                                 "kind": "bank", "country": "JP"})
    meta = {"firms": firms, "years": years, "years_requested": requested,
            "banks": banks, "seed": seed, "start_year": start_year, "error_rate": error_rate,
            "as_of": str(as_of), "cycle": [round(float(x), 4) for x in _cycle]}
    return SynthData(institutions, statements, loans, defaults, answers, errors, meta)


def _loans_and_defaults(f: _Firms, codes: list[str], bkeys: list[np.ndarray], pd_true: np.ndarray,
                        firm_defaulted: np.ndarray, firm_end: np.ndarray, as_of: np.datetime64,
                        start_year: int, years: int,
                        rng: np.random.Generator) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """Loans (1-3 per firm and bank) and default events (one per defaulted firm and bank).

    Outstanding is the amortised principal at the as-of date, or at the default date
    for defaulted borrowers; exposure at default is the sum over the firm's loans at
    that bank.
    """
    n = f.n
    rel_firm = np.concatenate([np.arange(n), np.nonzero(f.bank2 >= 0)[0]])
    rel_bank = np.concatenate([f.bank1, f.bank2[f.bank2 >= 0]])
    k = rng.choice(3, size=len(rel_firm), p=P.LOANS_PER_BANK_SHARES) + 1
    rel = np.repeat(np.arange(len(rel_firm)), k)
    first = np.ones(len(rel), dtype=bool)
    first[1:] = rel[1:] != rel[:-1]
    lf, lb = rel_firm[rel], rel_bank[rel]
    m = len(rel)

    period_start = np.datetime64(f"{start_year:04d}-01-01", "D")
    entry_fye = _eom(_month_index(start_year + f.entry_year, f.fiscal_month))
    lo = np.maximum(_add_months(entry_fye, -12), period_start)[lf]
    hi = (firm_end - np.timedelta64(1, "D"))[lf]
    lo = np.where(first, np.maximum(lo, _add_months(hi, -24)), lo)  # one recent loan per relation
    span = np.maximum((hi - lo).astype(np.int64), 1)
    orig = lo + (rng.random(m) * span).astype(np.int64).astype("timedelta64[D]")
    tenor = rng.choice(P.TENOR_YEARS, size=m, p=P.TENOR_SHARES)
    tenor = np.where(first, np.maximum(tenor, 3), tenor)
    maturity = _add_months(orig, 12 * tenor)

    yi = np.clip(orig.astype("datetime64[Y]").astype(np.int64) + 1970 - start_year, 0, years - 1)
    yi = np.maximum(yi, f.entry_year[lf])
    pd_at = pd_true[lf, yi]
    sales0 = np.exp(f.log_sales0)[lf]
    amount = np.maximum(np.rint(sales0 * rng.uniform(0.03, 0.25, m) / 1e5) * 1e5, 1e6).astype(np.int64)
    secured = rng.random(m) < 0.35
    rate = np.clip(0.006 + 0.45 * pd_at + 0.003 * rng.standard_normal(m) - 0.002 * secured, 0.002, 0.15)
    rate = np.round(rate, 5)
    amort_names = np.array(list(P.AMORTIZATION_SHARES), dtype=object)
    amort_p = np.array(list(P.AMORTIZATION_SHARES.values()))
    amort = amort_names[rng.choice(len(amort_names), size=m, p=amort_p)]
    u = rng.random(m)
    coverage = np.where(u < 0.48, 0.8, np.where(u < 0.53, 1.0, 0.0))
    ref = firm_end[lf]
    elapsed = _months_between(orig, ref)
    outstanding = np.rint(outstanding_principal(amount, rate, 12 * tenor, elapsed, amort)).astype(np.int64)

    loans: dict[str, pd.DataFrame] = {}
    defaults: dict[str, pd.DataFrame] = {}
    ev_names = np.array(list(P.EVENT_WEIGHTS), dtype=object)
    ev_p = np.array(list(P.EVENT_WEIGHTS.values()))
    for b, code in enumerate(codes):
        sel = np.nonzero(lb == b)[0]
        bk = bkeys[b][lf[sel]]
        order = np.lexsort((orig[sel], bk))
        sel, bk = sel[order], bk[order]
        lkeys = np.array([f"{code}-L{i + 1:08d}" for i in range(len(sel))], dtype=object)
        loans[code] = pd.DataFrame({
            "borrower_key": bk,
            "corporate_number": f.corporate_number[lf[sel]],
            "loan_key": lkeys,
            "origination_date": _iso(orig[sel]),
            "maturity_date": _iso(maturity[sel]),
            "currency": "JPY",
            "amount": amount[sel],
            "interest_rate": rate[sel],
            "amortization": amort[sel],
            "secured": np.where(secured[sel], "true", "false").astype(object),
            "guarantee_coverage": coverage[sel],
            "outstanding": outstanding[sel],
        })
        # default events: one per defaulted firm at this bank
        dsel = sel[firm_defaulted[lf[sel]]]
        dkeys = lkeys[firm_defaulted[lf[sel]]]
        if len(dsel):
            g = pd.DataFrame({"firm": lf[dsel], "loan_key": dkeys, "out": outstanding[dsel]})
            expo = g.groupby("firm", sort=True)["out"].sum()
            top = g.sort_values(["firm", "out", "loan_key"], ascending=[True, False, True]).drop_duplicates("firm")
            firms_d = expo.index.to_numpy()
            nd = len(firms_d)
            name_loan = rng.random(nd) < 0.6
            events = ev_names[rng.choice(len(ev_names), size=nd, p=ev_p)]
            df = pd.DataFrame({
                "borrower_key": bkeys[b][firms_d],
                "corporate_number": f.corporate_number[firms_d],
                "default_date": _iso(firm_end[firms_d]),
                "event_type": events,
                "loan_key": np.where(name_loan, top["loan_key"].to_numpy(), None),
                "exposure": expo.to_numpy().astype(np.int64),
                "currency": "JPY",
            }).sort_values(["borrower_key"], kind="stable").reset_index(drop=True)
        else:
            df = pd.DataFrame({c: pd.Series([], dtype=object) for c in
                               ["borrower_key", "corporate_number", "default_date", "event_type", "loan_key",
                                "exposure", "currency"]})
        defaults[code] = df
    return loans, defaults


# ----------------------------------------------------------------------------- errors
ERROR_KINDS = ("text_in_amount", "negative_total_assets", "identity_broken", "future_fiscal_year_end",
               "unknown_industry", "missing_required", "duplicate_row")
_TEXT_AMOUNT_COLS = ("sales", "total_assets", "net_income", "current_assets", "total_liabilities")
_REQUIRED_BLANKABLE = ("sales", "net_income", "current_assets", "total_assets", "current_liabilities",
                       "total_liabilities", "net_assets", "industry", "currency", "country")


def inject_errors(df: pd.DataFrame, error_rate: float,
                  rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Corrupt ``round(error_rate * len(df))`` distinct rows, one error each.

    Returns the corrupted frame and a record with columns ``row`` (line number in the
    CSV: header is line 1, first data row is 2), ``column`` (``*`` for a duplicated
    row) and ``kind`` (one of ``ERROR_KINDS``). A duplicate is inserted right after
    its original; the recorded row is the copy.
    """
    n = len(df)
    n_err = min(int(round(error_rate * n)), n)
    rows = np.sort(rng.choice(n, size=n_err, replace=False))
    kinds = np.asarray(ERROR_KINDS, dtype=object)[rng.integers(0, len(ERROR_KINDS), n_err)]
    out = df.copy()
    cols = np.empty(n_err, dtype=object)
    for kind in ERROR_KINDS:
        r = rows[kinds == kind]
        if not len(r):
            continue
        if kind == "text_in_amount":
            c = np.asarray(_TEXT_AMOUNT_COLS, dtype=object)[rng.integers(0, len(_TEXT_AMOUNT_COLS), len(r))]
            for col in np.unique(c):
                rr = r[c == col]
                s = out[col].astype(object)
                vals = s.iloc[rr].to_numpy()
                s.iloc[rr] = [f"{int(v) / 1e6:.1f}m" if (v is not None and v is not pd.NA) else "unknown"
                              for v in vals]
                out[col] = s
            cols[kinds == kind] = c
        elif kind == "negative_total_assets":
            col = out.columns.get_loc("total_assets")
            out.iloc[r, col] = -out["total_assets"].iloc[r].astype("int64").abs().to_numpy() - 1
            cols[kinds == kind] = "total_assets"
        elif kind == "identity_broken":
            col = out.columns.get_loc("total_liabilities")
            tl = out["total_liabilities"].iloc[r]
            ta = out["total_assets"].iloc[r]
            bump = np.maximum(np.rint(0.05 * np.abs(pd.to_numeric(ta).to_numpy(dtype=float))), 1000).astype(np.int64)
            out.iloc[r, col] = pd.to_numeric(tl).to_numpy(dtype=np.int64) + bump
            cols[kinds == kind] = "total_liabilities"
        elif kind == "future_fiscal_year_end":
            col = out.columns.get_loc("fiscal_year_end")
            d = out["fiscal_year_end"].iloc[r].to_numpy().astype("datetime64[D]")
            out.iloc[r, col] = _iso(_add_months(d, 1200))  # 100 years later
            cols[kinds == kind] = "fiscal_year_end"
        elif kind == "unknown_industry":
            col = out.columns.get_loc("industry")
            out.iloc[r, col] = np.asarray(("Z", "99", "X1"), dtype=object)[rng.integers(0, 3, len(r))]
            cols[kinds == kind] = "industry"
        elif kind == "missing_required":
            c = np.asarray(_REQUIRED_BLANKABLE, dtype=object)[rng.integers(0, len(_REQUIRED_BLANKABLE), len(r))]
            for col in np.unique(c):
                rr = r[c == col]
                s = out[col].copy()
                s.iloc[rr] = None
                out[col] = s
            cols[kinds == kind] = c
        else:
            cols[kinds == kind] = "*"
    dup = kinds == "duplicate_row"
    times = np.ones(n, dtype=np.int64)
    times[rows[dup]] = 2
    order = np.repeat(np.arange(n), times)
    out = out.iloc[order].reset_index(drop=True)
    new_pos = np.cumsum(times) - 1  # position of the last copy of each original row
    first_pos = new_pos - (times - 1)
    line = np.where(dup, new_pos[rows], first_pos[rows]) + 2
    errors = pd.DataFrame({"row": line.astype(np.int64), "column": cols, "kind": kinds})
    return out, errors


# ----------------------------------------------------------------------------- writing
def _save(df: pd.DataFrame, path: Path, fmt: str) -> Path:
    """Write one frame as CSV (pyarrow writer: text quoted, blanks empty) or Parquet."""
    import pyarrow as pa
    from pyarrow import csv as pacsv

    df = df.copy(deep=False)
    for c in df.columns:  # mixed columns (after error injection) are written as text
        if df[c].dtype == object:
            df[c] = df[c].map(lambda v: None if v is None or v is pd.NA or v != v else str(v)).astype("str")
    if fmt == "csv":
        path = path.with_suffix(".csv")
        table = pa.Table.from_pandas(df, preserve_index=False)
        pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="needed"))
    elif fmt == "parquet":
        path = path.with_suffix(".parquet")
        df.to_parquet(path, index=False)
    else:
        raise ValueError(f"unknown format {fmt!r} (csv or parquet)")
    return path


def write(data: SynthData, out: Path, fmt: str = "csv") -> dict:
    """Write the data under ``out``; return a summary (counts, default rate, files).

    Layout: ``institutions``, ``answers`` at the top; per bank ``<BANK>/statements``,
    ``loans``, ``defaults`` and, when errors were injected, ``injected_errors.csv``
    (always CSV). ``fmt`` is ``csv`` or ``parquet``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = [_save(data.institutions, out / "institutions", fmt), _save(data.answers, out / "answers", fmt)]
    per_bank: dict[str, dict[str, int]] = {}
    for code in data.institutions["code"]:
        d = out / code
        d.mkdir(exist_ok=True)
        for kind, frames in (("statements", data.statements), ("loans", data.loans), ("defaults", data.defaults)):
            files.append(_save(frames[code], d / kind, fmt))
        per_bank[code] = {"statements": len(data.statements[code]), "loans": len(data.loans[code]),
                          "defaults": len(data.defaults[code])}
        if code in data.errors:
            p = d / "injected_errors.csv"
            data.errors[code].to_csv(p, index=False, lineterminator="\n")
            files.append(p)
            per_bank[code]["injected_errors"] = len(data.errors[code])
    return summary(data) | {"out": str(out), "format": fmt, "by_bank": per_bank,
                            "files": [str(p.relative_to(out)) for p in files]}


def summary(data: SynthData) -> dict:
    """Counts and the realised default rate (unique firm-years, primary bank rows)."""
    a = data.answers[data.answers["primary"] == 1]
    return {
        **{k: data.meta[k] for k in ("firms", "years", "years_requested", "banks", "seed", "start_year",
                                     "error_rate", "as_of")},
        "firm_years": len(a),
        "statements": int(sum(len(v) for v in data.statements.values())),
        "loans": int(sum(len(v) for v in data.loans.values())),
        "defaults": int(sum(len(v) for v in data.defaults.values())),
        "defaulted_firms": int(a["defaulted_within_window"].sum()),
        "default_rate": round(float(a["defaulted_within_window"].mean()), 5) if len(a) else 0.0,
        "mean_true_pd": round(float(a["true_pd"].mean()), 5) if len(a) else 0.0,
        "injected_errors": int(sum(len(v) for v in data.errors.values())),
    }
