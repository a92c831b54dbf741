"""Supervisor's validation report of a PD rating model: all numbers as a JSON-ready dict
(:func:`build_validation`) and one self-contained offline HTML page (:func:`render_html`).

The statistics come from :mod:`models.validation_stats`; this module only assembles them,
draws the plots (matplotlib, Agg canvas, embedded as base64 PNG) and writes HTML with inline
CSS. The HTML is rendered from the results dict alone, so a stored JSON result can be
re-rendered later without the data.

PDs are one-year default probabilities (fractions); default flags are 0/1 over the year
following the statement.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas

from models import validation_stats as vs

SCHEMA = "creditdb.validation/1"

TRAFFIC_LIGHT_RULE = (
    "One-sided tests against PD underestimation; confidence of underestimation c = 1 − p. "
    "green: c < 95% (p > 0.05); yellow: 95% ≤ c ≤ 99.9% (0.001 ≤ p ≤ 0.05); red: c > 99.9% (p < 0.001). "
    "The grade light uses the Jeffreys p-value (ECB 2019); the binomial light is shown beside it."
)

MODEL_CARD_FIELDS = (
    ("version", "Model version"),
    ("data_window", "Data window"),
    ("default_definition", "Default definition"),
    ("features", "Features and constraints"),
    ("calibration_target", "Calibration target"),
    ("known_limitations", "Known limitations"),
    ("approval_state", "Approval state"),
)


# ------------------------------------------------------------------------- numbers
def to_jsonable(obj: Any) -> Any:
    """Recursively convert numpy scalars/arrays and dataclasses to plain Python; NaN and
    ±inf become None so the result passes ``json.dumps(..., allow_nan=False)``."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if hasattr(obj, "to_dict") and not isinstance(obj, (pandas.DataFrame, pandas.Series)):
        return to_jsonable(obj.to_dict())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, (_dt.date, _dt.datetime)):
        return obj.isoformat()
    return str(obj)


def _calibration_by_year(year: np.ndarray, default: np.ndarray, pd_: np.ndarray) -> list[dict[str, Any]]:
    codes, years = pandas.factorize(year, sort=True)
    rows = []
    for k, y in enumerate(years):
        m = codes == k
        r = vs.portfolio_jeffreys(default[m], pd_[m])
        r["year"] = y
        rows.append(r)
    return rows


