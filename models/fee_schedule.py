"""Guarantee fee schedules loaded from TOML data files (``models/data/fee_schedule_<name>.toml``).

A schedule is data, so adding a country needs a new file, not code. File format (see
``fee_schedule_japan.toml`` for a commented example)::

    name = "japan"                  # short name
    description = "..."
    currency = "JPY"
    fee_base = "loan" | "covered"   # rate applies to the loan balance or the guaranteed balance
    payment = "upfront" | "annual"  # one-off fee (Japan) or a rate p.a. on the outstanding base
    secured_discount = 0.0010       # fraction p.a. subtracted for secured guarantees (floored at 0)
    no_statements_category = "5"    # optional: category of firms without financial statements
    single_payment_coefficient = 1.0           # upfront only
    instalment_coefficients = [ {max_instalments = 6, coefficient = 0.70}, ... ]  # upfront only
    [[category]]                    # ordered safest -> riskiest
    label = "9"
    pd_upper = 0.002                # exclusive upper bound of one-year PD; last must be 1.0
    rate = 0.0045                   # fraction p.a., or a table keyed by coverage ratio:
    # rate = { "0.8" = 0.0045, "1.0" = 0.0050 }

Coverage: a schedule states the coverage ratios it prices, and any other coverage is an
error (:class:`CoverageError`) unless the schedule declares a rule for it:

* a rate table keyed by coverage prices exactly its keys (Japan: 0.8 and 1.0);
* ``coverage_range = [low, high]`` prices any coverage in that closed range at the same
  rate (for a fee on the covered balance the fee is then pro rata to cover by itself);
* ``coverage_rule = "pro_rata"`` with ``pro_rata_from = 0.8`` prices a coverage ``c``
  that is not a key at ``rate(0.8) x c / 0.8`` (fee proportional to cover).

A schedule with scalar rates must give ``coverage_range`` or ``coverages = [...]``.

Units: rates are fractions per annum; amounts in currency units; PD is one-year.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

DATA_DIR = Path(__file__).resolve().parent / "data"
FEE_BASES = ("loan", "covered")
PAYMENTS = ("upfront", "annual")


class FeeScheduleError(ValueError):
    """A schedule file is missing or malformed."""


class CoverageError(ValueError):
    """A coverage ratio the schedule does not price."""


def available_schedules() -> list[str]:
    """Names of the schedules shipped in ``models/data``."""
    return sorted(p.stem.removeprefix("fee_schedule_") for p in DATA_DIR.glob("fee_schedule_*.toml"))


@dataclass(frozen=True)
class FeeSchedule:
    """A fee schedule: PD categories, rates (fraction p.a.) and payment rules."""

    name: str
    description: str
    currency: str
    fee_base: str
    payment: str
    labels: tuple[str, ...]
    pd_upper: np.ndarray
    coverage_keys: np.ndarray  # sorted coverage ratios of the rate tables
    rates: np.ndarray  # shape (len(coverage_keys), n_categories)
    secured_discount: float = 0.0
    no_statements_category: str | None = None
    single_payment_coefficient: float = 1.0
    instalment_bands: tuple[tuple[float, float], ...] = field(default_factory=tuple)
    source: str = ""
    coverage_range: tuple[float, float] | None = None
    coverage_rule: str | None = None
    pro_rata_from: float | None = None

    def coverages_priced(self) -> str:
        """Human description of the coverages this schedule prices."""
        if self.coverage_range is not None:
            lo, hi = self.coverage_range
            return f"any coverage from {lo:g} to {hi:g}"
        keys = ", ".join(f"{k:g}" for k in self.coverage_keys)
        rule = f", others pro rata to cover from {self.pro_rata_from:g}" if self.coverage_rule == "pro_rata" else ""
        return f"coverage {keys}{rule}"

    def coverage_ok(self, coverage: Any) -> np.ndarray:
        """True where the schedule prices this coverage ratio (fraction)."""
        c = np.asarray(coverage, dtype=float)
        valid = (c > 0) & (c <= 1)
        if self.coverage_range is not None:
            lo, hi = self.coverage_range
            return valid & (c >= lo - 1e-9) & (c <= hi + 1e-9)
        if self.coverage_rule == "pro_rata":
            return valid
        return valid & np.isclose(c[..., None], self.coverage_keys, rtol=0, atol=1e-9).any(axis=-1)

    def category_index(self, pd: Any, no_statements: Any = None) -> np.ndarray:
        """Index into ``labels`` of each loan's category from its one-year PD.

        ``no_statements`` (bool array): firms without statements go to
        ``no_statements_category`` when the schedule defines one.
        """
        p = np.asarray(pd, dtype=float)
        idx = np.searchsorted(self.pd_upper, p, side="right")
        idx = np.minimum(idx, len(self.labels) - 1)
        if no_statements is not None and self.no_statements_category is not None:
            ns = np.broadcast_to(np.asarray(no_statements, dtype=bool), idx.shape)
            idx = np.where(ns, self.labels.index(self.no_statements_category), idx)
        return idx

    def category(self, pd: Any, no_statements: Any = None) -> np.ndarray:
        """Category label (str array) of each loan."""
        return np.asarray(self.labels, dtype=object)[self.category_index(pd, no_statements)]

    def annual_rate(self, pd: Any, coverage: Any = 0.8, secured: Any = False, no_statements: Any = None) -> np.ndarray:
        """Schedule rate, fraction p.a. on the schedule's ``fee_base``, after the secured discount."""
        idx = self.category_index(pd, no_statements)
        cov = np.broadcast_to(np.asarray(coverage, dtype=float), idx.shape)
        ok = self.coverage_ok(cov)
        if not np.all(ok):
            bad = np.unique(cov[~ok])
            raise CoverageError(
                f"schedule {self.name!r} does not price coverage {', '.join(f'{b:g}' for b in bad[:5])} "
                f"(it prices {self.coverages_priced()}; declare coverage_rule or coverage_range in the schedule "
                "to price others)")
        table = _nearest(self.coverage_keys, cov)
        rate = self.rates[table, idx]
        if self.coverage_rule == "pro_rata" and self.coverage_range is None:
            exact = np.isclose(cov[..., None], self.coverage_keys, rtol=0, atol=1e-9).any(axis=-1)
            ref = float(self.pro_rata_from)  # type: ignore[arg-type]
            ref_rate = self.rates[_nearest(self.coverage_keys, np.full(cov.shape, ref)), idx]
            rate = np.where(exact, rate, ref_rate * cov / ref)
        sec = np.broadcast_to(np.asarray(secured, dtype=bool), idx.shape)
        return np.maximum(rate - np.where(sec, self.secured_discount, 0.0), 0.0)

    def instalment_coefficient(self, instalments: Any) -> np.ndarray:
        """Coefficient of the up-front fee by number of instalments (1 = single payment)."""
        n = np.asarray(instalments, dtype=float)
        out = np.full(n.shape, self.single_payment_coefficient)
        if not self.instalment_bands:
            return out
        maxes = np.array([b[0] for b in self.instalment_bands])
        coefs = np.array([b[1] for b in self.instalment_bands])
        band = np.minimum(np.searchsorted(maxes, n, side="left"), len(maxes) - 1)
        return np.where(n > 1, coefs[band], out)

    def upfront_fee(self, amount: Any, rate: Any, months: Any, instalments: Any) -> np.ndarray:
        """One-off fee in currency units: amount x rate x months / 12 x instalment coefficient."""
        return (
            np.asarray(amount, dtype=float)
            * np.asarray(rate, dtype=float)
            * np.asarray(months, dtype=float)
            / 12.0
            * self.instalment_coefficient(instalments)
        )


