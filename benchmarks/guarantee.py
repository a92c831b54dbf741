"""Benchmark guarantee pricing: prints JSON timings (not a test).

* price 1,000,000 synthetic loans with the Japan schedule (target <= 3 s; best of
  ``--repeat`` runs, the first, cold run is reported too);
* simulate a 100,000-loan book over 10,000 scenarios WITH the per-loan Euler contributions
  to EL, VaR and ES (target <= 60 s); the sum of the ES contributions is checked against ES;
* peak resident memory (ru_maxrss) must stay under 2 GB.

Run: PYTHONPATH=. python benchmarks/guarantee.py [--loans N] [--book N] [--scenarios N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from models.fee_schedule import load_schedule  # noqa: E402
from models.portfolio import simulate_portfolio  # noqa: E402
from models.pricing import load_policy, price_loans  # noqa: E402

#: ECB reference rate of 2023-12-29: the synthetic JPY sales in EUR millions (Basel SME adjustment)
JPY_PER_EUR = 156.33


def synthetic_loans(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "loan_id": np.arange(n),
        "pd": np.exp(rng.uniform(np.log(0.0005), np.log(0.2), n)),
        "amount": rng.lognormal(np.log(2e7), 1.0, n).round(),
        "tenor_years": rng.integers(1, 11, n).astype(float),
        "coverage": rng.choice([0.8, 1.0], n, p=[0.85, 0.15]),
        "amortization": rng.choice(["bullet", "linear", "annuity"], n, p=[0.2, 0.3, 0.5]),
        "rate": rng.uniform(0.01, 0.04, n),
        "sales": rng.lognormal(np.log(5e8), 1.2, n),  # JPY
        "secured": rng.random(n) < 0.2,
    })
    df["sales_eur_m"] = df["sales"] / JPY_PER_EUR / 1e6
    return df


def peak_rss_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    return kb / 1024.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--loans", type=int, default=1_000_000)
    ap.add_argument("--book", type=int, default=100_000)
    ap.add_argument("--scenarios", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3, help="pricing runs (best and first are reported)")
    ap.add_argument("--baseline", action="store_true", help="also time the simulation without contributions")
    args = ap.parse_args()
    policy = load_policy()
    schedule = load_schedule("japan")

    loans = synthetic_loans(args.loans)
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        priced = price_loans(loans, policy, schedule)
        times.append(time.perf_counter() - t0)
    t_price = min(times)
    rss_after_pricing = peak_rss_mb()
    sales_eur_m = loans["sales_eur_m"].to_numpy()[: args.book]  # price_loans does not return it
    del loans

    book = priced.iloc[: args.book]
    ead = (book["amount"] * book["coverage"]).to_numpy()
    del priced
    t0 = time.perf_counter()
    res = simulate_portfolio(
        book["pd"].to_numpy(), book["lgd"].to_numpy(), ead,
        sales_eur_m=sales_eur_m,
        n_scenarios=args.scenarios, seed=1, contributions=True,
    )
    t_port = time.perf_counter() - t0
    es_sum = float(res.contributions["es_0.999"].sum())
    t_plain = None
    if args.baseline:  # the same simulation without contributions, in the same run, for the ratio
        t0 = time.perf_counter()
        simulate_portfolio(book["pd"].to_numpy(), book["lgd"].to_numpy(), ead,
                           sales_eur_m=sales_eur_m,
                           n_scenarios=args.scenarios, seed=1)
        t_plain = time.perf_counter() - t0
    rss = peak_rss_mb()
    print(json.dumps({
        "benchmark": "guarantee",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpus": os.cpu_count(),
        "price_loans": {"loans": args.loans, "seconds": round(t_price, 3), "first_run_seconds": round(times[0], 3),
                        "all_runs_seconds": [round(x, 3) for x in times], "target_seconds": 3.0,
                        "loans_per_second": round(args.loans / t_price)},
        "portfolio": {"loans": args.book, "scenarios": args.scenarios, "seconds": round(t_port, 3),
                      "target_seconds": 60.0, "expected_loss": res.expected_loss,
                      "expected_loss_analytic": res.expected_loss_analytic,
                      "var_999": res.quantiles[0.999], "es_999": res.expected_shortfall[0.999],
                      "per_loan_contributions": True, "sum_es_999_contributions": es_sum,
                      "seconds_without_contributions": None if t_plain is None else round(t_plain, 3),
                      "ratio_with_to_without": None if t_plain is None else round(t_port / t_plain, 2),
                      "load_average_1m_at_end": round(os.getloadavg()[0], 2)},
        "peak_rss_mb": {"after_pricing": round(rss_after_pricing, 1), "final": round(rss, 1), "limit_mb": 2048},
    }, indent=2))


if __name__ == "__main__":
    main()
