"""Fixed parameters of the synthetic-data generator (``pipelines.synth``).

They shape plausible Japanese SME data; they are not regulatory parameters, so they
live in code. Amounts are in JPY (currency units), rates are fractions per annum.
"""

from __future__ import annotations

import numpy as np

#: ISIC section -> (share of firms, PD logit effect, asset turnover sales/assets,
#: gross margin, current-asset share of total assets, sales per employee in JPY).
#: The mix loosely follows Japanese SME counts: trade, manufacturing and construction
#: dominate; construction and accommodation/food are the riskiest sectors.
INDUSTRIES: dict[str, tuple[float, float, float, float, float, float]] = {
    "G": (0.22, 0.10, 1.80, 0.22, 0.70, 45e6),  # wholesale and retail trade
    "C": (0.17, 0.00, 1.10, 0.22, 0.55, 22e6),  # manufacturing
    "F": (0.15, 0.35, 1.30, 0.18, 0.68, 28e6),  # construction
    "I": (0.06, 0.30, 0.90, 0.60, 0.30, 8e6),  # accommodation and food
    "L": (0.06, -0.20, 0.25, 0.45, 0.20, 40e6),  # real estate
    "N": (0.06, 0.10, 1.20, 0.35, 0.55, 12e6),  # administrative and support
    "M": (0.05, -0.15, 1.00, 0.50, 0.60, 18e6),  # professional, scientific
    "H": (0.05, 0.05, 1.00, 0.30, 0.40, 16e6),  # transport and storage
    "Q": (0.05, -0.40, 0.90, 0.55, 0.45, 10e6),  # health and social work
    "S": (0.04, 0.05, 1.00, 0.45, 0.50, 12e6),  # other services
    "J": (0.03, -0.05, 1.10, 0.45, 0.65, 20e6),  # information and communication
    "A": (0.01, 0.20, 0.70, 0.25, 0.35, 15e6),  # agriculture
    "E": (0.01, -0.10, 0.80, 0.30, 0.35, 25e6),  # water, waste
    "K": (0.01, -0.10, 0.30, 0.70, 0.70, 30e6),  # finance and insurance
    "P": (0.01, -0.30, 0.80, 0.55, 0.40, 9e6),  # education
    "R": (0.01, 0.20, 0.80, 0.50, 0.35, 10e6),  # arts and recreation
    "B": (0.005, 0.10, 0.60, 0.30, 0.30, 30e6),  # mining
    "D": (0.005, -0.20, 0.40, 0.30, 0.25, 60e6),  # electricity, gas
}

#: Prefecture -> (first postal digit range lo, hi, share of firms, telephone area code).
REGIONS: dict[str, tuple[int, int, float, str]] = {
    "Tokyo": (100, 208, 0.20, "03"),
    "Kanagawa": (210, 259, 0.08, "045"),
    "Osaka": (530, 599, 0.10, "06"),
    "Aichi": (440, 498, 0.07, "052"),
    "Saitama": (330, 369, 0.05, "048"),
    "Chiba": (260, 299, 0.04, "043"),
    "Hokkaido": (40, 99, 0.04, "011"),
    "Fukuoka": (800, 839, 0.05, "092"),
    "Hyogo": (650, 679, 0.04, "078"),
    "Shizuoka": (410, 439, 0.03, "054"),
    "Hiroshima": (720, 739, 0.025, "082"),
    "Kyoto": (600, 629, 0.025, "075"),
    "Miyagi": (980, 989, 0.02, "022"),
    "Niigata": (940, 959, 0.02, "025"),
    "Ibaraki": (300, 319, 0.02, "029"),
    "Nagano": (380, 399, 0.015, "026"),
    "Gunma": (370, 379, 0.015, "027"),
    "Okayama": (700, 719, 0.015, "086"),
    "Kumamoto": (860, 869, 0.01, "096"),
    "Okinawa": (900, 907, 0.01, "098"),
}

TOWNS = ("Chuo", "Minami", "Kita", "Higashi", "Nishi", "Sakae", "Honcho", "Midori", "Asahi", "Hon-machi",
         "Shinmachi", "Motomachi", "Sakuragi", "Kotobuki", "Heiwa")
SURNAMES = ("Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito", "Yamamoto", "Nakamura", "Kobayashi",
            "Kato", "Yoshida", "Yamada", "Sasaki", "Yamaguchi", "Matsumoto", "Inoue", "Kimura", "Hayashi",
            "Shimizu", "Saito")
GIVEN_NAMES = ("Hiroshi", "Takashi", "Makoto", "Kenji", "Yuki", "Akira", "Keiko", "Naoko", "Satoshi", "Yoko",
               "Kazuo", "Tomoko", "Manabu", "Emi", "Daisuke", "Haruka")
SUFFIXES = ("Co., Ltd.", "Co., Ltd.", "Co., Ltd.", "K.K.", "G.K.", "Inc.")

#: Credit events and their shares among SME defaults (mostly past due / subrogation).
EVENT_WEIGHTS: dict[str, float] = {
    "past_due_90": 0.42,
    "subrogated": 0.30,
    "bankrupt": 0.15,
    "virtually_bankrupt": 0.08,
    "restructured": 0.05,
}

#: Fiscal year-end month shares: March dominates in Japan, then December.
FISCAL_MONTHS = np.array([3, 12, 9, 6, 5, 8, 10, 11, 1, 2, 4, 7])
FISCAL_MONTH_SHARES = np.array([0.50, 0.16, 0.07, 0.06, 0.04, 0.04, 0.03, 0.03, 0.02, 0.02, 0.015, 0.015])

#: Share of blanks in optional statement columns (per statement).
MISSING_SHARES: dict[str, float] = {
    "cost_of_sales": 0.08,
    "depreciation": 0.12,
    "ordinary_profit": 0.06,
    "operating_profit": 0.03,
    "interest_expense": 0.05,
    "employees": 0.10,
    "cash": 0.03,
    "receivables": 0.04,
    "inventory": 0.05,
    "interest_bearing_debt": 0.04,
    "fixed_assets": 0.02,
    "months": 0.30,
}
#: Per-firm blanks (the firm never reports it).
FIRM_MISSING_SHARES: dict[str, float] = {"established": 0.12, "postal_code": 0.05, "corporate_number": 0.08}

# Latent model (logit PD = INTERCEPT + QUALITY_LOADING*q + CYCLE_LOADING*c + industry + size + age).
QUALITY_AR = 0.90  # persistence of firm credit quality year to year
CYCLE_AR = 0.5  # persistence of the common business cycle
QUALITY_LOADING = -1.45
CYCLE_LOADING = -0.35
SIZE_LOADING = -0.20  # per standard deviation of log base sales
YOUNG_FIRM_EFFECT = 0.25  # firms younger than 5 years
TARGET_DEFAULT_RATE = 0.02  # long-run mean annual PD the intercept is calibrated to

SALES_MEDIAN = 2.0e8
SALES_LOG_SD = 1.1
SALES_MIN, SALES_MAX = 1.0e7, 5.0e9

LOANS_PER_BANK_SHARES = np.array([0.5, 0.3, 0.2])  # 1, 2, 3 loans
TENOR_YEARS = np.arange(1, 11)
TENOR_SHARES = np.array([0.06, 0.08, 0.14, 0.08, 0.22, 0.08, 0.14, 0.05, 0.04, 0.11])
AMORTIZATION_SHARES = {"annuity": 0.65, "linear": 0.20, "bullet": 0.15}
DUAL_BANK_SHARE = 0.15
LATE_ENTRY_SHARE = 0.15  # firms whose first statement comes after the first simulated year
