"""Validation statistics for a PD rating model (pure numpy/scipy/pandas, no database).

Conventions used throughout
---------------------------
* ``pd`` is the predicted probability of default over one year, a fraction in [0, 1].
* ``default`` is the realised 0/1 default flag over the same year (1 = default).
* A *score* is anything where a higher value means a *riskier* obligor (a PD is a score).
  AUC is the probability that a random defaulter scores higher than a random
  non-defaulter, ties counted one half.
* p-values of the calibration tests are one-sided against *underestimation* of the PD:
  a small p-value means more defaults were observed than the PD explains.

Every public function returns plain Python floats / ints / lists / dicts (or frozen
dataclasses made of them) so results serialise to JSON with :func:`json.dumps`.
Undefined quantities (e.g. an AUC for a group without defaults) are ``float('nan')``.

All computations are vectorised and at most O(n log n), so a 1,000,000-observation
validation sample takes seconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "AUCResult",
    "DeLongComparison",
    "auc",
    "auc_delong",
    "delong_test",
    "ecb_auc_test",
    "accuracy_ratio",
    "ks_statistic",
    "roc_curve",
    "cap_curve",
    "auc_by_group",
    "traffic_light",
    "binomial_test",
    "jeffreys_test",
    "jeffreys_interval",
    "calibration_by_grade",
    "portfolio_jeffreys",
    "hosmer_lemeshow",
    "brier_score",
    "psi_label",
    "psi_continuous",
    "psi_categorical",
    "migration_matrix",
    "herfindahl",
    "mean_abs_contribution",
    "monotonicity_check",
]

#: Shares of zero in a PSI bin are replaced by this value before taking logarithms
#: (a share, i.e. a fraction of the sample; 1e-4 = 0.01%). No renormalisation follows.
PSI_EPSILON = 1e-4

MAX_CURVE_POINTS = 1000


# --------------------------------------------------------------------------- helpers
def _as_binary(default: np.ndarray) -> np.ndarray:
    y = np.asarray(default)
    if y.ndim != 1:
        raise ValueError("default must be a one-dimensional array")
    yb = y.astype(bool)
    if not np.array_equal(yb.astype(y.dtype), y):
        raise ValueError("default must contain only 0 and 1")
    return yb


def _as_scores(x: np.ndarray, n: int, name: str = "score") -> np.ndarray:
    s = np.asarray(x, dtype=float)
    if s.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {s.shape}")
    if np.isnan(s).any():
        raise ValueError(f"{name} contains NaN")
    return s


def _f(x: Any) -> float:
    return float(x)


# ------------------------------------------------------------------ discrimination
@dataclass(frozen=True)
class AUCResult:
    """AUC with its DeLong standard error and a normal-approximation confidence interval."""

    auc: float
    se: float
    ci_lower: float
    ci_upper: float
    level: float
    n_defaults: int
    n_non_defaults: int

    @property
    def ar(self) -> float:
        """Accuracy ratio (Gini) = 2·AUC − 1."""
        return 2.0 * self.auc - 1.0

    def to_dict(self) -> dict[str, float | int]:
        d = asdict(self)
        d["ar"] = self.ar
        return d


@dataclass(frozen=True)
class DeLongComparison:
    """DeLong test of two correlated AUCs measured on the same sample."""

    auc_1: float
    auc_2: float
    difference: float
    se_difference: float
    covariance: float
    z: float
    p_value: float  # two-sided

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def _structural_components(scores: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong structural components by the fast midrank algorithm of Sun & Xu (2014).

    ``scores`` is (k, n). Returns ``v10`` (k, m) over the m defaulters and ``v01``
    (k, n0) over the non-defaulters, where ``v10[r, i]`` is the share of
    non-defaulters scored below defaulter i by model r (ties one half) and
    ``v01[r, j]`` the share of defaulters scored above non-defaulter j.
    """
    pos = scores[:, y]
    neg = scores[:, ~y]
    m, n = pos.shape[1], neg.shape[1]
    if m == 0 or n == 0:
        raise ValueError("need at least one defaulter and one non-defaulter")
    v10 = np.empty((scores.shape[0], m))
    v01 = np.empty((scores.shape[0], n))
    for r in range(scores.shape[0]):
        tx = stats.rankdata(pos[r])
        ty = stats.rankdata(neg[r])
        tz = stats.rankdata(np.concatenate([pos[r], neg[r]]))
        v10[r] = (tz[:m] - tx) / n
        v01[r] = 1.0 - (tz[m:] - ty) / m
    return v10, v01


