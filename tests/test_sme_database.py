"""The ASEAN SME database view: two countries end to end, currency invariance, the report."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from creditdb.cli import cli
from models.irb import capital_k
from models.ratios import compute_features
from models.sme_database import sme_table
from pipelines import synth_region as R
from pipelines.fx import rate_table
from pipelines.sme_database import classify

ROOT = Path(__file__).resolve().parents[1]
TODAY = dt.date(2026, 6, 30)
AMOUNTS = [*R.AMOUNTS]


@pytest.fixture(scope="module")
def region():
    return R.generate_region(["JP", "TH"], 400, 5, 2, 9, start_year=2017, today=TODAY)


def _frame(region) -> pd.DataFrame:
    st = pd.concat(region.statements.values(), ignore_index=True)
    st["firm_id"] = st["borrower_key"].astype(str)
    st["fiscal_year_end"] = pd.to_datetime(st["fiscal_year_end"])
    ans = region.answers.assign(fiscal_year_end=pd.to_datetime(region.answers.fiscal_year_end))
    st = st.merge(ans[["borrower_key", "fiscal_year_end", "defaulted_within_window"]],
                  on=["borrower_key", "fiscal_year_end"], how="left")
    return st.rename(columns={"defaulted_within_window": "label"})


def _in_usd(frame: pd.DataFrame) -> pd.DataFrame:
    """The same statements as a bank would submit them in USD (ECB rate at each fiscal year end)."""
    table = rate_table()
    out = frame.copy()
    f = table.factors(out["currency"], out["fiscal_year_end"], "USD")
    for c in AMOUNTS:
        out[c] = pd.to_numeric(out[c], errors="coerce").astype(float) * f
    out["currency"] = "USD"
    return out


def _view(frame: pd.DataFrame, classes: str) -> pd.DataFrame:
    table = rate_table()
    feats = compute_features(frame.assign(established_year=np.nan))
    f = classify(frame, table)
    f["size_class"] = f["sme_class" if classes == "national" else "harmonised_class"]
    f["sales_rc"] = table.convert(f["sales"], f["currency"], f["fiscal_year_end"], "USD")
    for r in ("equity_ratio", "roa", "current_ratio", "ibd_to_sales"):
        f[r] = feats[r]
    return sme_table(f, ["country", "size_class"], k=3)


@pytest.mark.parametrize("classes", ["national", "harmonised"])
def test_statistics_identical_whichever_currency_the_firm_submitted_in(region, classes):
    local = _frame(region)
    usd = _in_usd(local)
    a, b = _view(local, classes), _view(usd, classes)
    assert a[["country", "size_class", "firms", "statements", "suppressed"]].equals(
        b[["country", "size_class", "firms", "statements", "suppressed"]])
    for col in ("default_rate", "employment", "sales", "median_equity_ratio", "median_roa", "median_ibd_to_sales"):
        np.testing.assert_allclose(a[col].astype(float), b[col].astype(float), rtol=1e-9, equal_nan=True)
    if classes == "national":  # the classes come from each country's own rule
        th = a[(a.country == "TH") & (a.size_class != "all")]
        assert {"micro", "small"} <= set(th.size_class)
        jp = a[(a.country == "JP") & (a.size_class != "all")]
        assert "micro" not in set(jp.size_class)  # the SME Basic Act has no micro class


def test_irb_capital_identical_whichever_currency(region):
    local = _frame(region)
    usd = _in_usd(local)
    table = rate_table()

    def k_of(frame: pd.DataFrame) -> np.ndarray:
        sales_eur_m = table.convert(frame["sales"], frame["currency"], frame["fiscal_year_end"], "EUR") / 1e6
        return capital_k(np.full(len(frame), 0.02), 0.45, sales_eur_m=sales_eur_m)

    np.testing.assert_allclose(k_of(local), k_of(usd), rtol=1e-12)
    # the SME adjustment really bites here: some firms have sales under EUR 50m
    assert (k_of(local) < capital_k(np.full(len(local), 0.02), 0.45)).any()


def test_dominance_rule_hides_sums_of_a_dominated_cell():
    frame = pd.DataFrame({"firm_id": range(6), "fiscal_year_end": pd.Timestamp("2022-12-31"), "label": 0.0,
                          "country": "TH", "size_class": "small", "employees": [1, 1, 1, 1, 1, 1000],
                          "sales_rc": [1.0] * 6, "equity_ratio": 0.3})
    t = sme_table(frame, ["country", "size_class"], k=3, ratios=["equity_ratio"])
    cell = t[(t.country == "TH") & (t.size_class == "small")].iloc[0]
    assert cell.firms == 6 and cell.suppressed is None
    assert cell.suppressed_sums == "dominance" and np.isnan(cell.employment)
    frame.loc[5, "employees"] = 2
    t = sme_table(frame, ["country", "size_class"], k=3, ratios=["equity_ratio"])
    assert t.loc[(t.country == "TH") & (t.size_class == "small"), "employment"].iloc[0] == 7


def _submit_region(region, out: Path) -> None:
    from creditdb.anonymise import pseudonymiser
    from creditdb.db import session_scope
    from creditdb.output import open_engine
    from creditdb.schema import Institution
    from creditdb.settings import get_settings
    from pipelines.ingest import submit_file

    R.write_region(region, out)
    engine = open_engine()
    key = pseudonymiser(engine, get_settings())
    with session_scope(engine) as s:
        for row in region.institutions.itertuples():
            s.add(Institution(code=row.code, name=row.name, kind=row.kind, country=row.country))
    for kind in ("statements", "defaults"):
        for bank in region.institutions.code:
            res = submit_file(engine, kind, out / bank / f"{kind}.csv", bank, key=key, actor="pytest")
            assert res.status == "loaded" and res.rows_rejected == 0, (bank, kind, res.status, res.issues[:3])


def test_two_countries_end_to_end_stats_and_report(db, region, tmp_path):
    _submit_region(region, tmp_path / "files")
    runner = CliRunner()
    res = runner.invoke(cli, ["stats", "--by", "country,size_class", "--k", "3", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    rows = pd.DataFrame(out["rows"])
    assert out["currency"] == "USD" and out["classes"] == "national"
    total = rows[(rows.country == "all") & (rows.size_class == "all")].iloc[0]
    # 400 firms per country; a firm both banks submit without a corporate number cannot be linked
    assert 800 <= total.firms <= 830 and total.sales > 0
    per_country = rows[(rows.country != "all") & (rows.size_class == "all")].set_index("country")
    assert set(per_country.index) == {"JP", "TH"}
    assert 400 <= per_country.loc["JP", "firms"] <= 415 and 400 <= per_country.loc["TH", "firms"] <= 415
    assert per_country.firms.sum() == total.firms
    # why some firm-years have no class: the classifier's reasons, summing to the unknown cell when all shown
    from models.sme_definitions import REASONS

    unknown = out["unknown_class"]
    assert set(unknown) <= {"JP", "TH"} and unknown, unknown
    for country, reasons in unknown.items():
        assert {r["reason_code"] for r in reasons} <= set(REASONS) and all(r["reason"] for r in reasons)
        cell = rows[(rows.country == country) & (rows.size_class == "unknown")].iloc[0]
        shown = [r["firm_years"] for r in reasons if r["suppressed"] is None]
        if cell.suppressed is None and len(shown) == len(reasons):
            assert sum(shown) == cell.statements
        else:  # never exactly one hidden reason beside a published total
            assert cell.suppressed is not None or len(reasons) - len(shown) != 1
    res = runner.invoke(cli, ["stats", "--by", "country,size_class", "--classes", "harmonised", "--k", "3",
                              "--html", str(tmp_path / "asean.html"), "--json"])
    assert res.exit_code == 0, res.output
    harmonised = {r["size_class"] for r in json.loads(res.output)["rows"]}
    assert harmonised <= {"micro", "small", "medium", "large", "unknown", "all"}
    html = (tmp_path / "asean.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and "TH" in html
    assert "Why some firms have no class" in html
    text = runner.invoke(cli, ["stats", "--by", "country,size_class", "--k", "3"])
    assert text.exit_code == 0 and "Why some firms have no class" in text.output


def test_missing_rate_in_stats_exits_1_naming_currency_and_date(db, tmp_path):
    vn = R.generate_region(["VN"], 40, 3, 2, 4, start_year=2019, today=TODAY)
    _submit_region(vn, tmp_path / "vn")
    res = CliRunner().invoke(cli, ["stats", "--by", "country,size_class", "--json"])
    assert res.exit_code == 1
    out = json.loads(res.output)
    assert out["currency"] == "VND" and out["date"] in out["error"] and "VND" in out["error"]
    # with the (synthetic) rates loaded the view is published
    assert CliRunner().invoke(cli, ["fx", "load", str(tmp_path / "vn" / "fx_rates.csv")]).exit_code == 0
    assert CliRunner().invoke(cli, ["stats", "--by", "country,size_class", "--k", "3"]).exit_code == 0


@pytest.mark.slow
def test_cross_country_report_renders_in_headless_chromium(sqlite_db, region, tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    import screenshot_report

    if screenshot_report.find_chromium() is None:
        message = "chromium is not installed (apt-get install -y chromium); cannot render the report"
        if os.environ.get("CI"):
            pytest.fail(message + " — CI is set, so this is an error")
        pytest.skip(message)
    from PIL import Image

    _submit_region(region, tmp_path / "files")
    html, png = tmp_path / "asean.html", tmp_path / "asean.png"
    res = CliRunner().invoke(cli, ["stats", "--by", "country,size_class", "--k", "3", "--html", str(html)])
    assert res.exit_code == 0, res.output
    assert screenshot_report.main([str(html), str(png), "--width", "1280", "--height", "2400"]) == 0
    with Image.open(png) as im:
        assert im.size == (1280, 2400)
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 200, "screenshot looks blank"

    def near(rgb: tuple[int, int, int]) -> int:
        return sum(c for c, (r, g, b) in colours if abs(r - rgb[0]) < 12 and abs(g - rgb[1]) < 12
                   and abs(b - rgb[2]) < 12)

    # the charts' blue (#1f5fa8) and orange (#e07b00) bars were drawn: the images decoded and rendered
    assert near((0x1F, 0x5F, 0xA8)) > 3000 and near((0xE0, 0x7B, 0x00)) > 1000


def test_size_features_identical_whichever_currency(region):
    local = _frame(region).assign(established_year=np.nan)
    usd = _in_usd(local)
    table = rate_table()
    a = compute_features(local.assign(fx_to_reporting=table.factors(local.currency, local.fiscal_year_end, "USD")))
    b = compute_features(usd.assign(fx_to_reporting=1.0))
    for col in ("log_sales", "log_assets", "equity_ratio", "roa", "ibd_to_sales", "current_ratio"):
        np.testing.assert_allclose(a[col].astype(float), b[col].astype(float), rtol=1e-9, equal_nan=True)
    raw = compute_features(local)  # without the factor the size features are in the submitted currency
    assert not np.allclose(raw["log_sales"].astype(float), a["log_sales"].astype(float), equal_nan=True)


def test_validation_per_country_with_the_same_traffic_lights():
    from pipelines.validation_demo import synthetic_validation_inputs
    from pipelines.validation_report import build_validation, render_html, to_jsonable

    inputs = synthetic_validation_inputs(20_000, seed=3)
    n = len(inputs["pd"])
    country = np.where(np.arange(n) % 2 == 0, "JP", "TH").astype(object)
    good = to_jsonable(build_validation(**inputs, country=country))
    rows = {r["group"]: r for r in good["discrimination"]["auc_by_country"]}
    assert set(rows) == {"JP", "TH"} and rows["JP"]["n"] + rows["TH"]["n"] == n
    cal = {r["country"]: r for r in good["calibration"]["by_country"]}
    assert {r["traffic_light"] for r in cal.values()} <= {"green", "yellow", "red"}
    # a model that understates TH's PDs threefold: TH turns red, JP keeps its light
    bad_pd = np.where(country == "TH", inputs["pd"] / 3, inputs["pd"])
    bad = to_jsonable(build_validation(**{**inputs, "pd": bad_pd}, country=country))
    bcal = {r["country"]: r for r in bad["calibration"]["by_country"]}
    assert bcal["TH"]["traffic_light"] == "red" and bcal["JP"]["traffic_light"] == cal["JP"]["traffic_light"]
    page = render_html(bad)
    assert "Calibration per country" in page and "AUC per country" in page


@pytest.mark.slow
def test_two_country_demo_end_to_end(sqlite_db, tmp_path, monkeypatch):
    monkeypatch.delenv("CREDITDB_SIZE_CURRENCY", raising=False)
    monkeypatch.setenv("CREDITDB_ACTOR", "pytest")
    res = CliRunner().invoke(cli, ["demo", "--countries", "JP,TH", "--firms", "700", "--years", "6", "--banks", "2",
                                   "--seed", "3", "--out", str(tmp_path / "demo"), "--json"])
    assert res.exit_code == 0, res.output[-2000:]
    out = json.loads(res.output[res.output.index("{"):])
    assert set(out["per_country"]) == {"JP", "TH"}
    for c in ("JP", "TH"):
        r = out["per_country"][c]
        assert r["n"] > 0 and 0.5 < r["auc"] <= 1 and r["traffic_light"] in {"green", "yellow", "red"}
    assert 1400 <= out["scored_firms"] <= 1450
    rows = pd.DataFrame(out["table"])
    assert set(rows.country) == {"JP", "TH", "all"}
    g = out["capped_guarantee"]
    assert g["scheme"] == "TCG-PGS" and g["country"] == "TH" and 0 < g["expected_claims"] <= g["cap"]
    report = Path(out["report"]).read_text()
    assert report.count("data:image/png;base64,") == 3 and "Why some firms have no class" in report
    assert "Calibration per country" in Path(out["validation_report"]).read_text()
    monkeypatch.delenv("CREDITDB_SIZE_CURRENCY", raising=False)  # the demo set it for its own run


def test_basel_sme_adjustment_uses_sales_converted_at_the_statement_date():
    from models.pricing import load_policy, price_loans

    table = rate_table()
    day = pd.Series([pd.Timestamp("2023-12-29")] * 2)
    sales_thb = pd.Series([4e8, 1.2e9])  # THB: about EUR 10.5m and 31.6m
    eur_m = table.convert(sales_thb, pd.Series(["THB", "THB"]), day, "EUR") / 1e6
    assert eur_m == pytest.approx(sales_thb / 37.973 / 1e6)
    base = {"pd": [0.02, 0.02], "amount": [1e7, 1e7], "tenor_years": [5, 5]}
    policy = load_policy()
    converted = price_loans({**base, "sales": sales_thb.to_numpy(), "sales_eur_m": eur_m}, policy)
    # the IRB formula on the sales converted by hand at the published rate (37.973 THB per EUR)
    from models import irb

    np.testing.assert_allclose(converted["irb_k"], irb.capital_k(0.02, policy.lgd_unsecured, 5.0,
                                                                 (sales_thb / 37.973 / 1e6).to_numpy()), rtol=1e-12)
    # baht read as if 160 per EUR (the fixed rate this replaced) would give another K
    fixed = price_loans({**base, "sales_eur_m": (sales_thb / 160 / 1e6).to_numpy()}, policy)
    assert not np.allclose(converted["irb_k"], fixed["irb_k"])


def test_negative_land_is_rejected_naming_row_and_column(sqlite_db, tmp_path):
    from creditdb.anonymise import pseudonymiser
    from creditdb.db import session_scope
    from creditdb.output import open_engine
    from creditdb.schema import Institution
    from creditdb.settings import get_settings
    from pipelines.ingest import submit_file

    d = R.generate_region(["TH"], 20, 2, 1, 1, start_year=2021, today=TODAY)
    st = d.statements["THBK1"].copy()
    st.loc[0, "land"] = -5
    path = tmp_path / "st.csv"
    st.to_csv(path, index=False)
    engine = open_engine()
    with session_scope(engine) as s:
        s.add(Institution(code="THBK1", name="x", kind="bank", country="TH"))
    res = submit_file(engine, "statements", path, "THBK1", key=pseudonymiser(engine, get_settings()), actor="t")
    assert res.rows_rejected == 1 and res.rows_loaded == len(st) - 1
    assert any(i["column"] == "land" and i["row"] == 2 for i in res.issues), res.issues[:3]


def test_insider_rule_a_member_removing_its_own_firms_leaves_fewer_than_k():
    base = {"fiscal_year_end": pd.Timestamp("2022-12-31"), "label": 0.0, "country": "TH", "employees": 10,
            "sales_rc": 1.0, "equity_ratio": 0.3}
    # small: 6 firms, 4 of them submitted only by bank 1 -> bank 1 alone could learn about the other 2
    # medium: 6 firms spread over 3 banks -> any bank removing its own leaves 4
    rows = [{**base, "firm_id": i, "size_class": "small", "institution_id": 1 if i < 4 else 2} for i in range(6)]
    rows += [{**base, "firm_id": 10 + i, "size_class": "medium", "institution_id": 1 + i % 3} for i in range(6)]
    frame = pd.DataFrame(rows)
    t = sme_table(frame, ["country", "size_class"], k=3, ratios=["equity_ratio"])
    cell = t.set_index(["country", "size_class"])
    assert cell.loc[("TH", "small"), "suppressed"] == "primary" and pd.isna(cell.loc[("TH", "small"), "firms"])
    # the country total would reveal small = total - medium: medium is hidden too (complementary)
    assert cell.loc[("TH", "medium"), "suppressed"] == "complementary"
    assert cell.loc[("TH", "all"), "firms"] == 12
    # without institutions (plain k-anonymity) both cells are published
    plain = sme_table(frame.drop(columns="institution_id"), ["country", "size_class"], k=3, ratios=["equity_ratio"])
    assert plain.suppressed.isna().all()


# ----------------------------------------------------------------- why a firm has no class
def _unknown(row: dict) -> tuple[str | None, str, str]:
    from models.sme_definitions import national_class

    got = national_class(pd.DataFrame([row])).iloc[0]
    return got.sme_class, got.sme_reason_code, got.sme_reason


CUR = {"JP": "JPY", "TH": "THB", "ID": "IDR", "KH": "KHR", "LA": "LAK", "MM": "MMK", "XX": "XXX"}
M = 1_000_000


def _row(country: str, industry: str | None, fye: str = "2023-12-31", **values) -> dict:
    return {"country": country, "industry": industry, "fiscal_year_end": fye, "currency": CUR[country], **values}


@pytest.mark.parametrize(("row", "code", "words"), [
    # no rule at all for the country in the data file
    (_row("XX", "C", employees=3), "no_rule_for_country", ["XX"]),
    # UU 20/2008 was enacted on 4 July 2008: a year end the day before has no rule
    (_row("ID", "C", "2008-07-03", sales=1), "before_first_rule", ["ID-2008"]),
    # Thailand's 2019 regulation: day not recorded, the earlier rule not recorded
    (_row("TH", "C", "2019-06-30", sales=1 * M, employees=3), "rule_start_day_unknown", ["TH-2019", "2019"]),
    # Lao PDR 2023 (day not recorded, thresholds unknown) vs Decree 25/GOL (micro: <= 5 persons, assets < 100m)
    (_row("LA", "C", "2023-06-30", employees=3, total_assets=1, sales=1), "rules_disagree", ["LA-2017", "LA-2023"]),
    # no ISIC section: JP wholesale says medium (<= 100 employees), retail says large (> 50, capital > 50m)
    (_row("JP", None, employees=60, paid_up_capital=60 * M), "sector_not_mapped", ["no ISIC section"]),
    (_row("JP", "Z", employees=60, paid_up_capital=60 * M), "sector_not_mapped", ["no ISIC section"]),
    # section G without the division: wholesale (G46) medium, retail (G47) large
    (_row("JP", "G", employees=60, paid_up_capital=60 * M), "sector_ambiguous", ["wholesale", "retail"]),
    # Thailand needs both revenue and employment; employees alone do not decide
    (_row("TH", "C", employees=3), "criterion_missing", ["sales"]),
    (_row("TH", "C", sales=3), "criterion_missing", ["employees"]),
    # Japan, capital OR employees: 500 employees is large by employees, capital could make it medium
    (_row("JP", "C", isic_code="2599", employees=500), "criterion_missing", ["paid_up_capital"]),
    # Indonesia PP 7/2021: business capital needs net assets, debt, land and buildings
    (_row("ID", "C", "2022-12-31", sales=3e9), "criterion_missing", ["business_capital_excl_land_buildings", "land"]),
    # Myanmar: the medium ceilings were not established
    (_row("MM", "C", employees=51, total_assets=500 * M + 1, land=0), "threshold_unknown", ["MM-2015"]),
    # Cambodia: no threshold established, so a missing employee count is not what is lacking
    (_row("KH", "C", employees=3), "threshold_unknown", ["employees"]),
    (_row("KH", "C"), "threshold_unknown", ["employees"]),
    (_row("TH", "C", sales=1, employees=1) | {"currency": "USD"}, "currency_mismatch", ["USD", "THB"]),
])
def test_every_unknown_firm_year_gets_the_classifiers_reason(row, code, words):
    cls, got, text = _unknown(row)
    assert cls is None and got == code, text
    for w in words:
        assert w in text


def test_a_classified_firm_year_has_no_reason_and_harmonised_needs_employees():
    from models.sme_definitions import REASONS, harmonised_classes

    cls, code, text = _unknown(_row("TH", "C", employees=201))  # large under 'both' whatever the sales
    assert cls == "large" and code == "" and text == ""
    h = harmonised_classes(pd.Series([3.0, None]))
    assert h.harmonised_class.tolist() == ["micro", None]
    assert h.harmonised_reason_code.tolist() == ["", "no_employees"]
    assert "no_employees" in REASONS and set(REASONS) >= {"before_first_rule", "threshold_unknown"}


def _reason_frame(cells: list[tuple[str, str | None, str, int, int]]) -> pd.DataFrame:
    """(country, class, reason, firms, years each) -> one row per firm-year."""
    rows, firm = [], 0
    for country, cls, reason, firms, years in cells:
        for _ in range(firms):
            firm += 1
            for y in range(years):
                rows.append({"firm_id": firm, "fiscal_year_end": pd.Timestamp(2020 + y, 12, 31), "label": 0.0,
                             "country": country, "size_class": cls, "employees": 10, "sales_rc": 1.0,
                             "equity_ratio": 0.3, "size_reason_code": "x" if cls is None else "",
                             "size_reason": reason})
    return pd.DataFrame(rows)


def test_unknown_reasons_are_suppressed_like_the_table():
    from models.sme_database import unknown_reasons

    frame = _reason_frame([
        ("TH", "small", "", 10, 1),
        ("TH", None, "A", 5, 2),  # 5 firms, 10 firm-years: published
        ("TH", None, "B", 1, 1),  # 1 firm: primary
        ("TH", None, "C", 4, 1),  # the smallest other: complementary, else B = total - A - C
    ])
    t = sme_table(frame, ["country", "size_class"], k=3, ratios=["equity_ratio"])
    cell = t.set_index(["country", "size_class"]).loc[("TH", "unknown")]
    assert cell.statements == 10 + 1 + 4 and cell.suppressed is None
    r = unknown_reasons(frame, t, ["country", "size_class"], k=3).set_index(["country", "reason"])
    assert r.loc[("TH", "A"), "firm_years"] == 10 and r.loc[("TH", "A"), "suppressed"] is None
    assert r.loc[("TH", "B"), "suppressed"] == "primary" and pd.isna(r.loc[("TH", "B"), "firm_years"])
    assert r.loc[("TH", "C"), "suppressed"] == "complementary" and pd.isna(r.loc[("TH", "C"), "firm_years"])
    # the table hides JP's unknown cell to protect its small cell: its one reason (4 firms) would reveal it
    jp = _reason_frame([("JP", "medium", "", 10, 1), ("JP", "small", "", 1, 1), ("JP", None, "A", 4, 1)])
    tj = sme_table(jp, ["country", "size_class"], k=3, ratios=["equity_ratio"])
    assert tj.set_index(["country", "size_class"]).loc[("JP", "unknown"), "suppressed"] == "complementary"
    rj = unknown_reasons(jp, tj, ["country", "size_class"], k=3)
    assert rj.suppressed.tolist() == ["complementary"] and rj.firm_years.isna().all()
    # without a size_class dimension there is no published total: only the primary rule applies
    both = pd.concat([frame, jp.assign(firm_id=jp.firm_id + 1000)], ignore_index=True)
    t2 = sme_table(both, ["country"], k=3, ratios=["equity_ratio"])
    r2 = unknown_reasons(both, t2, ["country"], k=3).set_index(["country", "reason"])
    assert r2.loc[("TH", "C"), "firm_years"] == 4 and r2.loc[("JP", "A"), "firm_years"] == 4
    assert r2.loc[("TH", "B"), "suppressed"] == "primary"
