"""Validation statistics against independent references: sklearn, scipy, a slow O(n²)
DeLong (1988) implementation written here, a published example, and hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special, stats
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from models import validation_stats as vs


def _sample(n: int, seed: int, ties: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(1.0, 8.0, n)
    y = (rng.random(n) < p).astype(int)
    s2 = p + rng.normal(0, 0.08, n)
    if ties:  # coarse scores => many ties within and across classes
        p, s2 = np.round(p, 2), np.round(s2, 2)
    return p, s2, y


# ---------------------------------------------------------------- slow DeLong (1988)
def delong_slow(scores: list[np.ndarray], y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong, DeLong & Clarke-Pearson (1988) by the definitions: Mann–Whitney kernel
    psi(X, Y) = 1 if X > Y, 1/2 if X = Y, 0 otherwise; structural components
    V10(X_i) = mean_j psi(X_i, Y_j), V01(Y_j) = mean_i psi(X_i, Y_j);
    S10[r,s] = sum_i (V10_r(X_i) − A_r)(V10_s(X_i) − A_s)/(m − 1), S01 likewise over j;
    Cov(A) = S10/m + S01/n."""
    k = len(scores)
    m, n = int(y.sum()), int((1 - y).sum())
    v10 = np.empty((k, m))
    v01 = np.empty((k, n))
    aucs = np.empty(k)
    for r, s in enumerate(scores):
        x, yy = s[y == 1], s[y == 0]
        psi = (x[:, None] > yy[None, :]).astype(float) + 0.5 * (x[:, None] == yy[None, :])
        aucs[r] = psi.mean()
        v10[r] = psi.mean(axis=1)
        v01[r] = psi.mean(axis=0)
    s10 = np.empty((k, k))
    s01 = np.empty((k, k))
    for r in range(k):
        for t in range(k):
            s10[r, t] = np.sum((v10[r] - aucs[r]) * (v10[t] - aucs[t])) / (m - 1)
            s01[r, t] = np.sum((v01[r] - aucs[r]) * (v01[t] - aucs[t])) / (n - 1)
    return aucs, s10 / m + s01 / n


# ------------------------------------------------------------------- discrimination
@pytest.mark.parametrize("ties", [False, True])
def test_auc_matches_sklearn(ties):
    p, s2, y = _sample(5000, 1, ties)
    assert vs.auc(p, y) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert vs.auc(s2, y) == pytest.approx(roc_auc_score(y, s2), abs=1e-12)
    assert vs.auc_delong(p, y).auc == pytest.approx(roc_auc_score(y, p), abs=1e-12)


def test_auc_all_tied_is_one_half_and_single_class_is_nan():
    y = np.array([0, 1, 0, 1])
    assert vs.auc(np.ones(4), y) == 0.5
    assert math.isnan(vs.auc(np.arange(4.0), np.zeros(4, dtype=int)))


def test_auc_hanley_mcneil_1982_published_example():
    # Hanley & McNeil (1982), Radiology 143:29-36, Table 1: CT ratings 1..5 of 58 normal
    # and 51 abnormal patients; trapezoidal (Wilcoxon) area reported as 0.893.
    normal = np.repeat([1, 2, 3, 4, 5], [33, 6, 6, 11, 2])
    abnormal = np.repeat([1, 2, 3, 4, 5], [3, 2, 2, 11, 33])
    s = np.r_[normal, abnormal].astype(float)
    y = np.r_[np.zeros(58), np.ones(51)].astype(int)
    r = vs.auc_delong(s, y)
    assert round(r.auc, 3) == 0.893
    aucs, cov = delong_slow([s], y)
    assert r.se == pytest.approx(math.sqrt(cov[0, 0]), rel=1e-10)