def _delong_cov(v10: np.ndarray, v01: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m, n = v10.shape[1], v01.shape[1]
    aucs = v10.mean(axis=1)
    s10 = np.atleast_2d(np.cov(v10, ddof=1)) if m > 1 else np.zeros((v10.shape[0],) * 2)
    s01 = np.atleast_2d(np.cov(v01, ddof=1)) if n > 1 else np.zeros((v01.shape[0],) * 2)
    return aucs, s10 / m + s01 / n


def auc(score: np.ndarray, default: np.ndarray) -> float:
    """Area under the ROC curve via midranks (Mann–Whitney), ties counted one half.

    Returns NaN when the sample has no defaulters or no non-defaulters.
    """
    y = _as_binary(default)
    s = _as_scores(score, y.size)
    m = int(y.sum())
    n = y.size - m
    if m == 0 or n == 0:
        return float("nan")
    ranks = stats.rankdata(s)
    return _f((ranks[y].sum() - m * (m + 1) / 2.0) / (m * n))


def auc_delong(score: np.ndarray, default: np.ndarray, level: float = 0.95) -> AUCResult:
    """AUC with DeLong (1988) variance and a two-sided normal CI at ``level`` (clipped to [0, 1])."""
    y = _as_binary(default)
    s = _as_scores(score, y.size)
    m = int(y.sum())
    n = y.size - m
    if m == 0 or n == 0:
        nan = float("nan")
        return AUCResult(nan, nan, nan, nan, level, m, n)
    v10, v01 = _structural_components(s[None, :], y)
    aucs, cov = _delong_cov(v10, v01)
    a = _f(aucs[0])
    se = math.sqrt(max(_f(cov[0, 0]), 0.0))
    zq = _f(stats.norm.ppf(0.5 + level / 2.0))
    return AUCResult(a, se, max(0.0, a - zq * se), min(1.0, a + zq * se), level, m, n)


def delong_test(score_1: np.ndarray, score_2: np.ndarray, default: np.ndarray) -> DeLongComparison:
    """Two-sided DeLong test of H0: AUC_1 = AUC_2 for two scores of the same obligors."""
    y = _as_binary(default)
    s = np.vstack([_as_scores(score_1, y.size, "score_1"), _as_scores(score_2, y.size, "score_2")])
    v10, v01 = _structural_components(s, y)
    aucs, cov = _delong_cov(v10, v01)
    var = _f(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1])
    diff = _f(aucs[0] - aucs[1])
    se = math.sqrt(max(var, 0.0))
    if se > 0:
        z = diff / se
        p = _f(2.0 * stats.norm.sf(abs(z)))
    else:
        z = 0.0 if diff == 0 else math.copysign(math.inf, diff)
        p = 1.0 if diff == 0 else 0.0
    return DeLongComparison(_f(aucs[0]), _f(aucs[1]), diff, se, _f(cov[0, 1]), z, p)


