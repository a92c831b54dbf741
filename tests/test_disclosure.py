"""Disclosure control against a single member (models/disclosure.py), on a data set small
enough to check every published cell by hand, the suppressed ones included.

Three institutions A=1, B=2, C=3; one ratio ``x``; policy k = 3, p = 10 %, (2, 85 %).
One statement per firm (year 2021), no default split unless a test asks for it:

industry  firms (value of x)                       known by        by hand
G         1..6  (x = 1, 2, 3, 4, 5, 6)             A 1,2 B 3,4 C 5,6   every institution leaves 4 >= 3: shown;
                                                                       p%: 21-6-5 = 10 >= 0.6, any bank: fine;
                                                                       top 2 = 11/21 = 52 % <= 85 %: shown
F         7..11 (x = 10, 11, 12, 13, 14)           A 7-10, B 11    A leaves 1 < 3: primary (the attack cell)
M         12..17 (x = 1, 1, 1, 1, 1, 100)          A 12,13 B 14,15 C 16,17  counts shown; x: 105-100-1 = 4 < 10:
                                                                       dominance
I         18..22 (x = 2, 2, 2, 2, 2)               A 18,19 B 18,20 C 21,22  firm 18 known to A and B: each bank
                                                                       leaves 3: shown (but see the margin)
all       22 firms                                 A knows 10 -> 12 left: shown
Complementary: industry G, F, M, I under the total "all": F alone hidden -> the smallest
other shown member, I (5 firms), is hidden (complementary); for x then F, I (cells) and M
(dominance) are hidden: nothing more.
"""

from __future__ import annotations

import pandas as pd
import pytest

from models.disclosure import DisclosurePolicy, load_policy, protected_statistics
from models.statistics import cell_statistics

POLICY = DisclosurePolicy(k=3, p_percent=10.0, n=2, k_percent=85.0)


def known_data() -> pd.DataFrame:
    rows = []

    def add(industry, firms, values, known):
        for f, v in zip(firms, values, strict=True):
            rows.append({"firm_id": f, "industry": industry, "x": float(v), "label": 0.0, "known_by": known[f],
                         "institution": min(known[f])})

    known = {f: {1} for f in (1, 2, 7, 8, 9, 10, 12, 13, 19)}
    known |= {f: {2} for f in (3, 4, 11, 14, 15, 20)}
    known |= {f: {3} for f in (5, 6, 16, 17, 21, 22)}
    known[18] = {1, 2}
    add("G", range(1, 7), [1, 2, 3, 4, 5, 6], known)
    add("F", range(7, 12), [10, 11, 12, 13, 14], known)
    add("M", range(12, 18), [1, 1, 1, 1, 1, 100], known)
    add("I", range(18, 23), [2, 2, 2, 2, 2], known)
    return pd.DataFrame(rows)


def published(frame=None, **kw) -> pd.DataFrame:
    frame = known_data() if frame is None else frame
    out = protected_statistics(frame, ["industry"], ["x"], POLICY, split_by_default=False, **kw)
    return out.set_index("industry")


def test_every_cell_as_computed_by_hand():
    t = published()
    assert list(t.index) == ["F", "G", "I", "M", "all"]
    assert t.loc["G", "suppressed"] is None
    assert (t.loc["G", "firms"], t.loc["G", "count"], t.loc["G", "mean"], t.loc["G", "median"]) == (6, 6, 3.5, 3.5)
    assert t.loc["G", "p30"] == pytest.approx(2.5)  # numpy linear: 1 + 0.3 * 5 = 2.5 -> between 2 and 3
    assert t.loc["F", "suppressed"] == "primary"
    assert pd.isna(t.loc["F", "firms"]) and pd.isna(t.loc["F", "mean"])
    assert t.loc["I", "suppressed"] == "complementary"
    assert pd.isna(t.loc["I", "firms"]) and pd.isna(t.loc["I", "mean"])
    assert t.loc["M", "suppressed"] == "dominance"
    assert t.loc["M", "firms"] == 6 and t.loc["M", "statements"] == 6  # counts shown
    assert pd.isna(t.loc["M", "mean"]) and pd.isna(t.loc["M", "median"]) and pd.isna(t.loc["M", "count"])
    total = sum([1, 2, 3, 4, 5, 6, 10, 11, 12, 13, 14, 1, 1, 1, 1, 1, 100, 2, 2, 2, 2, 2])
    assert t.loc["all", "suppressed"] is None
    assert t.loc["all", "firms"] == 22 and t.loc["all", "mean"] == pytest.approx(total / 22)


def test_the_single_member_differencing_attack_fails():
    """Bank A subtracts its own statistics (k = 1 over its own rows) from the published table."""
    frame = known_data()
    for attacker in (1, 2, 3):
        own = frame[frame.known_by.map(lambda s, a=attacker: a in s)]
        mine = cell_statistics(own, ["industry"], ["x"], k=1, split_by_default=False).set_index("industry")
        t = published(frame)
        for industry, row in t.iterrows():
            if pd.isna(row["firms"]):
                continue
            left = row["firms"] - (mine.loc[industry, "firms"] if industry in mine.index else 0)
            assert left >= POLICY.k, (attacker, industry, left)
            if not pd.isna(row["mean"]):
                # what the attacker cannot subtract away still holds at least k firms
                assert row["count"] - (mine.loc[industry, "count"] if industry in mine.index else 0) >= POLICY.k


