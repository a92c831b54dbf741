"""HTML report of a guarantee book's risk: the board summary, the fee-category table, the
loss histogram and the loans that drive the tail (Euler contributions to ES 99.9%).

Amounts are shown in the book's currency with thousands separators and no decimals;
plot axes in millions of that currency. Self-contained HTML (plots inlined as PNG).
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import pandas as pd

BLUE = "#1f5fa8"


def money(v: Any) -> str:
    """An amount with thousands separators, no decimals ("-" when missing)."""
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    return f"{float(v):,.0f}"


def pct(v: Any, digits: int = 2) -> str:
    return "-" if v is None else f"{float(v):.{digits}%}"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    return plt, FuncFormatter


def _png(fig) -> bytes:
    plt, _ = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def loss_histogram_png(result: Any, fund: float | None, currency: str) -> bytes:
    """Histogram of the one-year loss (x axis in millions of ``currency``)."""
    plt, FuncFormatter = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=100)
    edges, counts = result.hist_edges, result.hist_counts
    ax.bar(edges[:-1], counts / max(counts.sum(), 1), width=edges[1:] - edges[:-1], align="edge", color=BLUE)
    ax.axvline(result.expected_loss, color="black", ls="--", lw=1, label="expected loss")
    for a, col in ((0.99, "#e69f00"), (0.999, "#d62728")):
        ax.axvline(result.quantiles[a], color=col, lw=1.2, label=f"VaR {a:.1%}")
    if fund is not None:
        ax.axvline(fund, color="green", lw=1.5, label="fund")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1e6:,.0f}"))
    ax.set_xlabel(f"one-year loss ({currency} millions)")
    ax.set_ylabel("share of scenarios")
    ax.legend(frameon=False)
    fig.tight_layout()
    return _png(fig)


def contributions_png(per_loan: pd.DataFrame, currency: str, top: int = 20) -> bytes:
    """The ``top`` loans by contribution to ES 99.9%, against their expected loss."""
    plt, FuncFormatter = _plt()
    d = per_loan.nlargest(min(top, len(per_loan)), "es_999").iloc[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.28 * len(d) + 1.4), dpi=100)
    y = range(len(d))
    ax.barh([v + 0.2 for v in y], d["es_999"], height=0.4, color=BLUE, label="contribution to ES 99.9%")
    ax.barh([v - 0.2 for v in y], d["el"], height=0.4, color="#999999", label="expected loss (1 year)")
    labels = [f"loan {i}" + (f" (cat. {c})" if "category" in d else "")
              for i, c in zip(d["loan_id"], d["category"] if "category" in d else [""] * len(d), strict=True)]
    ax.set_yticks(list(y), labels, fontsize=8)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1e6:,.1f}"))
    ax.set_xlabel(f"{currency} millions (net of reinsurance)")
    ax.set_title("Loans driving the tail")
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    fig.tight_layout()
    return _png(fig)


def _table(headers: list[str], rows: list[list[str]], cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "\n".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def render_html(summary: dict[str, Any], run: dict[str, Any], source: str, currency: str,
                fund: float | None) -> str:
    """The report page. ``summary``: the JSON summary; ``run``: :func:`run_portfolio`'s output."""
    board, cats, per_loan = run["board"], run["by_category"], run["per_loan"]
    cur = html.escape(currency)
    sides = ("gross", "net")
    lines = [("exposure (covered)", "exposure", money), ("premiums (PV)", "premiums_pv", money),
             ("expected claims (PV)", "expected_claims_pv", money), ("capital cost (PV)", "capital_cost_pv", money),
             ("admin cost (PV)", "admin_cost_pv", money), ("subsidy needed (PV)", "subsidy_pv", money),
             ("premiums / expected claims", "premiums_over_claims", lambda v: pct(v, 1)),
             ("capital held (IRB)", "capital", money),
             ("expected loss, one year", "expected_loss_1y", money), ("VaR 99.9%, one year", "var_999", money),
             ("expected shortfall 99.9%", "es_999", money),
             ("P(loss > fund)", "prob_loss_exceeds_fund", lambda v: pct(v, 3))]
    brows = [[html.escape(label), *[f(board[s].get(key)) if key in board[s] else "-" for s in sides]]
             for label, key, f in lines]
    board_tbl = _table([f"({cur})", "gross", f"net of {board['reinsurance_share']:.0%} reinsurance"], brows, "board")
    crow = [[html.escape(r["category"]), f"{r['loans']:,}", money(r["exposure"]), money(r.get("premiums_pv")),
             money(r.get("expected_claims_pv")), money(r.get("capital")), money(r.get("subsidy_pv")),
             money(r["es_999"]), pct(r["es_999_share"], 1)] for r in cats]
    cat_tbl = _table(["fee category", "loans", "exposure", "premiums PV", "expected claims PV", "capital",
                      "subsidy PV", "ES 99.9% contribution", "share of ES"], crow, "categories")
    top = per_loan.nlargest(min(20, len(per_loan)), "es_999")
    trow = [[html.escape(str(r.loan_id)), html.escape(str(getattr(r, "category", "-"))), pct(r.pd, 3),
             money(r.ead), money(r.el), money(r.es_999), pct(r.es_999_share, 2)] for r in top.itertuples()]
    top_tbl = _table(["loan", "category", "PD", "EAD (net)", "expected loss", "ES 99.9% contribution",
                      "share of ES"], trow, "loans")
    hist = base64.b64encode(loss_histogram_png(run["net"], fund, currency)).decode("ascii")
    contrib = base64.b64encode(contributions_png(per_loan, currency)).decode("ascii")
    n = summary["n_loans"]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Guarantee book: risk and pricing</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}th,td{{padding:3px 10px;border-bottom:1px solid #ddd}}
th{{text-align:left;background:#f3f5f8}}td{{text-align:right}}td:first-child{{text-align:left}}</style></head><body>
<h1>Guarantee book: risk and pricing</h1>
<p>Source: {html.escape(source)}. {n:,} guarantees, {summary['n_scenarios']:,} scenarios (seed {summary['seed']},
{html.escape(summary['method'])}), one-factor Vasicek Monte Carlo. Amounts in {cur}.</p>
<h2>Summary</h2>
{board_tbl}
<h2>By fee category</h2>
{cat_tbl}
<h2>Loans driving the tail</h2>
<p>Euler contributions to the expected shortfall at 99.9% (mean loss of the loan in the worst 0.1% of scenarios);
they add up to the book's ES. Full list in the JSON output (<code>contributions</code>).</p>
<img alt="contributions to expected shortfall" src="data:image/png;base64,{contrib}">
{top_tbl}
<h2>One-year loss distribution (net)</h2>
<img alt="loss histogram" src="data:image/png;base64,{hist}">
</body></html>
"""
