"""A hand-made book priced as of a date: price-book, issue and quote --loan-of agree on every loan.

The book (as of 2024-06-30), one loan per firm:

* L0 matured on 2024-03-31: left out and counted; issue and quote refuse it;
* L1 a linear loan of 10,000,000 (2020-06-30 to 2030-06-30), partly repaid: 6,000,000 outstanding;
* L2 a bullet loan of 8,000,000 (2023-01-01 to 2028-01-01);
* L3 a loan of a firm in default since 2024-02-10: exposure in default, expected claim
  EAD x coverage x LGD = 5,000,000 x 0.8 x 0.62, not priced; issue and quote refuse it;
* L4 an annuity loan of 12,000,000 at 3% issued mid-year (2024-01-15 to 2029-01-15) with no
  reported outstanding: its balance on its own schedule at the as-of date.

Expected pricing inputs are written out by hand (remaining term = days to maturity / 365.25,
the annuity balance from the closed form A (1 - v^(T - t)) / (1 - v^T)) and priced with
``models.pricing.price_loans``; the three commands must give those numbers.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from models.fee_schedule import load_schedule
from models.pricing import load_policy, price_loans
from tests import factories as F
from tests.test_guarantee_db import add_model, add_score, firm_id, loan_id, run

AS_OF = dt.date(2024, 6, 30)
PDS = [0.004, 0.012, 0.02, 0.03, 0.009]
TERMS = [  # origination, maturity, amount, outstanding, amortization, rate
    ("2019-06-30", "2024-03-31", 9_000_000, 1_000_000, "annuity", 0.02),
    ("2020-06-30", "2030-06-30", 10_000_000, 6_000_000, "linear", 0.02),
    ("2023-01-01", "2028-01-01", 8_000_000, 8_000_000, "bullet", 0.025),
    ("2022-01-01", "2027-01-01", 5_000_000, 5_000_000, "annuity", 0.02),
    ("2024-01-15", "2029-01-15", 12_000_000, None, "annuity", 0.03),
]
DEFAULT_SINCE = "2024-02-10"


def _years(a: str, b: dt.date | str) -> float:
    b = dt.date.fromisoformat(b) if isinstance(b, str) else b
    return (b - dt.date.fromisoformat(a)).days / 365.25


@pytest.fixture
def hand_book(db, tmp_path):
    run("institution", "add", "BK1", "--name", "Bank", "--kind", "bank", "--country", "JP")
    run("institution", "add", "CGC1", "--name", "Agency", "--kind", "guarantee_corporation", "--country", "JP")
    s = F.statements(len(TERMS))
    run("submit", "statements", str(F.write_csv(s, tmp_path / "s.csv")), "-i", "BK1")
    loans = F.loans(s)
    for col, i in (("origination_date", 0), ("maturity_date", 1), ("amount", 2), ("outstanding", 3),
                   ("amortization", 4), ("interest_rate", 5)):
        loans[col] = [t[i] for t in TERMS]
    loans["outstanding"] = loans["outstanding"].astype(object)
    run("submit", "loans", str(F.write_csv(loans, tmp_path / "l.csv")), "-i", "BK1")
    d = F.defaults(s.iloc[[3]]).assign(default_date=DEFAULT_SINCE)
    run("submit", "defaults", str(F.write_csv(d, tmp_path / "d.csv")), "-i", "BK1")
    model = add_model(db, "v-approved", "approved")
    for i, p in enumerate(PDS):
        add_score(db, model, firm_id(db, i), p, 5, dt.datetime(2024, 5, 1, tzinfo=dt.UTC))
    return db


def expected() -> pd.DataFrame:
    """Pricing inputs of the live loans L1, L2, L4 on AS_OF, by hand."""
    o4, m4 = TERMS[4][0], TERMS[4][1]
    T, t, v = _years(o4, m4), _years(o4, AS_OF), 1 / 1.03
    rows = [
        dict(loan_id=1, amount=6_000_000.0, tenor_years=_years(str(AS_OF), TERMS[1][1]), amortization="linear",
             rate=0.02),
        dict(loan_id=2, amount=8_000_000.0, tenor_years=_years(str(AS_OF), TERMS[2][1]), amortization="bullet",
             rate=0.025),
        dict(loan_id=4, amount=12_000_000.0 * (1 - v ** (T - t)) / (1 - v ** T),
             tenor_years=_years(str(AS_OF), m4), amortization="annuity", rate=0.03),
    ]
    df = pd.DataFrame(rows)
    df["pd"] = [PDS[i] for i in df["loan_id"]]
    df["coverage"], df["secured"] = 0.8, False
    df["sales"] = [250_000_000.0 + i * 1000 for i in df["loan_id"]]
    # Basel SME adjustment: the statements' sales (JPY) in EUR at their fiscal year end
    # 2021-03-31, at the ECB rate read from currencyconverter directly
    from currency_converter import CurrencyConverter

    jpy_per_eur = CurrencyConverter(fallback_on_missing_rate=False).convert(1.0, "EUR", "JPY", dt.date(2021, 3, 31))
    assert 125 < jpy_per_eur < 135
    df["sales_eur_m"] = df["sales"] / jpy_per_eur / 1e6
    return df


def test_hand_made_book_priced_on_remaining_terms_and_commands_agree(hand_book, tmp_path):
    db = hand_book
    pol, sched = load_policy(), load_schedule("japan")
    ref = price_loans(expected(), pol, sched)
    # the by-hand inputs are what they say: 6 and 3.5 years left, the mid-year loan 4.54 years
    assert ref["tenor_years"].round(2).tolist() == [6.0, 3.5, 4.54]
    assert 10_900_000 < ref["amount"].iloc[2] < 11_000_000  # about 0.46 years of a 5-year annuity repaid

    out = tmp_path / "book.csv"
    res = json.loads(run("guarantee", "price-book", "--out", str(out), "--as-of", str(AS_OF), "--json").output)
    got = pd.read_csv(out)
    assert list(got["loan_id"]) == [loan_id(db, i) for i in (1, 2, 4)]
    for col in ("amount", "tenor_years", "break_even_rate", "charged_rate", "fee_charged", "subsidy_gap_pv", "el_pv"):
        np.testing.assert_allclose(got[col], ref[col], rtol=1e-12, err_msg=col)
    assert (res["matured_loans"], res["repaid_loans"], res["defaulted_loans"], res["total"]["loans"]) == (1, 0, 1, 3)
    assert res["as_of"] == str(AS_OF)
    [dflt] = res["in_default"]
    assert dflt["loan_id"] == loan_id(db, 3) and dflt["default_since"] == DEFAULT_SINCE
    assert dflt["expected_claim"] == pytest.approx(5_000_000 * 0.8 * 0.62, rel=1e-12)
    assert res["expected_claims_in_default"] == pytest.approx(5_000_000 * 0.8 * 0.62, rel=1e-12)

    # quote --loan-of and issue give the same numbers for each live loan
    for k, i in enumerate((1, 2, 4)):
        q = json.loads(run("guarantee", "quote", "--loan-of", f"BK1:BK1-L{i:05d}", "--as-of", str(AS_OF),
                           "--json").output)
        for col in ("amount", "tenor_years", "break_even_rate", "charged_rate", "fee_charged"):
            assert q["quote"][col] == pytest.approx(float(ref[col].iloc[k]), rel=1e-12), (i, col)
        rec = json.loads(run("guarantee", "issue", "--institution", "CGC1", "--loan-of", f"BK1:BK1-L{i:05d}",
                             "--date", str(AS_OF), "--json").output)["issued"][0]
        assert rec["fee_rate"] == pytest.approx(float(ref["charged_rate"].iloc[k]), rel=1e-12)
        assert rec["breakeven_rate"] == pytest.approx(float(ref["break_even_rate"].iloc[k]), rel=1e-12)

    # the matured loan and the defaulted firm's loan: all three commands refuse, with one reason
    for i, reason in ((0, "maturity_date: loan matured on 2024-03-31 (as of 2024-06-30)"),
                      (3, f"firm {firm_id(db, 3)} has been in default since {DEFAULT_SINCE}: "
                          "a guarantee cannot be priced")):
        q = run("guarantee", "quote", "--loan-of", f"BK1:BK1-L{i:05d}", "--as-of", str(AS_OF), "--json", ok=None)
        assert q.exit_code == 1 and reason in json.loads(q.output)["error"]
        iss = run("guarantee", "issue", "--institution", "CGC1", "--loan-of", f"BK1:BK1-L{i:05d}",
                  "--date", str(AS_OF), ok=None)
        assert iss.exit_code == 1 and reason in iss.output
    assert len(json.loads(run("guarantee", "list", "--json").output)) == 3


def test_quote_by_firm_in_default_names_the_default(hand_book):
    res = run("guarantee", "quote", "--firm-of", "BK1:BK1-B00003", "--amount", "1000000", "--tenor", "3",
              "--as-of", str(AS_OF), ok=None)
    assert res.exit_code == 1
    assert f"firm {firm_id(hand_book, 3)} has been in default since {DEFAULT_SINCE}: a guarantee cannot be priced" \
        in res.output
    assert "--pd" not in res.output
    # before the default date the firm can be quoted
    ok = json.loads(run("guarantee", "quote", "--firm-of", "BK1:BK1-B00003", "--amount", "1000000", "--tenor", "3",
                        "--as-of", "2024-01-31", "--json").output)
    assert ok["quote"]["pd"] == pytest.approx(PDS[3])


def test_book_before_the_mid_year_loan_starts_counts_it_as_not_started(hand_book, tmp_path):
    res = json.loads(run("guarantee", "price-book", "--out", str(tmp_path / "b.csv"), "--as-of", "2023-12-31",
                         "--json").output)
    assert res["not_started_loans"] == 1 and res["defaulted_loans"] == 0 and res["matured_loans"] == 0
    assert res["total"]["loans"] == 4


def test_vectorised_refusals_equal_the_single_refusal():
    from models.loan_terms import refusal, refusals

    st = ["matured", "repaid", "not_started", "in_default", "in_default", "live"]
    firm = [1, 2, 3, 4, 5, 6]
    mat = ["2024-03-31", "2027-01-01", "2029-01-15", "2027-01-01", "2027-01-01", "2030-01-01"]
    orig = ["2019-06-30", "2022-01-01", "2024-09-01", "2022-01-01", "2022-01-01", "2020-01-01"]
    since = [None, None, None, "2024-02-10", None, None]
    got = refusals(st, firm=firm, maturity=mat, origination=orig, default_since=since, as_of=AS_OF)
    for i, s in enumerate(st[:-1]):
        want = refusal(s, firm=firm[i], maturity=mat[i], as_of=AS_OF, default_since=since[i], origination=orig[i])
        assert got[i] == want
    assert got[-1] == ""