# pROC (Robin et al. 2011) test suite, tests/testthat/helper-roc-expected.R and test-var.R:
# the ROC curve of the aSAH biomarker ndka (41 "Poor" outcomes = cases, 72 "Good" = controls)
# has AUC 0.61195799457994582 and DeLong variance var(r.ndka) = 0.0031908105493913.
# Per distinct ndka value in ascending order, the number of cases and controls below were
# derived from that expected curve: cases = 41·(−Δ sensitivity), controls = 72·Δ specificity.
# AUC and DeLong variance depend on ranks only, so value ranks 0..108 reproduce them.
NDKA_CASES = [0, 1, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 0, 0, 0, 1, 1, 0,
              0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 1, 0, 0,
              1, 1, 0, 1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1, 0, 0,
              1, 0, 1, 0, 1, 0, 1]
NDKA_CONTROLS = [1, 0, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 2, 1, 0, 1,
                 1, 1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 0,
                 1, 1, 0, 0, 1, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0, 1, 1, 1, 0, 0, 0,
                 0, 1, 1, 0, 1, 0, 1, 0, 1, 0]


def test_delong_variance_matches_published_proc_value_for_asah_ndka():
    k = np.arange(len(NDKA_CASES))
    s = np.r_[np.repeat(k, NDKA_CASES), np.repeat(k, NDKA_CONTROLS)].astype(float)
    y = np.r_[np.ones(sum(NDKA_CASES)), np.zeros(sum(NDKA_CONTROLS))].astype(int)
    assert (y.sum(), (1 - y).sum()) == (41, 72)
    r = vs.auc_delong(s, y)
    assert r.auc == pytest.approx(0.61195799457994582, rel=1e-12)
    assert r.se ** 2 == pytest.approx(0.0031908105493913, rel=1e-10)


@pytest.mark.parametrize("ties,seed", [(False, 2), (True, 3), (True, 4)])
def test_delong_fast_matches_slow_1988_formulas(ties, seed):
    p, s2, y = _sample(700, seed, ties)
    aucs, cov = delong_slow([p, s2], y)
    one = vs.auc_delong(p, y)
    assert one.auc == pytest.approx(aucs[0], abs=1e-12)
    assert one.se == pytest.approx(math.sqrt(cov[0, 0]), rel=1e-9)
    z95 = stats.norm.ppf(0.975)
    assert one.ci_lower == pytest.approx(aucs[0] - z95 * math.sqrt(cov[0, 0]), rel=1e-9)
    t = vs.delong_test(p, s2, y)
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    z = (aucs[0] - aucs[1]) / math.sqrt(var)
    assert t.covariance == pytest.approx(cov[0, 1], rel=1e-9)
    assert t.z == pytest.approx(z, rel=1e-9)
    assert t.p_value == pytest.approx(math.erfc(abs(z) / math.sqrt(2)), rel=1e-9)


def test_delong_test_of_identical_scores_is_not_significant():
    p, _, y = _sample(500, 5, False)
    t = vs.delong_test(p, p, y)
    assert t.difference == 0 and t.p_value == 1.0


def test_ecb_auc_test_formula():
    r = vs.ecb_auc_test(0.80, 0.76, 0.02)
    assert r["z"] == pytest.approx(2.0)
    # one-sided p = 1 − Φ(2) = erfc(2/√2)/2 = 0.02275
    assert r["p_value"] == pytest.approx(0.5 * math.erfc(2 / math.sqrt(2)), rel=1e-12)
    assert round(r["p_value"], 5) == 0.02275
    assert vs.ecb_auc_test(0.70, 0.76, 0.02)["p_value"] > 0.99
    assert math.isnan(vs.ecb_auc_test(0.70, 0.76, 0.0)["p_value"])


def test_accuracy_ratio():
    assert vs.accuracy_ratio(0.75) == 0.5


@pytest.mark.parametrize("ties", [False, True])
def test_ks_matches_scipy_ks_2samp(ties):
    p, _, y = _sample(4000, 6, ties)
    ref = stats.ks_2samp(p[y == 1], p[y == 0]).statistic
    assert vs.ks_statistic(p, y)["ks"] == pytest.approx(ref, abs=1e-12)