def ecb_auc_test(auc_initial: float, auc_current: float, se_current: float) -> dict[str, float]:
    """ECB (2019) test of the current AUC against the AUC at initial validation.

    One-sided, H0: AUC_current >= AUC_initial. Statistic z = (AUC_init − AUC_curr) / s with
    s the DeLong standard error of the current AUC; p-value = 1 − Φ(z). A small p-value
    means discriminatory power has deteriorated significantly. When the standard error is
    not positive (or NaN) the test is undefined and z, p_value are NaN.
    """
    if not se_current > 0:
        nan = float("nan")
        return {"auc_initial": _f(auc_initial), "auc_current": _f(auc_current), "se_current": _f(se_current),
                "z": nan, "p_value": nan}
    z = (auc_initial - auc_current) / se_current
    return {
        "auc_initial": _f(auc_initial),
        "auc_current": _f(auc_current),
        "se_current": _f(se_current),
        "z": _f(z),
        "p_value": _f(stats.norm.sf(z)),
    }


def accuracy_ratio(auc_value: float) -> float:
    """Accuracy ratio (Gini, Somers' D) from the AUC: AR = 2·AUC − 1."""
    return 2.0 * auc_value - 1.0


def _roc_full(score: np.ndarray, default: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Exact ROC at every distinct threshold, from the riskiest score down.

    Returns (fpr, tpr, share_of_population, thresholds) each starting with the origin.
    """
    y = _as_binary(default)
    s = _as_scores(score, y.size)
    order = np.argsort(-s, kind="mergesort")
    s_sorted = s[order]
    y_sorted = y[order]
    last = np.r_[np.flatnonzero(np.diff(s_sorted) != 0), y.size - 1]
    tps = np.cumsum(y_sorted)[last]
    cnt = last + 1
    fps = cnt - tps
    p = max(int(y.sum()), 1)
    n = max(y.size - int(y.sum()), 1)
    fpr = np.r_[0.0, fps / n]
    tpr = np.r_[0.0, tps / p]
    share = np.r_[0.0, cnt / y.size]
    thr = np.r_[np.inf, s_sorted[last]]
    return fpr, tpr, share, thr


def _downsample(n_points: int, max_points: int) -> np.ndarray:
    if n_points <= max_points:
        return np.arange(n_points)
    return np.unique(np.linspace(0, n_points - 1, max_points).round().astype(np.int64))


def roc_curve(score: np.ndarray, default: np.ndarray, max_points: int = MAX_CURVE_POINTS) -> dict[str, list[float]]:
    """ROC points (false-positive rate, true-positive rate), first (0,0), last (1,1),
    evenly downsampled in threshold order to at most ``max_points`` points for plotting.
    ``threshold`` is the score at or above which obligors are flagged (first is +inf)."""
    fpr, tpr, _, thr = _roc_full(score, default)
    idx = _downsample(fpr.size, max_points)
    return {"fpr": fpr[idx].tolist(), "tpr": tpr[idx].tolist(), "threshold": thr[idx].tolist()}


def cap_curve(score: np.ndarray, default: np.ndarray, max_points: int = MAX_CURVE_POINTS) -> dict[str, list[float]]:
    """Cumulative accuracy profile: share of population (riskiest first) vs share of
    defaulters captured, downsampled to at most ``max_points`` points."""
    _, tpr, share, _ = _roc_full(score, default)
    idx = _downsample(share.size, max_points)
    return {"population": share[idx].tolist(), "defaults": tpr[idx].tolist()}


def ks_statistic(score: np.ndarray, default: np.ndarray) -> dict[str, float]:
    """Kolmogorov–Smirnov distance between the score distributions of defaulters and
    non-defaulters (max |TPR − FPR| over all thresholds) and the threshold attaining it."""
    fpr, tpr, _, thr = _roc_full(score, default)
    gap = np.abs(tpr - fpr)
    i = int(np.argmax(gap))
    return {"ks": _f(gap[i]), "threshold": _f(thr[i])}


def auc_by_group(score: np.ndarray, default: np.ndarray, group: np.ndarray, level: float = 0.95) -> list[dict[str, Any]]:
    """AUC with DeLong CI per group (e.g. per year), groups in sorted order.

    Each row: group, n, defaults, default_rate, auc, se, ci_lower, ci_upper (NaN when the
    group has only one class)."""
    y = _as_binary(default)
    s = _as_scores(score, y.size)
    g = np.asarray(group)
    codes, uniques = pd.factorize(g, sort=True)
    rows = []
    for k, label in enumerate(uniques):
        mask = codes == k
        r = auc_delong(s[mask], y[mask], level)
        n = int(mask.sum())
        d = int(y[mask].sum())
        rows.append({
            "group": label.item() if hasattr(label, "item") else label,
            "n": n, "defaults": d, "default_rate": d / n,
            "auc": r.auc, "se": r.se, "ci_lower": r.ci_lower, "ci_upper": r.ci_upper,
        })
    return rows


# -------------------------------------------------------------------- calibration
def traffic_light(p_value: float) -> str:
    """Traffic light from a one-sided p-value against PD underestimation.

    Confidence of underestimation c = 1 − p. green: c < 95% (p > 0.05);
    yellow: 95% <= c <= 99.9% (0.001 <= p <= 0.05); red: c > 99.9% (p < 0.001).
    NaN gives "grey".
    """
    if p_value != p_value:  # NaN
        return "grey"
    # compared on p itself (not on 1 − p) so the boundaries are exact in floating point
    if p_value > 0.05:
        return "green"
    if p_value >= 0.001:
        return "yellow"
    return "red"


def binomial_test(defaults: int, n: int, pd_: float) -> float:
    """One-sided binomial p-value P[X >= defaults] for X ~ Binomial(n, pd_)."""
    if n <= 0:
        return float("nan")
    if defaults <= 0:
        return 1.0
    return _f(stats.binom.sf(defaults - 1, n, pd_))


def jeffreys_test(defaults: int, n: int, pd_: float) -> float:
    """Jeffreys test (ECB 2019): p-value = CDF at ``pd_`` of Beta(D + ½, N − D + ½).

    Small values mean the posterior puts little mass below the PD, i.e. the PD is
    likely underestimated."""
    if n <= 0:
        return float("nan")
    return _f(stats.beta.cdf(pd_, defaults + 0.5, n - defaults + 0.5))


def jeffreys_interval(d: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Equal-tailed Jeffreys credible interval for a default rate (Brown, Cai & DasGupta 2001):
    quantiles (1−level)/2 and (1+level)/2 of Beta(d + ½, n − d + ½); lower bound 0 when
    d = 0 and upper bound 1 when d = n."""
    if n <= 0:
        return (float("nan"), float("nan"))
    a, b = d + 0.5, n - d + 0.5
    alpha = 1.0 - level
    lo = 0.0 if d == 0 else _f(stats.beta.ppf(alpha / 2.0, a, b))
    hi = 1.0 if d == n else _f(stats.beta.ppf(1.0 - alpha / 2.0, a, b))
    return lo, hi


def _grade_order(labels: Sequence[Any], grade_pd: Mapping[Any, float] | None, order: Sequence[Any] | None) -> list[Any]:
    if order is not None:
        return list(order)
    if grade_pd:
        known = sorted(grade_pd, key=lambda g: grade_pd[g])
        return known + sorted(set(labels) - set(known), key=str)
    return sorted(labels, key=str)


def calibration_by_grade(
    grade: np.ndarray,
    default: np.ndarray,
    pd_: np.ndarray,
    grade_pd: Mapping[Any, float] | None = None,
    order: Sequence[Any] | None = None,
    level: float = 0.95,
) -> list[dict[str, Any]]:
    """Per-grade calibration table.

    Rows (grades ordered by ``order``, else by grade PD ascending, else by label): grade,
    firms (observations), defaults, odr (observed default rate), mean_pd (mean model PD
    in the grade), test_pd (the PD tested: ``grade_pd[grade]`` when given, else mean_pd),
    binomial_p, jeffreys_p, jeffreys_lower/upper (credible interval of the default rate),
    traffic_light (from the Jeffreys p-value) and binomial_light. Grades in ``order`` or
    ``grade_pd`` without observations are omitted.
    """
    y = _as_binary(default)
    p = _as_scores(pd_, y.size, "pd")
    codes, uniques = pd.factorize(np.asarray(grade, dtype=object))
    if (codes < 0).any():
        raise ValueError(f"grade is missing for {int((codes < 0).sum())} observations")
    k = len(uniques)
    n = np.bincount(codes, minlength=k)
    d = np.bincount(codes, weights=y.astype(float), minlength=k).round().astype(np.int64)
    s = np.bincount(codes, weights=p, minlength=k)
    index = {g: i for i, g in enumerate(uniques)}
    rows = []
    for g in _grade_order(list(uniques), grade_pd, order):
        if g not in index:
            continue
        i = index[g]
        ni, di = int(n[i]), int(d[i])
        mean_pd = _f(s[i] / ni)
        test_pd = _f(grade_pd[g]) if grade_pd and g in grade_pd else mean_pd
        jp = jeffreys_test(di, ni, test_pd)
        bp = binomial_test(di, ni, test_pd)
        lo, hi = jeffreys_interval(di, ni, level)
        rows.append({
            "grade": g, "firms": ni, "defaults": di, "odr": di / ni, "mean_pd": mean_pd,
            "test_pd": test_pd, "binomial_p": bp, "jeffreys_p": jp,
            "jeffreys_lower": lo, "jeffreys_upper": hi,
            "traffic_light": traffic_light(jp), "binomial_light": traffic_light(bp),
        })
    return rows


def portfolio_jeffreys(default: np.ndarray, pd_: np.ndarray, level: float = 0.95) -> dict[str, Any]:
    """Portfolio-level Jeffreys test: all observations, tested PD = mean model PD."""
    y = _as_binary(default)
    p = _as_scores(pd_, y.size, "pd")
    n, d = int(y.size), int(y.sum())
    mean_pd = _f(p.mean()) if n else float("nan")
    jp = jeffreys_test(d, n, mean_pd)
    lo, hi = jeffreys_interval(d, n, level)
    return {"firms": n, "defaults": d, "odr": d / n if n else float("nan"), "mean_pd": mean_pd,
            "jeffreys_p": jp, "jeffreys_lower": lo, "jeffreys_upper": hi,
            "binomial_p": binomial_test(d, n, mean_pd), "traffic_light": traffic_light(jp)}


def hosmer_lemeshow(
    pd_: np.ndarray, default: np.ndarray, groups: np.ndarray | None = None, n_groups: int = 10
) -> dict[str, Any]:
    """Hosmer–Lemeshow statistic HL = Σ_g (D_g − N_g·p̄_g)² / (N_g·p̄_g·(1 − p̄_g)).

    Groups are the given labels (e.g. grades) or, when ``groups`` is None, ``n_groups``
    groups of (almost) equal size after sorting by PD (ties broken by input order).
    p̄_g is the mean PD in the group. p-value from χ² with G − 2 degrees of freedom.
    Groups with p̄_g in {0, 1} are dropped (their term is undefined).
    """
    y = _as_binary(default)
    p = _as_scores(pd_, y.size, "pd")
    if groups is None:
        order = np.argsort(p, kind="mergesort")
        codes = np.empty(y.size, dtype=np.int64)
        codes[order] = (np.arange(y.size) * n_groups) // y.size
        k = n_groups
    else:
        codes, uniques = pd.factorize(np.asarray(groups, dtype=object))
        if (codes < 0).any():
            raise ValueError(f"group label is missing for {int((codes < 0).sum())} observations")
        k = len(uniques)
    n = np.bincount(codes, minlength=k).astype(float)
    d = np.bincount(codes, weights=y.astype(float), minlength=k)
    pbar = np.bincount(codes, weights=p, minlength=k) / np.where(n > 0, n, 1)
    ok = (n > 0) & (pbar > 0) & (pbar < 1)
    e = n[ok] * pbar[ok]
    hl = _f(np.sum((d[ok] - e) ** 2 / (e * (1 - pbar[ok]))))
    g = int(ok.sum())
    df = g - 2
    pval = _f(stats.chi2.sf(hl, df)) if df > 0 else float("nan")
    return {"statistic": hl, "df": df, "p_value": pval, "groups": g,
            "group_n": n[ok].astype(int).tolist(), "group_defaults": d[ok].round().astype(int).tolist(),
            "group_mean_pd": pbar[ok].tolist()}


def brier_score(pd_: np.ndarray, default: np.ndarray) -> float:
    """Brier score: mean squared difference between PD and the 0/1 default flag."""
    y = _as_binary(default)
    p = _as_scores(pd_, y.size, "pd")
    return _f(np.mean((p - y) ** 2))


# ---------------------------------------------------------------------- stability
def psi_label(psi: float) -> str:
    """Conventional PSI reading: < 0.10 "stable", 0.10–0.25 "watch", > 0.25 "shift"."""
    if psi != psi:
        return "n/a"
    if psi < 0.10:
        return "stable"
    if psi <= 0.25:
        return "watch"
    return "shift"


def _psi_from_counts(labels: list[str], expected: np.ndarray, actual: np.ndarray, eps: float) -> dict[str, Any]:
    e = expected / max(expected.sum(), 1)
    a = actual / max(actual.sum(), 1)
    e_adj = np.maximum(e, eps)
    a_adj = np.maximum(a, eps)
    terms = (a_adj - e_adj) * np.log(a_adj / e_adj)
    psi = _f(terms.sum())
    return {"psi": psi, "label": psi_label(psi), "bins": labels,
            "expected_share": e.tolist(), "actual_share": a.tolist(), "terms": terms.tolist()}


def psi_continuous(dev: np.ndarray, val: np.ndarray, n_bins: int = 10, eps: float = PSI_EPSILON) -> dict[str, Any]:
    """Population stability index of a continuous variable.

    Bin edges are the interior quantiles (1/n_bins … (n_bins−1)/n_bins) of the development
    sample (duplicates merged), bins are (−∞, q1], (q1, q2], …, (q_last, ∞); missing values
    (NaN) form an extra bin "missing" when present in either sample.
    PSI = Σ (a − e)·ln(a / e) over bins with e, a the development / validation shares;
    a share of zero is replaced by ``eps`` (default 1e-4) before the sum, without
    renormalising, so an empty bin contributes a large but finite term.
    """
    x = np.asarray(dev, dtype=float)
    z = np.asarray(val, dtype=float)
    xd, zd = x[~np.isnan(x)], z[~np.isnan(z)]
    if xd.size == 0:
        raise ValueError("development sample has no non-missing values")
    edges = np.unique(np.quantile(xd, np.arange(1, n_bins) / n_bins))
    cx = np.bincount(np.searchsorted(edges, xd, side="left"), minlength=edges.size + 1).astype(float)
    cz = np.bincount(np.searchsorted(edges, zd, side="left"), minlength=edges.size + 1).astype(float)
    fmt = [f"{v:.4g}" for v in edges]
    labels = [f"<= {fmt[0]}"] if fmt else ["all"]
    labels += [f"({fmt[i - 1]}, {fmt[i]}]" for i in range(1, len(fmt))]
    if fmt:
        labels.append(f"> {fmt[-1]}")
    miss_x, miss_z = x.size - xd.size, z.size - zd.size
    if miss_x or miss_z:
        cx = np.r_[cx, miss_x]
        cz = np.r_[cz, miss_z]
        labels.append("missing")
    out = _psi_from_counts(labels, cx, cz, eps)
    out["edges"] = edges.tolist()
    return out


def psi_categorical(dev: np.ndarray, val: np.ndarray, categories: Sequence[Any] | None = None,
                    eps: float = PSI_EPSILON) -> dict[str, Any]:
    """PSI of a categorical variable (e.g. grade): one bin per category (the given
    ``categories`` order, else sorted union of both samples; missing values are the
    category "missing"); zero shares replaced by ``eps`` as in :func:`psi_continuous`."""
    sx = pd.Series(np.asarray(dev, dtype=object)).fillna("missing")
    sz = pd.Series(np.asarray(val, dtype=object)).fillna("missing")
    vx, vz = sx.value_counts(), sz.value_counts()
    cats = list(categories) if categories is not None else sorted(set(vx.index) | set(vz.index), key=str)
    extra = sorted((set(vx.index) | set(vz.index)) - set(cats), key=str)
    cats += extra
    cx = np.array([vx.get(c, 0) for c in cats], dtype=float)
    cz = np.array([vz.get(c, 0) for c in cats], dtype=float)
    return _psi_from_counts([str(c) for c in cats], cx, cz, eps)


def migration_matrix(firm_id: np.ndarray, year: np.ndarray, grade: np.ndarray,
                     order: Sequence[Any] | None = None) -> dict[str, Any]:
    """Year-on-year grade migration matrix.

    Pairs each firm's grade in year t with its grade in year t + 1 (a firm with several
    observations in one year keeps the last one in input order). ``order`` lists grades
    best to worst (default: sorted labels). Returns grades, counts (rows = grade in t,
    columns = grade in t + 1), rates (row-normalised; NaN-free, zero rows stay zero),
    pairs (number of firm-year pairs), share_stable (diagonal), share_within_one
    (|notch move| <= 1), share_upgrade (to a better grade), share_downgrade.
    """
    df = pd.DataFrame({"f": np.asarray(firm_id), "y": np.asarray(year).astype(np.int64),
                       "g": np.asarray(grade, dtype=object)})
    df = df.drop_duplicates(["f", "y"], keep="last")
    nxt = df.assign(y=df["y"] - 1)
    pairs = df.merge(nxt, on=["f", "y"], suffixes=("_t", "_t1"))
    grades = list(order) if order is not None else sorted(set(df["g"]), key=str)
    pos = {g: i for i, g in enumerate(grades)}
    k = len(grades)
    it = pairs["g_t"].map(pos)
    jt = pairs["g_t1"].map(pos)
    if it.isna().any() or jt.isna().any():
        missing = sorted(set(pairs["g_t"][it.isna()]) | set(pairs["g_t1"][jt.isna()]), key=str)
        raise ValueError(f"grades not in order: {missing}")
    i = it.to_numpy(dtype=np.int64)
    j = jt.to_numpy(dtype=np.int64)
    counts = np.bincount(i * k + j, minlength=k * k).reshape(k, k)
    rs = counts.sum(axis=1, keepdims=True)
    rates = counts / np.where(rs > 0, rs, 1)
    total = int(counts.sum())
    move = j - i
    def share(m: np.ndarray) -> float:
        return _f(m.sum() / total) if total else float("nan")

    return {"grades": [str(g) for g in grades], "counts": counts.tolist(), "rates": rates.tolist(),
            "pairs": total, "share_stable": share(move == 0), "share_within_one": share(np.abs(move) <= 1),
            "share_upgrade": share(move < 0), "share_downgrade": share(move > 0)}


def herfindahl(grade: np.ndarray, grades: Sequence[Any] | None = None) -> dict[str, Any]:
    """Concentration of obligors across grades.

    With s_i the share of obligors in grade i and K the number of grades (the given
    ``grades``, else those observed): hhi = Σ s_i²; hhi_normalised = (hhi − 1/K)/(1 − 1/K)
    (0 = evenly spread, 1 = all in one grade); cv = √(K·Σ (s_i − 1/K)²) the coefficient of
    variation of the shares; hhi_log = 1 + ln((cv² + 1)/K)/ln K = 1 + ln(hhi)/ln K, the
    log-scaled form (also 0 when even, 1 when concentrated).
    """
    vc = pd.Series(np.asarray(grade, dtype=object)).value_counts()
    labels = list(grades) if grades is not None else sorted(vc.index, key=str)
    c = np.array([vc.get(g, 0) for g in labels], dtype=float)
    s = c / c.sum()
    k = len(labels)
    hhi = _f(np.sum(s ** 2))
    if k > 1:
        norm = (hhi - 1.0 / k) / (1.0 - 1.0 / k)
        cv = math.sqrt(k * np.sum((s - 1.0 / k) ** 2))
        hlog = 1.0 + math.log((cv ** 2 + 1.0) / k) / math.log(k)
    else:
        norm, cv, hlog = 1.0, 0.0, 1.0
    return {"hhi": hhi, "hhi_normalised": _f(norm), "cv": _f(cv), "hhi_log": _f(hlog), "k": k,
            "grades": [str(g) for g in labels], "shares": s.tolist()}


# ------------------------------------------------------------------------ drivers
def mean_abs_contribution(contributions: pd.DataFrame,
                          exclude: Sequence[str] = ("bias", "expected_value", "base_value")) -> list[dict[str, Any]]:
    """Mean absolute contribution (e.g. tree-SHAP, in log-odds units) per feature, largest
    first, with its share of the total. Columns named in ``exclude`` (the bias term) are skipped."""
    cols = [c for c in contributions.columns if c not in set(exclude)]
    m = np.abs(contributions[cols].to_numpy(dtype=float)).mean(axis=0)
    tot = m.sum()
    order = np.argsort(-m, kind="mergesort")
    return [{"feature": str(cols[i]), "mean_abs": _f(m[i]), "share": _f(m[i] / tot) if tot > 0 else float("nan")}
            for i in order]


def monotonicity_check(feature: np.ndarray, pd_: np.ndarray, expected_sign: int, n_bins: int = 10) -> dict[str, Any]:
    """Does the PD move with the feature in the expected direction (+1 up, −1 down)?

    Spearman rank correlation of feature and PD (NaN feature values dropped); the
    feature is cut at its ``n_bins``-quantiles (duplicates merged) and the mean PD per
    bin computed; a *violation* is an adjacent pair of bins whose mean PD moves against
    the expected sign. ``consistent`` is True when sign(spearman) == expected_sign and
    there are no violations.
    """
    if expected_sign not in (1, -1):
        raise ValueError("expected_sign must be +1 or -1")
    x = np.asarray(feature, dtype=float)
    p = np.asarray(pd_, dtype=float)
    ok = ~np.isnan(x)
    x, p = x[ok], p[ok]
    if x.size < 2 or np.all(x == x[0]):
        return {"spearman": float("nan"), "expected_sign": expected_sign, "bins": 0,
                "violations": 0, "violation_share": float("nan"), "bin_mean_pd": [], "consistent": False}
    rho = _f(stats.spearmanr(x, p).statistic)
    edges = np.unique(np.quantile(x, np.arange(1, n_bins) / n_bins))
    codes = np.searchsorted(edges, x, side="left")
    k = edges.size + 1
    cnt = np.bincount(codes, minlength=k)
    mp = np.bincount(codes, weights=p, minlength=k)[cnt > 0] / cnt[cnt > 0]
    steps = np.diff(mp) * expected_sign
    v = int((steps < 0).sum())
    share = _f(v / steps.size) if steps.size else float("nan")
    return {"spearman": rho, "expected_sign": expected_sign, "bins": int(mp.size), "violations": v,
            "violation_share": share, "bin_mean_pd": mp.tolist(),
            "consistent": bool(np.sign(rho) == expected_sign and v == 0)}