def coverage_problem(schedule: FeeSchedule, coverage: float) -> str | None:
    """Why ``schedule`` cannot price ``coverage`` (None when it can)."""
    if bool(schedule.coverage_ok(coverage)):
        return None
    return (f"coverage {coverage:g} is not priced by schedule {schedule.name!r} (it prices "
            f"{schedule.coverages_priced()})")


def _nearest(keys: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Index of the nearest key (ties go to the lower key)."""
    if len(keys) == 1:
        return np.zeros(x.shape, dtype=np.intp)
    midpoints = (keys[:-1] + keys[1:]) / 2.0
    return np.searchsorted(midpoints, x, side="left")


def _resolve(name_or_path: str | Path) -> Path:
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        if not p.is_file():
            raise FeeScheduleError(f"fee schedule file not found: {p}")
        return p
    candidate = DATA_DIR / f"fee_schedule_{name_or_path}.toml"
    if not candidate.is_file():
        raise FeeScheduleError(
            f"unknown fee schedule {str(name_or_path)!r}; available: {', '.join(available_schedules())} "
            "(or give the path of a .toml file)"
        )
    return candidate


def load_schedule(name_or_path: str | Path) -> FeeSchedule:
    """Load a schedule by short name (``japan``, ``kodit``, ``sba``) or by TOML file path."""
    path = _resolve(name_or_path)
    try:
        with path.open("rb") as fh:
            doc = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise FeeScheduleError(f"{path}: invalid TOML: {exc}") from exc
    return parse_schedule(doc, source=str(path))


def parse_schedule(doc: dict[str, Any], source: str = "<dict>") -> FeeSchedule:
    """Build a :class:`FeeSchedule` from a parsed TOML document, validating it."""

    def fail(msg: str) -> FeeScheduleError:
        return FeeScheduleError(f"{source}: {msg}")

    fee_base = doc.get("fee_base", "covered")
    payment = doc.get("payment", "annual")
    if fee_base not in FEE_BASES:
        raise fail(f"fee_base must be one of {FEE_BASES}, got {fee_base!r}")
    if payment not in PAYMENTS:
        raise fail(f"payment must be one of {PAYMENTS}, got {payment!r}")
    cats = doc.get("category")
    if not cats:
        raise fail("no [[category]] entries")
    labels = tuple(str(c.get("label", "")) for c in cats)
    if any(not lab for lab in labels) or len(set(labels)) != len(labels):
        raise fail("every category needs a unique non-empty label")
    try:
        upper = np.array([float(c["pd_upper"]) for c in cats])
    except (KeyError, TypeError, ValueError) as exc:
        raise fail(f"every category needs a numeric pd_upper ({exc})") from exc
    if np.any(np.diff(upper) <= 0) or upper[-1] < 1.0 or upper[0] <= 0:
        raise fail("pd_upper must increase strictly from the safest category and the last must be 1.0")
    # rates: scalar or {coverage: rate}
    keys: set[float] = set()
    for c in cats:
        r = c.get("rate")
        if isinstance(r, dict):
            keys.update(float(k) for k in r)
        elif not isinstance(r, (int, float)):
            raise fail(f"category {c.get('label')!r}: rate must be a number or a table keyed by coverage")
    cov_keys = np.array(sorted(keys)) if keys else np.array([1.0])
    rates = np.empty((len(cov_keys), len(cats)))
    for j, c in enumerate(cats):
        r = c["rate"]
        for i, k in enumerate(cov_keys):
            if isinstance(r, dict):
                match = [v for kk, v in r.items() if float(kk) == k]
                if not match:
                    raise fail(f"category {c['label']!r} has no rate for coverage {k}")
                rates[i, j] = float(match[0])
            else:
                rates[i, j] = float(r)
    if np.any(rates < 0) or np.any(rates > 1):
        raise fail("rates must be fractions p.a. in [0, 1]")
    cov_range = doc.get("coverage_range")
    if cov_range is not None:
        if (not isinstance(cov_range, list) or len(cov_range) != 2
                or not 0 < float(cov_range[0]) <= float(cov_range[1]) <= 1):
            raise fail("coverage_range must be [low, high] with 0 < low <= high <= 1")
        cov_range = (float(cov_range[0]), float(cov_range[1]))
    listed = doc.get("coverages")
    if listed is not None:
        if keys:
            raise fail("coverages is for scalar rates; a rate table's keys are its coverages")
        try:
            cov_keys = np.array(sorted(float(c) for c in listed))
        except (TypeError, ValueError) as exc:
            raise fail(f"coverages must be a list of fractions ({exc})") from exc
        if not len(cov_keys) or np.any((cov_keys <= 0) | (cov_keys > 1)):
            raise fail("coverages must be a non-empty list of fractions in (0, 1]")
        rates = np.repeat(rates[:1], len(cov_keys), axis=0)
    if not keys and listed is None and cov_range is None:
        raise fail("a schedule with scalar rates must state the coverages it prices: coverage_range = [low, high] "
                   "or coverages = [...]")
    rule = doc.get("coverage_rule")
    pro_rata_from = doc.get("pro_rata_from")
    if rule not in (None, "pro_rata"):
        raise fail(f"coverage_rule must be \"pro_rata\" (got {rule!r})")
    if rule == "pro_rata":
        if pro_rata_from is None or not np.isclose(float(pro_rata_from), cov_keys, atol=1e-9).any():
            raise fail("coverage_rule = \"pro_rata\" needs pro_rata_from = one of the coverages the schedule prices")
        pro_rata_from = float(pro_rata_from)
    nsc = doc.get("no_statements_category")
    if nsc is not None and str(nsc) not in labels:
        raise fail(f"no_statements_category {nsc!r} is not a category label")
    bands = tuple(
        (float(b["max_instalments"]), float(b["coefficient"])) for b in doc.get("instalment_coefficients", [])
    )
    if bands and any(bands[i][0] >= bands[i + 1][0] for i in range(len(bands) - 1)):
        raise fail("instalment_coefficients must have increasing max_instalments")
    return FeeSchedule(
        name=str(doc.get("name", Path(source).stem)),
        description=str(doc.get("description", "")),
        currency=str(doc.get("currency", "")),
        fee_base=fee_base,
        payment=payment,
        labels=labels,
        pd_upper=upper,
        coverage_keys=cov_keys,
        rates=rates,
        secured_discount=float(doc.get("secured_discount", 0.0)),
        no_statements_category=None if nsc is None else str(nsc),
        single_payment_coefficient=float(doc.get("single_payment_coefficient", 1.0)),
        instalment_bands=bands,
        source=source,
        coverage_range=cov_range,
        coverage_rule=rule,
        pro_rata_from=pro_rata_from,
    )
