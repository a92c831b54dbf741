"""SME classes at every threshold of every country, against the legal texts.

The expected classes below are written from the sources (cited per block), not computed
from the data file: a wrong number in ``models/data/sme_definitions.toml`` fails here.
Each threshold is tested just at and just above it, each combining rule and each sector.
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from models.sme_definitions import (
    check_rules,
    harmonised_class,
    load_definitions,
    national_class,
    rules_in_force,
)

CUR = {"JP": "JPY", "TH": "THB", "MY": "MYR", "ID": "IDR", "PH": "PHP", "VN": "VND", "SG": "SGD",
       "BN": "BND", "MM": "MMK", "KH": "KHR", "LA": "LAK"}


def one(country: str, industry: str, fye: str = "2023-12-31", isic: str | None = None, **values) -> str | None:
    row = {"country": country, "industry": industry, "fiscal_year_end": fye, "currency": CUR[country], **values}
    if isic is not None:
        row["isic_code"] = isic
    return national_class(pd.DataFrame([row])).sme_class.iloc[0]


M = 1_000_000
BN_ = 1_000_000_000

# Japan, SME Basic Act art. 2: capital OR employees; small enterprise by employees only.
JP = [
    # manufacturing and others: <= JPY 300m or <= 300 employees; small enterprise <= 20
    ("C", None, dict(employees=20, paid_up_capital=1e12), "small"),
    ("C", None, dict(employees=21, paid_up_capital=1e12), "medium"),
    ("C", "2599", dict(employees=300, paid_up_capital=1e12), "medium"),
    ("C", "2599", dict(employees=301, paid_up_capital=1e12), "large"),
    ("C", "2599", dict(employees=5000, paid_up_capital=300 * M), "medium"),
    ("C", "2599", dict(employees=5000, paid_up_capital=300 * M + 1), "large"),
    ("F", None, dict(employees=301, paid_up_capital=300 * M + 1), "large"),
    # wholesale (G46): <= 100m or <= 100; small <= 5
    ("G", "4610", dict(employees=5, paid_up_capital=1e12), "small"),
    ("G", "4610", dict(employees=6, paid_up_capital=1e12), "medium"),
    ("G", "4610", dict(employees=100, paid_up_capital=1e12), "medium"),
    ("G", "4610", dict(employees=101, paid_up_capital=100 * M), "medium"),
    ("G", "4610", dict(employees=101, paid_up_capital=100 * M + 1), "large"),
    # retail (G47, and restaurants I56): <= 50m or <= 50
    ("G", "4711", dict(employees=50, paid_up_capital=1e12), "medium"),
    ("G", "4711", dict(employees=51, paid_up_capital=50 * M), "medium"),
    ("G", "4711", dict(employees=51, paid_up_capital=50 * M + 1), "large"),
    ("I", "5610", dict(employees=51, paid_up_capital=50 * M + 1), "large"),
    ("G", "4711", dict(employees=6, paid_up_capital=1e12), "medium"),
    # services: <= 50m or <= 100
    ("N", None, dict(employees=100, paid_up_capital=1e12), "medium"),
    ("N", None, dict(employees=101, paid_up_capital=50 * M + 1), "large"),
    ("N", None, dict(employees=5, paid_up_capital=1e12), "small"),
    # order exceptions: rubber <= 900, hotels <= 200 (small <= 20), software <= 300 / 300m
    ("C", "2211", dict(employees=900, paid_up_capital=1e12), "medium"),
    ("C", "2211", dict(employees=901, paid_up_capital=300 * M + 1), "large"),
    ("I", "5510", dict(employees=200, paid_up_capital=1e12), "medium"),
    ("I", "5510", dict(employees=201, paid_up_capital=50 * M + 1), "large"),
    ("I", "5510", dict(employees=20, paid_up_capital=1e12), "small"),
    ("J", "6201", dict(employees=300, paid_up_capital=1e12), "medium"),
    ("J", "6201", dict(employees=301, paid_up_capital=300 * M + 1), "large"),
    ("J", "6201", dict(employees=6, paid_up_capital=1e12), "medium"),
]

# Thailand, Ministerial Regulation B.E. 2562 (OSMEP): revenue and employment, the higher size wins.
TH = [
    ("C", dict(sales=1.8 * M, employees=5), "micro"),
    ("C", dict(sales=1.8 * M + 1, employees=5), "small"),
    ("C", dict(sales=1.8 * M, employees=6), "small"),
    ("C", dict(sales=100 * M, employees=50), "small"),
    ("C", dict(sales=100 * M + 1, employees=50), "medium"),
    ("C", dict(sales=100 * M, employees=51), "medium"),
    ("C", dict(sales=500 * M, employees=200), "medium"),
    ("C", dict(sales=500 * M + 1, employees=10), "large"),
    ("C", dict(sales=1 * M, employees=201), "large"),
    ("G", dict(sales=1.8 * M, employees=5), "micro"),
    ("G", dict(sales=50 * M, employees=30), "small"),
    ("G", dict(sales=50 * M + 1, employees=30), "medium"),
    ("N", dict(sales=50 * M, employees=31), "medium"),
    ("N", dict(sales=300 * M, employees=100), "medium"),
    ("N", dict(sales=300 * M + 1, employees=1), "large"),
    ("G", dict(sales=1 * M, employees=101), "large"),
]

# Malaysia, SME Corp guideline (2013, effective 2014): sales OR employees, the smaller size applies.
MY = [
    ("C", dict(sales=299_999, employees=1000), "micro"),
    ("C", dict(sales=300_000, employees=4), "micro"),
    ("C", dict(sales=300_000, employees=5), "small"),
    ("C", dict(sales=15 * M - 1, employees=1000), "small"),
    ("C", dict(sales=15 * M, employees=74), "small"),
    ("C", dict(sales=15 * M, employees=75), "medium"),
    ("C", dict(sales=50 * M, employees=1000), "medium"),
    ("C", dict(sales=50 * M + 1, employees=200), "medium"),
    ("C", dict(sales=50 * M + 1, employees=201), "large"),
    ("G", dict(sales=300_000, employees=4), "micro"),
    ("G", dict(sales=3 * M - 1, employees=1000), "small"),
    ("G", dict(sales=3 * M, employees=29), "small"),
    ("N", dict(sales=3 * M, employees=30), "medium"),
    ("N", dict(sales=20 * M, employees=1000), "medium"),
    ("N", dict(sales=20 * M + 1, employees=75), "medium"),
    ("A", dict(sales=20 * M + 1, employees=76), "large"),
]

# Indonesia PP 7/2021 art. 35: business capital excl. land and buildings OR annual sales.
ID21 = [
    (dict(sales=2 * BN_, net_assets=1e15, interest_bearing_debt=0, land=0, buildings=0), "micro"),
    (dict(sales=2 * BN_ + 1, net_assets=1e15, interest_bearing_debt=0, land=0, buildings=0), "small"),
    (dict(sales=1e15, net_assets=1 * BN_, interest_bearing_debt=0, land=0, buildings=0), "micro"),
    (dict(sales=1e15, net_assets=1 * BN_ + 1, interest_bearing_debt=0, land=0, buildings=0), "small"),
    # land and buildings are excluded: capital 3bn of which 2.5bn land and buildings -> micro
    (dict(sales=1e15, net_assets=2 * BN_, interest_bearing_debt=1 * BN_, land=2 * BN_, buildings=0.5 * BN_), "micro"),
    (dict(sales=15 * BN_, net_assets=1e15, interest_bearing_debt=0, land=0, buildings=0), "small"),
    (dict(sales=15 * BN_ + 1, net_assets=1e15, interest_bearing_debt=0, land=0, buildings=0), "medium"),
    (dict(sales=1e15, net_assets=5 * BN_ + 1, interest_bearing_debt=0, land=0, buildings=0), "medium"),
    (dict(sales=50 * BN_, net_assets=1e15, interest_bearing_debt=0, land=0, buildings=0), "medium"),
    (dict(sales=1e15, net_assets=10 * BN_, interest_bearing_debt=0, land=0, buildings=0), "medium"),
    (dict(sales=50 * BN_ + 1, net_assets=10 * BN_ + 1, interest_bearing_debt=0, land=0, buildings=0), "large"),
]

# Indonesia UU 20/2008 art. 6: net assets excl. land and buildings OR annual sales.
ID08 = [
    (dict(sales=300 * M, net_assets=1e15, land=0, buildings=0), "micro"),
    (dict(sales=300 * M + 1, net_assets=1e15, land=0, buildings=0), "small"),
    (dict(sales=1e15, net_assets=50 * M, land=0, buildings=0), "micro"),
    (dict(sales=1e15, net_assets=500 * M + 1, land=0, buildings=0), "medium"),
    (dict(sales=2.5 * BN_, net_assets=1e15, land=0, buildings=0), "small"),
    (dict(sales=50 * BN_ + 1, net_assets=10 * BN_ + 1, land=0, buildings=0), "large"),
]

# Philippines RA 9501 sec. 3: assets excluding land.
PH = [
    (dict(total_assets=3 * M, land=0), "micro"),
    (dict(total_assets=3 * M + 1, land=0), "small"),
    (dict(total_assets=3 * M + 1, land=1), "micro"),
    (dict(total_assets=15 * M, land=0), "small"),
    (dict(total_assets=15 * M + 1, land=0), "medium"),
    (dict(total_assets=100 * M, land=0), "medium"),
    (dict(total_assets=100 * M + 1, land=0), "large"),
    (dict(total_assets=150 * M, land=60 * M), "medium"),
]

# Viet Nam Decree 80/2021 art. 5: employees AND (revenue OR capital).
VN = [
    ("C", dict(employees=10, sales=3 * BN_, total_assets=1e15), "micro"),
    ("C", dict(employees=10, sales=1e15, total_assets=3 * BN_), "micro"),
    ("C", dict(employees=11, sales=3 * BN_, total_assets=3 * BN_), "small"),
    ("C", dict(employees=10, sales=3 * BN_ + 1, total_assets=3 * BN_ + 1), "small"),
    ("C", dict(employees=100, sales=50 * BN_, total_assets=1e15), "small"),
    ("A", dict(employees=100, sales=1e15, total_assets=20 * BN_), "small"),
    ("C", dict(employees=100, sales=50 * BN_ + 1, total_assets=20 * BN_ + 1), "medium"),
    ("F", dict(employees=101, sales=1, total_assets=1), "medium"),
    ("C", dict(employees=200, sales=200 * BN_, total_assets=1e15), "medium"),
    ("C", dict(employees=201, sales=1, total_assets=1), "large"),
    ("C", dict(employees=200, sales=200 * BN_ + 1, total_assets=100 * BN_ + 1), "large"),
    ("G", dict(employees=10, sales=10 * BN_, total_assets=1e15), "micro"),
    ("G", dict(employees=10, sales=10 * BN_ + 1, total_assets=3 * BN_ + 1), "small"),
    ("G", dict(employees=50, sales=100 * BN_, total_assets=1e15), "small"),
    ("N", dict(employees=51, sales=1, total_assets=1), "medium"),
    ("N", dict(employees=50, sales=1e15, total_assets=50 * BN_ + 1), "medium"),
    ("N", dict(employees=100, sales=300 * BN_, total_assets=1e15), "medium"),
    ("N", dict(employees=101, sales=1, total_assets=1), "large"),
    ("N", dict(employees=100, sales=300 * BN_ + 1, total_assets=100 * BN_ + 1), "large"),
]

# Singapore (2011): group sales <= S$100m OR <= 200 employees; no micro/small split.
SG = [
    (dict(sales=100 * M, employees=10_000), "sme"),
    (dict(sales=1e12, employees=200), "sme"),
    (dict(sales=100 * M + 1, employees=201), "large"),
]

# Brunei (MOFE / DARe): at least 2 of 3 of revenue, employees, assets.
BN = [
    (dict(sales=99_999, employees=9, total_assets=1e12), "micro"),
    (dict(sales=99_999, employees=1000, total_assets=59_999), "micro"),
    (dict(sales=100_000, employees=9, total_assets=60_000), "small"),
    (dict(sales=999_999, employees=29, total_assets=1e12), "small"),
    (dict(sales=1 * M, employees=30, total_assets=599_999), "medium"),
    (dict(sales=4_999_999, employees=99, total_assets=1e12), "medium"),
    (dict(sales=5 * M, employees=99, total_assets=3 * M), "large"),
    (dict(sales=5 * M, employees=100, total_assets=2_999_999), "large"),
    # one criterion alone is not enough: micro revenue only
    (dict(sales=1, employees=1000, total_assets=1e12), "large"),
]


@pytest.mark.parametrize(("industry", "isic", "values", "expected"), JP)
def test_japan(industry, isic, values, expected):
    assert one("JP", industry, isic=isic, **values) == expected


@pytest.mark.parametrize(("industry", "values", "expected"), TH)
def test_thailand_2019(industry, values, expected):
    assert one("TH", industry, **values) == expected


@pytest.mark.parametrize(("industry", "values", "expected"), MY)
def test_malaysia(industry, values, expected):
    assert one("MY", industry, **values) == expected


@pytest.mark.parametrize(("values", "expected"), ID21)
def test_indonesia_2021(values, expected):
    assert one("ID", "C", fye="2022-12-31", **values) == expected


@pytest.mark.parametrize(("values", "expected"), ID08)
def test_indonesia_2008(values, expected):
    assert one("ID", "G", fye="2019-12-31", **values) == expected


@pytest.mark.parametrize(("values", "expected"), PH)
def test_philippines(values, expected):
    assert one("PH", "G", **values) == expected


@pytest.mark.parametrize(("industry", "values", "expected"), VN)
def test_viet_nam(industry, values, expected):
    assert one("VN", industry, **values) == expected


@pytest.mark.parametrize(("values", "expected"), SG)
def test_singapore(values, expected):
    assert one("SG", "G", **values) == expected


@pytest.mark.parametrize(("values", "expected"), BN)
def test_brunei_two_of_three(values, expected):
    assert one("BN", "C", **values) == expected


def test_myanmar_small_known_medium_unknown():
    assert one("MM", "C", employees=50, total_assets=1e12, land=0) == "small"
    assert one("MM", "C", employees=1000, total_assets=500 * M + 1e6, land=1e6) == "small"  # land excluded
    assert one("MM", "G", isic="4690", employees=30, sales=1e12) == "small"
    assert one("MM", "G", isic="4690", employees=31, sales=100 * M) == "small"
    assert one("MM", "G", isic="4711", employees=31, sales=50 * M) == "small"
    # above the small ceilings the medium ceilings are unknown: never guessed
    assert one("MM", "C", employees=51, total_assets=500 * M + 1, land=0) is None
    assert one("MM", "G", isic="4711", employees=31, sales=50 * M + 1) is None


def test_cambodia_and_lao_unknown_thresholds_give_unknown():
    assert one("KH", "C", employees=3) is None
    assert one("LA", "C", fye="2020-12-31", employees=3, total_assets=1, sales=1) == "micro"
    assert one("LA", "C", fye="2020-12-31", employees=6, total_assets=100 * M, sales=1) is None
    assert one("LA", "C", fye="2024-06-30", employees=3, total_assets=1, sales=1) is None


def test_rule_in_force_at_fiscal_year_end():
    # the same firm: sales IDR 1.5bn, net assets 600m (business capital 600m)
    firm = dict(sales=1.5 * BN_, net_assets=600 * M, interest_bearing_debt=0, land=0, buildings=0)
    assert one("ID", "C", fye="2021-02-01", **firm) == "small"  # UU 20/2008
    assert one("ID", "C", fye="2021-02-02", **firm) == "micro"  # PP 7/2021 in force
    assert one("ID", "C", fye="2008-07-03", **firm) is None  # before any recorded rule
    # Thailand 2019: day not established; 2019 year ends have no earlier rule recorded
    assert one("TH", "C", fye="2019-06-30", sales=1 * M, employees=3) is None
    assert one("TH", "C", fye="2020-01-01", sales=1 * M, employees=3) == "micro"
    # Philippines: RA 9501 (2008) kept the 2003 ceilings, so 2008 year ends are classified
    assert one("PH", "G", fye="2008-03-31", total_assets=10 * M, land=0) == "small"
    rules = load_definitions()[0]
    assert [r.id for r in rules_in_force(rules, "PH", __import__("datetime").date(2008, 3, 31))] == [
        "PH-2003", "PH-2008"]
    # Viet Nam before Decree 80/2021: the earlier decree is not recorded
    assert one("VN", "C", fye="2020-12-31", employees=5, sales=1, total_assets=1) is None


def test_sector_needs_the_isic_division_when_the_rule_does():
    # JP section G without the division: wholesale says medium, retail says large -> unknown
    assert one("JP", "G", employees=60, paid_up_capital=60 * M) is None
    # both sectors agree -> classified
    assert one("JP", "G", employees=40, paid_up_capital=1e12) == "medium"
    # section C may be rubber products (900 employees): unknown at 500 employees
    assert one("JP", "C", employees=500, paid_up_capital=400 * M) is None


def test_missing_criterion_decides_only_when_it_cannot_matter():
    # either-rule: 10 employees makes a Japanese manufacturer small whatever its capital
    assert one("JP", "C", employees=10) == "small"
    assert one("JP", "C", employees=500) is None
    # both-rule: Thailand needs both criteria
    assert one("TH", "C", employees=3) is None
    assert one("TH", "C", employees=201) == "large"


def test_amounts_in_another_currency_are_not_classified():
    frame = pd.DataFrame([{"country": "TH", "industry": "C", "fiscal_year_end": "2023-12-31",
                           "currency": "USD", "sales": 1, "employees": 1}])
    got = national_class(frame)
    assert got.sme_class.iloc[0] is None and "USD" in got.sme_reason.iloc[0]


def test_every_rule_cites_its_source_and_date():
    rules, harmonised = load_definitions()
    assert {r.country for r in rules} == {"JP", "BN", "KH", "ID", "LA", "MY", "MM", "PH", "SG", "TH", "VN"}
    for r in rules:
        assert r.source and r.title and r.effective_from and r.currency == CUR[r.country]
    assert "OECD" in harmonised["source"] and "Eurostat" in harmonised["source"]


def test_inconsistent_data_is_refused():
    rule = load_definitions()[0][0]
    bad = dataclasses.replace(rule, thresholds={**rule.thresholds, "wholesale": {"small": {"sales": {"le": 1}}}})
    with pytest.raises(ValueError, match="JP-1999.*sales"):
        check_rules([bad])


def test_harmonised_classes():
    got = harmonised_class(pd.Series([0, 9, 10, 49, 50, 249, 250, None]))
    assert got.tolist() == ["micro", "micro", "small", "small", "medium", "medium", "large", None]


def test_vectorised_matches_row_by_row():
    cases = [("VN", ind, v, e) for ind, v, e in VN] + [("TH", ind, v, e) for ind, v, e in TH]
    frame = pd.DataFrame([{"country": c, "industry": i, "fiscal_year_end": "2023-06-30", "currency": CUR[c], **v}
                          for c, i, v, _ in cases])
    assert national_class(frame).sme_class.tolist() == [e for *_, e in cases]


def test_docs_page_is_generated_from_the_data():
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "scripts"))
    import sme_definitions_doc

    page = (root / "docs" / "sme-definitions.md").read_text(encoding="utf-8")
    assert page == sme_definitions_doc.render() + "\n", "regenerate docs/sme-definitions.md (see its first lines)"
