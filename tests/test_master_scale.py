"""Master scale: packaged file loads, every PD maps to one grade, edges, bad files rejected."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.master_scale import MasterScaleError, assign_grade, fee_category, load_master_scale, representative_pd

SCALE = load_master_scale()


def test_packaged_scale_loads_and_meets_basel_grade_count():
    assert len(SCALE.grades) >= 7
    assert SCALE.default.grade == "D"
    cats = [g.fee_category for g in SCALE.grades]
    assert cats[0] == 9 and min(cats) == 1 and cats == sorted(cats, reverse=True)


@given(st.floats(min_value=0.0, max_value=1.0, exclude_min=True, exclude_max=True))
def test_every_pd_in_open_unit_interval_has_exactly_one_grade(p):
    g = assign_grade(p, SCALE)[0]
    containing = [x.grade for x in SCALE.grades if x.lower <= p < x.upper]
    assert containing == [g]


def test_band_edges_go_to_the_riskier_grade():
    for prev, cur in zip(SCALE.grades, SCALE.grades[1:], strict=False):
        assert assign_grade(cur.lower, SCALE)[0] == cur.grade
        assert assign_grade(np.nextafter(cur.lower, 0), SCALE)[0] == prev.grade
    assert assign_grade(0.0, SCALE)[0] == SCALE.grades[0].grade
    assert assign_grade(1.0, SCALE)[0] == "D"
    with pytest.raises(ValueError):
        assign_grade([0.5, np.nan], SCALE)
    with pytest.raises(ValueError):
        assign_grade(1.5, SCALE)


def test_fee_category_and_representative_pd():
    grades = assign_grade([0.0005, 0.02, 0.5, 1.0], SCALE)
    assert list(grades) == ["1", "6", "10", "D"]
    assert list(fee_category(grades, SCALE)) == [9, 4, 1, 1]
    rep = representative_pd(grades, SCALE)
    assert rep[0] == pytest.approx(0.0007) and rep[-1] == 1.0
    with pytest.raises(ValueError, match="unknown grade"):
        fee_category(["Z"], SCALE)


def _write(tmp_path: Path, bands, default=True) -> Path:
    lines = ['name = "t"']
    for i, (lo, hi, cat) in enumerate(bands, start=1):
        rep = lo + (hi - lo) / 2
        lines += ["[[grade]]", f'grade = "G{i}"', f"lower = {lo}", f"upper = {hi}",
                  f"representative_pd = {rep}", f"fee_category = {cat}"]
    if default:
        lines += ["[default]", 'grade = "D"', "fee_category = 1"]
    p = tmp_path / "scale.toml"
    p.write_text("\n".join(lines) + "\n")
    return p


GOOD = [(0.0, 0.01, 9), (0.01, 0.02, 8), (0.02, 0.03, 7), (0.03, 0.05, 6), (0.05, 0.1, 5),
        (0.1, 0.2, 3), (0.2, 1.0, 1)]


def test_custom_file_loads(tmp_path):
    s = load_master_scale(_write(tmp_path, GOOD))
    assert assign_grade(0.15, s)[0] == "G6"


@pytest.mark.parametrize("bands,message", [
    ([*GOOD[:3], (0.035, 0.05, 6), *GOOD[4:]], "gap between grade 'G3'"),
    ([*GOOD[:3], (0.025, 0.05, 6), *GOOD[4:]], "overlap between grade 'G3'"),
    ([(0.001, 0.01, 9), *GOOD[1:]], "must start at PD 0"),
    ([*GOOD[:-1], (0.2, 0.9, 1)], "must end at PD 1"),
    (GOOD[:3] + [(0.03, 1.0, 6)], "at least 7"),
    ([*GOOD[:2], (0.02, 0.03, 9), *GOOD[3:]], "safer fee category"),
    ([*GOOD[:-1], (0.2, 1.0, 0)], "fee_category must be 1-9"),
])
def test_bad_files_rejected_with_clear_error(tmp_path, bands, message):
    with pytest.raises(MasterScaleError, match=message) as e:
        load_master_scale(_write(tmp_path, bands))
    assert "scale.toml" in str(e.value)


def test_missing_default_grade_rejected(tmp_path):
    with pytest.raises(MasterScaleError, match="default"):
        load_master_scale(_write(tmp_path, GOOD, default=False))