def build_validation(
    pd: np.ndarray,
    default: np.ndarray,
    grade: np.ndarray,
    year: np.ndarray,
    firm_id: np.ndarray,
    grade_pd: Mapping[str, float],
    features_dev: pandas.DataFrame,
    features_val: pandas.DataFrame,
    score_dev: np.ndarray,
    challenger_pd: np.ndarray | None = None,
    initial_auc: float | None = None,
    contributions: pandas.DataFrame | None = None,
    monotone: Mapping[str, int] | None = None,
    model_card: Mapping[str, Any] | None = None,
    *,
    grade_dev: np.ndarray | None = None,
    country: np.ndarray | None = None,
    level: float = 0.95,
) -> dict[str, Any]:
    """Compute every validation statistic for one model on one validation sample.

    Arrays are aligned, one element per scored statement of the validation sample:
    ``pd`` model PD (one year, fraction), ``default`` 0/1 flag, ``grade`` master-scale grade
    label, ``year`` fiscal year (int), ``firm_id`` firm key (for migrations).
    ``grade_pd``: grade label -> master-scale PD (fraction); defines grade order (by PD).
    ``features_dev`` / ``features_val``: model features of the development / validation
    samples (same columns; PSI per column). ``score_dev``: model PD on the development
    sample (PSI of the score). ``challenger_pd``: PD of the challenger on the same
    validation rows (DeLong comparison). ``initial_auc``: AUC at initial validation (ECB
    test). ``contributions``: SHAP contribution matrix of the validation rows (a bias
    column named bias/expected_value/base_value is ignored). ``monotone``: feature ->
    expected sign of its effect on PD (+1/−1). ``model_card``: free fields, see
    MODEL_CARD_FIELDS. ``grade_dev``: optional grades of the development sample (PSI of grades).
    ``country``: optional country of each row: discrimination and calibration per country,
    with the same traffic lights (``auc_by_country``, ``by_country``).

    Returns a dict of plain JSON types (NaN -> None) with sections model_card, sample,
    discrimination, calibration, stability, drivers.
    """
    p = np.asarray(pd, dtype=float)
    y = np.asarray(default).astype(np.int8)
    n = p.size
    for name, arr in (("default", y), ("grade", grade), ("year", year), ("firm_id", firm_id)):
        if np.asarray(arr).shape != (n,):
            raise ValueError(f"{name} must have the same length as pd ({n}), got {np.asarray(arr).shape}")
    if len(features_val) != n:
        raise ValueError(f"features_val must have {n} rows, got {len(features_val)}")
    g = np.asarray(grade, dtype=object)
    yr = np.asarray(year).astype(np.int64)
    unknown = sorted(set(pandas.unique(g)) - set(grade_pd), key=str)
    if unknown:
        raise ValueError(f"grades missing from grade_pd: {unknown}")
    order = sorted(grade_pd, key=lambda k: grade_pd[k])

    # discrimination
    a = vs.auc_delong(p, y, level)
    disc: dict[str, Any] = {
        "auc": a.to_dict(),
        "ar": a.ar,
        "ks": vs.ks_statistic(p, y),
        "roc": vs.roc_curve(p, y),
        "cap": vs.cap_curve(p, y),
        "auc_by_year": vs.auc_by_group(p, y, yr, level),
        "auc_by_country": None if country is None else vs.auc_by_group(p, y, np.asarray(country, dtype=object),
                                                                         level),
        "challenger": None,
        "ecb_auc_test": None,
    }
    if challenger_pd is not None:
        c = np.asarray(challenger_pd, dtype=float)
        disc["challenger"] = {"auc": vs.auc_delong(c, y, level).to_dict(),
                              "delong": vs.delong_test(p, c, y).to_dict()}
    if initial_auc is not None:
        disc["ecb_auc_test"] = vs.ecb_auc_test(initial_auc, a.auc, a.se)

    # calibration
    cal = {
        "by_grade": vs.calibration_by_grade(g, y, p, grade_pd, order, level),
        "by_year": _calibration_by_year(yr, y, p),
        "by_country": None if country is None else [
            {**{k: v for k, v in r.items() if k != "year"}, "country": r["year"]}
            for r in _calibration_by_year(np.asarray(country, dtype=object), y, p)],
        "portfolio_jeffreys": vs.portfolio_jeffreys(y, p, level),
        "hosmer_lemeshow_deciles": vs.hosmer_lemeshow(p, y),
        "hosmer_lemeshow_grades": vs.hosmer_lemeshow(p, y, groups=g),
        "brier": vs.brier_score(p, y),
        "traffic_light_rule": TRAFFIC_LIGHT_RULE,
    }

    # stability
    feats = []
    for col in features_val.columns:
        if col not in features_dev.columns:
            raise ValueError(f"feature {col!r} is in features_val but not in features_dev")
        dv, vv = features_dev[col], features_val[col]
        if pandas.api.types.is_numeric_dtype(dv) and pandas.api.types.is_numeric_dtype(vv):
            r = vs.psi_continuous(dv.to_numpy(dtype=float), vv.to_numpy(dtype=float))
        else:
            r = vs.psi_categorical(dv.to_numpy(dtype=object), vv.to_numpy(dtype=object))
        r["feature"] = str(col)
        feats.append(r)
    stab = {
        "psi_score": vs.psi_continuous(np.asarray(score_dev, dtype=float), p),
        "psi_features": feats,
        "psi_grade": vs.psi_categorical(grade_dev, g, order) if grade_dev is not None else None,
        "migration": vs.migration_matrix(firm_id, yr, g, order),
        "herfindahl": vs.herfindahl(g, order),
        "psi_epsilon": vs.PSI_EPSILON,
    }

    # drivers
    mono = []
    for feat, sign in (monotone or {}).items():
        if feat not in features_val.columns:
            raise ValueError(f"monotone feature {feat!r} is not a column of features_val")
        r = vs.monotonicity_check(features_val[feat].to_numpy(dtype=float), p, int(sign))
        r["feature"] = feat
        mono.append(r)
    drivers = {
        "mean_abs_contribution": vs.mean_abs_contribution(contributions) if contributions is not None else None,
        "monotonicity": mono,
    }

    years = sorted(set(yr.tolist()))
    results = {
        "schema": SCHEMA,
        "generated_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "model_card": dict(model_card or {}),
        "sample": {"n": n, "defaults": int(y.sum()), "default_rate": float(y.mean()) if n else None,
                   "mean_pd": float(p.mean()) if n else None, "years": years,
                   "firms": int(pandas.unique(np.asarray(firm_id)).size)},
        "discrimination": disc,
        "calibration": cal,
        "stability": stab,
        "drivers": drivers,
    }
    return to_jsonable(results)


# --------------------------------------------------------------------------- plots
def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})  # no URL inside the PNG
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(w: float, h: float) -> Any:
    from matplotlib.figure import Figure  # Agg canvas via savefig; no pyplot global state

    return Figure(figsize=(w, h), layout="constrained")


def _num(v: Any) -> float:
    return float("nan") if v is None else float(v)


def _plot_roc_cap(d: dict[str, Any]) -> str:
    fig = _figure(10, 4.2)
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(d["roc"]["fpr"], d["roc"]["tpr"], color="#1f5fa8", lw=2, label=f"model (AUC {_num(d['auc']['auc']):.3f})")
    ax1.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="random")
    ax1.set(xlabel="False-positive rate (non-defaulters flagged)", ylabel="True-positive rate (defaulters flagged)",
            title="ROC curve", xlim=(0, 1), ylim=(0, 1.01))
    ax1.legend(loc="lower right")
    pop, dr = d["cap"]["population"], d["cap"]["defaults"]
    ax2.plot(pop, dr, color="#1f5fa8", lw=2, label=f"model (AR {_num(d['ar']):.3f})")
    ax2.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="random")
    ax2.set(xlabel="Share of population (riskiest first)", ylabel="Share of defaulters captured",
            title="Cumulative accuracy profile", xlim=(0, 1), ylim=(0, 1.01))
    ax2.legend(loc="lower right")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    return _png(fig)