def test_the_old_rule_lets_the_attack_recover_a_firm():
    """Control: with the plain k rule, cell F (5 firms) is published and bank A recovers
    firm 11's value exactly: the attack the rules above stop is real on this data."""
    frame = known_data()
    old = cell_statistics(frame, ["industry"], ["x"], k=3, split_by_default=False).set_index("industry")
    assert old.loc["F", "suppressed"] is None
    own = frame[frame.known_by.map(lambda s: 1 in s) & (frame.industry == "F")]
    recovered = old.loc["F", "mean"] * old.loc["F", "count"] - own.x.sum()
    assert recovered == pytest.approx(14.0)  # firm 11's x
    assert published().loc["F", "suppressed"] == "primary"


def test_shared_firm_is_removed_with_either_bank():
    """Cell I: 5 firms; A knows 18, 19 and B knows 18, 20 -> 3 left either way (shown at k=3,
    hidden at k=4, where a plain count rule would still show 5 firms)."""
    frame = known_data()
    frame = frame[frame.industry == "I"]
    t = protected_statistics(frame, ["industry"], ["x"], POLICY, split_by_default=False).set_index("industry")
    assert t.loc["I", "suppressed"] is None and t.loc["I", "firms"] == 5
    strict = DisclosurePolicy(k=4, p_percent=None, n=None, k_percent=None)
    t4 = protected_statistics(frame, ["industry"], ["x"], strict, split_by_default=False).set_index("industry")
    assert t4.loc["I", "suppressed"] == "primary"


def test_nk_rule_alone():
    """(2, 85 %), the p% rule off: G with x = 1, 1, 1, 1, 40, 60 -> the top two hold
    100/104 = 96.2 % > 85 %: dominated; at 97 % it is shown."""
    frame = known_data()
    frame = frame[frame.industry == "G"].copy()
    frame["x"] = [1.0, 1.0, 1.0, 1.0, 40.0, 60.0]
    nk = DisclosurePolicy(k=3, p_percent=None, n=2, k_percent=85.0)
    t = protected_statistics(frame, ["industry"], ["x"], nk, split_by_default=False, margins=False)
    assert t.set_index("industry").loc["G", "suppressed"] == "dominance"
    loose = DisclosurePolicy(k=3, p_percent=None, n=2, k_percent=97.0)  # 96.2 % <= 97 %: shown
    t = protected_statistics(frame, ["industry"], ["x"], loose, split_by_default=False, margins=False)
    assert t.set_index("industry").loc["G", "suppressed"] is None


def test_p_rule_against_an_institution_coalition():
    """x = 10, 10, 10, 10, 10, 50 with A knowing the five 10s: the second-largest firm alone
    leaves 100 - 50 - 10 = 40 >= 5 (p% of 50), but A knows 50 and leaves 100 - 50 - 50 = 0 < 5."""
    frame = pd.DataFrame({"firm_id": range(6), "industry": "G", "x": [10.0] * 5 + [50.0], "label": 0.0,
                          "known_by": [{1}] * 5 + [{2}]})
    policy = DisclosurePolicy(k=1, p_percent=10.0, n=None, k_percent=None)
    t = protected_statistics(frame, ["industry"], ["x"], policy, split_by_default=False, margins=False)
    assert t.set_index("industry").loc["G", "suppressed"] == "dominance"
    frame["known_by"] = [{1}, {2}, {3}, {4}, {5}, {6}]  # every firm its own bank: only the firm rule
    t = protected_statistics(frame, ["industry"], ["x"], policy, split_by_default=False, margins=False)
    assert t.set_index("industry").loc["G", "suppressed"] is None


def test_default_population_of_one_unknown_firm_is_hidden():
    """Finding 4's case: a cell where one statement of another member defaulted."""
    frame = known_data()
    frame.loc[frame.firm_id == 11, "label"] = 1.0  # B's firm in F defaulted; A knows 7-10
    t = protected_statistics(frame, ["industry"], ["x"], POLICY, split_by_default=True)
    d = t[(t.industry == "F") & (t.population == "default")]
    assert d.suppressed.tolist() == ["primary"] and d.defaults.isna().all()
    assert not t[t.suppressed.isna()].empty


def test_shipped_policy_and_bad_policies(tmp_path):
    p = load_policy()
    assert p.k >= 3 and p.p_percent and p.n and p.k_percent
    bad = tmp_path / "p.toml"
    bad.write_text("k = 0\n")
    with pytest.raises(ValueError, match="k must be at least 1"):
        load_policy(bad)
    bad.write_text("k = 5\n[dominance]\nn = 2\n")
    with pytest.raises(ValueError, match="needs both"):
        load_policy(bad)
    bad.write_text("k = 5\nkk = 1\n")
    with pytest.raises(ValueError, match="unknown setting"):
        load_policy(bad)
