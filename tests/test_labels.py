"""Point-in-time default labels."""

import numpy as np
import pandas as pd

from models.labels import label_statements


def test_labels_window_lag_and_exclusions():
    st = pd.DataFrame({
        "firm_id": [1, 1, 1, 2, 3, 4],
        "fiscal_year_end": pd.to_datetime(["2019-03-31", "2020-03-31", "2021-03-31", "2020-12-31", "2022-12-31",
                                           "2020-03-31"]),
    })
    de = pd.DataFrame({"firm_id": [1, 4], "default_date": pd.to_datetime(["2021-02-15", "2020-06-01"])})
    out = label_statements(st, de, as_of="2023-06-30", lag_months=3).set_index(["firm_id", "fiscal_year_end"])
    # firm 1, FY2019: available 2019-06-30, window to 2020-06-30: default 2021-02 is outside -> 0
    assert out.loc[(1, pd.Timestamp("2019-03-31")), "label"] == 0.0
    # FY2020: available 2020-06-30, window to 2021-06-30 contains 2021-02-15 -> 1
    assert out.loc[(1, pd.Timestamp("2020-03-31")), "label"] == 1.0
    # FY2021: available 2021-06-30, after the firm's default -> excluded
    assert (1, pd.Timestamp("2021-03-31")) not in out.index
    # firm 2, window complete, no default -> 0
    assert out.loc[(2, pd.Timestamp("2020-12-31")), "label"] == 0.0
    # firm 3: window ends 2024-03-31 after as_of -> unlabelled
    assert np.isnan(out.loc[(3, pd.Timestamp("2022-12-31")), "label"])
    # firm 4: default 2020-06-01 falls between year end and availability (2020-06-30): excluded
    assert (4, pd.Timestamp("2020-03-31")) not in out.index


def test_defaults_after_as_of_are_ignored():
    st = pd.DataFrame({"firm_id": [1], "fiscal_year_end": pd.to_datetime(["2020-03-31"])})
    de = pd.DataFrame({"firm_id": [1], "default_date": pd.to_datetime(["2021-01-10"])})
    before = label_statements(st, de, as_of="2021-01-01")
    after = label_statements(st, de, as_of="2021-08-01")
    assert np.isnan(before.label.iloc[0])  # window incomplete, default not yet known
    assert after.label.iloc[0] == 1.0
