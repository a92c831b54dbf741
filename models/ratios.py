"""CRD-style financial ratios computed from financial statements (pure pandas/numpy).

Input: one row per financial statement in the canonical columns of the
``statements`` data dictionary (``pipelines/dictionary.py``: ``sales``,
``net_income``, ``total_assets``, ``net_assets``, ``interest_bearing_debt`` ...;
amounts in currency units, all statements in one currency) plus the firm-level
columns ``firm_id`` (any hashable key), ``industry`` (ISIC Rev.4 section letter),
``established_year`` (int, may be missing) and ``fiscal_year_end`` (date). The
optional ``months`` column is the length of the fiscal period (default 12): flow
amounts are annualised with ``12 / months`` where the ratio mixes periods.

Output: :func:`compute_features` returns one row per input row (same index) with
the columns of :data:`FEATURE_NAMES`, described in ``models/specs/features.toml``
(formula, unit, expected sign, bounds, behaviour when undefined). No value is ever
``+-inf``: a ratio is ``NaN`` where it is undefined (LightGBM handles ``NaN``) or
takes the documented cap, and every ratio is clipped to its documented bounds.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

#: ISIC Rev.4 sections (the same tuple as pipelines.dictionary.ISIC_SECTIONS; models
#: must not import pipelines).
ISIC_SECTIONS: tuple[str, ...] = tuple("ABCDEFGHIJKLMNOPQRSTU")

#: Growth is computed only against a previous statement this many calendar months earlier.
GROWTH_MIN_MONTHS = 6
GROWTH_MAX_MONTHS = 18

AMOUNT_COLUMNS = (
    "sales", "cost_of_sales", "operating_profit", "ordinary_profit", "net_income",
    "interest_expense", "depreciation", "cash", "receivables", "inventory",
    "current_assets", "fixed_assets", "total_assets", "current_liabilities",
    "interest_bearing_debt", "total_liabilities", "net_assets",
)
REQUIRED_COLUMNS = ("firm_id", "fiscal_year_end", "sales", "net_income", "total_assets",
                    "net_assets", "current_assets", "current_liabilities", "total_liabilities")


@dataclass(frozen=True)
class FeatureSpec:
    """One row of the feature table ``models/specs/features.toml``."""

    name: str
    label: str
    formula: str
    unit: str
    sign: int
    lower: float | None
    upper: float | None
    undefined: str
    low: str
    high: str


def load_feature_table(path: str | Path | None = None) -> list[FeatureSpec]:
    """Read the feature table (default: the packaged ``models/specs/features.toml``)."""
    if path is None:
        text = resources.files("models").joinpath("specs/features.toml").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    rows = tomllib.loads(text)["feature"]
    out = []
    for r in rows:
        if r["sign"] not in (-1, 0, 1):
            raise ValueError(f"features table: sign of {r['name']!r} must be -1, 0 or +1")
        out.append(FeatureSpec(
            name=r["name"], label=r["label"], formula=r["formula"], unit=r["unit"],
            sign=int(r["sign"]), lower=r.get("lower"), upper=r.get("upper"),
            undefined=r.get("undefined", ""), low=r.get("low", r["label"]), high=r.get("high", r["label"]),
        ))
    return out


@lru_cache(maxsize=1)
def _table() -> dict[str, FeatureSpec]:
    return {f.name: f for f in load_feature_table()}


def feature_table() -> dict[str, FeatureSpec]:
    """Packaged feature table keyed by feature name (in model order)."""
    return dict(_table())


#: Feature columns in model order.
FEATURE_NAMES: tuple[str, ...] = tuple(_table())


def _num(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(np.nan, index=frame.index, dtype="float64")
    return pd.to_numeric(frame[column], errors="coerce").astype("float64")


def _clip(name: str, values: pd.Series) -> pd.Series:
    spec = _table()[name]
    return values.clip(lower=spec.lower, upper=spec.upper)


def safe_ratio(num: pd.Series, den: pd.Series, *, zero_den: str = "nan",
               negative_den: str = "nan") -> pd.Series:
    """``num / den`` without infinities.

    ``zero_den``: ``"nan"`` gives NaN when ``den == 0``; ``"limit"`` gives the limit as
    ``den -> 0+`` (``+inf`` / ``-inf`` by the sign of ``num``, NaN when ``num == 0``),
    to be clipped by the caller to its documented cap. ``negative_den``: ``"nan"`` or
    ``"keep"`` (divide normally).
    """
    num = num.astype("float64")
    den = den.astype("float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / den
    zero = den == 0
    if zero_den == "limit":
        out = out.where(~zero, np.sign(num) * np.inf)
        out = out.where(~(zero & (num == 0)), np.nan)
    else:
        out = out.where(~zero, np.nan)
    if negative_den == "nan":
        out = out.where(~(den < 0), np.nan)
    return out


def _capped(name: str, values: pd.Series, zero_num: pd.Series | None = None) -> pd.Series:
    """Clip to the documented bounds (this also maps the +-inf limits to the caps).

    Where ``zero_num`` is true the ratio is 0 (a zero numerator over a zero
    denominator, e.g. no debt and no sales).
    """
    out = _clip(name, values)
    if zero_num is not None:
        out = out.mask(zero_num, 0.0)
    return out


def _months_between(earlier: pd.Series, later: pd.Series) -> pd.Series:
    """Whole calendar months from ``earlier`` to ``later`` (day of month ignored)."""
    return (later.dt.year - earlier.dt.year) * 12 + (later.dt.month - earlier.dt.month)


def previous_statement(frame: pd.DataFrame) -> pd.DataFrame:
    """For each row, the firm's previous statement usable for growth rates.

    The previous statement is the one with the latest ``fiscal_year_end`` strictly
    before the row's own, of the same ``firm_id``; it is used only when it lies
    ``GROWTH_MIN_MONTHS`` to ``GROWTH_MAX_MONTHS`` calendar months earlier (else the
    result is NaN). When a firm has several statements with the same date (e.g. from
    two institutions) the last one in input order is used.

    Returns a frame on the input index with ``prev_fiscal_year_end``, ``prev_sales``
    and ``prev_net_income`` (annualised amounts).
    """
    fye = pd.to_datetime(frame["fiscal_year_end"])
    months = _num(frame, "months").fillna(12.0)
    base = pd.DataFrame({
        "firm_id": frame["firm_id"].to_numpy(),
        "fye": fye.to_numpy(),
        "sales_a": (_num(frame, "sales") * 12.0 / months).to_numpy(),
        "ni_a": (_num(frame, "net_income") * 12.0 / months).to_numpy(),
        "_row": np.arange(len(frame)),
    })
    lookup = (base.dropna(subset=["fye"]).drop_duplicates(["firm_id", "fye"], keep="last")
              .rename(columns={"fye": "prev_fye", "sales_a": "prev_sales", "ni_a": "prev_net_income"})
              .drop(columns="_row"))
    lookup["key_fye"] = lookup["prev_fye"]
    left = base.dropna(subset=["fye"])[["firm_id", "fye", "_row"]].rename(columns={"fye": "key_fye"})
    merged = pd.merge_asof(left.sort_values("key_fye"), lookup.sort_values("key_fye"),
                           on="key_fye", by="firm_id", allow_exact_matches=False, direction="backward")
    merged = merged.set_index("_row").reindex(np.arange(len(frame)))
    gap = _months_between(merged["prev_fye"], merged["key_fye"])
    ok = (gap >= GROWTH_MIN_MONTHS) & (gap <= GROWTH_MAX_MONTHS)
    out = pd.DataFrame({
        "prev_fiscal_year_end": merged["prev_fye"].where(ok),
        "prev_sales": merged["prev_sales"].where(ok),
        "prev_net_income": merged["prev_net_income"].where(ok),
    })
    out.index = frame.index
    return out


def compute_features(statements: pd.DataFrame) -> pd.DataFrame:
    """CRD-style feature table, one row per statement, columns :data:`FEATURE_NAMES`.

    ``statements`` holds the canonical statement columns plus ``firm_id``,
    ``industry``, ``established_year`` and ``fiscal_year_end`` (see module
    docstring). Ratios are fractions (0.082 = 8.2 %), coverage in times, turnover in
    days, age in years, size as ``ln(1 + amount)`` (in the reporting currency when the frame
    has ``fx_to_reporting``; ratios never need it). ``industry`` is a pandas
    categorical over the ISIC sections A-U; ``negative_equity`` is 0/1 (float).
    Growth rates use only the same firm's previous statement 6-18 months earlier
    (:func:`previous_statement`), so pass the firm's whole history at once.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in statements.columns]
    if missing:
        raise ValueError(f"statements lack required column(s): {', '.join(missing)}")
    f = statements
    months = _num(f, "months").fillna(12.0)
    months = months.where(months > 0, np.nan)
    sales = _num(f, "sales")
    sales_a = sales * 12.0 / months
    ni = _num(f, "net_income")
    ta = _num(f, "total_assets")
    na = _num(f, "net_assets")
    tl = _num(f, "total_liabilities")
    ca = _num(f, "current_assets")
    cl = _num(f, "current_liabilities")
    ibd = _num(f, "interest_bearing_debt")
    ie = _num(f, "interest_expense")
    inv = _num(f, "inventory")
    rec = _num(f, "receivables")
    cash = _num(f, "cash")
    fye = pd.to_datetime(f["fiscal_year_end"])

    out = pd.DataFrame(index=f.index)
    ta_pos = ta.where(ta > 0)
    sales_pos = sales.where(sales > 0)
    out["equity_ratio"] = _clip("equity_ratio", na / ta_pos)
    # Sales <= 0 with debt outstanding is the worst case: the limit +inf, clipped to the cap.
    out["ibd_to_sales"] = _capped("ibd_to_sales", safe_ratio(ibd, sales_a.clip(lower=0), zero_den="limit"),
                                  zero_num=(ibd == 0) & sales_a.notna())
    out["debt_to_assets"] = _clip("debt_to_assets", tl / ta_pos)
    out["roa"] = _clip("roa", ni / ta_pos)
    out["net_margin"] = _clip("net_margin", ni / sales_pos)
    # EBIT / interest: operating profit is before interest; ordinary profit (the fallback)
    # is after it, so the interest is added back only to ordinary profit.
    ebit = _num(f, "operating_profit").fillna(_num(f, "ordinary_profit") + ie)
    out["interest_coverage"] = _capped("interest_coverage", safe_ratio(ebit, ie, zero_den="limit"))
    out["current_ratio"] = _capped("current_ratio", safe_ratio(ca, cl, zero_den="limit"))
    out["quick_ratio"] = _capped("quick_ratio", safe_ratio(ca - inv, cl, zero_den="limit"))
    out["cash_to_assets"] = _clip("cash_to_assets", cash / ta_pos)
    out["receivable_days"] = _capped("receivable_days",
                                     safe_ratio(rec * 365.0, sales_a.clip(lower=0), zero_den="limit"),
                                     zero_num=(rec == 0) & sales_a.notna())
    out["inventory_days"] = _capped("inventory_days",
                                    safe_ratio(inv * 365.0, sales_a.clip(lower=0), zero_den="limit"),
                                    zero_num=(inv == 0) & sales_a.notna())
    prev = previous_statement(f)
    ps = prev["prev_sales"]
    out["sales_growth"] = _clip("sales_growth", sales_a / ps.where(ps > 0) - 1.0)
    pn = prev["prev_net_income"]
    ni_a = ni * 12.0 / months
    out["profit_growth"] = _clip("profit_growth", (ni_a - pn) / pn.abs().where(pn != 0))
    # size features are amounts: with ``fx_to_reporting`` (reporting-currency units per unit of
    # the statement's currency at its fiscal year end) they are taken in the reporting currency
    fx = _num(f, "fx_to_reporting") if "fx_to_reporting" in f.columns else 1.0
    sales_size, ta_size = sales_a * fx, ta * fx
    out["log_sales"] = _clip("log_sales", np.log1p(sales_size.where(sales_size >= 0)))
    out["log_assets"] = _clip("log_assets", np.log1p(ta_size.where(ta_size >= 0)))
    est = _num(f, "established_year")
    age = fye.dt.year.astype("float64") - est
    out["firm_age"] = _clip("firm_age", age.where(age >= 0))
    ind = f["industry"] if "industry" in f.columns else pd.Series(np.nan, index=f.index)
    ind = ind.astype("object").where(ind.isin(ISIC_SECTIONS))
    out["industry"] = pd.Categorical(ind, categories=list(ISIC_SECTIONS))
    out["negative_equity"] = (na < 0).astype("float64").where(na.notna())
    tl_pos = tl.where(tl > 0)
    out["interest_rate_paid"] = _clip("interest_rate_paid", ie / ibd.where(ibd > 0))
    out["ibd_to_liabilities"] = _clip("ibd_to_liabilities", ibd / tl_pos)
    out["gross_margin"] = _clip("gross_margin", (sales - _num(f, "cost_of_sales")) / sales_pos)
    out["current_liabilities_share"] = _clip("current_liabilities_share", cl / tl_pos)
    return out[list(FEATURE_NAMES)]
