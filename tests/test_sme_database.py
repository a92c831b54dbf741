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
    res = runner.invoke(cli, ["stats", "--by", "country,size_class", "--classes", "harmonised", "--k", "3",
                              "--html", str(tmp_path / "asean.html"), "--json"])
    assert res.exit_code == 0, res.output
    harmonised = {r["size_class"] for r in json.loads(res.output)["rows"]}
    assert harmonised <= {"micro", "small", "medium", "large", "unknown", "all"}
    html = (tmp_path / "asean.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and "TH" in html


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
    assert Path(out["report"]).read_text().count("data:image/png;base64,") == 3
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