def test_roc_curve_matches_sklearn_when_not_downsampled():
    p, _, y = _sample(3000, 7, True)  # rounded: < 1000 distinct thresholds
    fpr, tpr, _ = sk_roc_curve(y, p, drop_intermediate=False)
    r = vs.roc_curve(p, y)
    np.testing.assert_allclose(r["fpr"], fpr, atol=1e-12)
    np.testing.assert_allclose(r["tpr"], tpr, atol=1e-12)


def test_curves_are_downsampled_and_cap_gives_accuracy_ratio():
    p, _, y = _sample(20000, 8, False)
    r, c = vs.roc_curve(p, y), vs.cap_curve(p, y)
    assert 900 <= len(r["fpr"]) <= 1000 and len(c["population"]) <= 1000
    assert (r["fpr"][0], r["tpr"][0], r["fpr"][-1], r["tpr"][-1]) == (0.0, 0.0, 1.0, 1.0)
    full = vs.cap_curve(p, y, max_points=10**9)
    x, d = np.array(full["population"]), np.array(full["defaults"])
    area = np.sum(np.diff(x) * (d[1:] + d[:-1]) / 2)
    pi = y.mean()
    ar_cap = (area - 0.5) / ((1 - pi / 2) - 0.5)  # area over random / perfect area over random
    assert ar_cap == pytest.approx(2 * roc_auc_score(y, p) - 1, abs=1e-9)


def test_auc_by_group_matches_sklearn_per_group():
    p, _, y = _sample(6000, 9, False)
    g = np.repeat([2021, 2019, 2020], 2000)
    rows = vs.auc_by_group(p, y, g)
    assert [r["group"] for r in rows] == [2019, 2020, 2021]
    for r in rows:
        m = g == r["group"]
        assert r["auc"] == pytest.approx(roc_auc_score(y[m], p[m]), abs=1e-12)
        assert r["n"] == 2000 and r["defaults"] == int(y[m].sum())
        assert r["ci_lower"] < r["auc"] < r["ci_upper"]


# ---------------------------------------------------------------------- calibration
@pytest.mark.parametrize("d,n,p", [(0, 100, 0.01), (3, 100, 0.01), (12, 500, 0.015), (40, 1000, 0.03)])
def test_binomial_test_matches_scipy_binomtest(d, n, p):
    assert vs.binomial_test(d, n, p) == pytest.approx(stats.binomtest(d, n, p, alternative="greater").pvalue, rel=1e-10)
    assert vs.binomial_test(d, n, p) == pytest.approx(stats.binom.sf(d - 1, n, p), rel=1e-10)


@pytest.mark.parametrize("d,n,p", [(0, 50, 0.01), (3, 100, 0.01), (12, 500, 0.015), (40, 1000, 0.05)])
def test_jeffreys_test_matches_beta_cdf_and_numerical_integral(d, n, p):
    a, b = d + 0.5, n - d + 0.5
    ref = stats.beta.cdf(p, a, b)
    # independent path: integrate the Beta density written from log-gamma functions
    logc = special.gammaln(a + b) - special.gammaln(a) - special.gammaln(b)
    dens = lambda t: math.exp(logc + (a - 1) * math.log(t) + (b - 1) * math.log1p(-t))  # noqa: E731
    num, _ = integrate.quad(dens, 0, p, limit=200, points=[min(p, a / (a + b))])
    assert vs.jeffreys_test(d, n, p) == pytest.approx(ref, rel=1e-10)
    assert vs.jeffreys_test(d, n, p) == pytest.approx(num, rel=1e-6)


def test_jeffreys_interval_matches_beta_quantiles_and_boundaries():
    lo, hi = vs.jeffreys_interval(5, 200, 0.95)
    assert lo == pytest.approx(stats.beta.ppf(0.025, 5.5, 195.5), rel=1e-10)
    assert hi == pytest.approx(stats.beta.ppf(0.975, 5.5, 195.5), rel=1e-10)
    assert stats.beta.cdf(hi, 5.5, 195.5) - stats.beta.cdf(lo, 5.5, 195.5) == pytest.approx(0.95)
    assert vs.jeffreys_interval(0, 50)[0] == 0.0 and vs.jeffreys_interval(50, 50)[1] == 1.0