def _plot_auc_year(rows: list[dict[str, Any]]) -> str:
    fig = _figure(7, 3.6)
    ax = fig.subplots()
    xs = [str(r["group"]) for r in rows]
    a = np.array([_num(r["auc"]) for r in rows])
    lo = np.array([_num(r["ci_lower"]) for r in rows])
    hi = np.array([_num(r["ci_upper"]) for r in rows])
    ax.errorbar(range(len(xs)), a, yerr=[a - lo, hi - a], fmt="o-", color="#1f5fa8", capsize=4)
    ax.set_xticks(range(len(xs)), xs)
    ax.set(xlabel="Year", ylabel="AUC (95% DeLong CI)", title="AUC per year")
    ax.grid(alpha=0.3)
    return _png(fig)


def _plot_calibration(rows: list[dict[str, Any]]) -> str:
    fig = _figure(8, 4.2)
    ax = fig.subplots()
    x = np.arange(len(rows))
    pd_ = np.array([_num(r["test_pd"]) for r in rows])
    odr = np.array([_num(r["odr"]) for r in rows])
    lo = np.array([_num(r["jeffreys_lower"]) for r in rows])
    hi = np.array([_num(r["jeffreys_upper"]) for r in rows])
    positive = np.r_[pd_[pd_ > 0], odr[odr > 0], hi[hi > 0]]
    floor = positive.min() / 5 if positive.size else 1e-5
    colours = {"green": "#2e8b57", "yellow": "#d4a017", "red": "#c0392b", "grey": "#888888"}
    ax.plot(x, pd_, "s-", color="#1f5fa8", label="grade PD (tested)")
    ax.plot(x, [_num(r["mean_pd"]) for r in rows], "D--", color="#7f7f7f", ms=4, lw=1, label="mean model PD")
    for i, r in enumerate(rows):
        y = max(odr[i], floor)
        ax.errorbar([i + 0.15], [y], yerr=[[y - max(lo[i], floor)], [max(hi[i], floor) - y]], fmt="o",
                    color=colours.get(r["traffic_light"], "black"), capsize=4,
                    mfc="white" if odr[i] == 0 else None)
    ax.plot([], [], "o", color="black", label="observed default rate, 95% Jeffreys interval")
    ax.set_yscale("log")
    ax.set_ylim(bottom=floor / 1.5)
    ax.set_xticks(x, [str(r["grade"]) for r in rows])
    ax.set(xlabel="Grade", ylabel="Default rate (log scale)",
           title="Calibration per grade (marker colour = traffic light; hollow = no defaults)")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3, which="both")
    return _png(fig)


def _plot_migration(m: dict[str, Any]) -> str:
    rates = np.array(m["rates"], dtype=float) if m["rates"] else np.zeros((0, 0))
    k = rates.shape[0]
    fig = _figure(max(4.5, 0.6 * k + 2), max(3.8, 0.55 * k + 1.5))
    ax = fig.subplots()
    im = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{rates[i, j]:.0%}", ha="center", va="center", fontsize=8,
                    color="white" if rates[i, j] > 0.5 else "black")
    ax.set_xticks(range(k), m["grades"])
    ax.set_yticks(range(k), m["grades"])
    ax.set(xlabel="Grade in year t + 1", ylabel="Grade in year t", title="Migration rates (row-normalised)")
    fig.colorbar(im, ax=ax, fraction=0.046)
    return _png(fig)


def _plot_shap(rows: list[dict[str, Any]]) -> str:
    rows = rows[:25]
    fig = _figure(7, max(2.5, 0.32 * len(rows) + 1))
    ax = fig.subplots()
    ax.barh(range(len(rows))[::-1], [r["mean_abs"] for r in rows], color="#1f5fa8")
    ax.set_yticks(range(len(rows))[::-1], [r["feature"] for r in rows])
    ax.set(xlabel="Mean |contribution| (log-odds)", title="Feature importance (mean |SHAP|)")
    ax.grid(alpha=0.3, axis="x")
    return _png(fig)


