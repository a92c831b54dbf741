"""Submission ingest: read -> type -> validate -> anonymise -> load, in one transaction.

A file is streamed in chunks (bounded memory). All chunks are written inside a single
database transaction, so a rejected file, a crash or a killed process leaves the
database exactly as it was. Nothing identifying is written: see ``creditdb.anonymise``.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select, text

from creditdb import anonymise as anon
from creditdb import audit
from creditdb.bulk import insert_frame, insert_ignore, lookup
from creditdb.schema import (
    AMOUNT_COLUMNS,
    SME_AMOUNT_COLUMNS,
    BorrowerLink,
    DefaultEvent,
    FinancialStatement,
    Firm,
    Institution,
    Loan,
    Submission,
)
from models.sme_size import size_class
from pipelines import dictionary as D
from pipelines.readers import CHUNK_ROWS, FileRejected, inspect_file, iter_chunks
from pipelines.validate import Issue, Validator, coerce, get_validator

MAX_STORED_ISSUES = 10_000


class UnknownInstitution(LookupError):
    pass


class _Abort(Exception):
    """Raised inside the load transaction to roll it back."""


@dataclass
class SubmissionResult:
    """Outcome of one submission. ``status``: loaded | partial | rejected | duplicate."""

    file: str
    kind: str
    institution: str
    status: str
    sha256: str | None = None
    submission_id: int | None = None
    rows_total: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    warnings: int = 0
    firms_new: int = 0
    firms_linked: int = 0
    superseded: int = 0
    issue_counts: dict[str, int] = field(default_factory=dict)
    issues: list[dict[str, Any]] = field(default_factory=list)
    blocking: list[dict[str, Any]] = field(default_factory=list)
    duplicate_of: dict[str, Any] | None = None
    strict: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "loaded"

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ok"] = self.ok
        return out


def submit_file(engine: Engine, kind: str, path: Path | str, institution: str, *, key: bytes,
                actor: str = "unknown", strict: bool = False, today: dt.date | None = None,
                chunk_rows: int = CHUNK_ROWS, progress: bool | None = None,
                validator: Validator | None = None) -> SubmissionResult:
    """Validate and load one submission file; see the module docstring.

    Raises ``UnknownInstitution`` when ``institution`` is not registered; every problem
    with the file itself is reported in the returned result (status ``rejected``).
    """
    if kind not in D.KINDS:
        raise ValueError(f"kind must be one of {D.KINDS}")
    path = Path(path)
    result = SubmissionResult(file=str(path), kind=kind, institution=institution, status="rejected", strict=strict)
    with engine.connect() as conn:
        inst = conn.execute(select(Institution.id, Institution.country).where(Institution.code == institution)).first()
    if inst is None:
        raise UnknownInstitution(f"unknown institution {institution!r}: register it with 'creditdb institution add'")
    try:
        info = inspect_file(path)
        result.sha256 = info.sha256
        with engine.connect() as conn:
            earlier = conn.execute(
                select(Submission.id, Submission.received_at, Institution.code)
                .join(Institution, Institution.id == Submission.institution_id)
                .where(Submission.file_sha256 == info.sha256, Submission.kind == kind)
            ).first()
        if earlier is not None:
            result.status = "duplicate"
            result.duplicate_of = {"submission_id": earlier.id, "institution": earlier.code,
                                   "received_at": earlier.received_at}
            return result
        validator = validator or get_validator(kind, today)
        dup_rows = _duplicate_key_rows(info, kind, chunk_rows)
        _load(engine, kind, info, (inst.id, institution, inst.country), key, actor, strict, validator, dup_rows,
              chunk_rows, progress, result)
    except FileRejected as exc:
        result.status = "rejected"
        result.blocking.append(exc.as_dict())
    return result


def _duplicate_key_rows(info, kind: str, chunk_rows: int) -> dict[int, int]:
    """Rows whose file key repeats an earlier row: {row: first row with that key}.

    A first pass keeps only a 64-bit hash of each row's key (16 bytes a row with its row
    number, instead of the key text); a second pass reads the keys of the rows whose hash
    repeats and compares the keys themselves.
    """
    keys = list(D.FILE_KEYS[kind])
    if not set(keys) <= set(info.columns):
        return {}

    def normalised(chunk: pd.DataFrame) -> pd.DataFrame:
        return chunk.assign(**{k: chunk[k].astype("string").str.strip() for k in keys})[keys]

    hashes = [pd.Series(pd.util.hash_pandas_object(normalised(c), index=False).to_numpy(), index=c.index)
              for c in iter_chunks(info, keys, chunk_rows=chunk_rows)]
    if not hashes:
        return {}
    hashed = pd.concat(hashes)
    del hashes
    candidates = hashed.index[hashed.duplicated(keep=False).to_numpy()]
    del hashed
    if len(candidates) == 0:
        return {}
    parts = [normalised(c).loc[c.index.intersection(candidates)] for c in iter_chunks(info, keys, chunk_rows=chunk_rows)]
    frame = pd.concat(parts)
    dup = frame.duplicated(keys, keep=False)
    if not dup.any():
        return {}
    sub = frame[dup]
    first = sub.reset_index().groupby(keys, dropna=False)["row"].transform("min")
    return dict(zip(sub.index.astype(int), first.astype(int), strict=True))


def _load(engine, kind, info, inst, key, actor, strict, validator, dup_rows,
          chunk_rows, progress, result: SubmissionResult) -> None:
    from tqdm import tqdm

    inst_id, inst_code, inst_country = inst
    counts: Counter[str] = Counter()
    stored: list[dict[str, Any]] = []
    disable = progress is False or (progress is None and not sys.stderr.isatty())
    bar = tqdm(total=info.rows, unit="rows", desc=info.path.name, disable=disable, leave=False, mininterval=0.5)
    # ids of the firms this load created / found: NumPy arrays, 8 bytes a firm
    firms = {"new": np.empty(0, dtype="int64"), "seen": np.empty(0, dtype="int64")}
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="creditdb-copy")
    try:
        with engine.begin() as conn:
            sub_id = conn.execute(Submission.__table__.insert().values(
                institution_id=inst_id, kind=kind, file_name=info.path.name, file_sha256=info.sha256,
                status="loading", strict=strict, rows_total=0, rows_loaded=0, rows_rejected=0,
                report={}, received_at=dt.datetime.now(dt.UTC),
            ).returning(Submission.id)).scalar_one()
            first = True
            pending = None  # the previous chunk's database stage, running in the background

            def account(stage) -> None:
                """Fold one finished chunk (issues, rejected rows, loaded rows) into the result."""
                n_rows, issues, bad_rows, job = stage
                if job is not None:
                    loaded, unresolved = job.result()
                    issues += unresolved
                    bad_rows |= {i.row for i in unresolved}
                    result.rows_loaded += loaded
                result.rows_total += n_rows
                result.rows_rejected += len(bad_rows)
                for issue in sorted(issues, key=lambda i: (i.row, i.column or "")):
                    counts[f"{issue.severity}:{issue.rule}"] += 1
                    if len(stored) < MAX_STORED_ISSUES:
                        stored.append(issue.as_dict())
                bar.update(n_rows)

            try:
                for raw in iter_chunks(info, D.names(kind), chunk_rows=chunk_rows):
                    if first:
                        blocking = validator.check_columns(raw, str(info.path))
                        if blocking:
                            result.blocking.extend(blocking)
                            raise _Abort
                        first = False
                    typed, issues = coerce(kind, raw)
                    issues += validator.validate(raw, typed)
                    issues += [Issue(r, D.FILE_KEYS[kind][0], _show_key(raw, r, kind), "file.unique_key", "row",
                                     f"key ({', '.join(D.FILE_KEYS[kind])}) repeats row {f}" if f != r else
                                     f"key ({', '.join(D.FILE_KEYS[kind])}) appears again later in the file")
                               for r, f in dup_rows.items() if raw.index[0] <= r <= raw.index[-1]]
                    bad_rows = {i.row for i in issues if i.severity == "row"}
                    good = typed.loc[~typed.index.isin(list(bad_rows))]
                    hashes = _pseudonyms(kind, good, inst, key)
                    if pending is not None:  # wait for the previous chunk's database stage
                        account(pending)
                        pending = None
                    job = None
                    if not (strict and (bad_rows or result.rows_rejected)):
                        # the database stage (firm resolution, COPY) of this chunk runs in the
                        # background while the next chunk is read, typed and validated
                        job = pool.submit(_write, conn, kind, good, hashes, inst, sub_id, firms)
                    pending = (len(raw), issues, bad_rows, job)
                    del good, hashes
                    del raw, typed
            except BaseException:
                if pending is not None and pending[3] is not None:  # never roll back under a running COPY
                    wait([pending[3]])
                raise
            if pending is not None:
                account(pending)
                pending = None
            if first:
                result.blocking.append({"file": str(info.path), "row": None, "column": None, "rule": "table.not_empty",
                                        "severity": "blocking", "message": "the file has no data rows"})
                raise _Abort
            result.warnings = sum(v for k, v in counts.items() if k.startswith("warning:"))
            result.issue_counts = dict(sorted(counts.items()))
            result.issues = stored
            result.firms_new = len(firms["new"])
            result.firms_linked = len(np.setdiff1d(firms["seen"], firms["new"], assume_unique=True))
            if strict and result.rows_rejected:
                result.rows_loaded = 0
                raise _Abort
            if result.rows_loaded == 0:
                raise _Abort
            result.status = "loaded" if result.rows_rejected == 0 else "partial"
            if kind == "statements":
                result.superseded = _count_superseded(conn, sub_id)
            report = {"issue_counts": result.issue_counts, "issues": stored,
                      "issues_truncated": sum(counts.values()) > len(stored), "superseded": result.superseded}
            conn.execute(Submission.__table__.update().where(Submission.id == sub_id).values(
                status=result.status, rows_total=result.rows_total, rows_loaded=result.rows_loaded,
                rows_rejected=result.rows_rejected, warnings=result.warnings, firms_new=result.firms_new,
                firms_linked=result.firms_linked, report=report))
            audit.append(conn, actor, f"submit.{kind}",
                         {"submission_id": sub_id, "institution": inst_code, "file": info.path.name,
                          "rows_loaded": result.rows_loaded, "rows_rejected": result.rows_rejected,
                          "status": result.status},
                         input_hash=info.sha256)
            result.submission_id = sub_id
    except _Abort:
        result.status = "rejected"
        result.submission_id = None
        result.rows_loaded = 0
        result.issue_counts = dict(sorted(counts.items()))
        result.issues = stored
        result.firms_new = result.firms_linked = 0
    finally:
        pool.shutdown(wait=True)
        bar.close()


def _show_key(raw: pd.DataFrame, row: int, kind: str) -> str:
    return ", ".join(str(raw.at[row, k]) for k in D.FILE_KEYS[kind] if k in raw.columns)


def _count_superseded(conn, sub_id: int) -> int:
    return int(conn.execute(text(
        "SELECT count(*) FROM financial_statement s WHERE s.submission_id = :sid AND EXISTS ("
        " SELECT 1 FROM financial_statement o WHERE o.firm_id = s.firm_id AND o.fiscal_year_end = s.fiscal_year_end"
        " AND o.institution_id = s.institution_id AND o.submission_id < s.submission_id)"
    ), {"sid": sub_id}).scalar_one())


def _dates(series: pd.Series) -> pd.Series:
    """Calendar dates as Arrow ``date32`` (written as YYYY-MM-DD; ``datetime.date`` as objects)."""
    import pyarrow as pa

    days = pa.array(series.to_numpy(dtype="datetime64[s]").astype("datetime64[D]"), from_pandas=True)
    return pd.Series(days.cast(pa.date32()), index=series.index, dtype=pd.ArrowDtype(pa.date32()))


def _pseudonyms(kind: str, good: pd.DataFrame, inst: tuple[int, str, str], key: bytes) -> dict[str, pd.Series]:
    """Keyed hashes of each valid row (pure computation, no database): ``borrower`` (hash of
    the bank's borrower key), ``corporate`` (pseudonym from the corporate number) and, for
    loans and defaults, ``loan`` (hash of the bank's loan key).

    Loans and defaults carry no country: their corporate numbers are read as numbers of
    the submitting institution's country.
    """
    inst_id, inst_code, inst_country = inst
    if good.empty:
        return {}
    country = good["country"] if kind == "statements" else pd.Series(inst_country, index=good.index)
    out = {"borrower": anon.borrower_hash(key, inst_code, good["borrower_key"]),
           "corporate": anon.corporate_pseudonym(key, country, good["corporate_number"])}
    if kind != "statements":
        out["loan"] = anon.loan_hash(key, inst_code, good["loan_key"])
    return out


def _write(conn, kind: str, good: pd.DataFrame, hashes: dict[str, pd.Series], inst: tuple[int, str, str],
           sub_id: int, firms: dict[str, np.ndarray]) -> tuple[int, list[Issue]]:
    """Resolve the firms of one chunk's valid rows (creating new ones) and insert the rows.

    ``hashes``: the rows' borrower hashes and corporate pseudonyms (``_pseudonyms``).
    Returns (rows inserted, rows whose borrower could not be resolved).
    """
    if good.empty:
        return 0, []
    inst_id = inst[0]
    bh, cp = hashes["borrower"], hashes["corporate"]
    links = lookup(conn, BorrowerLink.__table__, "borrower_hash", list(pd.unique(bh.dropna())),
                   ["borrower_hash", "firm_id"], where={"institution_id": inst_id})
    firm_of = dict(zip(links.borrower_hash, links.firm_id, strict=True))
    firm_id = bh.map(firm_of)
    unresolved: list[Issue] = []
    missing = firm_id.isna()
    if missing.any():
        pseud = cp.where(cp.notna(), bh)[missing]
        existing = lookup(conn, Firm.__table__, "pseudonym", list(pd.unique(pseud.dropna())), ["pseudonym", "id"])
        known = set(existing.pseudonym)
        if kind == "statements":
            new = good.loc[missing].assign(pseudonym=pseud)
            new = new[~new.pseudonym.isin(known)].drop_duplicates("pseudonym")
            if not new.empty:
                new_firms = pd.DataFrame({
                    "pseudonym": new.pseudonym.astype(str).to_numpy(),
                    "country": new.country.astype(str).to_numpy(),
                    "industry": new.industry.astype(str).to_numpy(),
                    "region": anon.region(new.country, new.postal_code).to_numpy(),
                    "established_year": anon.year(new.established).to_numpy(),
                    "size_class": size_class(new.employees, new.country, new.industry).to_numpy(),
                    "created_at": dt.datetime.now(dt.UTC),
                })
                # under concurrent submissions another bank may have created some of these firms first:
                # only the rows this insert really wrote count as new (PostgreSQL; SQLite serialises writers)
                inserted = insert_ignore(conn, Firm.__table__, new_firms, ["pseudonym"], returning="pseudonym")
                created = lookup(conn, Firm.__table__, "pseudonym", list(new_firms.pseudonym), ["pseudonym", "id"])
                mine = created if inserted is None else created[created.pseudonym.isin(inserted)]
                firms["new"] = np.union1d(firms["new"], mine.id.to_numpy(dtype="int64"))
                existing = pd.concat([existing, created], ignore_index=True) if len(existing) else created
        firms["seen"] = np.union1d(firms["seen"], existing.id.to_numpy(dtype="int64"))
        ids = dict(zip(existing.pseudonym, existing.id, strict=True))
        firm_id[missing] = pseud.map(ids)
        new_links = pd.DataFrame({"institution_id": inst_id, "borrower_hash": bh[missing], "firm_id": firm_id[missing]})
        new_links = new_links.dropna().drop_duplicates("borrower_hash")
        insert_ignore(conn, BorrowerLink.__table__, new_links.astype({"firm_id": "int64"}),
                      ["institution_id", "borrower_hash"])
    if firm_id.isna().any():
        for row in good.index[firm_id.isna().to_numpy()]:
            unresolved.append(Issue(int(row), "borrower_key", str(good.at[row, "borrower_key"]), "borrower.unknown",
                                    "row", "borrower is unknown: submit its statements first (or give its corporate_number)"))
        keep = firm_id.notna()
        good, firm_id = good[keep], firm_id[keep]
    if good.empty:
        return 0, unresolved
    base = {"firm_id": firm_id.astype("int64").to_numpy(), "institution_id": inst_id, "submission_id": sub_id}
    if kind == "statements":
        cols = {**base,
                "fiscal_year_end": _dates(good.fiscal_year_end).array,
                "months": good.months.fillna(12).astype("int64").to_numpy(),
                "currency": good.currency.astype(str).to_numpy(),
                "employees": good.employees.astype("Int64").to_numpy(),
                "isic_code": good.isic_code.astype("object").where(good.isic_code.notna(), None).to_numpy()}
        cols.update({c: good[c].to_numpy(dtype="float64") for c in (*AMOUNT_COLUMNS, *SME_AMOUNT_COLUMNS)})
        job = (FinancialStatement.__table__, pd.DataFrame(cols))
    elif kind == "loans":
        frame = pd.DataFrame({
            **base,
            "loan_hash": hashes["loan"].loc[good.index].astype(str).to_numpy(),
            "origination_date": _dates(good.origination_date).array,
            "maturity_date": _dates(good.maturity_date).array,
            "currency": good.currency.astype(str).to_numpy(),
            "amount": good.amount.to_numpy(dtype="float64"),
            "interest_rate": good.interest_rate.to_numpy(dtype="float64"),
            "amortization": good.amortization.fillna("annuity").astype(str).to_numpy(),
            "secured": good.secured.fillna(False).astype(bool).to_numpy(),
            "guarantee_coverage": good.guarantee_coverage.to_numpy(dtype="float64"),
            "outstanding": good.outstanding.to_numpy(dtype="float64"),
        })
        job = (Loan.__table__, frame)
    else:
        lh = hashes["loan"].loc[good.index]
        frame = pd.DataFrame({
            **base,
            "default_date": _dates(good.default_date).array,
            "event_type": good.event_type.astype(str).to_numpy(),
            "loan_hash": lh.astype(object).where(lh.notna(), None).to_numpy(),
            "exposure": good.exposure.to_numpy(dtype="float64"),
        })
        job = (DefaultEvent.__table__, frame)
    insert_frame(conn, *job)
    return len(good), unresolved
