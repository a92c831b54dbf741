"""The ASEAN SME database view from the database: classes, conversion, the table, the report.

Each statement in force is classified under its country's SME rule in force at its
fiscal year end (``models.sme_definitions``; amounts first converted into the rule's
currency, so the class does not depend on the currency a bank submitted in) and by the
harmonised OECD / Eurostat class, each with the classifier's reason when it gives no class;
sales are converted into the reporting currency at the
fiscal year end (``pipelines.fx``). Ratios are currency-free and are not converted.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from models.fx import RateTable
from models.sme_database import KEY_RATIOS, sme_table, unknown_reasons
from models.sme_definitions import REASONS, harmonised_classes, load_definitions, national_class
from pipelines.statistics import RATIOS, gather

CLASSES = ("national", "harmonised")
#: statement amounts the SME rules read (converted to the rule's currency before classifying)
RULE_AMOUNTS = ("sales", "total_assets", "net_assets", "interest_bearing_debt", "paid_up_capital", "land",
                "buildings")
KEEP = ("country", "currency", "employees", *RULE_AMOUNTS, "isic_code", "institution_id")
DIMENSIONS = ("country", "size_class", "industry", "year")


def rule_currency() -> dict[str, str]:
    """Country -> currency of its SME rules' thresholds."""
    return {r.country: r.currency for r in load_definitions()[0]}


def classify(frame: pd.DataFrame, table: RateTable) -> pd.DataFrame:
    """``frame`` with ``sme_class``, ``sme_rule``, ``sme_reason_code``, ``sme_reason``,
    ``harmonised_class``, ``harmonised_reason_code`` and ``harmonised_reason``.

    Amounts are converted from each row's currency into its country's rule currency at
    its fiscal year end first (a missing rate raises :class:`models.fx.FxError`)."""
    out = frame.copy()
    target = out["country"].map(rule_currency())
    conv = out.copy()
    need = target.notna() & (target != out["currency"])
    if need.any():
        sub = out[need]
        factor = np.ones(len(sub))
        for cur, ix in sub.groupby(target[need]).indices.items():
            rows = sub.iloc[ix]
            factor[ix] = table.factors(rows["currency"], rows["fiscal_year_end"], cur)
        for c in RULE_AMOUNTS:
            if c in conv:
                conv.loc[need, c] = pd.to_numeric(sub[c], errors="coerce").to_numpy(dtype=float) * factor
        conv.loc[need, "currency"] = target[need]
    got = national_class(conv)
    for c in ("sme_class", "sme_rule", "sme_reason_code", "sme_reason"):
        out[c] = got[c]
    h = harmonised_classes(out["employees"])
    for c in h.columns:
        out[c] = h[c]
    return out


def region_frame(engine: Engine, table: RateTable, reporting: str, classes: str = "national",
                 as_of: dt.datetime | None = None) -> pd.DataFrame:
    """Statements in force with ``size_class`` (national or harmonised; None when unknown),
    ``size_reason_code`` and ``size_reason`` (why unknown, else ""), ``sales_rc`` (sales in
    ``reporting``), ``label`` and the ratios."""
    if classes not in CLASSES:
        raise ValueError(f"classes must be one of {CLASSES}")
    frame = gather(engine, as_of, keep=KEEP)
    if frame.empty:
        return frame.assign(size_class=pd.Series(dtype=object), sales_rc=pd.Series(dtype=float))
    frame = classify(frame, table)
    prefix = "sme" if classes == "national" else "harmonised"
    frame["size_class"] = frame[f"{prefix}_class"]
    frame["size_reason_code"] = frame[f"{prefix}_reason_code"]
    frame["size_reason"] = frame[f"{prefix}_reason"]
    frame["sales_rc"] = table.convert(frame["sales"], frame["currency"], frame["fiscal_year_end"], reporting)
    return frame


