"""Pooled rating model across countries: one pool, per-country discrimination and calibration.

Measures (not timings) what the choice of ``issue 15, Build 3`` rests on. Synthetic region
(``pipelines.synth_region``), size features in USD (``fx_to_reporting``), one LightGBM
model over the pool (``pipelines.training.fit``, the project's spec). On the out-of-time
sample, per country: AUC, observed default rate, mean PD and the Jeffreys traffic light,
for two calibrations:

* ``pooled``: the model's own calibration to the pool's long-run default rate;
* ``per_country``: the same scores, the calibrated logit shifted per country so that the
  mean PD of the country's development sample equals its observed default rate;
* ``country_feature``: a second LightGBM model, the same spec, seed and samples, with
  ``country`` added as a LightGBM categorical feature (the production feature table has no
  country column; this variant exists only here), calibrated exactly as the first
  (Platt on the validation part, anchored to the pool's long-run default rate);
* ``country_feature_per_country``: both, the country-feature model's calibrated logit
  shifted per country as in ``per_country``.

Per country and variant: AUC (the per-country shift leaves a country's ranking as it is,
so its AUC equals the model's), mean PD, Jeffreys p and light, Brier score; and the pooled
out-of-time AUC of each variant.

Usage: python benchmarks/pooled_countries.py [--countries JP,TH,ID] [--firms 3000] [--years 8] [--seed 5]
Prints JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path[0] = str(Path(__file__).resolve().parents[1])  # not benchmarks/: its statistics.py would shadow the stdlib

from models import validation_stats as vs  # noqa: E402
from models.calibration import PD_FLOOR, fit_calibration, long_run_default_rate  # noqa: E402
from models.rating import RatingModel, load_spec  # noqa: E402
from models.ratios import FEATURE_NAMES  # noqa: E402
from pipelines import synth_region as R  # noqa: E402
from pipelines.features import training_table  # noqa: E402
from pipelines.fx import rate_table  # noqa: E402
from pipelines.training import Design, fit  # noqa: E402


def frames(countries: list[str], firms: int, years: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, dt.date]:
    d = R.generate_region(countries, firms, years, 1, seed, start_year=2015)
    st = pd.concat(d.statements.values(), ignore_index=True)
    ids = {k: i for i, k in enumerate(pd.unique(st.borrower_key), start=1)}
    st["firm_id"] = st.borrower_key.map(ids)
    st["statement_id"] = np.arange(1, len(st) + 1)
    st["fiscal_year_end"] = pd.to_datetime(st.fiscal_year_end)
    st["established_year"] = pd.to_datetime(st.established).dt.year.astype(float)
    for c in R.AMOUNTS:
        st[c] = pd.to_numeric(st[c], errors="coerce").astype(float)
    st["months"] = pd.to_numeric(st["months"], errors="coerce")
    st["fx_to_reporting"] = rate_table().factors(st.currency, st.fiscal_year_end, "USD")
    de = pd.concat(d.defaults.values(), ignore_index=True)
    de = pd.DataFrame({"firm_id": de.borrower_key.map(ids), "default_date": pd.to_datetime(de.default_date)})
    return st.sort_values(["firm_id", "fiscal_year_end"]).reset_index(drop=True), de, dt.date.fromisoformat(
        d.meta["as_of"])


def per_country_shift(p: np.ndarray, c: np.ndarray, dev: np.ndarray, y: np.ndarray,
                      countries: list[str]) -> np.ndarray:
    """PDs with the logit of ``p`` shifted per country so that the mean PD of the country's
    development sample equals its observed default rate (bisection on the shift)."""
    logit = np.log(p / (1 - p))
    shifted = logit.copy()
    for cc in countries:
        m = dev & (c == cc)
        target = y[m].mean()
        lo, hi = -5.0, 5.0
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if (1 / (1 + np.exp(-(logit[m] + mid)))).mean() < target else (lo, mid)
        shifted[c == cc] = logit[c == cc] + (lo + hi) / 2
    return np.asarray(1 / (1 + np.exp(-shifted)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--countries", default="JP,TH,ID")
    ap.add_argument("--firms", type=int, default=3000)
    ap.add_argument("--years", type=int, default=8)
    ap.add_argument("--seed", type=int, default=5)
    a = ap.parse_args(argv)
    countries = a.countries.split(",")
    st, de, cutoff = frames(countries, a.firms, a.years, a.seed)
    country_of = st.drop_duplicates("firm_id").set_index("firm_id").country
    table = training_table(st, de, cutoff)
    spec = load_spec()
    tm = fit(table, spec, Design(cutoff=cutoff))
    t = tm.table
    cols = list(FEATURE_NAMES)
    raw = tm.model.raw_score(t[cols])
    p = tm.calibration.predict(raw)
    c = t.firm_id.map(country_of).to_numpy()
    dev, oot = (t["sample"] != "oot").to_numpy(), (t["sample"] == "oot").to_numpy()
    y = t.label.to_numpy()
    p_cc = per_country_shift(p, c, dev, y, countries)
    # country as a categorical feature: same spec (seeded as fit() seeded it), samples and calibration
    xc = t[cols].assign(country=pd.Categorical(c, categories=countries))
    fit_m, valid_m = (t["sample"] == "fit").to_numpy(), (t["sample"] == "valid").to_numpy()
    model_c = RatingModel(tm.spec).fit(xc[fit_m], y[fit_m], xc[valid_m], y[valid_m])
    raw_c = model_c.raw_score(xc)
    target = long_run_default_rate(y[dev], pd.to_datetime(t["fiscal_year_end"][dev]).dt.year)
    p_f = fit_calibration(raw_c[valid_m], y[valid_m], target_rate=target, floor=PD_FLOOR).predict(raw_c)
    p_fcc = per_country_shift(p_f, c, dev, y, countries)
    variants = {"pooled": p, "per_country": p_cc, "country_feature": p_f, "country_feature_per_country": p_fcc}
    out = {"countries": countries, "firms_per_country": a.firms, "years": a.years, "seed": a.seed,
           "cutoff": str(cutoff), "statements": int(len(t)), "oot": int(oot.sum()),
           "auc_oot_pool": float(vs.auc(p[oot], y[oot])),
           "auc_oot_pool_by_variant": {k: float(vs.auc(v[oot], y[oot])) for k, v in variants.items()},
           "best_iteration": {"pooled": tm.model.best_iteration_, "country_feature": model_c.best_iteration_},
           "by_country": {}}
    for cc in countries:
        m = oot & (c == cc)
        row = {"n": int(m.sum()), "defaults": int(y[m].sum()), "odr": float(y[m].mean()),
               "auc": float(vs.auc(p[m], y[m]))}
        for name, pp in variants.items():
            j = vs.portfolio_jeffreys(y[m], pp[m])
            row[name] = {"auc": float(vs.auc(pp[m], y[m])), "mean_pd": float(pp[m].mean()),
                         "jeffreys_p": j["jeffreys_p"], "traffic_light": j["traffic_light"],
                         "brier": float(vs.brier_score(pp[m], y[m]))}
        out["by_country"][cc] = row
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
