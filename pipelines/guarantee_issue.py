"""Recording guarantees an agency issues on stored loans.

A loan is found by the bank's own loan key, hashed as at submission (institution-scoped
HMAC, :func:`creditdb.anonymise.loan_hash`); the key itself is never stored. Each
guarantee records the pricing at issue: one-year PD of the approved model's latest
score of the firm, the schedule's fee category, the charged fee rate and the break-even
rate (both fractions p.a. of the covered outstanding, as in ``models.pricing``), the
schedule name and the model version. The loan is priced as the book on the issue date
(:func:`pipelines.guarantees.build_book`): on its remaining term and balance then, and
refused with the same reason ``price-book`` and ``quote --loan-of`` give when it has
matured, is repaid, has not started or its firm is in default. A loan already has an ACTIVE guarantee when a
guarantee was recorded on it (any stored row with the same bank and loan hash) and the
loan has not matured by the new issue date. All-or-nothing: any refused row leaves the
database unchanged.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select, text

from creditdb import anonymise as anon
from creditdb import lookups
from creditdb.anonymise import Key
from creditdb.schema import Guarantee, Institution, Loan
from pipelines.guarantees import GuaranteeDataError, build_book, frame_hash, price_book_frame

AGENCY_KINDS = ("guarantee_corporation", "government")


@dataclass
class IssueRequest:
    """One guarantee to issue: the bank's code and own loan key, optional coverage (fraction)."""

    bank: str
    loan_key: str
    coverage: float | None = None
    row: int | None = None  # file row (header = 1) for messages

    def where(self) -> str:
        at = f"row {self.row}: " if self.row is not None else ""
        return f"{at}loan {self.bank}:{self.loan_key}"


