"""The validation report: every section in the JSON, strict JSON, a self-contained HTML page."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest

from models import validation_stats as vs
from pipelines.validation_demo import synthetic_validation_inputs
from pipelines.validation_report import build_validation, render_html, write_report

SECTIONS = {"schema", "generated_at", "model_card", "sample", "discrimination", "calibration", "stability", "drivers"}


@pytest.fixture(scope="module")
def inputs():
    return synthetic_validation_inputs(30_000, seed=3)


@pytest.fixture(scope="module")
def results(inputs):
    return build_validation(**inputs)


@pytest.fixture(scope="module")
def page(results):
    return render_html(results)


def test_json_has_every_section_and_is_strict_json(results):
    assert set(results) == SECTIONS
    assert set(results["discrimination"]) >= {"auc", "ar", "ks", "roc", "cap", "auc_by_year", "challenger",
                                              "ecb_auc_test"}
    assert set(results["calibration"]) >= {"by_grade", "by_year", "portfolio_jeffreys", "hosmer_lemeshow_deciles",
                                           "hosmer_lemeshow_grades", "brier", "traffic_light_rule"}
    assert set(results["stability"]) >= {"psi_score", "psi_features", "psi_grade", "migration", "herfindahl"}
    assert set(results["drivers"]) == {"mean_abs_contribution", "monotonicity"}
    text = json.dumps(results, allow_nan=False)  # raises on NaN / numpy types
    assert json.loads(text) == results


def test_json_numbers_agree_with_the_statistics(inputs, results):
    p, y = inputs["pd"], inputs["default"]
    assert results["discrimination"]["auc"]["auc"] == pytest.approx(vs.auc(p, y))
    assert results["discrimination"]["ar"] == pytest.approx(2 * vs.auc(p, y) - 1)
    assert results["sample"]["n"] == 30_000 and results["sample"]["defaults"] == int(y.sum())
    grades = [r["grade"] for r in results["calibration"]["by_grade"]]
    assert grades == sorted(grades, key=lambda g: inputs["grade_pd"][g])
    assert sum(r["firms"] for r in results["calibration"]["by_grade"]) == 30_000
    assert [r["feature"] for r in results["stability"]["psi_features"]] == list(inputs["features_val"].columns)
    assert {r["feature"] for r in results["drivers"]["monotonicity"]} == set(inputs["monotone"])
    assert results["discrimination"]["challenger"]["delong"]["auc_2"] == pytest.approx(vs.auc(inputs["challenger_pd"], y))
    assert results["model_card"]["version"] == "synthetic-demo-1"


def test_optional_inputs_may_be_missing(inputs):
    kw = dict(inputs, challenger_pd=None, initial_auc=None, contributions=None, grade_dev=None)
    r = build_validation(**kw)
    assert r["discrimination"]["challenger"] is None and r["discrimination"]["ecb_auc_test"] is None
    assert r["drivers"]["mean_abs_contribution"] is None and r["stability"]["psi_grade"] is None
    html = render_html(r)
    assert "No challenger model supplied" in html and "ECB AUC test not performed" in html


def test_unknown_grade_is_rejected(inputs):
    gpd = dict(inputs["grade_pd"])
    gpd.pop("G5")
    with pytest.raises(ValueError, match="G5"):
        build_validation(**dict(inputs, grade_pd=gpd))


def test_html_is_self_contained_with_embedded_plots(page):
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("data:image/png;base64,") >= 5  # ROC/CAP, AUC per year, calibration, migration, SHAP
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"<(script|link|iframe)\b", page)
    assert not re.search(r"""src=["'](?!data:)""", page)  # every src is an inline data URI
    pngs = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    assert all(base64.b64decode(b).startswith(b"\x89PNG") for b in pngs)
    assert not any(b"http" in base64.b64decode(b) for b in pngs)  # not even in PNG metadata
    for heading in ("Model card", "Discrimination", "Calibration", "Stability", "Drivers", "DeLong",
                    "ECB test", "Hosmer", "Brier", "Jeffreys", "Population stability index", "Migration",
                    "Herfindahl", "Monotonicity"):
        assert heading in page, heading


def test_write_report_escapes_model_card_and_colours_traffic_lights(results, tmp_path):
    r = dict(results, model_card={"version": "<script>alert(1)</script>", "approval_state": "approved & signed"})
    write_report(r, str(tmp_path / "r.html"), str(tmp_path / "r.json"))
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "approved &amp; signed" in html
    lights = {row["traffic_light"] for row in results["calibration"]["by_grade"]}
    for light in lights:
        assert f'class="{light}"' in html
    assert json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))["model_card"]["version"].startswith("<script>")


@pytest.mark.slow
def test_runs_on_one_million_observations():
    kw = synthetic_validation_inputs(1_000_000, seed=11)
    r = build_validation(**kw)
    assert r["sample"]["n"] == 1_000_000
    assert len(r["discrimination"]["roc"]["fpr"]) <= 1000 and len(r["discrimination"]["cap"]["population"]) <= 1000
    assert 0.5 < r["discrimination"]["auc"]["auc"] < 1.0
    assert r["discrimination"]["auc"]["ci_upper"] - r["discrimination"]["auc"]["ci_lower"] < 0.02
    html = render_html(r)
    assert html.count("data:image/png;base64,") >= 5
    assert np.isfinite(r["calibration"]["brier"])