@pytest.mark.parametrize("p,light", [(0.5, "green"), (0.0501, "green"), (0.05, "yellow"), (0.001, "yellow"),
                                     (0.000999, "red"), (float("nan"), "grey")])
def test_traffic_light_boundaries(p, light):
    assert vs.traffic_light(p) == light


def test_calibration_by_grade_counts_and_tests():
    rng = np.random.default_rng(10)
    grade = rng.choice(np.array(["B", "A", "C"], dtype=object), 3000)
    gpd = {"A": 0.01, "B": 0.05, "C": 0.20}
    pdv = np.array([gpd[g] for g in grade]) * rng.uniform(0.8, 1.2, 3000)
    y = (rng.random(3000) < 1.6 * pdv).astype(int)  # PD underestimated => small p-values
    rows = vs.calibration_by_grade(grade, y, pdv, gpd)
    assert [r["grade"] for r in rows] == ["A", "B", "C"]  # ordered by grade PD
    for r in rows:
        m = grade == r["grade"]
        assert (r["firms"], r["defaults"]) == (int(m.sum()), int(y[m].sum()))
        assert r["mean_pd"] == pytest.approx(pdv[m].mean())
        assert r["binomial_p"] == pytest.approx(
            stats.binomtest(r["defaults"], r["firms"], gpd[r["grade"]], alternative="greater").pvalue, rel=1e-9)
        assert r["jeffreys_p"] == pytest.approx(stats.beta.cdf(gpd[r["grade"]], r["defaults"] + .5,
                                                               r["firms"] - r["defaults"] + .5), rel=1e-9)
        assert r["traffic_light"] == vs.traffic_light(r["jeffreys_p"])
    assert rows[2]["traffic_light"] == "red"  # 1.6x underestimation of a 20% PD on ~1000 firms


def test_missing_grade_is_rejected():
    with pytest.raises(ValueError, match="missing"):
        vs.calibration_by_grade(np.array(["A", None], dtype=object), np.array([0, 1]), np.array([0.1, 0.1]))


def test_portfolio_jeffreys_uses_mean_pd():
    y = np.array([1] * 7 + [0] * 93)
    p = np.full(100, 0.04)
    r = vs.portfolio_jeffreys(y, p)
    assert r["jeffreys_p"] == pytest.approx(stats.beta.cdf(0.04, 7.5, 93.5))
    assert (r["firms"], r["defaults"], r["odr"]) == (100, 7, 0.07)


def test_hosmer_lemeshow_hand_computed_groups():
    # group 1: N=10, mean PD 0.1, D=2: E=1, (2−1)²/(10·0.1·0.9) = 1/0.9 = 1.111111
    # group 2: N=10, mean PD 0.2, D=1: E=2, (1−2)²/(10·0.2·0.8) = 1/1.6 = 0.625
    # group 3: N=10, mean PD 0.5, D=5: E=5, 0
    # HL = 1.736111, df = 3 − 2 = 1, p = P[χ²₁ > HL] = erfc(√(HL/2)) ≈ 0.18758
    pdv = np.repeat([0.1, 0.2, 0.5], 10)
    y = np.r_[[1, 1] + [0] * 8, [1] + [0] * 9, [1] * 5 + [0] * 5]
    r = vs.hosmer_lemeshow(pdv, y, groups=np.repeat(["g1", "g2", "g3"], 10))
    assert r["statistic"] == pytest.approx(1.7361111111, rel=1e-9)
    assert r["df"] == 1
    assert r["p_value"] == pytest.approx(math.erfc(math.sqrt(1.7361111111 / 2)), rel=1e-8)


