"""Pooled rating model across countries: one pool, per-country discrimination and calibration.

Measures (not timings) what the choice of ``issue 15, Build 3`` rests on. Synthetic region
(``pipelines.synth_region``), size features in USD (``fx_to_reporting``), one LightGBM
model over the pool (``pipelines.training.fit``, the project's spec). On the out-of-time
sample, per country: AUC, observed default rate, mean PD and the Jeffreys traffic light,
for two calibrations:

* ``pooled``: the model's own calibration to the pool's long-run default rate;
* ``per_country``: the same scores, the calibrated logit shifted per country so that the
  mean PD of the country's development sample equals its observed default rate.

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
from models.rating import load_spec  # noqa: E402
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
    raw = tm.model.raw_score(t[list(FEATURE_NAMES)])
    p = tm.calibration.predict(raw)
    logit = np.log(p / (1 - p))
    c = t.firm_id.map(country_of).to_numpy()
    dev, oot = (t["sample"] != "oot").to_numpy(), (t["sample"] == "oot").to_numpy()
    y = t.label.to_numpy()
    shifted = logit.copy()
    for cc in countries:
        m = dev & (c == cc)
        target = y[m].mean()
        lo, hi = -5.0, 5.0  # bisection: mean PD of the country's development sample = its default rate
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if (1 / (1 + np.exp(-(logit[m] + mid)))).mean() < target else (lo, mid)
        shifted[c == cc] = logit[c == cc] + (lo + hi) / 2
    p_cc = 1 / (1 + np.exp(-shifted))
    out = {"countries": countries, "firms_per_country": a.firms, "years": a.years, "seed": a.seed,
           "cutoff": str(cutoff), "statements": int(len(t)), "oot": int(oot.sum()),
           "auc_oot_pool": float(vs.auc(p[oot], y[oot])), "by_country": {}}
    for cc in countries:
        m = oot & (c == cc)
        row = {"n": int(m.sum()), "defaults": int(y[m].sum()), "odr": float(y[m].mean()),
               "auc": float(vs.auc(p[m], y[m]))}
        for name, pp in (("pooled", p), ("per_country", p_cc)):
            j = vs.portfolio_jeffreys(y[m], pp[m])
            row[name] = {"mean_pd": float(pp[m].mean()), "jeffreys_p": j["jeffreys_p"],
                         "traffic_light": j["traffic_light"], "brier": float(vs.brier_score(pp[m], y[m]))}
        out["by_country"][cc] = row
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
