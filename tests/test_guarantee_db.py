"""Guarantee pricing on the database (SQLite and PostgreSQL): quote by firm, price-book,
issue/list, portfolio --from-db, and the demo function.

Scores and model versions are inserted directly (the rating pipeline is built
elsewhere); expected numbers come from ``models.pricing.price_loans`` and
``models.portfolio.simulate_portfolio`` on inputs written out by hand from the factories.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from currency_converter import CurrencyConverter
from sqlalchemy import func, select, update

from creditdb.cli import cli
from creditdb.schema import (
    AuditEvent,
    BorrowerLink,
    FinancialStatement,
    Guarantee,
    Institution,
    Loan,
    ModelVersion,
    Score,
)
from models.fee_schedule import load_schedule
from models.portfolio import simulate_portfolio
from models.pricing import load_policy, price_loans
from tests import factories as F
from tests.conftest import TEST_KEY

N_FIRMS = 6
ORIG, MATURITY = dt.date(2021, 6, 1), dt.date(2026, 6, 1)  # factories' loans
AS_OF = dt.date(2024, 6, 1)  # the book's date in these tests: the loans are live, 2 years left
TENOR = (MATURITY - AS_OF).days / 365.25  # remaining term on AS_OF
PDS = [0.0015, 0.006, 0.012, 0.03, 0.08]  # firms 0..4 scored; firm 5 has no score
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
#: the factories' statements end their fiscal year on 2021-03-31: the ECB rate of that day,
#: read from currencyconverter directly, converts their JPY sales for the Basel SME adjustment
FYE = dt.date(2021, 3, 31)
JPY_PER_EUR = CurrencyConverter(fallback_on_missing_rate=False).convert(1.0, "EUR", "JPY", FYE)


def run(*args: str, ok: bool | None = True):
    res = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    if ok is True:
        assert res.exit_code == 0, res.output
    return res


def _hmac(prefix: str) -> str:
    return hmac.new(TEST_KEY.encode(), prefix.encode(), hashlib.sha256).hexdigest()


def firm_id(db, i: int, bank: str = "BK1") -> int:
    with db.engine.connect() as conn:
        return conn.execute(select(BorrowerLink.firm_id).where(
            BorrowerLink.borrower_hash == _hmac(f"borrower|{bank}|{bank}-B{i:05d}"))).scalar_one()


def loan_id(db, i: int, bank: str = "BK1") -> int:
    with db.engine.connect() as conn:
        return conn.execute(select(Loan.id).where(Loan.loan_hash == _hmac(f"loan|{bank}|{bank}-L{i:05d}"))).scalar_one()


def add_model(db, version: str, status: str) -> int:
    """Insert a model_version row directly (training is another engineer's work)."""
    with db.engine.begin() as conn:
        return conn.execute(ModelVersion.__table__.insert().values(
            version=version, created_by="pytest", status=status, artifact="{}", artifact_sha256="0" * 64, spec={},
            data_fingerprint="0" * 64, code_version="test", seed=0, metrics={},
            approved_at=T0 if status == "approved" else None).returning(ModelVersion.id)).scalar_one()


def add_score(db, model_id: int, firm: int, pd_: float, category: int, at: dt.datetime) -> None:
    with db.engine.begin() as conn:
        st = conn.execute(select(func.max(FinancialStatement.id))
                          .where(FinancialStatement.firm_id == firm)).scalar_one()
        conn.execute(Score.__table__.insert().values(model_version_id=model_id, firm_id=firm, statement_id=st, pd=pd_,
                                                     grade="G", fee_category=category, reasons=[], scored_at=at))


def audit_events(db, action: str) -> list:
    with db.engine.connect() as conn:
        return conn.execute(select(AuditEvent).where(AuditEvent.action == action)).all()


@pytest.fixture
def book(db, tmp_path):
    """BK1 with N_FIRMS firms and one loan each; CGC1 agency; BK2 a second bank."""
    run("institution", "add", "BK1", "--name", "Bank", "--kind", "bank", "--country", "JP")
    run("institution", "add", "BK2", "--name", "Bank 2", "--kind", "bank", "--country", "JP")
    run("institution", "add", "CGC1", "--name", "Agency", "--kind", "guarantee_corporation", "--country", "JP")
    s = F.statements(N_FIRMS)
    run("submit", "statements", str(F.write_csv(s, tmp_path / "s.csv")), "-i", "BK1")
    run("submit", "loans", str(F.write_csv(F.loans(s), tmp_path / "l.csv")), "-i", "BK1")
    return db


def score_all(db) -> int:
    """Approved model scoring firms 0..4 (an older score first); a candidate with other PDs."""
    approved = add_model(db, "v-approved", "approved")
    candidate = add_model(db, "v-candidate", "candidate")
    for i, p in enumerate(PDS):
        f = firm_id(db, i)
        add_score(db, approved, f, 0.5, 1, T0)  # superseded by the later score
        add_score(db, approved, f, p, 9 - i, T0 + dt.timedelta(days=30))
        add_score(db, candidate, f, 0.2, 1, T0 + dt.timedelta(days=60))  # newer, but not approved
    return approved


def reference(indices: list[int], as_of: dt.date = AS_OF, **over) -> pd.DataFrame:
    """Pricing inputs of the factories' loans on ``as_of`` written out by hand: the reported
    outstanding 15,000,000 over the remaining term."""
    tenor = (MATURITY - as_of).days / 365.25
    rows = [{"loan_id": i, "pd": PDS[i], "amount": 15_000_000.0, "tenor_years": tenor, "coverage": 0.8,
             "amortization": "annuity", "rate": 0.015, "secured": False, "sales": 250_000_000.0 + i * 1000,
             "sales_date": FYE.isoformat(), "sales_eur_m": (250_000_000.0 + i * 1000) / JPY_PER_EUR / 1e6}
            for i in indices]
    df = pd.DataFrame(rows)
    for k, v in over.items():
        df[k] = v
    return df


QUOTE = ["--amount", "10000000", "--tenor", "5", "--coverage", "0.8", "--amortization", "annuity", "--rate", "0.02"]


def test_db_commands_have_help_examples():
    for sub in ("price-book", "issue", "list", "quote", "portfolio"):
        res = run("guarantee", sub, "--help")
        assert "Example:" in res.output


def test_quote_by_firm_uses_approved_models_latest_score(book):
    score_all(book)
    res = json.loads(run("guarantee", "quote", "--firm-of", "BK1:BK1-B00002", *QUOTE, "--json").output)
    assert res["quote"]["pd"] == pytest.approx(PDS[2])  # not 0.5 (older) nor 0.2 (candidate)
    assert res["firm"]["model_version"] == "v-approved" and res["firm"]["fee_category"] == 7
    ref = price_loans(pd.DataFrame([dict(pd=PDS[2], amount=1e7, tenor_years=5, coverage=0.8, amortization="annuity",
                                         rate=0.02, sales=250_002_000.0,
                                         sales_eur_m=250_002_000.0 / JPY_PER_EUR / 1e6)]), load_policy(),
                      load_schedule("japan")).iloc[0]
    for k in ("irb_k", "break_even_rate", "fee_charged", "subsidy_gap_pv"):
        assert res["quote"][k] == pytest.approx(float(ref[k]), rel=1e-12), k
    res2 = json.loads(run("guarantee", "quote", "--institution", "BK1", "--borrower", "BK1-B00002", *QUOTE,
                          "--json").output)
    assert res2["quote"]["break_even_rate"] == res["quote"]["break_even_rate"]
    ev = audit_events(book, "guarantee.quote")
    assert len(ev) == 2 and ev[0].details["pd"] == pytest.approx(PDS[2]) and len(ev[0].output_hash) == 64


def test_quote_by_firm_errors_exit_1(book):
    res = run("guarantee", "quote", "--firm-of", "BK1:BK1-B00001", *QUOTE, "--json", ok=None)
    assert res.exit_code == 1 and "no approved rating model" in json.loads(res.output)["error"]
    candidate = add_model(book, "v-cand", "candidate")
    add_score(book, candidate, firm_id(book, 1), 0.01, 6, T0)
    res = run("guarantee", "quote", "--firm-of", "BK1:BK1-B00001", *QUOTE, ok=None)
    assert res.exit_code == 1 and "no approved rating model" in res.output  # a candidate's score is not used
    add_model(book, "v-ok", "approved")
    res = run("guarantee", "quote", "--firm-of", "BK1:BK1-B00001", *QUOTE, ok=None)
    assert res.exit_code == 1 and "no score from the approved model v-ok" in res.output
    res = run("guarantee", "quote", "--firm-of", "BK1:NOBODY", *QUOTE, ok=None)
    assert res.exit_code == 1 and "unknown borrower BK1:NOBODY" in res.output
    res = run("guarantee", "quote", "--firm-of", "XX:BK1-B00001", *QUOTE, ok=None)
    assert res.exit_code == 1 and "unknown institution 'XX'" in res.output
    assert run("guarantee", "quote", *QUOTE, ok=None).exit_code == 2  # neither --pd nor a firm


def test_price_book_equals_price_loans(book, tmp_path):
    score_all(book)
    l0, l1, l2, l4 = (loan_id(book, i) for i in (0, 1, 2, 4))
    with book.engine.begin() as conn:  # vary the stored inputs: no outstanding/coverage, secured, bullet, repaid
        conn.execute(update(Loan).where(Loan.id == l0).values(outstanding=None, guarantee_coverage=None, secured=True))
        conn.execute(update(Loan).where(Loan.id == l1).values(amortization="bullet", guarantee_coverage=1.0))
        conn.execute(update(Loan).where(Loan.id == l2).values(guarantee_coverage=0.0, interest_rate=0.04))
        conn.execute(update(Loan).where(Loan.id == l4).values(outstanding=0.0))
    out = tmp_path / "book.parquet"
    res = json.loads(run("guarantee", "price-book", "--out", str(out), "--as-of", str(AS_OF), "--json").output)
    ref = reference(list(range(4)))
    # loan 0 reports no outstanding: the annuity balance of 20,000,000 at 1.5% on its own schedule, by hand
    T, t, v = (MATURITY - ORIG).days / 365.25, (AS_OF - ORIG).days / 365.25, 1 / 1.015
    ref.loc[0, ["amount", "secured"]] = [20_000_000.0 * (1 - v ** (T - t)) / (1 - v ** T), True]
    ref.loc[1, ["amortization", "coverage"]] = ["bullet", 1.0]
    ref.loc[2, "rate"] = 0.04  # coverage 0 stored = no guarantee yet: priced at the default 0.8
    expect = price_loans(ref, load_policy(), load_schedule("japan"))
    got = pd.read_parquet(out)
    assert list(got["loan_id"]) == [loan_id(book, i) for i in range(4)]
    assert list(got["firm_id"]) == [firm_id(book, i) for i in range(4)]
    for col in ("pd", "break_even_rate", "charged_rate", "fee_charged", "subsidy_gap_rate", "subsidy_gap_pv", "lgd"):
        np.testing.assert_allclose(got[col], expect[col], rtol=1e-12, err_msg=col)
    assert list(got["category"].astype(str)) == list(expect["category"].astype(str))
    assert (res["unscored_loans"], res["repaid_loans"], res["total"]["loans"]) == (1, 1, 4)
    assert res["total"]["subsidy_gap_pv"] == pytest.approx(expect["subsidy_gap_pv"].sum(), rel=1e-12)
    by_cat = {r["category"]: r["fee_charged"] for r in res["by_category"]}
    assert by_cat == pytest.approx(expect.groupby("category", observed=True)["fee_charged"].sum()
                                   .rename(index=str).to_dict(), rel=1e-12)
    ev = audit_events(book, "guarantee.price_book")
    assert len(ev) == 1 and ev[0].details["loans"] == 4 and ev[0].input_hash != ev[0].output_hash
    human = run("guarantee", "price-book", "--institution", "BK1", "--out", str(tmp_path / "b.csv"), "--as-of",
                str(AS_OF))
    assert "total subsidy gap" in human.output and len(pd.read_csv(tmp_path / "b.csv")) == 4
    assert json.loads(run("guarantee", "price-book", "--institution", "BK2", "--out", str(tmp_path / "c.csv"), "--json",
                          "--as-of", str(AS_OF), ok=None).output)["ok"] is False


def test_price_book_bad_or_missing_data_exit_1(book, tmp_path):
    out = tmp_path / "o.csv"
    res = run("guarantee", "price-book", "--out", str(out), ok=None)
    assert res.exit_code == 1 and "no approved rating model" in res.output
    score_all(book)
    l2, l3 = loan_id(book, 2), loan_id(book, 3)
    with book.engine.begin() as conn:
        conn.execute(update(Loan).where(Loan.id == l2).values(maturity_date=dt.date(2020, 1, 1)))
        conn.execute(update(Loan).where(Loan.id == l3).values(guarantee_coverage=1.5))
    res = run("guarantee", "price-book", "--out", str(out), "--json", "--as-of", str(AS_OF), ok=None)
    assert res.exit_code == 1
    probs = {(p["loan_id"], p["field"].split(" ")[0]) for p in json.loads(res.output)["problems"]}
    assert probs == {(l2, "loan.maturity_date"), (l3, "loan.guarantee_coverage")}
    assert not out.exists() and audit_events(book, "guarantee.price_book") == []
    res = run("guarantee", "price-book", "--out", str(out), "--institution", "NOPE", ok=None)
    assert res.exit_code == 1 and "unknown institution 'NOPE'" in res.output


def test_issue_records_refuses_and_lists(book):
    approved = score_all(book)
    before = F.table_fingerprint(book.engine)
    res = run("guarantee", "issue", "--institution", "BK2", "--loan-of", "BK1:BK1-L00002", "--json", ok=None)
    assert res.exit_code == 1 and "only a guarantee_corporation or government" in json.loads(res.output)["error"]
    assert F.table_fingerprint(book.engine) == before
    res = run("guarantee", "issue", "--institution", "CGC1", "--loan-of", "BK1:bk1-l00002", "--coverage", "0.7",
              "--date", "2022-01-15", ok=None)
    assert res.exit_code == 1 and "coverage 0.7 is not priced by schedule 'japan'" in res.output
    res = run("guarantee", "issue", "--institution", "CGC1", "--loan-of", "BK1:bk1-l00002", "--coverage", "1.0",
              "--date", "2022-01-15", "--json")
    rec = json.loads(res.output)["issued"][0]
    expect = price_loans(reference([2], as_of=dt.date(2022, 1, 15), coverage=1.0), load_policy(),
                         load_schedule("japan")).iloc[0]
    with book.engine.connect() as conn:
        g = conn.execute(select(Guarantee)).one()
        agency = conn.execute(select(Institution.id).where(Institution.code == "CGC1")).scalar_one()
    assert g.loan_id == loan_id(book, 2) and g.agency_id == agency and g.model_version_id == approved
    assert g.issued_on == dt.date(2022, 1, 15) and g.coverage == pytest.approx(1.0)
    assert g.pd == pytest.approx(PDS[2]) and g.fee_category == int(str(expect["category"]))
    assert g.fee_rate == pytest.approx(float(expect["charged_rate"]), rel=1e-12)
    assert g.breakeven_rate == pytest.approx(float(expect["break_even_rate"]), rel=1e-12)
    assert rec["guarantee_id"] == g.id and g.schedule == "japan"
    ev = audit_events(book, "guarantee.issue")
    assert len(ev) == 1 and ev[0].details["guarantee_id"] == g.id and ev[0].input_hash and ev[0].output_hash
    with book.engine.begin() as conn:
        conn.execute(update(Loan).where(Loan.id == loan_id(book, 3)).values(outstanding=0.0))
    before = F.table_fingerprint(book.engine)
    res = run("guarantee", "issue", "--institution", "CGC1", "--loan-of", "BK1:BK1-L00003", "--date", "2022-01-01",
              ok=None)
    assert res.exit_code == 1 and "BK1:BK1-L00003: outstanding: the loan is repaid" in res.output
    res = run("guarantee", "issue", "--institution", "CGC1", "--loan-of", "BK1:BK1-L00002", "--date", "2023-01-01",
              ok=None)
    assert res.exit_code == 1 and "already has an active guarantee" in res.output
    res = run("guarantee", "issue", "--institution", "CGC1", "--loan-of", "BK1:BK1-L00005", "--date", "2022-01-01",
              ok=None)
    assert res.exit_code == 1 and "no score from the approved model" in res.output  # firm 5 is unscored
    res = run("guarantee", "issue", "--institution", "CGC1", "--loan-of", "BK1:BK1-L00001", "--date", "2027-01-01",
              ok=None)
    assert res.exit_code == 1 and "matured" in res.output
    assert F.table_fingerprint(book.engine) == before
    listed = json.loads(run("guarantee", "list", "--json").output)
    assert [(r["agency"], r["bank"], r["loan_id"], r["model_version"]) for r in listed] == [
        ("CGC1", "BK1", loan_id(book, 2), "v-approved")]
    assert "CGC1" in run("guarantee", "list").output


def test_issue_batch_all_or_nothing(book, tmp_path):
    score_all(book)
    bad = tmp_path / "bad.csv"
    bad.write_text("bank,loan_key,coverage\nBK1,BK1-L00000,0.8\nBK1,BK1-L99999,\nBK1,BK1-L00001,1.4\n")
    before = F.table_fingerprint(book.engine)
    res = run("guarantee", "issue", "--institution", "CGC1", "--file", str(bad), "--date", "2022-01-01", ok=None)
    assert res.exit_code == 1
    assert "row 3: loan BK1:BK1-L99999: loan_key" in res.output and "row 4: loan BK1:BK1-L00001: coverage" in res.output
    assert F.table_fingerprint(book.engine) == before
    good = tmp_path / "good.csv"
    good.write_text("bank,loan_key,coverage\nBK1,BK1-L00000,\nBK1,BK1-L00003,1.0\n")
    rows = json.loads(run("guarantee", "issue", "--institution", "CGC1", "--file", str(good), "--date", "2022-01-01",
                          "--json").output)["issued"]
    assert [(r["loan_id"], r["coverage"]) for r in rows] == [(loan_id(book, 0), 0.8), (loan_id(book, 3), 1.0)]
    assert len(audit_events(book, "guarantee.issue")) == 2


def test_portfolio_from_db_equals_file_form(book, tmp_path):
    score_all(book)
    run("guarantee", "issue", "--institution", "CGC1", "--loan-of", "BK1:BK1-L00001", "--coverage", "1.0",
        "--date", "2022-01-01")
    run("guarantee", "issue", "--institution", "CGC1", "--loan-of", "BK1:BK1-L00004", "--date", "2022-01-01")
    args = ["--scenarios", "2000", "--seed", "3", "--fund", "1000000"]
    for flags, idx, cov in ((["--issued-only"], [1, 4], [1.0, 0.8]), ([], list(range(5)), 0.8)):
        js = tmp_path / "db.json"
        run("guarantee", "portfolio", "--from-db", *flags, *args, "--as-of", str(AS_OF), "--json", str(js),
            "--html", str(tmp_path / "r.html"))
        got = json.loads(js.read_text())
        # the file gives sales in JPY with their date: converted the same way as the stored statements
        csv = F.write_csv(reference(idx, coverage=cov).drop(columns="sales_eur_m"), tmp_path / "loans.csv")
        run("guarantee", "portfolio", str(csv), *args, "--json", str(tmp_path / "file.json"))
        ref = json.loads((tmp_path / "file.json").read_text())
        assert got["n_loans"] == len(idx)
        for k in ("total_exposure", "expected_loss", "expected_loss_analytic", "prob_loss_exceeds_fund"):
            assert got[k] == pytest.approx(ref[k], rel=1e-12), k
        assert got["quantiles"] == pytest.approx(ref["quantiles"], rel=1e-12)
        assert got["expected_shortfall"] == pytest.approx(ref["expected_shortfall"], rel=1e-12)
    assert len(audit_events(book, "guarantee.portfolio")) == 2
    assert run("guarantee", "portfolio", str(csv), "--from-db", ok=None).exit_code == 2


def test_demo_guarantees_function(book):
    from pipelines.guarantees import demo_guarantees

    score_all(book)
    lines: list[str] = []
    out = demo_guarantees(book.engine, scenarios=1000, seed=2, say=lines.append, as_of=AS_OF, actor="pytest")
    ref = reference(list(range(5)))
    pol = load_policy()
    expect = price_loans(ref, pol, load_schedule("japan"))
    assert out["loans_priced"] == 5 and out["unscored_loans"] == 1
    assert out["total_subsidy_gap_pv"] == pytest.approx(expect["subsidy_gap_pv"].sum(), rel=1e-12)
    sim = simulate_portfolio(ref["pd"], pol.lgd_unsecured, ref["amount"] * 0.8, sales_eur_m=ref["sales_eur_m"],
                             n_scenarios=1000, seed=2)
    assert out["portfolio"]["var_999"] == pytest.approx(sim.quantiles[0.999], rel=1e-12)
    assert sum(r["loans"] for r in out["by_category"]) == 5
    assert any("99.9% loss" in s for s in lines) and any("total subsidy gap" in s for s in lines)
    assert any("loans driving the tail" in s for s in lines)
    assert out["defaulted_loans"] == 0 and out["matured_loans"] == 0 and out["as_of"] == str(AS_OF)


def test_a_newer_candidate_score_is_never_used(book, tmp_path):
    """Attack: someone scores every firm with an unapproved candidate model after the approved
    model's run (`score firms --model CANDIDATE` is allowed: it is how a candidate is tried).
    Lookup, quote and price book must still rest on the approved model's scores; a firm only
    the candidate scored is shown marked in lookup and left unpriced."""
    approved = add_model(book, "v-approved", "approved")
    candidate = add_model(book, "v-candidate", "candidate")
    with book.engine.connect() as conn:
        bk1 = conn.execute(select(Institution.id).where(Institution.code == "BK1")).scalar_one()

    def score(model: int, i: int, pd_: float, category: int, days: int) -> None:
        f = firm_id(book, i)
        with book.engine.begin() as conn:
            st = conn.execute(select(func.max(FinancialStatement.id)).where(FinancialStatement.firm_id == f)).scalar_one()
            conn.execute(Score.__table__.insert().values(
                model_version_id=model, firm_id=f, institution_id=bk1, statement_id=st, pd=pd_, grade="G",
                fee_category=category, reasons=[], scored_at=T0 + dt.timedelta(days=days)))

    for i, p in enumerate(PDS):
        score(approved, i, p, 9 - i, 30)
        score(candidate, i, 0.4, 1, 90)  # newer and riskier: would raise every fee if used
    score(candidate, 5, 0.3, 1, 90)  # firm 5: only the candidate scored it
    keys = [f"BK1-B{i:05d}" for i in (2, 5)]
    look = json.loads(run("score", "lookup", "-i", "BK1", *keys, "--json").output)
    by_key = {r["borrower_key"]: r for r in look["results"]}
    assert by_key["BK1-B00002"]["pd"] == pytest.approx(PDS[2])
    assert (by_key["BK1-B00002"]["model_version"], by_key["BK1-B00002"]["model_status"]) == ("v-approved", "approved")
    assert (by_key["BK1-B00005"]["model_version"], by_key["BK1-B00005"]["model_status"]) == ("v-candidate", "candidate")
    text = run("score", "lookup", "-i", "BK1", *keys).output
    line2, line5 = (next(ln for ln in text.splitlines() if ln.startswith(k)) for k in keys)
    assert "candidate" not in line2 and "PD 1.20%" in line2
    assert "candidate model v-candidate, never approved: not used" in line5
    q = json.loads(run("guarantee", "quote", "--firm-of", "BK1:BK1-B00002", *QUOTE, "--json").output)
    assert q["quote"]["pd"] == pytest.approx(PDS[2]) and q["firm"]["model_version"] == "v-approved"
    res = run("guarantee", "quote", "--firm-of", "BK1:BK1-B00005", *QUOTE, ok=None)
    assert res.exit_code == 1 and "no score from the approved model v-approved" in res.output
    out = tmp_path / "book.csv"
    pb = json.loads(run("guarantee", "price-book", "--out", str(out), "--as-of", str(AS_OF), "--json").output)
    got = pd.read_csv(out)
    assert sorted(got["pd"]) == pytest.approx(sorted(PDS)) and pb["unscored_loans"] == 1
    assert set(got["model_version"]) == {"v-approved"}