def test_hosmer_lemeshow_hand_computed_quantile_groups():
    # 6 obs, 3 equal groups after sorting by PD: (0.1, 0.1) D=1, (0.2, 0.2) D=0, (0.5, 0.5) D=1
    # terms: (1 − 0.2)²/(0.2·0.9) = 0.64/0.18 = 3.555556; (0 − 0.4)²/(0.4·0.8) = 0.5; (1 − 1)² = 0
    # HL = 4.055556, df = 1
    pdv = np.array([0.5, 0.1, 0.2, 0.1, 0.5, 0.2])
    y = np.array([1, 1, 0, 0, 0, 0])
    r = vs.hosmer_lemeshow(pdv, y, n_groups=3)
    assert r["statistic"] == pytest.approx(4.0555555556, rel=1e-9)
    assert r["group_n"] == [2, 2, 2] and r["group_defaults"] == [1, 0, 1]


def test_brier_matches_sklearn():
    p, _, y = _sample(2000, 11, False)
    assert vs.brier_score(p, y) == pytest.approx(brier_score_loss(y, p), rel=1e-12)


# ------------------------------------------------------------------------ stability
def test_psi_continuous_hand_computed():
    # dev 1..10, 2 bins: median 5.5 -> bins (−∞, 5.5], (5.5, ∞); dev shares 0.5, 0.5
    # val: six 1s and four 9s -> shares 0.6, 0.4
    # PSI = (0.6 − 0.5)·ln(0.6/0.5) + (0.4 − 0.5)·ln(0.4/0.5)
    #     = 0.1·0.1823216 + 0.1·0.2231436 = 0.0405465
    dev = np.arange(1, 11, dtype=float)
    r = vs.psi_continuous(dev, np.r_[[1.0] * 6, [9.0] * 4], n_bins=2)
    assert r["psi"] == pytest.approx(0.0405465108, rel=1e-8)
    assert r["edges"] == [5.5] and r["label"] == "stable"


def test_psi_continuous_empty_bin_uses_epsilon():
    # val all in the first bin: shares 1, 0 -> 0 replaced by eps = 1e-4
    # PSI = (1 − 0.5)·ln(1/0.5) + (1e-4 − 0.5)·ln(1e-4/0.5)
    #     = 0.3465736 + 0.4999·8.5171932 = 0.3465736 + 4.2577445 = 4.6043181
    r = vs.psi_continuous(np.arange(1, 11, dtype=float), np.ones(10), n_bins=2)
    assert r["psi"] == pytest.approx(4.6043181, rel=1e-6)
    assert r["label"] == "shift"


def test_psi_continuous_missing_values_are_a_bin():
    dev = np.r_[np.arange(1, 11, dtype=float)]
    val = np.r_[np.arange(1, 11, dtype=float)[:8], np.nan, np.nan]
    r = vs.psi_continuous(dev, val, n_bins=2)
    assert r["bins"][-1] == "missing" and r["actual_share"][-1] == pytest.approx(0.2)


def test_psi_categorical_hand_computed():
    # dev A 50%, B 30%, C 20%; val A 40%, B 30%, C 30%
    # PSI = (0.4 − 0.5)·ln(0.8) + 0 + (0.3 − 0.2)·ln(1.5) = 0.0223144 + 0.0405465 = 0.0628609
    dev = ["A"] * 50 + ["B"] * 30 + ["C"] * 20
    val = ["A"] * 40 + ["B"] * 30 + ["C"] * 30
    r = vs.psi_categorical(np.array(dev, dtype=object), np.array(val, dtype=object))
    assert r["psi"] == pytest.approx(0.0628608659, rel=1e-8)
    assert r["bins"] == ["A", "B", "C"]


@pytest.mark.parametrize("psi,label", [(0.05, "stable"), (0.0999, "stable"), (0.10, "watch"), (0.25, "watch"),
                                       (0.2501, "shift")])
def test_psi_labels(psi, label):
    assert vs.psi_label(psi) == label


