"""Local number and date forms and header matching, against independent references
(Python's datetime and Excel's published serials; hand-computed numbers)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipelines.column_mapping import ProfileError, SourceProfile, map_header, profile_from_dict
from pipelines.local_formats import LocalFormats, parse_dates, parse_numbers

POINT, COMMA = LocalFormats(), LocalFormats(decimal=",")


@pytest.mark.parametrize(("text", "fmt", "value"), [
    ("2,100,000", POINT, 2_100_000.0), ("¥2,100,000", POINT, 2_100_000.0), ("(6000000)", POINT, -6_000_000.0),
    ("(6,000,000.50)", POINT, -6_000_000.5), ("1.234.567,89", COMMA, 1_234_567.89), ("12,5", COMMA, 12.5),
    ("1 234,5", COMMA, 1234.5), ("1.234,00-", COMMA, -1234.0), ("€ 99", POINT, 99.0), ("-1,000", POINT, -1000.0),
    ("JPY 5,000", POINT, 5000.0),
])
def test_numbers(text, fmt, value):
    values, why = parse_numbers(pd.Series([text]), fmt)
    assert why.iloc[0] is None and values.iloc[0] == value


@pytest.mark.parametrize(("text", "fmt", "hint"), [
    ("1,5", POINT, "--decimal ,"), ("12,34", POINT, "--decimal ,"), ("1,2345", POINT, "groups of three"),
    ("5%", POINT, "per cent"), ("abc", POINT, "number"), ("1.5.6", COMMA, "groups of three"),
])
def test_numbers_refused_with_the_option_that_settles_them(text, fmt, hint):
    values, why = parse_numbers(pd.Series([text]), fmt)
    assert np.isnan(values.iloc[0]) and hint in why.iloc[0]


def test_missing_tokens_are_missing_not_errors():
    values, why = parse_numbers(pd.Series(["n/a", "-", "N/A", "", None]), POINT)
    assert values.isna().all() and why.isna().all()


@pytest.mark.parametrize(("text", "day"), [
    ("31/03/2023", dt.date(2023, 3, 31)), ("03/31/2023", dt.date(2023, 3, 31)), ("2024/03/31", dt.date(2024, 3, 31)),
    ("20240331", dt.date(2024, 3, 31)), ("2023-03-31 00:00:00", dt.date(2023, 3, 31)),
    ("2023-03-31T00:00:00Z", dt.date(2023, 3, 31)), ("05/05/2020", dt.date(2020, 5, 5)),
    # Excel serials (1900 date system): 45016 is 31 March 2023, 36526 is 1 January 2000
    ("45016", dt.date(2023, 3, 31)), ("36526", dt.date(2000, 1, 1)),
])
def test_dates(text, day):
    values, why = parse_dates(pd.Series([text]), LocalFormats())
    assert why.iloc[0] is None and values.iloc[0].date() == day


@pytest.mark.parametrize(("text", "fmt", "hint"), [
    ("01/02/2023", None, "ambiguous"), ("2023-02-30", None, "February 2023 has no day 30"),
    ("2024-02-30", None, "not a calendar date"), ("2023-03-31 12:30", None, "time of day"),
    ("31.13.2023", "%d.%m.%Y", "does not match"), ("2023", None, "--date-format"),
])
def test_dates_refused_with_a_reason(text, fmt, hint):
    values, why = parse_dates(pd.Series([text]), LocalFormats(date_format=fmt))
    assert pd.isna(values.iloc[0]) and hint in why.iloc[0]


def test_declared_date_format_settles_ambiguity():
    values, why = parse_dates(pd.Series(["01/02/2023"]), LocalFormats(date_format="%d/%m/%Y"))
    assert values.iloc[0].date() == dt.date(2023, 2, 1)
    values, _ = parse_dates(pd.Series(["01/02/2023"]), LocalFormats(date_format="%m/%d/%Y"))
    assert values.iloc[0].date() == dt.date(2023, 1, 2)


def test_header_matching_suggestions_and_blank_cells():
    dictionary = ["borrower_key", "corporate_number", "employees", "sales"]
    m = map_header(["Borrower Key", "CORPORATE-NO", "employes", "SALES", "", "Remarks"], dictionary)
    assert m.names == ["borrower_key", "CORPORATE-NO", "employes", "sales", None, "Remarks"]
    assert m.suggestions == {"CORPORATE-NO": "corporate_number", "employes": "employees"}
    assert "Remarks" not in m.suggestions
    mapped = map_header(["Kunden-Nr", "borrower_key"], dictionary,
                        SourceProfile(columns={"Kunden-Nr": "borrower_key"}))
    assert mapped.clashes == [("Kunden-Nr", "borrower_key", "borrower_key")]


def test_profile_errors_name_the_key():
    with pytest.raises(ProfileError, match="unknown key"):
        profile_from_dict({"colums": {}})
    with pytest.raises(ProfileError, match="unknown encoding"):
        profile_from_dict({"encoding": "klingon"})
    with pytest.raises(ProfileError, match="decimal"):
        profile_from_dict({"formats": {"decimal": ";"}})
    p = profile_from_dict({"formats": {"decimal": ","}, "values": {"Currency": {"Yen": "JPY"}}})
    assert p.formats.decimal == "," and p.values == {"currency": {"Yen": "JPY"}}