def issue_guarantees(engine: Engine, agency: str, requests: list[IssueRequest], *, key: Key, actor: str,
                     policy: Any, schedule: Any, issued_on: dt.date | None = None) -> list[dict[str, Any]]:
    """Issue guarantees in one transaction; returns the recorded rows.

    Raises :class:`GuaranteeDataError` (nothing written) naming the row, loan and field
    of every problem: unknown agency or one of the wrong kind, unknown bank or loan,
    coverage outside (0, 1], a loan already guaranteed (active) or matured, a loan twice
    in the request, no approved model or no score, unpriceable loan data.
    """
    from creditdb import audit

    issued_on = issued_on or dt.datetime.now(dt.UTC).date()
    problems: list[str] = []
    with engine.begin() as conn:
        inst = Institution.__table__.c
        ag = lookups.institution(conn, agency)
        if ag is None:
            raise GuaranteeDataError(f"unknown institution {agency!r} (--institution)")
        if ag.kind not in AGENCY_KINDS:
            raise GuaranteeDataError(f"institution {agency!r} is a {ag.kind}: only a guarantee_corporation or "
                                     "government can issue guarantees (--institution)")
        banks = {r.code: r.id for r in conn.execute(select(inst.code, inst.id))}
        ln, g = Loan.__table__.c, Guarantee.__table__.c
        loan_of: dict[int, IssueRequest] = {}
        coverage: dict[int, float] = {}
        for req in requests:
            if req.bank not in banks:
                problems.append(f"{req.where()}: bank: unknown institution {req.bank!r}")
                continue
            if req.coverage is not None and not 0 < req.coverage <= 1:
                problems.append(f"{req.where()}: coverage: must be a fraction in (0, 1] (got {req.coverage!r})")
                continue
            h = anon.loan_hash(key, req.bank, pd.Series([req.loan_key], dtype=object)).iloc[0]
            rows = conn.execute(select(ln.id).where(
                (ln.institution_id == banks[req.bank]) & (ln.loan_hash == h)).order_by(ln.id)).all()
            if not rows:
                problems.append(f"{req.where()}: loan_key: no loan with this key was submitted by {req.bank}")
                continue
            loan_id = int(rows[-1].id)
            if conn.dialect.name == "postgresql":
                # a concurrent issue on the same loan waits here and then sees this one's guarantee;
                # a row lock only agencies and the operator can take (creditdb/sql/rls.sql): an
                # agency may read loans but not lock them FOR UPDATE, and an advisory key would
                # let any login block issuing
                conn.execute(text("SELECT creditdb_lock_loan(:loan)"), {"loan": loan_id})
            active = conn.execute(select(g.id, g.issued_on).where(g.loan_id.in_([int(r.id) for r in rows]))
                                  .order_by(g.id.desc()).limit(1)).first()
            if active is not None:
                problems.append(f"{req.where()}: loan already has an active guarantee (guarantee {active.id}, "
                                f"issued {active.issued_on})")
                continue
            if loan_id in loan_of:
                problems.append(f"{req.where()}: loan appears twice in the request (also {loan_of[loan_id].where()})")
                continue
            loan_of[loan_id] = req
            if req.coverage is not None:
                coverage[loan_id] = float(req.coverage)
        if problems:
            raise GuaranteeDataError(_message(problems), [{"message": p} for p in problems])
        book = build_book(conn, policy.currency, policy.coverage, loan_ids=list(loan_of), coverage=coverage,
                          as_of=issued_on, schedule=schedule)
        reasons = dict(zip(book.excluded["loan_id"].astype(int), book.excluded["reason"], strict=True)) \
            if len(book.excluded) else {}
        live = set(book.loans["loan_id"].astype(int))
        for lid in loan_of:
            if lid in reasons:
                problems.append(f"{loan_of[lid].where()}: {reasons[lid]}")
            elif lid not in live:
                problems.append(f"{loan_of[lid].where()}: score.pd: the firm has no score from the approved model")
        if problems:
            raise GuaranteeDataError(_message(problems), [{"message": p} for p in problems])
        priced = price_book_frame(book.loans, policy, schedule)
        mv = book.model_version
        out = []
        for r in priced.itertuples(index=False):
            cat = str(r.category)
            rec = {"loan_id": int(r.loan_id), "agency_id": int(ag.id), "issued_on": issued_on,
                   "coverage": float(r.coverage), "pd": float(r.pd),
                   "fee_category": int(cat) if cat.isdigit() else int(r.score_fee_category),
                   "fee_rate": float(r.charged_rate), "breakeven_rate": float(r.break_even_rate),
                   "schedule": schedule.name, "model_version_id": mv["id"]}
            gid = conn.execute(Guarantee.__table__.insert().values(**rec).returning(g.id)).scalar_one()
            req = loan_of[int(r.loan_id)]
            result = {"guarantee_id": int(gid), **rec, "agency": agency, "bank": req.bank, "category": cat,
                      "schedule_rate": float(r.schedule_rate), "fee_charged": float(r.fee_charged),
                      "model_version": mv["version"], "firm_id": int(r.firm_id)}
            audit.append(conn, actor, "guarantee.issue",
                         {"guarantee_id": int(gid), "agency": agency, "bank": req.bank, "loan_id": int(r.loan_id),
                          "schedule": schedule.name, "model_version": mv["version"]},
                         input_hash=frame_hash(book.loans[book.loans["loan_id"] == r.loan_id]),
                         output_hash=frame_hash(pd.DataFrame([rec])))
            out.append(result)
    return out


def _message(problems: list[str]) -> str:
    more = f" (first 50 of {len(problems)})" if len(problems) > 50 else ""
    return f"{len(problems)} guarantee(s) refused{more}, nothing recorded:\n  " + "\n  ".join(problems[:50])


def list_guarantees(engine: Engine) -> list[dict[str, Any]]:
    """Issued guarantees with agency, bank, loan id and the pricing at issue."""
    from creditdb.schema import ModelVersion

    g, ln, mv = Guarantee.__table__.c, Loan.__table__.c, ModelVersion.__table__.c
    agency = Institution.__table__.alias("agency")
    bank = Institution.__table__.alias("bank")
    stmt = (select(g.id, agency.c.code.label("agency"), bank.c.code.label("bank"), g.loan_id, ln.firm_id,
                   g.issued_on, ln.maturity_date, ln.amount, ln.outstanding, g.coverage, g.pd, g.fee_category,
                   g.fee_rate, g.breakeven_rate, g.schedule, mv.version.label("model_version"))
            .join(Loan.__table__, ln.id == g.loan_id).join(agency, agency.c.id == g.agency_id)
            .join(bank, bank.c.id == ln.institution_id).outerjoin(ModelVersion.__table__, mv.id == g.model_version_id)
            .order_by(g.id))
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]
