"""The canonical data dictionary of submissions (human version: docs/data-dictionary.md).

Each submission kind has columns of a type: ``key`` (text identifier that is
pseudonymised), ``pii`` (accepted and dropped, never stored), ``code`` (text from a
closed list), ``text``, ``date`` (ISO 8601 ``YYYY-MM-DD``), ``int``, ``amount`` (currency
units of the row's ``currency``), ``rate`` (fraction, e.g. 0.8 or 0.015 per annum),
``bool`` (true/false, 1/0, yes/no).
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("statements", "loans", "defaults")

#: ISIC Rev.4 sections.
ISIC_SECTIONS = tuple("ABCDEFGHIJKLMNOPQRSTU")

#: Credit events accepted in ``defaults`` files (CRD / Basel CRE36 definitions).
EVENT_TYPES = (
    "past_due_90",  # more than 90 days (3 months) past due on a material obligation
    "bankrupt",  # legal bankruptcy / insolvency proceedings
    "virtually_bankrupt",  # de facto bankrupt (business suspended, no prospect of recovery)
    "subrogated",  # the credit guarantee was called; the guarantor paid the lender
    "restructured",  # distressed restructuring (unlikely to pay)
)

AMORTIZATIONS = ("bullet", "linear", "annuity")


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    required: bool
    description: str


PII = (
    Column("firm_name", "pii", False, "firm name (dropped, never stored)"),
    Column("address", "pii", False, "street address (dropped, never stored)"),
    Column("representative", "pii", False, "name of the representative (dropped, never stored)"),
    Column("phone", "pii", False, "telephone number (dropped, never stored)"),
)

_BORROWER = (
    Column("borrower_key", "key", True, "the institution's own borrower key (stored only as a keyed hash)"),
    Column("corporate_number", "key", False,
           "national corporate / tax number; links the same firm across institutions (stored only as a keyed hash)"),
)

STATEMENTS = _BORROWER + PII + (
    Column("country", "code", True, "ISO 3166-1 alpha-2 country of the firm"),
    Column("postal_code", "text", False, "postal code; only its first 3 characters are kept, as the region"),
    Column("industry", "code", True, "ISIC Rev.4 section letter A-U"),
    Column("established", "date", False, "date of establishment; only the year is kept"),
    Column("employees", "int", False, "number of employees at fiscal year end"),
    Column("fiscal_year_end", "date", True, "last day of the fiscal period"),
    Column("months", "int", False, "length of the fiscal period in months (default 12)"),
    Column("currency", "code", True, "ISO 4217 currency of all amounts in the row"),
    Column("sales", "amount", True, "net sales (revenue) of the period"),
    Column("cost_of_sales", "amount", False, "cost of goods sold"),
    Column("operating_profit", "amount", False, "operating profit (loss negative)"),
    Column("ordinary_profit", "amount", False, "ordinary profit, after financial items (loss negative)"),
    Column("net_income", "amount", True, "net income of the period (loss negative)"),
    Column("interest_expense", "amount", False, "interest and discount expenses"),
    Column("depreciation", "amount", False, "depreciation and amortisation"),
    Column("cash", "amount", False, "cash and deposits"),
    Column("receivables", "amount", False, "trade notes and accounts receivable"),
    Column("inventory", "amount", False, "inventories"),
    Column("current_assets", "amount", True, "total current assets"),
    Column("fixed_assets", "amount", False, "total fixed (non-current) assets"),
    Column("total_assets", "amount", True, "total assets"),
    Column("current_liabilities", "amount", True, "total current liabilities"),
    Column("interest_bearing_debt", "amount", False, "borrowings, bonds and other interest-bearing debt"),
    Column("total_liabilities", "amount", True, "total liabilities"),
    Column("net_assets", "amount", True, "net assets (equity); negative when insolvent on the balance sheet"),
    Column("paid_up_capital", "amount", False, "paid-up share capital (Japan's SME capital criterion)"),
    Column("land", "amount", False, "book value of land (excluded from assets by the ID, PH and MM SME rules)"),
    Column("buildings", "amount", False, "book value of buildings (excluded by Indonesia's SME rules)"),
    Column("isic_code", "text", False,
           "ISIC Rev.4 division, group or class digits within the section (e.g. 4711); some SME rules need it"),
)

LOANS = _BORROWER + (
    Column("loan_key", "key", True, "the institution's own loan key (stored only as a keyed hash)"),
    Column("origination_date", "date", True, "date the loan was drawn"),
    Column("maturity_date", "date", True, "final maturity, after the origination date"),
    Column("currency", "code", True, "ISO 4217 currency of the amounts"),
    Column("amount", "amount", True, "original principal"),
    Column("interest_rate", "rate", False, "contractual interest rate, fraction per annum (0.021 = 2.1 %)"),
    Column("amortization", "code", False, "bullet | linear | annuity (default annuity)"),
    Column("secured", "bool", False, "true when the loan has collateral"),
    Column("guarantee_coverage", "rate", False, "share of the loan covered by a credit guarantee, 0-1"),
    Column("outstanding", "amount", False, "outstanding principal at submission"),
)

DEFAULTS = _BORROWER + (
    Column("default_date", "date", True, "date of the credit event"),
    Column("event_type", "code", True, "one of " + ", ".join(EVENT_TYPES)),
    Column("loan_key", "key", False, "the loan concerned, when the event is loan-specific"),
    Column("exposure", "amount", False, "exposure at default, currency units"),
    Column("currency", "code", False, "ISO 4217 currency of the exposure"),
)

COLUMNS: dict[str, tuple[Column, ...]] = {"statements": STATEMENTS, "loans": LOANS, "defaults": DEFAULTS}

#: Columns that identify a row within a file (must be unique within the file).
FILE_KEYS: dict[str, tuple[str, ...]] = {
    "statements": ("borrower_key", "fiscal_year_end"),
    "loans": ("loan_key",),
    "defaults": ("borrower_key", "default_date", "event_type"),
}


def required(kind: str) -> list[str]:
    return [c.name for c in COLUMNS[kind] if c.required]


def names(kind: str) -> list[str]:
    return [c.name for c in COLUMNS[kind]]


def of_type(kind: str, *types: str) -> list[str]:
    return [c.name for c in COLUMNS[kind] if c.type in types]