def test_migration_matrix_small_case():
    # f1: 2020 A, 2021 B, 2022 B -> A→B, B→B ; f2: 2020 B, 2021 B -> B→B
    # f3: 2020 C, 2022 A -> no consecutive years ; f4: 2021 A then C (last kept), 2022 C -> C→C
    firm = np.array([1, 1, 1, 2, 2, 3, 3, 4, 4, 4])
    year = np.array([2020, 2021, 2022, 2020, 2021, 2020, 2022, 2021, 2021, 2022])
    grade = np.array(["A", "B", "B", "B", "B", "C", "A", "A", "C", "C"], dtype=object)
    m = vs.migration_matrix(firm, year, grade, ["A", "B", "C"])
    assert m["counts"] == [[0, 1, 0], [0, 2, 0], [0, 0, 1]]
    assert m["rates"] == [[0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    assert m["pairs"] == 4
    assert (m["share_stable"], m["share_downgrade"], m["share_upgrade"]) == (0.75, 0.25, 0.0)


def test_herfindahl_small_case():
    # shares 0.5, 0.25, 0.25 (K = 3): HHI = 0.25 + 0.0625 + 0.0625 = 0.375
    # normalised = (0.375 − 1/3)/(1 − 1/3) = 0.0625
    # CV = √(3·((1/6)² + 2·(1/12)²)) = √0.125 = 0.3535534
    # log-scaled = 1 + ln(0.375)/ln(3) = 1 − 0.9808293/1.0986123 = 1 − 0.8927893 = 0.1072107
    r = vs.herfindahl(np.array(["A", "A", "B", "C"], dtype=object))
    assert r["hhi"] == pytest.approx(0.375)
    assert r["hhi_normalised"] == pytest.approx(0.0625)
    assert r["cv"] == pytest.approx(0.35355339, rel=1e-7)
    assert r["hhi_log"] == pytest.approx(0.1072107, rel=1e-6)
    even = vs.herfindahl(np.array(["A", "B", "C", "D"], dtype=object))
    assert even["hhi_normalised"] == pytest.approx(0.0) and even["hhi_log"] == pytest.approx(0.0, abs=1e-12)
    assert vs.herfindahl(np.array(["A"] * 3, dtype=object), ["A", "B"])["hhi_normalised"] == pytest.approx(1.0)


# -------------------------------------------------------------------------- drivers
def test_mean_abs_contribution_small_case():
    c = pd.DataFrame({"a": [1.0, -3.0], "b": [0.5, 0.5], "bias": [9.0, 9.0]})
    r = vs.mean_abs_contribution(c)
    # a: (1 + 3)/2 = 2; b: 0.5; shares 0.8, 0.2; bias excluded
    assert [(x["feature"], x["mean_abs"], x["share"]) for x in r] == [("a", 2.0, 0.8), ("b", 0.5, 0.2)]


def test_monotonicity_detects_one_violation():
    x = np.repeat(np.arange(10.0), 10)
    pd_by_value = np.array([1, 2, 3, 4, 3, 6, 7, 8, 9, 10]) / 100  # dip from value 3 to 4
    p = pd_by_value[x.astype(int)]
    r = vs.monotonicity_check(x, p, +1)
    assert r["bins"] == 10 and r["violations"] == 1
    assert r["violation_share"] == pytest.approx(1 / 9)
    assert r["spearman"] == pytest.approx(pd.Series(x).corr(pd.Series(p), method="spearman"), rel=1e-12)
    assert r["consistent"] is False
    down = vs.monotonicity_check(-x, p, -1)
    assert down["violations"] == 1 and down["spearman"] < 0


def test_monotonicity_consistent_feature():
    rng = np.random.default_rng(12)
    x = rng.normal(size=5000)
    r = vs.monotonicity_check(x, 1 / (1 + np.exp(-x)), -1)
    assert r["violations"] == 9 and r["consistent"] is False
    assert vs.monotonicity_check(x, 1 / (1 + np.exp(-x)), 1)["consistent"] is True