# ---------------------------------------------------------------------------- HTML
CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:24px auto;max-width:1180px;color:#1b1b1b;line-height:1.4}
h1{border-bottom:3px solid #1f5fa8;padding-bottom:6px}h2{color:#1f5fa8;border-bottom:1px solid #ccd;margin-top:36px}
table{border-collapse:collapse;margin:10px 0 18px;font-size:13px}th,td{border:1px solid #ccd;padding:4px 8px;text-align:right}
th{background:#eef2f8}td.l,th.l{text-align:left}caption{caption-side:top;text-align:left;font-weight:bold;padding:4px 0}
.green{background:#c8ecd4}.yellow{background:#fbeaa6}.red{background:#f5b7b1}.grey{background:#e5e5e5}
.stable{background:#c8ecd4}.watch{background:#fbeaa6}.shift{background:#f5b7b1}
.note{color:#555;font-size:12px}img{max-width:100%;display:block;margin:8px 0}
.kpi{display:inline-block;border:1px solid #ccd;border-radius:6px;padding:8px 14px;margin:4px 8px 4px 0;background:#f7f9fc}
.kpi b{display:block;font-size:20px}
"""


def _e(v: Any) -> str:
    return html.escape(str(v))


def _fmt(v: Any, spec: str = ".4f") -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return format(v, spec)
    return _e(v)


def _pct(v: Any, digits: int = 2) -> str:
    return "n/a" if v is None else f"{100 * float(v):.{digits}f}%"


def _pval(v: Any) -> str:
    if v is None:
        return "n/a"
    return f"{v:.2e}" if v < 1e-4 else f"{v:.4f}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], caption: str = "", left: int = 1,
           classes: Sequence[Sequence[str]] | None = None) -> str:
    out = ["<table>"]
    if caption:
        out.append(f"<caption>{_e(caption)}</caption>")
    out.append("<tr>" + "".join(f'<th class="l">{_e(h)}</th>' if i < left else f"<th>{_e(h)}</th>"
                                for i, h in enumerate(headers)) + "</tr>")
    for r, row in enumerate(rows):
        cells = []
        for i, c in enumerate(row):
            cls = [classes[r][i]] if classes and classes[r][i] else []
            if i < left:
                cls.append("l")
            attr = f' class="{" ".join(cls)}"' if cls else ""
            cells.append(f"<td{attr}>{c}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "".join(out)


def _card_value(v: Any) -> str:
    if isinstance(v, Mapping):
        return "<br>".join(f"{_e(k)}: {_card_value(x)}" for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return "<br>".join(_card_value(x) for x in v)
    return _e(v)


def _img(src: str, alt: str) -> str:
    return f'<img src="{src}" alt="{_e(alt)}">'


def _section_model_card(card: Mapping[str, Any]) -> str:
    known = [k for k, _ in MODEL_CARD_FIELDS]
    rows = [[_e(label), _card_value(card.get(k, "not stated"))] for k, label in MODEL_CARD_FIELDS]
    rows += [[_e(k), _card_value(v)] for k, v in card.items() if k not in known]
    return "<h2>1. Model card</h2>" + _table(["Field", "Value"], rows, left=2)


def _section_discrimination(d: dict[str, Any]) -> str:
    a = d["auc"]
    out = ["<h2>2. Discrimination</h2>",
           f'<div class="kpi">AUC<b>{_fmt(a["auc"])}</b>95% CI {_fmt(a["ci_lower"])}–{_fmt(a["ci_upper"])}</div>',
           f'<div class="kpi">Accuracy ratio<b>{_fmt(d["ar"])}</b>AR = 2·AUC − 1</div>',
           f'<div class="kpi">KS<b>{_fmt(d["ks"]["ks"])}</b>at PD {_fmt(d["ks"]["threshold"], ".4g")}</div>',
           f'<div class="kpi">DeLong s.e.<b>{_fmt(a["se"])}</b>{_fmt(a["n_defaults"])} defaulters / '
           f'{_fmt(a["n_non_defaults"])} non-defaulters</div>',
           _img(_plot_roc_cap(d), "ROC and CAP curves")]
    rows = d["auc_by_year"]
    if rows:
        out.append(_img(_plot_auc_year(rows), "AUC per year"))
        out.append(_table(["Year", "Observations", "Defaults", "Default rate", "AUC", "95% CI"],
                          [[_e(r["group"]), _fmt(r["n"]), _fmt(r["defaults"]), _pct(r["default_rate"]),
                            _fmt(r["auc"]), f'{_fmt(r["ci_lower"])}–{_fmt(r["ci_upper"])}'] for r in rows],
                          "AUC per year (DeLong 95% confidence interval)"))
    rows = d.get("auc_by_country")
    if rows:
        out.append(_table(["Country", "Observations", "Defaults", "Default rate", "AUC", "95% CI"],
                          [[_e(r["group"]), _fmt(r["n"]), _fmt(r["defaults"]), _pct(r["default_rate"]),
                            _fmt(r["auc"]), f'{_fmt(r["ci_lower"])}–{_fmt(r["ci_upper"])}'] for r in rows],
                          "AUC per country (DeLong 95% confidence interval)"))
    ch = d.get("challenger")
    if ch:
        t = ch["delong"]
        out.append(_table(["Model", "AUC", "95% CI"],
                          [["Champion", _fmt(t["auc_1"]), f'{_fmt(a["ci_lower"])}–{_fmt(a["ci_upper"])}'],
                           ["Challenger", _fmt(t["auc_2"]),
                            f'{_fmt(ch["auc"]["ci_lower"])}–{_fmt(ch["auc"]["ci_upper"])}']],
                          "Challenger comparison"))
        out.append(f'<p>DeLong test of equal AUCs (same sample, two-sided): difference {_fmt(t["difference"])}, '
                   f's.e. {_fmt(t["se_difference"])}, z = {_fmt(t["z"], ".3f")}, p = {_pval(t["p_value"])}.</p>')
    else:
        out.append('<p class="note">No challenger model supplied.</p>')
    e = d.get("ecb_auc_test")
    if e:
        out.append(_table(["AUC at initial validation", "Current AUC", "s.e. (current, DeLong)", "z", "p-value"],
                          [[_fmt(e["auc_initial"]), _fmt(e["auc_current"]), _fmt(e["se_current"]),
                            _fmt(e["z"], ".3f"), _pval(e["p_value"])]],
                          "ECB test of current AUC against initial validation", left=0))
        out.append('<p class="note">H0: current AUC ≥ initial AUC; z = (AUC<sub>init</sub> − AUC<sub>curr</sub>)/s, '
                   "p = 1 − Φ(z); a small p-value signals a significant loss of discriminatory power.</p>")
    else:
        out.append('<p class="note">No AUC at initial validation supplied; ECB AUC test not performed.</p>')
    return "".join(out)


def _section_calibration(c: dict[str, Any]) -> str:
    rows, classes = [], []
    for r in c["by_grade"]:
        rows.append([_e(r["grade"]), _fmt(r["firms"]), _fmt(r["defaults"]), _pct(r["odr"]), _pct(r["mean_pd"]),
                     _pct(r["test_pd"]), f'{_pct(r["jeffreys_lower"])}–{_pct(r["jeffreys_upper"])}',
                     _pval(r["binomial_p"]), _pval(r["jeffreys_p"]), _e(r["traffic_light"])])
        classes.append([""] * 7 + [r["binomial_light"], r["traffic_light"], r["traffic_light"]])
    out = ["<h2>3. Calibration</h2>",
           _table(["Grade", "Firms", "Defaults", "Observed DR", "Mean PD", "Grade PD", "Jeffreys 95% interval",
                   "Binomial p", "Jeffreys p", "Light"], rows, "Calibration per grade", classes=classes),
           f'<p class="note">{_e(c["traffic_light_rule"])} Binomial p = P[X ≥ D], X ~ Bin(N, PD); '
           "Jeffreys p = CDF at PD of Beta(D + ½, N − D + ½).</p>",
           _img(_plot_calibration(c["by_grade"]), "Calibration plot")]
    pj = c["portfolio_jeffreys"]
    out.append(_table(["Level", "Firms", "Defaults", "Observed DR", "Mean PD", "Jeffreys 95% interval", "Binomial p",
                       "Jeffreys p", "Light"],
                      [["Portfolio", _fmt(pj["firms"]), _fmt(pj["defaults"]), _pct(pj["odr"]), _pct(pj["mean_pd"]),
                        f'{_pct(pj["jeffreys_lower"])}–{_pct(pj["jeffreys_upper"])}', _pval(pj["binomial_p"]),
                        _pval(pj["jeffreys_p"]), _e(pj["traffic_light"])]]
                      + [[_e(r["year"]), _fmt(r["firms"]), _fmt(r["defaults"]), _pct(r["odr"]), _pct(r["mean_pd"]),
                          f'{_pct(r["jeffreys_lower"])}–{_pct(r["jeffreys_upper"])}', _pval(r["binomial_p"]),
                          _pval(r["jeffreys_p"]), _e(r["traffic_light"])] for r in c["by_year"]],
                      "Portfolio-level Jeffreys test (tested PD = mean model PD), overall and per year",
                      classes=[[""] * 8 + [pj["traffic_light"]]] + [[""] * 8 + [r["traffic_light"]] for r in c["by_year"]]))
    if c.get("by_country"):
        rc = c["by_country"]
        out.append(_table(["Country", "Firms", "Defaults", "Observed DR", "Mean PD", "Jeffreys 95% interval",
                           "Binomial p", "Jeffreys p", "Light"],
                          [[_e(r["country"]), _fmt(r["firms"]), _fmt(r["defaults"]), _pct(r["odr"]),
                            _pct(r["mean_pd"]), f'{_pct(r["jeffreys_lower"])}–{_pct(r["jeffreys_upper"])}',
                            _pval(r["binomial_p"]), _pval(r["jeffreys_p"]), _e(r["traffic_light"])] for r in rc],
                          "Calibration per country (Jeffreys test, tested PD = mean model PD; same traffic lights)",
                          classes=[[""] * 8 + [r["traffic_light"]] for r in rc]))
    hd, hg = c["hosmer_lemeshow_deciles"], c["hosmer_lemeshow_grades"]
    out.append(_table(["Test", "Groups", "Statistic", "df", "p-value"],
                      [["Hosmer–Lemeshow, PD deciles", _fmt(hd["groups"]), _fmt(hd["statistic"], ".3f"), _fmt(hd["df"]),
                        _pval(hd["p_value"])],
                       ["Hosmer–Lemeshow, grades", _fmt(hg["groups"]), _fmt(hg["statistic"], ".3f"), _fmt(hg["df"]),
                        _pval(hg["p_value"])],
                       ["Brier score", "", _fmt(c["brier"], ".5f"), "", ""]],
                      "Goodness of fit (χ² with groups − 2 degrees of freedom)"))
    return "".join(out)


def _section_stability(s: dict[str, Any]) -> str:
    psi_rows = [s["psi_score"] | {"feature": "score (PD)"}] + s["psi_features"]
    if s.get("psi_grade"):
        psi_rows.insert(1, s["psi_grade"] | {"feature": "grade"})
    out = ["<h2>4. Stability</h2>",
           _table(["Variable", "PSI", "Reading", "Bins"],
                  [[_e(r["feature"]), _fmt(r["psi"]), _e(r["label"]), _fmt(len(r["bins"]))] for r in psi_rows],
                  "Population stability index, development vs validation sample",
                  classes=[["", "", r["label"], ""] for r in psi_rows]),
           f'<p class="note">PSI = Σ (a − e)·ln(a/e) over bins (continuous variables: deciles of the development '
           f'sample; missing values their own bin). Empty bins use share {s["psi_epsilon"]:g}. '
           "Convention: &lt; 0.10 stable, 0.10–0.25 watch, &gt; 0.25 shift.</p>"]
    m = s["migration"]
    if m["pairs"]:
        out.append(_img(_plot_migration(m), "Migration matrix"))
        out.append(_table(["t \\ t+1"] + m["grades"] + ["Total"],
                          [[_e(g)] + [_fmt(v) for v in row] + [_fmt(sum(row))] for g, row in zip(m["grades"], m["counts"], strict=False)],
                          f'Migration counts ({_fmt(m["pairs"])} firm-year pairs)'))
        out.append(f'<p>Stable {_pct(m["share_stable"], 1)}, within one notch {_pct(m["share_within_one"], 1)}, '
                   f'upgrades {_pct(m["share_upgrade"], 1)}, downgrades {_pct(m["share_downgrade"], 1)}.</p>')
    else:
        out.append('<p class="note">No firm observed in consecutive years: no migration matrix.</p>')
    h = s["herfindahl"]
    out.append(_table(["Grade"] + h["grades"], [["Share"] + [_pct(v, 2) for v in h["shares"]]],
                      "Distribution of obligors across grades"))
    out.append(_table(["HHI", "HHI normalised", "CV of shares", "HHI log-scaled", "Grades"],
                      [[_fmt(h["hhi"]), _fmt(h["hhi_normalised"]), _fmt(h["cv"]), _fmt(h["hhi_log"]), _fmt(h["k"])]],
                      "Herfindahl concentration", left=0))
    return "".join(out)


def _section_drivers(dr: dict[str, Any]) -> str:
    out = ["<h2>5. Drivers</h2>"]
    mac = dr.get("mean_abs_contribution")
    if mac:
        out.append(_img(_plot_shap(mac), "Mean absolute SHAP"))
        out.append(_table(["Feature", "Mean |SHAP|", "Share"],
                          [[_e(r["feature"]), _fmt(r["mean_abs"]), _pct(r["share"], 1)] for r in mac]))
    else:
        out.append('<p class="note">No contribution matrix supplied.</p>')
    mono = dr.get("monotonicity") or []
    if mono:
        out.append(_table(["Feature", "Expected sign", "Spearman ρ (feature, PD)", "Bins", "Violations",
                           "Violation share", "Consistent"],
                          [[_e(r["feature"]), "+" if r["expected_sign"] > 0 else "−", _fmt(r["spearman"]),
                            _fmt(r["bins"]), _fmt(r["violations"]), _pct(r["violation_share"], 1),
                            _fmt(r["consistent"])] for r in mono],
                          "Monotonicity of PD in features",
                          classes=[[""] * 6 + ["green" if r["consistent"] else "red"] for r in mono]))
        out.append('<p class="note">Bins are deciles of the feature; a violation is an adjacent pair of bins whose '
                   "mean PD moves against the expected sign.</p>")
    return "".join(out)


#: an item removed at random must not move the mean PD of the firms concerned by more than this (relative)
UNREPORTED_TOLERANCE = 0.05

UNREPORTED_EXPLANATION = (
    "Each optional statement item is removed at random from 30 % of the out-of-time statements that report it "
    "(seeded): the statements' ratios are recomputed without it and the model scores them as scoring does. "
    "Losing information may move single firms either way; an item missing at random must not push them all "
    "one way, so the mean PD of those firms must stay within ±5 %. Where the development sample shows that "
    "being unreported predicts default (Fisher's exact test, p < 0.001) the model uses that evidence and the "
    "shift is expected; otherwise the model's scores are corrected for the missing item "
    "(docs/design.md, rating model: unreported items).")


def _section_unreported(rows: list[dict[str, Any]], number: int = 6) -> str:
    """Per optional item: mean PD shift and grade changes when removed at random, with the Fisher evidence."""
    body, classes = [], []
    for r in rows:
        e = r.get("evidence") or {}
        predictive = bool(e.get("predictive"))
        shift = r.get("mean_pd_shift")
        ok = shift is None or predictive or abs(shift) < UNREPORTED_TOLERANCE
        evidence = (f"predictive: default rate {_pct(e.get('default_rate_missing'))} unreported vs "
                    f"{_pct(e.get('default_rate_reported'))} reported, odds ratio {_fmt(e.get('odds_ratio'), '.2f')}, "
                    f"p = {_pval(e.get('p_value'))}" if predictive else
                    f"not predictive (p = {_pval(e.get('p_value'))}): scores corrected" if e else "n/a")
        body.append([_e(r["item"]), _e(", ".join(r.get("features") or [])), _fmt(e.get("rows_missing")),
                     _fmt(r.get("rows")), _pct(r.get("mean_pd_with")), _pct(r.get("mean_pd_without")),
                     "n/a" if shift is None else f"{100 * shift:+.1f}%", _pct(r.get("grade_changed_share"), 1),
                     evidence])
        classes.append([""] * 6 + ["green" if ok else "red", "", ""])
    return (f"<h2>{number}. Unreported items</h2><p>{_e(UNREPORTED_EXPLANATION)}</p>"
            + _table(["Item", "Feeds", "Unreported in development", "Removed (OOT)", "Mean PD with",
                      "Mean PD without", "Mean PD shift", "Grade changed", "Missing predictive of default?"],
                     body, "Optional items removed at random from the out-of-time sample", classes=classes))


def render_html(results: dict[str, Any]) -> str:
    """Render a :func:`build_validation` result as one self-contained HTML page
    (inline CSS, plots as base64 PNG, no external resources)."""
    card = results.get("model_card") or {}
    smp = results["sample"]
    title = f'Validation report — model {card.get("version", "(unversioned)")}'
    years = smp["years"]
    head = (f"<h1>{_e(title)}</h1><p>Generated {_e(results.get('generated_at', ''))} · "
            f"{_fmt(smp['n'])} scored statements of {_fmt(smp['firms'])} firms · "
            f"{_fmt(smp['defaults'])} defaults (rate {_pct(smp['default_rate'])}, mean PD {_pct(smp['mean_pd'])}) · "
            f"years {_e(years[0]) if years else ''}–{_e(years[-1]) if years else ''}</p>")
    body = (head + _section_model_card(card) + _section_discrimination(results["discrimination"])
            + _section_calibration(results["calibration"]) + _section_stability(results["stability"])
            + _section_drivers(results["drivers"]))
    number = 6
    if results.get("unreported_items"):
        body += _section_unreported(results["unreported_items"], number)
        number += 1
    if results.get("backtest"):
        body += _section_backtest(results["backtest"], number)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f"<style>{CSS}</style></head><body>{body}</body></html>")


def write_report(results: dict[str, Any], html_path: str, json_path: str | None = None) -> None:
    """Write the HTML page (and optionally the JSON numbers, strict JSON, UTF-8)."""
    with open(html_path, "w", encoding="utf-8") as fh:
        fh.write(render_html(results))
    if json_path:
        with open(json_path, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=2, allow_nan=False, ensure_ascii=False)


# ------------------------------------------------------ calibration over the cycle
BACKTEST_EXPLANATION = (
    "Each out-of-time year is scored by the model that was in force at its start: a model trained with the same "
    "spec and seed on the data known then, never on the year itself. Two views follow. <b>Per year</b>: every "
    "grade's observed default rate in that year against the PDs, with the Jeffreys and binomial tests and their "
    "traffic lights. A through-the-cycle PD is the long-run average, so in a bad year the rate rises above it and "
    "in a good year falls below it: a single yellow or red year is what the business cycle does and is read "
    "together with the other years. <b>Pooled</b>: all out-of-time years together, each grade's defaults against "
    "its PD (Basel CRE36: a grade's PD is its long-run average default rate). The pooled view is the calibration "
    "test; a red pooled light means the PDs are too low over the cycle, and the approval gate refuses the model. "
    "'Within interval' reads the Jeffreys interval both ways, so it also shows PDs set too high."
)


def _plot_backtest(bt: dict[str, Any]) -> str:
    colours = {"green": "#2e8b57", "yellow": "#d4a017", "red": "#c0392b", "grey": "#888888"}
    fig = _figure(11, 4.2)
    ax1, ax2 = fig.subplots(1, 2)
    for ax, rows, labels, title in (
            (ax1, bt["per_year_portfolio"], [str(r["year"]) for r in bt["per_year_portfolio"]],
             "Per year (all grades): observed vs mean PD"),
            (ax2, bt["pooled"], [str(r["grade"]) for r in bt["pooled"]],
             "Pooled over the years, per grade")):
        x = np.arange(len(rows))
        odr = np.array([_num(r["odr"]) for r in rows])
        lo = np.array([_num(r["jeffreys_lower"]) for r in rows])
        hi = np.array([_num(r["jeffreys_upper"]) for r in rows])
        positive = np.r_[odr[odr > 0], hi[hi > 0], [_num(r["mean_pd"]) for r in rows]]
        floor = positive[positive > 0].min() / 5 if (positive > 0).any() else 1e-5
        ax.plot(x, [_num(r["mean_pd"]) for r in rows], "s-", color="#1f5fa8", label="mean PD (tested)")
        for i, r in enumerate(rows):
            y = max(odr[i], floor)
            ax.errorbar([i + 0.12], [y], yerr=[[y - max(lo[i], floor)], [max(hi[i], floor) - y]], fmt="o",
                        color=colours.get(r["traffic_light"], "black"), capsize=4,
                        mfc="white" if odr[i] == 0 else None)
        ax.plot([], [], "o", color="black", label="observed rate, 95% Jeffreys interval")
        ax.set_xticks(x, labels)
        ax.set(title=title, xlabel="Year" if ax is ax1 else "Grade", ylabel="Default rate")
        if ax is ax2:
            ax.set_yscale("log")
            ax.set_ylim(bottom=floor / 1.5)
        ax.legend(loc="upper left", fontsize=8)
        ax.grid(alpha=0.3, which="both")
    return _png(fig)


def _section_backtest(bt: dict[str, Any], number: int = 6) -> str:
    s = bt["summary"]
    design = bt.get("design") or {}
    verdict = ("passes: no red light in the pooled view" if s["passed"]
               else "FAILS: red in the pooled view (" + ", ".join(s["pooled_red"]) + ")")
    out = [f"<h2>{number}. Calibration over the cycle (walk-forward backtest)</h2>",
           f"<p>{BACKTEST_EXPLANATION}</p>",
           f'<div class="kpi">Out-of-time years<b>{_e(s["years"][0])}–{_e(s["years"][-1])}</b>'
           f'{_fmt(s["n"])} statements, {_fmt(s["defaults"])} defaults</div>',
           f'<div class="kpi">Pooled light<b class="{_e(s["pooled_light"])}">{_e(s["pooled_light"])}</b>'
           f"{_e(verdict)}</div>",
           _img(_plot_backtest(bt), "Walk-forward calibration: per year and pooled")]
    grades = [r["grade"] for r in bt["pooled"]]
    cell = {(r["year"], r["grade"]): r for r in bt["per_year"]}
    rows, classes = [], []
    for yp in bt["per_year_portfolio"]:
        y = yp["year"]
        row = [_e(y)]
        cls = [""]
        for g in grades:
            r = cell.get((y, g))
            row.append("–" if r is None else f'{_e(r["traffic_light"])} ({_fmt(r["defaults"])}/{_fmt(r["n"])})')
            cls.append("" if r is None else r["traffic_light"])
        row += [f'{_pct(yp["odr"])} vs {_pct(yp["mean_pd"])}', _e(yp["traffic_light"])]
        cls += ["", yp["traffic_light"]]
        rows.append(row)
        classes.append(cls)
    out.append(_table(["Year"] + [f"Grade {g}" for g in grades] + ["All: observed vs PD", "All"], rows,
                      "Per-year lights (Jeffreys; in brackets defaults / statements)", classes=classes))
    rows, classes = [], []
    for r in [*bt["pooled"], {**bt["pooled_portfolio"], "grade": "all", "years": len(s["years"])}]:
        rows.append([_e(r["grade"]), _fmt(r["years"]), _fmt(r["n"]), _fmt(r["defaults"]), _pct(r["odr"]),
                     _pct(r["long_run_odr"]), _pct(r["mean_pd"]),
                     f'{_pct(r["jeffreys_lower"])}–{_pct(r["jeffreys_upper"])}', _fmt(r["within_interval"]),
                     _pval(r["binomial_p"]), _pval(r["jeffreys_p"]), _e(r["traffic_light"])])
        classes.append([""] * 9 + [r["binomial_light"], r["traffic_light"], r["traffic_light"]])
    out.append(_table(["Grade", "Years", "Statements", "Defaults", "Pooled DR", "Long-run DR (mean of years)",
                       "Mean PD", "Jeffreys 95% interval", "Within interval", "Binomial p", "Jeffreys p", "Light"],
                      rows, "Pooled over all out-of-time years against the long-run PD", classes=classes))
    out.append(f'<p class="note">{_e(TRAFFIC_LIGHT_RULE)} The pooled tests add up the years as independent '
               "samples; default correlation within a year makes this, if anything, strict.</p>")
    models = bt.get("models") or []
    if models:
        out.append(_table(["Year", "Model in force (cut-off)", "Version", "Training statements", "Training defaults",
                           "Long-run DR (calibration target)"],
                          [[_e(m["year"]), _e(m["cutoff"]), _e(m["version"]), _fmt(m["training_statements"]),
                            _fmt(m["training_defaults"]), _pct(m["long_run_default_rate"])] for m in models],
                          f"Refitted models (spec {design.get('spec', '?')}, seed {design.get('seed', '?')})"))
    return "".join(out)


def render_backtest_html(bt: dict[str, Any]) -> str:
    """A walk-forward backtest (``pipelines.backtest.walk_forward``) as one self-contained HTML page."""
    d = bt.get("design") or {}
    title = f"Walk-forward calibration backtest {d.get('from', '')}–{d.get('to', '')}"
    body = (f"<h1>{_e(title)}</h1><p>Labels as of {_e(d.get('as_of', ''))}; spec {_e(d.get('spec', ''))}, "
            f"seed {_e(d.get('seed', ''))}</p>" + _section_backtest(bt, 1))
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f"<style>{CSS}</style></head><body>{body}</body></html>")
