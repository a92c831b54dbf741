"""One-factor (Vasicek) Monte Carlo of a guarantee agency's loss over one year.

Model: firm i defaults when its latent asset return
``X_i = sqrt(rho_i) Z + sqrt(1 - rho_i) eps_i`` falls below ``G(PD_i)`` (G = standard
normal quantile), with a systematic factor Z and idiosyncratic eps_i, all standard normal.
Equivalently, given Z, loan i defaults independently with probability
``PD_i(Z) = N((G(PD_i) - sqrt(rho_i) Z) / sqrt(1 - rho_i))``. Loss = sum of LGD_i x EAD_i over
defaulters. PD is one-year; EAD is the agency's exposure (covered amount, net of
reinsurance if the caller wants the retained risk) in currency units.

Methods
-------
* ``"bernoulli"`` (default, exact for a finite book): per scenario draw Z and one eps_i per
  loan (float32) and count defaults ``eps_i < (G(PD_i) - sqrt(rho_i) Z) / sqrt(1 - rho_i)``.
* ``"conditional"``: the loss in a scenario is its conditional expectation
  ``sum_i LGD_i EAD_i PD_i(Z)`` — the infinitely granular (Vasicek / ASRF) limit, without
  idiosyncratic noise; it understates tail risk of concentrated books.

Memory stays bounded: scenarios are simulated in chunks of about ``chunk_elements``
loan-scenario pairs (default 2**22, i.e. ~16 MB per float32 buffer, two buffers per
worker). Each chunk has its own generator spawned from ``numpy.random.SeedSequence(seed)``,
so results depend only on the inputs, the seed and ``chunk_elements`` — not on the number
of worker threads (numpy releases the GIL while filling random arrays and in BLAS).

Outputs: mean loss, the analytic expected loss sum PD x LGD x EAD, loss quantiles (VaR,
numpy's default linear interpolation), expected shortfall ES_a = mean of the worst
ceil(N (1 - a)) scenario losses, probability that the loss exceeds a fund, and a histogram.

Risk contributions (``contributions=True``, Euler allocation from the same simulation):
loan i's contribution to ES_a is the mean of its loss over the ES_a tail scenarios (the
worst ceil(N (1 - a))), so the contributions add up to ES_a exactly; to VaR_a, the mean of
its loss over the scenarios ranked within ``var_window`` (default max(1, N/1000)) of the
VaR rank (the kernel estimator of E[L_i | L = VaR_a]; noisier, it adds up to the mean loss
of those scenarios, close to VaR_a); to the expected loss, PD_i x LGD_i x EAD_i. The tail
scenarios are found in a first pass; a second pass re-draws only the chunks holding them
(same generators, so the same scenarios) and sums the loans' losses there: memory stays
O(loans), time at most twice the simulation.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri

from models import irb

QUANTILES = (0.95, 0.99, 0.999)
ES_LEVELS = (0.99, 0.999)
METHODS = ("bernoulli", "conditional")


@dataclass
class PortfolioResult:
    """Loss distribution summary; amounts in currency units."""

    n_loans: int
    n_scenarios: int
    seed: int
    method: str
    total_exposure: float
    expected_loss: float  # mean simulated loss
    expected_loss_analytic: float  # sum PD x LGD x EAD
    quantiles: dict[float, float]
    expected_shortfall: dict[float, float]
    fund: float | None
    prob_loss_exceeds_fund: float | None
    hist_edges: np.ndarray
    hist_counts: np.ndarray
    losses: np.ndarray = field(repr=False)
    #: per-loan Euler contributions (currency units): keys "el", "var_<a>", "es_<a>"; None if not asked
    contributions: dict[str, np.ndarray] | None = field(default=None, repr=False)

    def scaled(self, factor: float, fund: float | None = None) -> PortfolioResult:
        """The same scenarios with every loss multiplied by ``factor`` (e.g. the retained
        share 1 - s of a quota-share reinsurance); P(loss > fund) recomputed."""
        out = summarise(self.losses * factor, self.expected_loss_analytic * factor, self.total_exposure * factor,
                        self.n_loans, self.seed, self.method, fund, len(self.hist_counts))
        if self.contributions is not None:
            out.contributions = {k: v * factor for k, v in self.contributions.items()}
        return out

    def to_dict(self, include_losses: bool = False) -> dict[str, Any]:
        """JSON-ready summary (quantile keys as strings such as "0.999")."""
        d: dict[str, Any] = {
            "n_loans": self.n_loans,
            "n_scenarios": self.n_scenarios,
            "seed": self.seed,
            "method": self.method,
            "total_exposure": self.total_exposure,
            "expected_loss": self.expected_loss,
            "expected_loss_analytic": self.expected_loss_analytic,
            "loss_std": float(self.losses.std(ddof=1)) if self.n_scenarios > 1 else 0.0,
            "quantiles": {f"{k:g}": v for k, v in self.quantiles.items()},
            "expected_shortfall": {f"{k:g}": v for k, v in self.expected_shortfall.items()},
            "unexpected_loss_999": self.quantiles[0.999] - self.expected_loss,
            "fund": self.fund,
            "prob_loss_exceeds_fund": self.prob_loss_exceeds_fund,
            "histogram": {"edges": self.hist_edges.tolist(), "counts": self.hist_counts.tolist()},
        }
        if include_losses:
            d["losses"] = self.losses.tolist()
        return d


def _chunk_losses(
    seed_seq: np.random.SeedSequence,
    m: int,
    c: np.ndarray,
    a: np.ndarray,
    w: np.ndarray,
    method: str,
    buffers: tuple[np.ndarray, np.ndarray] | None = None,
    selections: list[np.ndarray] | None = None,
) -> Any:
    """Scenario losses of one chunk of ``m`` scenarios (its own generator from ``seed_seq``).

    With ``selections`` (lists of row indices within the chunk) returns instead, for each
    selection, the per-loan sum of losses over those rows (shape (n_loans,), float64).
    """
    rng = np.random.default_rng(seed_seq)
    z = rng.standard_normal(m)
    if method == "conditional":
        thr64 = ndtr(c.astype(float)[None, :] - np.outer(z, a.astype(float)))
        if selections is not None:
            return [thr64[rows].sum(axis=0) * w.astype(float) for rows in selections]
        return thr64 @ w.astype(float)
    if buffers is None:
        buffers = (np.empty((m, c.size), dtype=np.float32), np.empty((m, c.size), dtype=np.float32))
    thr, eps = buffers[0][:m], buffers[1][:m]
    np.multiply(z.astype(np.float32)[:, None], -a[None, :], out=thr)
    thr += c[None, :]
    rng.standard_normal(dtype=np.float32, out=eps)
    np.less(eps, thr, out=thr)  # 1.0 where the loan defaults
    if selections is not None:
        return [thr[rows].sum(axis=0, dtype=np.float64) * w.astype(float) for rows in selections]
    return (thr @ w).astype(float)


def _run_chunks(
    jobs: list[tuple[int, np.random.SeedSequence, int]],
    m: int,
    c: np.ndarray,
    a: np.ndarray,
    w: np.ndarray,
    method: str,
    losses: np.ndarray,
    offsets: np.ndarray,
    progress: Callable[[int], None] | None,
) -> None:
    """Run a worker's share of chunks, reusing two float32 buffers (no page-fault churn)."""
    buffers = None
    if method == "bernoulli":
        buffers = (np.empty((m, c.size), dtype=np.float32), np.empty((m, c.size), dtype=np.float32))
    for i, sq, k in jobs:
        losses[offsets[i] : offsets[i + 1]] = _chunk_losses(sq, k, c, a, w, method, buffers)
        if progress:
            progress(k)