def region_view(engine: Engine, table: RateTable, by: list[str], reporting: str, classes: str = "national",
                k: int = 5, as_of: dt.datetime | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The table (:func:`models.sme_database.sme_table`) and why some firm-years have no
    class (:func:`models.sme_database.unknown_reasons`); both empty without statements."""
    frame = region_frame(engine, table, reporting, classes, as_of)
    ratios = [r for r in KEY_RATIOS if r in RATIOS]
    if frame.empty:
        return pd.DataFrame(), unknown_reasons(frame.assign(size_reason="", size_reason_code=""), pd.DataFrame(),
                                               by, k=k)
    out = sme_table(frame, by, k=k, ratios=ratios)
    return out, unknown_reasons(frame, out, by, k=k)


def region_table(engine: Engine, table: RateTable, by: list[str], reporting: str, classes: str = "national",
                 k: int = 5, as_of: dt.datetime | None = None) -> pd.DataFrame:
    """The table of :func:`region_view` alone."""
    return region_view(engine, table, by, reporting, classes, k, as_of)[0]


def reasons_by_country(reasons: pd.DataFrame) -> dict[str, list[dict[str, Any]]]:
    """Country -> its reasons (``reason_code``, ``reason``, ``firm_years``, ``suppressed``),
    JSON-ready (a suppressed count is None)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for r in reasons.to_dict("records"):
        n = r["firm_years"]
        out.setdefault(str(r["country"]), []).append({
            "reason_code": r["reason_code"], "reason": r["reason"],
            "firm_years": None if n is None or n is pd.NA else int(n),
            "suppressed": r["suppressed"] if isinstance(r["suppressed"], str) else None})
    return out


# ------------------------------------------------------------------------------- report
_ORDER = {"micro": 0, "small": 1, "medium": 2, "sme": 3, "large": 4, "unknown": 5}
BLUE, ORANGE = "#1f5fa8", "#e07b00"


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _charts(t: pd.DataFrame) -> list[tuple[str, str]]:
    """(title, data URI) of the comparison charts; only published cells are drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = t[(t["country"] != "all") & (t["size_class"] != "all") & t["suppressed"].isna()]
    countries = sorted(cells["country"].unique())
    classes = sorted(cells["size_class"].unique(), key=lambda c: _ORDER.get(c, 9))
    out: list[tuple[str, str]] = []
    if not countries:
        return out
    # size structure: share of firms by class, per country (stacked bars)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    bottom = np.zeros(len(countries))
    palette = [BLUE, ORANGE, "#2a9d3a", "#8e44ad", "#888888", "#c0392b"]
    for i, cls in enumerate(classes):
        firms = np.array([cells[(cells.country == c) & (cells.size_class == cls)]["firms"].sum() for c in countries],
                         dtype=float)
        totals = np.array([cells[cells.country == c]["firms"].sum() for c in countries], dtype=float)
        share = np.divide(firms, totals, out=np.zeros_like(firms), where=totals > 0)
        ax.bar(countries, share, bottom=bottom, label=cls, color=palette[i % len(palette)])
        bottom += share
    ax.set_ylabel("share of firms")
    ax.legend(fontsize=8, ncol=len(classes))
    ax.set_title("Size structure (published cells)")
    out.append(("Size structure by country", _png(fig)))
    # default rates by class, per country (grouped bars)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    width = 0.8 / max(len(countries), 1)
    x = np.arange(len(classes))
    for j, c in enumerate(countries):
        rates = [float(cells[(cells.country == c) & (cells.size_class == cls)]["default_rate"].sum()) * 100
                 for cls in classes]
        ax.bar(x + j * width, rates, width, label=c, color=palette[j % len(palette)])
    ax.set_xticks(x + width * (len(countries) - 1) / 2, classes)
    ax.set_ylabel("default rate, %")
    ax.legend(fontsize=8)
    ax.set_title("One-year default rate by size class")
    out.append(("Default rates by class", _png(fig)))
    # key ratios: median per country (country totals)
    tot = t[(t["country"] != "all") & (t["size_class"] == "all") & t["suppressed"].isna()]
    cols = [c for c in tot.columns if c.startswith("median_")]
    if cols and len(tot):
        fig, axes = plt.subplots(1, len(cols), figsize=(3 * len(cols), 2.8))
        for ax, col in zip(np.atleast_1d(axes), cols, strict=False):
            ax.bar(tot["country"], tot[col].astype(float), color=BLUE)
            ax.set_title(col.removeprefix("median_"), fontsize=9)
        fig.suptitle("Median key ratios by country")
        out.append(("Key ratios", _png(fig)))
    return out


def reasons_html(reasons: pd.DataFrame, k: int) -> str:
    """The "Why some firms have no class" section: one small table per country."""
    esc = html.escape
    parts = ["<h2>Why some firms have no class</h2>"]
    if reasons.empty:
        parts.append("<p>Every firm-year has a class.</p>")
        return "\n".join(parts)
    parts.append(f"<p>Firm-years (statements in force) without a class, by the classifier's reason. A count is "
                 f"suppressed below {k} firms once any one institution's own firms are removed, and one more "
                 "is suppressed when the country's unknown-class total would reveal it.</p>")
    for country, rows in reasons_by_country(reasons).items():
        body = "".join(
            f'<tr><td style="text-align:left">{esc(r["reason"])}</td><td>{esc(r["reason_code"])}</td>'
            f'<td>{"" if r["firm_years"] is None else r["firm_years"]}</td><td>{esc(r["suppressed"] or "")}</td></tr>'
            for r in rows)
        parts.append(f"<h3>{esc(country)}</h3><table><thead><tr><th>reason</th><th>code</th><th>firm-years</th>"
                     f"<th>suppressed</th></tr></thead><tbody>{body}</tbody></table>")
    codes = sorted(set(reasons["reason_code"]))
    parts.append("<p>" + "; ".join(f"<b>{esc(c)}</b>: {esc(REASONS.get(c, ''))}" for c in codes) + ".</p>")
    return "\n".join(parts)


def write_report(t: pd.DataFrame, path: str, meta: dict[str, Any], reasons: pd.DataFrame | None = None) -> None:
    """Self-contained HTML: the table, the charts (PNG inline) and, with ``reasons``
    (:func:`models.sme_database.unknown_reasons`), why some firms have no class; no network."""
    esc = html.escape
    cols = list(t.columns)

    def fmt(v: Any) -> str:
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            return ""
        if isinstance(v, float):
            return f"{v:,.4f}" if abs(v) < 100 else f"{v:,.0f}"
        return str(v)

    rows = "\n".join("<tr>" + "".join(f"<td>{esc(fmt(r[c]))}</td>" for c in cols) + "</tr>"
                     for r in t.to_dict("records"))
    charts = "\n".join(f'<h2>{esc(title)}</h2><img alt="{esc(title)}" src="{uri}">' for title, uri in _charts(t))
    title = f"ASEAN SME database: {', '.join(meta['by'])} ({meta['classes']} classes)"
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>body{{font-family:sans-serif;margin:1em}} table{{border-collapse:collapse;font-size:11px}}
th,td{{border:1px solid #ccc;padding:2px 5px;text-align:right}} th{{background:#eee}} img{{max-width:100%}}</style>
</head><body><h1>{esc(title)}</h1>
<p>Statements in force at {esc(meta['as_of'])}; sales in {esc(meta['currency'])} converted at each fiscal
year end (ECB reference rates; operator-loaded rates for the others). Each firm-year is classified
under its country's SME rule in force at its fiscal year end ({esc(meta['classes'])} classes).
Cells with fewer than {meta['k']} firms once any one institution's own firms are removed are suppressed,
with complementary suppression; employment and
sales also follow the (2, 85 %) dominance rule. Firms, statements, default rate and ratio medians: all
statements in force; firms_latest, employment and sales: each firm's latest statement.</p>
{charts}
<h2>Table</h2>
<table><thead><tr>{''.join(f'<th>{esc(c)}</th>' for c in cols)}</tr></thead><tbody>
{rows}
</tbody></table>
{reasons_html(reasons, meta["k"]) if reasons is not None else ""}
</body></html>
"""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(doc)
