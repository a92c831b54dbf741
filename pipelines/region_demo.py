"""The two-country (or more) demo: synthetic region -> submissions -> pooled model validated
per country -> scores -> the ASEAN SME database report -> a capped portfolio guarantee.

Run by ``creditdb demo --countries JP,TH``. Size features are taken in the reporting
currency (``CREDITDB_REPORTING_CURRENCY``, default USD), as every training does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, func, select


def run(engine: Engine, countries: list[str], firms: int, years: int, banks: int, seed: int, out_dir: Path,
        key: Any, actor: str, say: Callable[[str], None]) -> dict[str, Any]:
    from creditdb.db import session_scope
    from creditdb.lookups import approved_model, latest_scores
    from creditdb.schema import Firm, Institution, Loan
    from models.capped_portfolio import price_capped_portfolio
    from models.guarantee_schemes import load_schemes
    from pipelines import synth_region as R
    from pipelines.fx import load_fx_file, rate_table, reporting_currency
    from pipelines.ingest import submit_file
    from pipelines.sme_database import region_view, write_report

    reporting = reporting_currency()
    say(f"1/7 synthesising {firms:,} firms x {years} years x {banks} bank(s) in each of {', '.join(countries)} ...")
    data = R.generate_region(countries, firms, years, banks, seed)
    summary = R.write_region(data, out_dir)
    with session_scope(engine) as s:
        for row in data.institutions.itertuples():
            if s.scalar(select(Institution).where(Institution.code == row.code)) is None:
                s.add(Institution(code=row.code, name=row.name, kind=row.kind, country=row.country))
    if (out_dir / "fx_rates.csv").exists():
        from pipelines.fx import FxFileError

        try:
            load_fx_file(engine, out_dir / "fx_rates.csv", actor)
            say("  loaded the synthetic rates of fx_rates.csv (currencies outside the ECB set)")
        except FxFileError as exc:  # already loaded on an earlier run
            say(f"  fx_rates.csv not loaded again: {exc}")
    say("2/7 submitting statements, loans and defaults of every bank ...")
    loaded = 0
    for kind in ("statements", "loans", "defaults"):
        for bank in data.institutions.code:
            res = submit_file(engine, kind, out_dir / bank / f"{kind}.csv", bank, key=key, actor=actor)
            loaded += res.rows_loaded
    say(f"  {loaded:,} rows loaded")
    from pipelines.model_validation import validate
    from pipelines.scoring import score_firms
    from pipelines.training import train

    cutoff = dt.date.fromisoformat(data.meta["as_of"])
    say(f"3/7 training one pooled rating model over {', '.join(countries)} (size features in {reporting}) ...")
    tm, outcome = train(engine, cutoff, actor=actor)
    say(f"  model {outcome['version']}: out-of-time AUC {tm.metrics['auc']['model'].get('oot') or float('nan'):.4f}")
    say("4/7 validating it per country ...")
    vres = validate(engine, outcome["version"], actor=actor)
    from pipelines.validation_report import render_html

    (out_dir / "validation_report.html").write_text(render_html(vres), encoding="utf-8")
    per_country = {r["group"]: {"auc": r["auc"], "n": r["n"], "defaults": r["defaults"]}
                   for r in vres["discrimination"]["auc_by_country"]}
    for r in vres["calibration"]["by_country"]:
        per_country[r["country"]].update(odr=r["odr"], mean_pd=r["mean_pd"], traffic_light=r["traffic_light"])
    for c, r in per_country.items():
        say(f"  {c}: AUC {r['auc']:.3f} on {r['n']:,} statements, observed DR {r['odr']:.2%} vs mean PD "
            f"{r['mean_pd']:.2%}: {r['traffic_light']}")
    from creditdb.approval import ApprovalError, approve, gate, load_policy

    # the approval gate shown honestly, as in the single-country demo (pipelines/demo.py)
    checked = gate(vres, load_policy())
    override: str | None = None
    if not checked.passed:
        override = ("creditdb demo: synthetic demonstration data, approved to show scoring and pricing; "
                    "not for decisions")
        say("  approval gate FAILED (" + "; ".join(checked.failures) + "), approved with the override: " + override)
    try:
        with engine.begin() as conn:
            approve(conn, outcome["version"], by="demo supervisor", note="approved by creditdb demo", actor=actor,
                    override=override)
    except ApprovalError as exc:
        say(f"  not approved: {exc}")
    say("5/7 scoring every firm ...")
    scored = score_firms(engine, None, cutoff, actor=actor)
    say(f"  {scored['firms']:,} firms scored")
    say(f"6/7 the ASEAN SME database view by country and national size class, sales in {reporting} ...")
    with engine.connect() as conn:
        rates = rate_table(conn)
    table, reasons = region_view(engine, rates, ["country", "size_class"], reporting, classes="national", k=5)
    report = out_dir / "sme_database.html"
    write_report(table, str(report), {"by": ["country", "size_class"], "k": 5, "classes": "national",
                                      "currency": reporting, "as_of": dt.datetime.now(dt.UTC).isoformat()}, reasons)
    totals = table[(table.country != "all") & (table.size_class == "all")]
    for r in totals.itertuples():
        if pd.isna(r.firms):
            say(f"  {r.country}: suppressed ({r.suppressed}: fewer than 5 firms once one bank's are removed)")
        else:
            say(f"  {r.country}: {r.firms:,} firms, default rate {r.default_rate:.2%}, sales {r.sales:,.0f} "
                f"{reporting}")
    say(f"  report: {report}")
    guarantee: dict[str, Any] = {}
    scheme = load_schemes()["TCG-PGS"]
    cc = "TH" if "TH" in countries else countries[-1]
    say(f"7/7 pricing {scheme['id']} (cap {scheme['cap_share_of_portfolio'][0]:.0%}) on {cc}'s loans ...")
    with engine.connect() as conn:
        # the approved model's latest score of each firm only (never a candidate's or a retired model's)
        mv = approved_model(conn)
        scores = latest_scores(conn, int(mv.id)) if mv is not None else pd.DataFrame(columns=["firm_id", "pd"])
        in_cc = set(conn.execute(select(Firm.id).where(Firm.country == cc)).scalars())
        loans = conn.execute(select(Loan.firm_id, func.sum(Loan.outstanding)).group_by(Loan.firm_id)).all()
    pds = scores.loc[scores["firm_id"].isin(in_cc), ["firm_id", "pd"]]
    amt = pd.DataFrame(loans, columns=["firm_id", "amount"])
    book = pds.merge(amt, on="firm_id")
    book = book[(book.amount > 0) & (book.pd > 0) & (book.pd < 1)]
    if len(book):
        priced = price_capped_portfolio(book.pd.to_numpy(), book.amount.to_numpy(dtype=float),
                                        cap_share=float(scheme["cap_share_of_portfolio"][0]), term_years=5, lgd=1.0,
                                        fee_rate=float(scheme["annual_fee_on_portfolio"]), n_scenarios=10_000, seed=seed)
        guarantee = {"scheme": scheme["id"], "country": cc, **priced.to_dict()}
        say(f"  {priced.loans:,} loans, expected claims {priced.expected_claims:,.0f} of a cap {priced.cap:,.0f} "
            f"({R.PROFILES[cc].currency}); P(cap binds) {priced.prob_cap_binds:.2%}; break-even fee "
            f"{priced.break_even_fee_rate:.3%} p.a. vs the scheme's {priced.fee_rate:.2%}")
    return {"countries": countries, "files": str(out_dir), "rows_loaded": loaded, "synth": summary["countries"],
            "model": outcome["version"], "per_country": per_country, "scored_firms": scored["firms"],
            "report": str(report), "validation_report": str(out_dir / "validation_report.html"),
            "table": table.replace({np.nan: None}).to_dict("records"), "capped_guarantee": guarantee}