def simulate_portfolio(
    pd: Any,
    lgd: Any,
    ead: Any,
    rho: Any = None,
    sales_eur_m: Any = None,
    n_scenarios: int = 10_000,
    seed: int = 0,
    fund: float | None = None,
    method: str = "bernoulli",
    bins: int = 50,
    chunk_elements: int = 1 << 22,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    contributions: bool = False,
    var_window: int | None = None,
) -> PortfolioResult:
    """Simulate the one-year loss distribution of a guarantee book.

    ``pd`` one-year PDs in (0, 1); ``lgd`` fractions; ``ead`` exposures in currency units
    (scalars broadcast). ``rho``: asset correlation per loan or a scalar; None = Basel
    corporate R per loan (:func:`models.irb.asset_correlation`, SME adjustment from
    ``sales_eur_m``, annual sales in EUR millions, None/NaN = none). ``fund``: loss-absorbing
    fund in currency units; reports P(loss > fund). ``progress(k)`` is called after each
    chunk with the number of scenarios it simulated. ``contributions``: also the per-loan
    Euler contributions to EL, VaR and ES (module docstring; ``var_window`` scenarios
    either side of the VaR rank).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}")
    p = np.atleast_1d(np.asarray(pd, dtype=float))
    n = p.size
    if n == 0:
        raise ValueError("empty portfolio")
    if np.any(~((p > 0) & (p < 1))):
        raise ValueError("pd must lie strictly between 0 and 1")
    lgd_a = np.broadcast_to(np.asarray(lgd, dtype=float), p.shape)
    ead_a = np.broadcast_to(np.asarray(ead, dtype=float), p.shape)
    r = irb.asset_correlation(p, sales_eur_m) if rho is None else np.broadcast_to(np.asarray(rho, dtype=float), p.shape)
    if np.any((r <= 0) | (r >= 1)):
        raise ValueError("asset correlation must lie strictly between 0 and 1")
    if n_scenarios < 1:
        raise ValueError("n_scenarios must be positive")
    w64 = lgd_a * ead_a
    c = (ndtri(p) / np.sqrt(1.0 - r)).astype(np.float32)
    a = (np.sqrt(r) / np.sqrt(1.0 - r)).astype(np.float32)
    w = w64.astype(np.float32)

    m = max(1, min(n_scenarios, chunk_elements // n))
    sizes = [m] * (n_scenarios // m) + ([n_scenarios % m] if n_scenarios % m else [])
    seqs = np.random.SeedSequence(seed).spawn(len(sizes))
    workers = workers or min(4, os.cpu_count() or 1)
    losses = np.empty(n_scenarios)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    jobs = [(i, sq, k) for i, (sq, k) in enumerate(zip(seqs, sizes, strict=False))]
    workers = max(1, min(workers, len(jobs)))
    if workers == 1:
        _run_chunks(jobs, m, c, a, w, method, losses, offsets, progress)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [
                pool.submit(_run_chunks, jobs[j::workers], m, c, a, w, method, losses, offsets, progress)
                for j in range(workers)
            ]
            for fut in futures:
                fut.result()
    result = summarise(losses, float(np.sum(p * w64)), float(ead_a.sum()), n, seed, method, fund, bins)
    if contributions:
        result.contributions = _contributions(losses, p * w64, var_window, jobs, offsets, m, c, a, w, method,
                                              workers)
    return result


def _selection_sets(losses: np.ndarray, var_window: int | None) -> dict[str, np.ndarray]:
    """Scenario indices whose loan losses make each contribution: ES tails and VaR windows."""
    N = losses.size
    order = np.argsort(losses, kind="stable")
    h = max(1, N // 1000) if var_window is None else max(0, int(var_window))
    sets: dict[str, np.ndarray] = {}
    for a in ES_LEVELS:
        k = max(1, math.ceil(N * (1.0 - a) - 1e-9))
        sets[f"es_{a:g}"] = order[N - k:]
    for a in QUANTILES:
        r = int(round(a * (N - 1)))  # rank of the (interpolated) VaR
        sets[f"var_{a:g}"] = order[max(0, r - h): min(N, r + h + 1)]
    return sets


def _contributions(losses: np.ndarray, el: np.ndarray, var_window: int | None,
                   jobs: list[tuple[int, np.random.SeedSequence, int]], offsets: np.ndarray, m: int,
                   c: np.ndarray, a: np.ndarray, w: np.ndarray, method: str, workers: int) -> dict[str, np.ndarray]:
    """Second pass: re-draw the chunks holding selected scenarios, sum loan losses there."""
    sets = _selection_sets(losses, var_window)
    names = list(sets)
    chunk_of = {name: np.searchsorted(offsets, idx, side="right") - 1 for name, idx in sets.items()}
    needed = sorted(set(np.concatenate(list(chunk_of.values())).tolist()))
    sums = {name: np.zeros(c.size) for name in names}

    def run(chunks: list[int]) -> dict[str, np.ndarray]:
        part = {name: np.zeros(c.size) for name in names}
        buffers = None
        if method == "bernoulli":
            buffers = (np.empty((m, c.size), dtype=np.float32), np.empty((m, c.size), dtype=np.float32))
        for ci in chunks:
            i, sq, k = jobs[ci]
            rows = [sets[name][chunk_of[name] == ci] - offsets[ci] for name in names]
            got = _chunk_losses(sq, k, c, a, w, method, buffers, selections=rows)
            for name, g in zip(names, got, strict=True):
                part[name] += g
        return part

    groups = [needed[j::workers] for j in range(workers)] if workers > 1 else [needed]
    if workers > 1 and len(needed) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(run, groups))
    else:
        parts = [run(needed)]
    for part in parts:
        for name in names:
            sums[name] += part[name]
    out = {"el": el}
    for name in names:
        out[name] = sums[name] / sets[name].size
    return out


def summarise(
    losses: np.ndarray,
    el_analytic: float,
    total_exposure: float,
    n_loans: int,
    seed: int,
    method: str,
    fund: float | None = None,
    bins: int = 50,
) -> PortfolioResult:
    """Summary statistics of simulated scenario losses (currency units)."""
    srt = np.sort(losses)
    N = srt.size
    q = {a: float(np.quantile(srt, a)) for a in QUANTILES}
    es = {}
    for a in ES_LEVELS:
        k = max(1, math.ceil(N * (1.0 - a) - 1e-9))
        es[a] = float(srt[N - k :].mean())
    counts, edges = np.histogram(srt, bins=bins)
    return PortfolioResult(
        n_loans=n_loans,
        n_scenarios=N,
        seed=seed,
        method=method,
        total_exposure=total_exposure,
        expected_loss=float(losses.mean()),
        expected_loss_analytic=el_analytic,
        quantiles=q,
        expected_shortfall=es,
        fund=fund,
        prob_loss_exceeds_fund=None if fund is None else float(np.mean(losses > fund)),
        hist_edges=edges,
        hist_counts=counts,
        losses=losses,
    )
